"""One REST weight budget per exchange host and market, shared by everything in the process.

Binance counts request weight per IP in fixed windows (one minute by default) and reports the
running total in ``X-MBX-USED-WEIGHT-1M`` on every response. A :class:`WeightBudget` keeps its own
count of what this process has sent in the current window, raises it to whatever the exchange
reports (other tasks, other processes on the same IP), and lets a request go only while the total
stays under ``target`` of the limit; otherwise the caller waits for the next window. After a 429
or 418 it blocks every caller until the ``Retry-After`` moment.

Budgets are looked up by key in a process-wide registry, so every task and flow in a process —
Prefect runs tasks in threads — draws from the same one. Thread-safe; holds no event loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class BudgetStats:
    """What a budget has seen; ``used`` sums the weight this process sent."""

    requests: int = 0
    used: int = 0
    waited_s: float = 0.0
    throttled: int = 0  # 429 responses
    banned: int = 0  # 418 responses
    windows: set[int] = field(default_factory=set)

    def utilisation(self, limit: int) -> float:
        """Weight sent per window, as a share of the limit, over the windows used so far."""
        return self.used / (limit * len(self.windows)) if self.windows else 0.0


class WeightBudget:
    """A thread-safe request-weight budget in fixed windows of ``window_s`` seconds."""

    def __init__(
        self,
        limit: int,
        *,
        window_s: float = 60.0,
        target: float = 0.95,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit <= 0 or window_s <= 0 or not 0 < target <= 1:
            raise ValueError("limit and window must be positive, target in (0, 1]")
        self.limit = limit
        self.window_s = window_s
        self.target = target
        self.stats = BudgetStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._used = 0
        self._blocked_until = 0.0

    @property
    def allowed(self) -> int:
        """The weight this budget lets through per window."""
        return math.floor(self.limit * self.target)

    def _roll(self, now: float) -> int:
        window = int(now // self.window_s)
        if window != self._window:
            self._window, self._used = window, 0
        return window

    def reserve(self, weight: int) -> float:
        """Reserve ``weight`` now and return 0, or return how long to wait before trying again."""
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return self._blocked_until - now
            window = self._roll(now)
            if weight > self.allowed:
                raise ValueError(f"a request of weight {weight} can never fit {self.allowed}")
            if self._used + weight > self.allowed:
                return (window + 1) * self.window_s - now + 0.001
            self._used += weight
            self.stats.used += weight
            self.stats.requests += 1
            self.stats.windows.add(window)
            return 0.0

    def observe(self, used_in_window: int) -> None:
        """Raise the local count to what the exchange reported for the current window."""
        with self._lock:
            self._roll(self._clock())
            self._used = max(self._used, used_in_window)

    def block(self, seconds: float, *, banned: bool = False) -> None:
        """After a 429/418: nobody sends until ``seconds`` from now."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
            if banned:
                self.stats.banned += 1
            else:
                self.stats.throttled += 1

    def note_wait(self, seconds: float) -> None:
        with self._lock:
            self.stats.waited_s += seconds


_REGISTRY: dict[str, WeightBudget] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_budget(key: str, limit: int, *, window_s: float = 60.0) -> WeightBudget:
    """The process-wide budget for ``key`` (e.g. ``"https://fapi.binance.com"``), made once.

    A later call with another limit or window (learned from ``exchangeInfo``) updates it.
    """
    with _REGISTRY_LOCK:
        budget = _REGISTRY.get(key)
        if budget is None:
            budget = _REGISTRY[key] = WeightBudget(limit, window_s=window_s)
        elif (budget.limit, budget.window_s) != (limit, window_s):
            budget.limit, budget.window_s = limit, window_s
        return budget


def reset_budgets() -> None:
    """Forget every budget (tests start from a clean slate)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
