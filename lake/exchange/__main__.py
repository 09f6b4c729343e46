"""``python -m lake.exchange serve …`` (the same app as ``cryptolake exchange``)."""

from __future__ import annotations

from lake.exchange.cli import app

if __name__ == "__main__":
    app(prog_name="python -m lake.exchange")
