"""The Binance client: endpoints and limits (data), wire structs, pure parsers, and the I/O edges.

Pure modules (``endpoints``, ``limits``, ``vision_paths``, ``wire``, ``parse*``) never touch the
clock, the network or the filesystem; the I/O modules (``ws``, ``rest``, ``vision``) only move
bytes and call into them.
"""
