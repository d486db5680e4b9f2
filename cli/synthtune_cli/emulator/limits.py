"""Rate limits and injected faults: the ways the emulated service says no."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.draws import draw
from synthtune_cli.emulator.errors import ApiError
from synthtune_cli.emulator.knobs import EmulatorKnobs

# OpenAI's limits are per minute; `rate_limit_window_seconds` may enforce them over a shorter window.
MINUTE = 60.0


class _SlidingWindow:
    """(time, amount) entries of the last minute on the emulator's clock, read over any window up to it."""

    def __init__(self) -> None:
        self._entries: deque[tuple[float, int]] = deque()

    def _recent(self, now: float, window: float) -> list[tuple[float, int]]:
        # Entries are kept for a whole minute whatever the window, so widening the window again sees them.
        while self._entries and self._entries[0][0] <= now - MINUTE:
            self._entries.popleft()
        return [(at, amount) for at, amount in self._entries if at > now - window]

    def used(self, now: float, window: float) -> int:
        return sum(amount for _, amount in self._recent(now, window))

    def add(self, now: float, amount: int) -> None:
        self._entries.append((now, amount))

    def wait_for(self, now: float, amount: int, limit: int, window: float) -> float:
        """Seconds until `amount` more fits under `limit`, as older entries leave the window."""
        entries = self._recent(now, window)
        excess = sum(entry_amount for _, entry_amount in entries) + amount - limit
        if excess <= 0:
            return 0.0
        if amount > limit:
            return window
        for at, entry_amount in entries:
            excess -= entry_amount
            if excess <= 0:
                return at + window - now
        return window

    def reset_after(self, now: float, window: float) -> float:
        """Seconds until the oldest entry in the window leaves it."""
        entries = self._recent(now, window)
        return entries[0][0] + window - now if entries else 0.0

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


def enforced_limit(per_minute: int, window: float) -> int:
    """A per-minute limit scaled to a window of `window` seconds, at least 1 (60,000/min over 1 s: 1,000)."""
    # The small epsilon keeps a product like 60000 * 0.1 / 60 = 99.99999... from losing a whole unit.
    return max(1, math.floor(per_minute * window / MINUTE + 1e-9))


class RateLimiter:
    """Requests and tokens per minute, for the model endpoint (POST /v1/chat/completions).

    Each limit is enforced over a sliding window of `knobs.rate_limit_window_seconds` with the limit scaled
    to that window, as OpenAI may enforce "60,000 requests/minute" as 1,000 requests/second.
    """

    def __init__(self) -> None:
        self._requests = _SlidingWindow()
        self._tokens = _SlidingWindow()

    def admit(self, now: float, knobs: EmulatorKnobs, model: str, estimated_tokens: int) -> None:
        """Count one request, or raise a 429 when a limit would be exceeded."""
        window_seconds = knobs.rate_limit_window_seconds
        checks = (
            ("requests", "RPM", knobs.requests_per_minute, self._requests, 1),
            ("tokens", "TPM", knobs.tokens_per_minute, self._tokens, estimated_tokens),
        )
        for kind, unit, per_minute, window, amount in checks:
            if per_minute is None:
                continue
            limit = enforced_limit(per_minute, window_seconds)
            wait = window.wait_for(now, amount, limit, window_seconds)
            if wait > 0:
                stated = f"Limit {per_minute}"
                if window_seconds != MINUTE:
                    stated += f", enforced as {limit} per {_duration(window_seconds)}"
                if amount > limit:
                    message = (
                        f"Request too large for {model} on {kind} per min ({unit}): "
                        f"{stated}, Requested {amount}."
                    )
                else:
                    message = (
                        f"Rate limit reached for {model} on {kind} per min ({unit}): "
                        f"{stated}, Used {window.used(now, window_seconds)}, Requested {amount}. "
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
        """The x-ratelimit-* headers for the limits that are set.

        `limit` is the per-minute figure, as OpenAI sends it; `remaining` and `reset` describe the window
        actually enforced, so a client that waits `reset` is admitted.
        """
        window_seconds = knobs.rate_limit_window_seconds
        headers: dict[str, str] = {}
        for kind, per_minute, window in (
            ("requests", knobs.requests_per_minute, self._requests),
            ("tokens", knobs.tokens_per_minute, self._tokens),
        ):
            if per_minute is None:
                continue
            limit = enforced_limit(per_minute, window_seconds)
            headers[f"x-ratelimit-limit-{kind}"] = str(per_minute)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, limit - window.used(now, window_seconds)))
            headers[f"x-ratelimit-reset-{kind}"] = _duration(window.reset_after(now, window_seconds))
        return headers

    def clear(self) -> None:
        self._requests.clear()
        self._tokens.clear()


@dataclass
class _Injection:
    remaining: int
    status: int
    path_prefix: str
    method: str | None = None


@dataclass
class _LossRate:
    fraction: float
    seed: int
    status: int
    path_prefix: str
    method: str
    matched: int = 0


class FaultInjector:
    """Failures on demand (`inject`), at a seeded rate (knob `error_rate`), and lost responses, counted
    (`lose`) or at a seeded rate (`lose_fraction`)."""

    def __init__(self) -> None:
        self._injections: list[_Injection] = []
        self._losses: list[_Injection] = []
        self._loss_rates: list[_LossRate] = []
        self._ordinal = 0

    def lose(self, count: int, status: int, path_prefix: str, method: str) -> None:
        """The next `count` requests that match are carried out, then answered with `status`."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if count:
            self._losses.append(_Injection(count, status, path_prefix, method.upper()))

    def lose_fraction(self, fraction: float, seed: int, status: int, path_prefix: str, method: str) -> None:
        """From now on, a share `fraction` of the requests that match are carried out, then answered with
        `status`: the k-th matching request is lost iff hash(seed, path_prefix, k) < fraction."""
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be from 0 to 1, got {fraction}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        self._loss_rates = [rate for rate in self._loss_rates if rate.path_prefix != path_prefix]
        if fraction:
            self._loss_rates.append(_LossRate(fraction, seed, status, path_prefix, method.upper()))

    def next_loss(self, method: str, path: str) -> int | None:
        """The status a request that was just carried out is answered with instead of its response."""
        for loss in self._losses:
            if path.startswith(loss.path_prefix) and method.upper() == loss.method:
                loss.remaining -= 1
                if loss.remaining == 0:
                    self._losses.remove(loss)
                return loss.status
        for rate in self._loss_rates:
            if path.startswith(rate.path_prefix) and method.upper() == rate.method:
                rate.matched += 1
                if draw(rate.seed, "lose-fraction", rate.path_prefix, rate.matched) < rate.fraction:
                    return rate.status
                return None
        return None

    def inject(self, count: int, status: int, path_prefix: str) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if count:
            self._injections.append(_Injection(count, status, path_prefix))

    def pending(self) -> list[dict[str, Any]]:
        pending: list[dict[str, Any]] = [
            {"count": injection.remaining, "status": injection.status, "path_prefix": injection.path_prefix}
            for injection in self._injections
        ]
        pending += [
            {
                "count": loss.remaining,
                "status": loss.status,
                "path_prefix": loss.path_prefix,
                "lost": loss.method,
            }
            for loss in self._losses
        ]
        pending += [
            {
                "fraction": rate.fraction,
                "seed": rate.seed,
                "status": rate.status,
                "path_prefix": rate.path_prefix,
                "lost": rate.method,
            }
            for rate in self._loss_rates
        ]
        return pending

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
        self._losses.clear()
        self._loss_rates.clear()
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
