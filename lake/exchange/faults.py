"""Faults on demand: the ``--faults`` spec grammar and the live set the server consults.

Grammar (whitespace ignored)::

    SPEC  := FAULT (";" FAULT)*
    FAULT := NAME [":" PARAM ("," PARAM)*]
    PARAM := KEY "=" VALUE

Example: ``ws.drop:every=30s;rest.error:status=503,p=0.1;vision.missing:date=2024-01-02``.
The table :data:`KINDS` lists every fault and the keys it accepts; docs/exchange.md explains them.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

_TRIGGER = {"every", "p", "times"}
_VISION = {"match", "symbol", "date", "dataset", "market"}

KINDS: dict[str, set[str]] = {
    "ws.drop": {"every", "p", "times", "mode", "route"},
    "ws.malformed": _TRIGGER | {"stream"},
    "ws.duplicate": _TRIGGER | {"stream"},
    "ws.reorder": _TRIGGER | {"stream"},
    "ws.silence": {"stream", "after", "times"},
    "ws.halt": {"symbol", "market", "after"},
    "rest.error": _TRIGGER | {"path", "status"},
    "rest.timeout": _TRIGGER | {"path", "delay"},
    "rest.429": _TRIGGER | {"path"},
    "rest.418": _TRIGGER | {"path"},
    "vision.checksum": _VISION,
    "vision.truncate": _VISION | {"keep"},
    "vision.missing": _VISION,
    "vision.replace": _VISION | {"at"},
    "vision.header": _VISION,
}


class FaultSpecError(ValueError):
    """A ``--faults`` spec that does not parse; the message says what and how to fix it."""


def parse_duration(text: str) -> float:
    """``250ms``, ``5s``, ``2m``, ``1h`` or a bare number of seconds → seconds."""
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, mult in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * mult
    return float(text)


def _parse_time_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


@dataclass
class Fault:
    """One active fault. ``every`` counts events (messages, requests), except for ``ws.drop``
    where it is a duration in seconds; ``p`` fires at random; ``times`` caps how often it fires.
    """

    name: str
    params: dict[str, str]
    every: float | None = None
    p: float | None = None
    times: int | None = None
    seen: int = 0
    fired: int = 0
    created: float = field(default_factory=time.monotonic)  # wall time it came into force
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, key: str, default: str = "") -> str:
        """A raw parameter value."""
        return self.params.get(key, default)

    @property
    def exhausted(self) -> bool:
        """True once the fault has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times

    def trigger(self, rnd: random.Random) -> bool:
        """Count one event and say whether the fault fires on it."""
        with self.lock:
            if self.exhausted:
                return False
            self.seen += 1
            if self.p is not None:
                hit = rnd.random() < self.p
            elif self.every is not None:
                hit = self.seen % max(1, int(self.every)) == 0
            else:
                hit = True
            self.fired += hit
            return hit

    def matches_path(self, path: str) -> bool:
        """Filter of REST faults: ``path`` prefix (empty matches all)."""
        return path.startswith(self.get("path", "/"))

    def matches_stream(self, stream: str) -> bool:
        """Filter of WS faults: exact stream name (empty matches all)."""
        return self.get("stream", stream) == stream

    def halts(self, stream: str, route: str) -> bool:
        """``ws.halt``: is ``stream`` (on ``route``) of the halted symbol, and the halt begun?"""
        if stream.split("@", 1)[0] != self.get("symbol").lower():
            return False
        market = self.get("market")
        if market and not route.startswith(market):
            return False
        return time.monotonic() - self.created >= parse_duration(self.get("after", "0"))

    def matches_file(self, key: str, info: dict[str, str]) -> bool:
        """Filter of Vision faults: every given filter must match the file."""
        if "match" in self.params and not fnmatch.fnmatch(key, self.params["match"]):
            return False
        return all(
            self.params[k] == info.get(k)
            for k in ("symbol", "date", "dataset", "market")
            if k in self.params
        )

    @property
    def at_ms(self) -> int | None:
        """``vision.replace`` time (exchange ms), if given."""
        return _parse_time_ms(self.params["at"]) if "at" in self.params else None


