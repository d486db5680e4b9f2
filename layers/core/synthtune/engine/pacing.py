"""Sharing one provider rate limit among the requests a shard has in flight.

The OpenAI SDK retries each request on its own, so after a 429 every thread of a shard sleeps and
comes back at once, and requests that fail still count against the limit. Here the SDK's retries are
off (`max_retries=0` on the teacher's client) and one `RateLimitGate` per shard decides when anything
may be sent: a 429 closes the gate for as long as the provider says (`retry-after-ms`, `retry-after`,
`x-ratelimit-reset-*`), a success that reports the window used up closes it until the window resets,
and each waiting request adds its own jitter so they do not all return in the same instant. Shards in
other Lambda invocations see the same provider counters in the same headers, so they pace alike.

The gate knows the invocation's deadline: a wait that would outlast it raises `OutOfTime`, and the
shard stops, keeping every answer it has checkpointed, to be resumed by Step Functions' retry.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from synthtune.contracts.errors import ModelUnavailable, RateLimited

ResultT = TypeVar("ResultT")

_DURATION_PART = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

MIN_JITTER_SECONDS = 0.05
JITTER_SHARE = 0.2
"""Each request waits up to this share of the hold (at least MIN_JITTER_SECONDS) beyond it."""

SERVER_ERROR_BACKOFF_SECONDS = 1.0
SERVER_ERROR_BACKOFF_CAP_SECONDS = 30.0


def parse_duration(value: str | None) -> float | None:
    """OpenAI's reset-header durations: "20ms", "1.5s", "6m0s", "1h2m3s"; None when unreadable."""
    if not value:
        return None
    text = value.strip()
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(part.group(0) for part in parts) != text:
        return None
    return sum(float(part["value"]) * _UNIT_SECONDS[part["unit"]] for part in parts)


class RateLimitHeaders(BaseModel):
    """What the provider's headers say about the rate-limit window (absent fields were not sent)."""

    model_config = ConfigDict(frozen=True)

    retry_after_seconds: float | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_seconds: float | None = None
    reset_tokens_seconds: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        lower = {name.lower(): value for name, value in headers.items()}
        retry_after: float | None = None
        if _is_number(lower.get("retry-after-ms")):
            retry_after = float(lower["retry-after-ms"]) / 1000
        elif _is_number(lower.get("retry-after")):
            retry_after = float(lower["retry-after"])
        return cls(
            retry_after_seconds=retry_after,
            remaining_requests=_integer(lower.get("x-ratelimit-remaining-requests")),
            remaining_tokens=_integer(lower.get("x-ratelimit-remaining-tokens")),
            reset_requests_seconds=parse_duration(lower.get("x-ratelimit-reset-requests")),
            reset_tokens_seconds=parse_duration(lower.get("x-ratelimit-reset-tokens")),
        )

    def wait_after_429(self) -> float | None:
        """How long the provider asks a rejected request to wait, from the most specific header."""
        if self.retry_after_seconds is not None:
            return self.retry_after_seconds
        exhausted = [
            reset
            for remaining, reset in (
                (self.remaining_requests, self.reset_requests_seconds),
                (self.remaining_tokens, self.reset_tokens_seconds),
            )
            if reset is not None and (remaining is None or remaining <= 0)
        ]
        return max(exhausted) if exhausted else None

    def wait_before_next(self, tokens_per_request: int) -> float:
        """After a success: how long to hold further requests because the window is used up (0: none)."""
        waits = [0.0]
        if self.remaining_requests is not None and self.remaining_requests <= 0:
            waits.append(self.reset_requests_seconds or 0.0)
        if self.remaining_tokens is not None and self.remaining_tokens < max(1, tokens_per_request):
            waits.append(self.reset_tokens_seconds or 0.0)
        return max(waits)


def _is_number(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value) >= 0
    except ValueError:
        return False


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class OutOfTime(Exception):
    """Waiting would outlast the invocation; `rate_limited` says whether a 429 was why."""

    def __init__(self, rate_limited: bool) -> None:
        super().__init__("the invocation's time is up")
        self.rate_limited = rate_limited


class RateLimitGate:
    """One per shard invocation; thread-safe. Time and randomness are injectable for tests."""

    def __init__(
        self,
        *,
        deadline: float | None = None,
        monotonic: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        # `time` is looked up when the gate is made, not when this module is imported, so that the
        # offline runtime can put the gate on its clock (see synthtune_cli.offline).
        self.deadline = deadline
        self._monotonic = monotonic or time.monotonic
        self._sleep = sleep or time.sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self._open_at = 0.0
        self._jitter_window = MIN_JITTER_SECONDS
        self._held_for_429 = False
        self.holds = 0
        """How many times the gate closed (429s and exhausted windows): reported by the benchmark."""

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._monotonic()

    def hold(self, seconds: float, *, rate_limited: bool) -> None:
        """Send nothing for `seconds` from now (a later hold extends an earlier one, never shortens it)."""
        with self._lock:
            until = self._monotonic() + max(0.0, seconds)
            if until > self._open_at:
                self._open_at = until
                self._jitter_window = max(MIN_JITTER_SECONDS, seconds * JITTER_SHARE)
                self._held_for_429 = rate_limited
                self.holds += 1

    def wait_turn(self, must_finish_within: float = 0.0) -> None:
        """Block until a request may be sent and `must_finish_within` seconds remain before the deadline."""
        while True:
            with self._lock:
                now = self._monotonic()
                delay = self._open_at - now
                if delay > 0:
                    delay += self._jitter() * self._jitter_window
                if self.deadline is not None and now + max(delay, 0.0) + must_finish_within > self.deadline:
                    raise OutOfTime(rate_limited=self._held_for_429 and delay > 0)
            if delay <= 0:
                return
            self._sleep(delay)

    def backoff(self, attempt: int) -> None:
        """This request alone waits before its next try after a 5xx or timeout (full jitter)."""
        ceiling = min(SERVER_ERROR_BACKOFF_CAP_SECONDS, SERVER_ERROR_BACKOFF_SECONDS * 2 ** (attempt - 1))
        delay = self._jitter() * ceiling
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            raise OutOfTime(rate_limited=False)
        self._sleep(delay)


def call_paced(
    gate: RateLimitGate,
    request: Callable[[], ResultT],
    *,
    max_attempts: int,
    must_finish_within: float,
    headers_of: Callable[[ResultT], RateLimitHeaders | None],
    tokens_per_request: int,
) -> ResultT:
    """`request`, sent when the gate allows, retried on 429 (until time runs out) and on 5xx/timeouts
    (up to `max_attempts`); other errors propagate at once."""
    failures = 0
    while True:
        gate.wait_turn(must_finish_within)
        try:
            result = request()
        except RateLimited as error:
            advice = error.retry_after_seconds
            gate.hold(advice if advice is not None else 1.0, rate_limited=True)
            continue
        except ModelUnavailable:
            failures += 1
            if failures >= max_attempts:
                raise
            gate.backoff(failures)
            continue
        headers = headers_of(result)
        if headers is not None:
            wait = headers.wait_before_next(tokens_per_request)
            if wait > 0:
                gate.hold(wait, rate_limited=True)
        return result
