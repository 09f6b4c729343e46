"""Quality: pure invariants over polars frames (continuity, sanity) and the GX runner."""
