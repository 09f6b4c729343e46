"""REST request weights and budgets per IP (BINANCE.md §2.1, §2.3).

Budgets count in fixed wall-clock windows (1 min for weight, 5 min for the request-count quotas
of ``/futures/data/*`` and ``fundingRate``), shrunk by ``RateLimits.window_scale`` for tests.
A request past a budget gets 429 with ``Retry-After``; after ``ban_after_429`` more 429s in one
window the IP is banned with 418 for 2 minutes, doubling per repeat up to 3 days.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lake.exchange.config import RateLimits

MAX_BAN_S = 3 * 86_400.0


def kline_weight(limit: int) -> int:
    """USD-M kline weight by ``limit``: [1,100)→1, [100,500)→2, [500,1000]→5, >1000→10."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of a budget check: ``status`` 200, 429 or 418, used weight, seconds to wait."""

    status: int
    used: int
    retry_after: int = 0
    limit_name: str = ""
    limit: int = 0


class Limiter:
    """Weight and request-count budgets per IP."""

    def __init__(self, limits: RateLimits, wall: Callable[[], float] = time.time) -> None:
        """Create empty budgets."""
        self.limits = limits
        self._wall = wall
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str, int], int] = {}
        self._strikes: dict[tuple[str, int], int] = {}
        self._ban_until: dict[str, float] = {}
        self._bans: dict[str, int] = {}

    @property
    def weight_window(self) -> float:
        """Length of the weight window in seconds."""
        return 60.0 * self.limits.window_scale

    def used(self, ip: str, bucket: str) -> int:
        """Weight used by ``ip`` on ``bucket`` ("spot" or "um") in the current window."""
        w = self.weight_window
        return self._used.get((ip, bucket, int(self._wall() // w)), 0)

    def check(self, ip: str, bucket: str, weight: int, quota: str | None = None) -> Verdict:
        """Charge one request; ``quota`` names an extra 5-minute request count, if any.

        Args:
            ip: client address.
            bucket: "spot" or "um" weight budget.
            weight: request weight.
            quota: "futures_data" or "funding" for the endpoints with their own request quota.
        """
        now = self._wall()
        lim = self.limits
        w = self.weight_window
        win = int(now // w)
        with self._lock:
            used = self._used.get((ip, bucket, win), 0)
            until = self._ban_until.get(ip, 0.0)
            if until > now:
                return Verdict(418, used, math.ceil(until - now))
            cap = lim.spot_weight if bucket == "spot" else lim.um_weight
            name, over, wait = "REQUEST_WEIGHT", used + weight > cap, (win + 1) * w - now
            if quota and not over:
                qw = 300.0 * lim.window_scale
                qcap = (
                    lim.futures_data_requests if quota == "futures_data" else lim.funding_requests
                )
                qkey = (ip, quota, int(now // qw))
                if self._used.get(qkey, 0) + 1 > qcap:
                    name, cap, over = quota, qcap, True
                    wait = (int(now // qw) + 1) * qw - now
                else:
                    self._used[qkey] = self._used.get(qkey, 0) + 1
            if over:
                strikes = self._strikes.get((ip, win), 0) + 1
                self._strikes[(ip, win)] = strikes
                if strikes > lim.ban_after_429:
                    n = self._bans.get(ip, 0)
                    self._bans[ip] = n + 1
                    ban = min(MAX_BAN_S, lim.ban_seconds * lim.window_scale * 2**n)
                    self._ban_until[ip] = now + ban
                    return Verdict(418, used, math.ceil(ban))
                return Verdict(429, used, max(1, math.ceil(wait)), name, cap)
            self._used[(ip, bucket, win)] = used + weight
            if len(self._used) > 10_000:
                self._prune(now)
            return Verdict(200, used + weight)

    def _prune(self, now: float) -> None:
        # Windows that ended are never read again; the longest window is the 5-minute quota.
        w, qw = self.weight_window, 300.0 * self.limits.window_scale
        self._used = {
            k: v
            for k, v in self._used.items()
            if (k[1] in ("spot", "um") and k[2] >= int(now // w))
            or (k[1] not in ("spot", "um") and k[2] >= int(now // qw))
        }
        self._strikes = {k: v for k, v in self._strikes.items() if k[1] >= int(now // w)}

    def reset(self) -> None:
        """Forget all usage, strikes and bans."""
        with self._lock:
            self._used.clear()
            self._strikes.clear()
            self._ban_until.clear()
            self._bans.clear()
