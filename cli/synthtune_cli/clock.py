"""Clocks shared by the offline runtime and the OpenAI emulator.

Offline runs use a `VirtualClock`: the state machine's Wait states, retry intervals and the emulator's
simulated latency advance it instead of sleeping, so a fine-tuning job that "takes" an hour of emulated
time finishes in milliseconds while every status transition still happens in order. Runs against real
services use the `WallClock`; `ScaledClock` runs emulated time faster than real time for a long-lived
emulator server.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, as this clock sees them."""

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of this clock's time pass."""


class WallClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Emulated time that runs `scale` times faster than real time, starting now."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.scale = scale
        self._real_start = time.time()

    def now(self) -> float:
        return self._real_start + (time.time() - self._real_start) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.scale)


class VirtualClock:
    """Time that moves only when somebody sleeps or calls `advance`.

    Thread-safe. Concurrent sleepers each advance the clock by their own interval, so ten threads that
    each sleep one second move it by ten seconds: emulated time is an upper bound on the time a real
    run would take, never less.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