def parse_spec(spec: str) -> list[Fault]:
    """Parse a fault spec.

    Raises:
        FaultSpecError: on an unknown fault or key, or a bad value.
    """
    faults = []
    for part in (p.strip() for p in spec.replace(" ", "").split(";")):
        if not part:
            continue
        name, _, rest = part.partition(":")
        if name not in KINDS:
            raise FaultSpecError(f"unknown fault {name!r}; known: {', '.join(sorted(KINDS))}")
        params: dict[str, str] = {}
        for kv in filter(None, rest.split(",")):
            key, eq, value = kv.partition("=")
            if not eq or not value:
                raise FaultSpecError(f"bad parameter {kv!r} in {name}: write key=value")
            if key not in KINDS[name]:
                allowed = ", ".join(sorted(KINDS[name])) or "none"
                raise FaultSpecError(f"{name} takes no {key!r}; allowed: {allowed}")
            params[key] = value
        faults.append(_build(name, params))
    return faults


def _build(name: str, params: dict[str, str]) -> Fault:
    try:
        every = params.get("every")
        f = Fault(
            name,
            params,
            every=(parse_duration(every) if name == "ws.drop" else int(every)) if every else None,
            p=float(params["p"]) if "p" in params else None,
            times=int(params["times"]) if "times" in params else None,
        )
        if f.p is not None and not 0 <= f.p <= 1:
            raise ValueError("p must be between 0 and 1")
        for key in ("after", "delay"):
            if key in params:
                parse_duration(params[key])
        if "status" in params and not 500 <= int(params["status"]) <= 599:
            raise ValueError("status must be a 5xx code")
        if "keep" in params and not 0 <= float(params["keep"]) < 1:
            raise ValueError("keep must be a fraction in [0, 1)")
        if "mode" in params and params["mode"] not in ("abort", "close"):
            raise ValueError("mode must be abort or close")
        if name == "ws.halt" and "symbol" not in params:
            raise ValueError("ws.halt needs symbol=<SYMBOL>, e.g. symbol=ETHUSDT")
        if "market" in params and params["market"] not in ("spot", "um"):
            raise ValueError("market must be spot or um")
        if name == "ws.silence" and "stream" not in params:
            raise ValueError("ws.silence needs stream=<name>, e.g. stream=btcusdt@aggTrade")
        if name == "ws.drop" and every is None and "p" not in params:
            raise ValueError("ws.drop needs every=<duration> or p=<probability>")
        if "at" in params:
            _parse_time_ms(params["at"])  # a bad time fails now, not on first use
    except ValueError as exc:
        raise FaultSpecError(f"bad value in {name}: {exc}") from None
    return f


class FaultSet:
    """The faults in force; safe to change from another thread while the server runs."""

    def __init__(self, spec: str = "", seed: int = 0) -> None:
        """Start with the faults of ``spec`` (may be empty)."""
        self._faults: tuple[Fault, ...] = tuple(parse_spec(spec))
        self.rnd = random.Random(seed)
        self.installed_ms: dict[int, int] = {}

    def add(self, spec: str, now_ms: int | None = None) -> list[Fault]:
        """Add the faults of ``spec`` and return them (``now_ms`` stamps ``vision.replace``)."""
        new = parse_spec(spec)
        for f in new:
            if now_ms is not None:
                self.installed_ms[id(f)] = now_ms
        self._faults = (*self._faults, *new)
        return new

    def remove(self, name: str | None = None) -> None:
        """Remove every fault named ``name`` (or all faults)."""
        self._faults = tuple(f for f in self._faults if name is not None and f.name != name)

    def clear(self) -> None:
        """Remove every fault."""
        self.remove(None)

    def of(self, prefix: str) -> list[Fault]:
        """Active faults whose name starts with ``prefix`` (e.g. ``"ws."``)."""
        return [f for f in self._faults if f.name.startswith(prefix) and not f.exhausted]

    def __bool__(self) -> bool:
        return bool(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        return iter(self._faults)
