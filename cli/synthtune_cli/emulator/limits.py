"""Rate limits and injected faults: the ways the emulated service says no."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.draws import draw
from synthtune_cli.emulator.errors import ApiError
from synthtune_cli.emulator.knobs import EmulatorKnobs

WINDOW_SECONDS = 60.0


class _SlidingWindow:
    """(time, amount) entries of the last 60 s on the emulator's clock."""

    def __init__(self) -> None:
        self._entries: deque[tuple[float, int]] = deque()

    def used(self, now: float) -> int:
        while self._entries and self._entries[0][0] <= now - WINDOW_SECONDS:
            self._entries.popleft()
        return sum(amount for _, amount in self._entries)

    def add(self, now: float, amount: int) -> None:
        self._entries.append((now, amount))

    def wait_for(self, now: float, amount: int, limit: int) -> float:
        """Seconds until `amount` more fits under `limit`, as older entries leave the window."""
        excess = self.used(now) + amount - limit
        if excess <= 0:
            return 0.0
        if amount > limit:
            return WINDOW_SECONDS
        for at, entry_amount in self._entries:
            excess -= entry_amount
            if excess <= 0:
                return at + WINDOW_SECONDS - now
        return WINDOW_SECONDS

    def reset_after(self, now: float) -> float:
        """Seconds until the oldest entry leaves the window."""
        self.used(now)
        return self._entries[0][0] + WINDOW_SECONDS - now if self._entries else 0.0

    def clear(self) -> None:
        self._entries.clear()


def _duration(seconds: float) -> str:
    """OpenAI's reset-header style: "120ms", "1.5s", "1m0s"."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3f}".rstrip("0").rstrip(".") + "s"


class RateLimiter:
    """Requests and tokens per sliding minute, for the model endpoint (POST /v1/chat/completions)."""

    def __init__(self) -> None:
        self._requests = _SlidingWindow()
        self._tokens = _SlidingWindow()

    def admit(self, now: float, knobs: EmulatorKnobs, model: str, estimated_tokens: int) -> None:
        """Count one request, or raise a 429 when a limit would be exceeded."""
        checks = (
            ("requests", "RPM", knobs.requests_per_minute, self._requests, 1),
            ("tokens", "TPM", knobs.tokens_per_minute, self._tokens, estimated_tokens),
        )
        for kind, unit, limit, window, amount in checks:
            if limit is None:
                continue
            wait = window.wait_for(now, amount, limit)
            if wait > 0:
                used = window.used(now)
                if amount > limit:
                    message = (
                        f"Request too large for {model} on {kind} per min ({unit}): "
                        f"Limit {limit}, Requested {amount}."
                    )
                else:
                    message = (
                        f"Rate limit reached for {model} on {kind} per min ({unit}): "
                        f"Limit {limit}, Used {used}, Requested {amount}. "
                        f"Please try again in {_duration(wait)}."
                    )
                headers = {
                    "retry-after": str(max(1, math.ceil(wait))),
                    "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
                    **self.headers(now, knobs),
                }
                raise ApiError(429, message, code="rate_limit_exceeded", error_type=kind, headers=headers)
        self._requests.add(now, 1)

    def record_tokens(self, now: float, tokens: int) -> None:
        self._tokens.add(now, tokens)

    def headers(self, now: float, knobs: EmulatorKnobs) -> dict[str, str]:
        """The x-ratelimit-* headers for the limits that are set."""
        headers: dict[str, str] = {}
        for kind, limit, window in (
            ("requests", knobs.requests_per_minute, self._requests),
            ("tokens", knobs.tokens_per_minute, self._tokens),
        ):
            if limit is None:
                continue
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, limit - window.used(now)))
            headers[f"x-ratelimit-reset-{kind}"] = _duration(window.reset_after(now))
        return headers

    def clear(self) -> None:
        self._requests.clear()
        self._tokens.clear()


@dataclass
class _Injection:
    remaining: int
    status: int
    path_prefix: str


class FaultInjector:
    """Failures on demand (`inject`) and at a seeded rate (knob `error_rate`)."""

    def __init__(self) -> None:
        self._injections: list[_Injection] = []
        self._ordinal = 0

    def inject(self, count: int, status: int, path_prefix: str) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if count:
            self._injections.append(_Injection(count, status, path_prefix))

    def pending(self) -> list[dict[str, Any]]:
        return [
            {"count": injection.remaining, "status": injection.status, "path_prefix": injection.path_prefix}
            for injection in self._injections
        ]

    def next_fault(self, path: str, knobs: EmulatorKnobs, seed: int) -> ApiError | None:
        """The error this request fails with, if any: injected ones first, oldest first."""
        for injection in self._injections:
            if path.startswith(injection.path_prefix):
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return fault_error(injection.status)
        ordinal = self._ordinal
        self._ordinal += 1
        if knobs.error_rate and draw(seed, "error-rate", ordinal) < knobs.error_rate:
            return fault_error(knobs.error_status)
        return None

    def clear(self) -> None:
        self._injections.clear()
        self._ordinal = 0


def fault_error(status: int) -> ApiError:
    if status == 429:
        return ApiError(429, "Rate limit reached (injected by the emulator).", code="rate_limit_exceeded")
    if status >= 500:
        return ApiError(
            status,
            "The server had an error while processing your request. Sorry about that! "
            "(injected by the emulator)",
        )
    return ApiError(status, f"Injected error {status} (injected by the emulator).")
