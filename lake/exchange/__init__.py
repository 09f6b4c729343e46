"""The built-in Binance exchange: a deterministic simulated market, replay and faults.

One aiohttp server on 127.0.0.1 serves the WebSocket routes, REST and a Vision archive under the
real paths (see docs/exchange.md). Import :mod:`lake.exchange.app` to run it in-process and
:mod:`lake.exchange.testing` for the pytest fixtures; this package root stays import-cheap.
"""
