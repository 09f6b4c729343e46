"""The exchange clock: wall time, shifted and optionally sped up, settable at runtime.

The market is a function of exchange time, so moving this clock moves every surface at once:
the WebSocket emits what became due, REST answers up to "now", Vision publishes what is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Exchange time = ``origin_ms + (wall - origin_wall) * speed``.

    The state is one tuple replaced atomically, so tests may move the clock from another thread
    while the server reads it.
    """

    def __init__(
        self,
        start_ms: int | None = None,
        speed: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """Create a clock.

        Args:
            start_ms: exchange time now (Unix ms); default the real time.
            speed: exchange seconds per wall second.
            wall: wall-clock source in seconds (injectable for tests).
        """
        self._wall = wall
        w = wall()
        self._state = (w, float(start_ms if start_ms is not None else w * 1000), float(speed))

    @property
    def speed(self) -> float:
        """Exchange seconds per wall second."""
        return self._state[2]

    def now_ms(self) -> int:
        """Current exchange time in Unix milliseconds."""
        w0, t0, speed = self._state
        return int(t0 + (self._wall() - w0) * 1000 * speed)

    def now_us(self) -> int:
        """Current exchange time in Unix microseconds."""
        w0, t0, speed = self._state
        return int(t0 * 1000 + (self._wall() - w0) * 1_000_000 * speed)

    def set(self, t_ms: int, speed: float | None = None) -> None:
        """Jump to exchange time ``t_ms`` (and optionally change the speed)."""
        self._state = (self._wall(), float(t_ms), self.speed if speed is None else float(speed))

    def set_speed(self, speed: float) -> None:
        """Change the speed without moving the current time."""
        self.set(self.now_ms(), speed)

    def advance(self, ms: int) -> None:
        """Move the clock forward by ``ms`` exchange milliseconds."""
        self.set(self.now_ms() + ms)

    def wall_seconds_until(self, t_ms: int) -> float:
        """Wall seconds until exchange time reaches ``t_ms`` (0 if already past)."""
        _, _, speed = self._state
        if speed <= 0:
            return float("inf") if t_ms > self.now_ms() else 0.0
        return max(0.0, (t_ms - self.now_ms()) / 1000 / speed)
