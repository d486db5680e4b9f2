"""Sharing one provider rate limit among the requests a shard has in flight.

An SDK retries each request on its own, so after a 429 every thread of a shard sleeps and comes back at
once, and requests that fail still count against the limit. Here the SDK's retries are off on the
teacher's client and one `RateLimitGate` per shard decides when anything may be sent: a rate-limit
refusal (`RateLimited`) closes the gate for as long as the provider says (its `Backpressure`: OpenAI's
`retry-after-ms`, `retry-after`, `x-ratelimit-reset-*`; Bedrock says nothing, so a second), a success that
reports the window used up closes it until the window resets, and each waiting request adds its own
jitter so they do not all return in the same instant. Shards in other Lambda invocations see the same
provider counters, so they pace alike.

The gate knows the invocation's deadline: a wait that would outlast it raises `OutOfTime`, and the
shard stops, keeping every answer it has checkpointed, to be resumed by Step Functions' retry.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from synthtune.contracts.errors import ModelUnavailable, RateLimited
from synthtune.providers.ports import Backpressure

ResultT = TypeVar("ResultT")

MIN_JITTER_SECONDS = 0.05
JITTER_SHARE = 0.2
"""Each request waits up to this share of the hold (at least MIN_JITTER_SECONDS) beyond it."""

SERVER_ERROR_BACKOFF_SECONDS = 1.0
SERVER_ERROR_BACKOFF_CAP_SECONDS = 30.0

LOGGED_HOLD_SECONDS = 5.0
"""A rate-limit hold at least this long is logged (INFO): pacing at a per-second window holds the gate
thousands of times for a fraction of a second each, which says nothing a waiting run's reader needs."""

UNADVISED_429_HOLD_SECONDS = 1.0
UNADVISED_429_HOLD_CAP_SECONDS = 60.0
"""A refusal that says nothing of when to come back (Bedrock's throttling) holds the gate for
1 s, then twice as long for each refusal in a row, up to a minute (a per-minute quota's whole window);
the first success resets it."""


def invocation_deadline(remaining_seconds: float, reserved_seconds: float = 15.0) -> float:
    """The monotonic time by which an invocation with `remaining_seconds` left stops sending, keeping
    `reserved_seconds` to write what it produced."""
    return time.monotonic() + max(0.0, remaining_seconds - reserved_seconds)


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
        self._unadvised_refusals = 0
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

    def refused(self, advice: float | None) -> float:
        """A rate-limit refusal: hold for as long as the provider said, or back off exponentially.
        Returns the hold's seconds."""
        if advice is not None:
            self.hold(advice, rate_limited=True)
            return advice
        with self._lock:
            self._unadvised_refusals += 1
            refusals = self._unadvised_refusals
        seconds: float = min(
            UNADVISED_429_HOLD_CAP_SECONDS, UNADVISED_429_HOLD_SECONDS * 2.0 ** (refusals - 1)
        )
        self.hold(seconds, rate_limited=True)
        return seconds

    def admitted(self) -> None:
        """A request went through: the next unadvised refusal starts from the shortest hold again."""
        with self._lock:
            self._unadvised_refusals = 0

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

    def backoff(self, attempt: int, before: Callable[[float], None] | None = None) -> None:
        """This request alone waits before its next try after a 5xx or timeout (full jitter); `before`
        hears how long, before the wait."""
        ceiling = min(SERVER_ERROR_BACKOFF_CAP_SECONDS, SERVER_ERROR_BACKOFF_SECONDS * 2 ** (attempt - 1))
        delay = self._jitter() * ceiling
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            raise OutOfTime(rate_limited=False)
        if before is not None:
            before(delay)
        self._sleep(delay)


def call_paced(
    gate: RateLimitGate,
    request: Callable[[], ResultT],
    *,
    max_attempts: int,
    must_finish_within: float,
    backpressure_of: Callable[[ResultT], Backpressure | None],
    tokens_per_request: int,
) -> ResultT:
    """`request`, sent when the gate allows, retried on 429 (until time runs out) and on 5xx/timeouts
    (up to `max_attempts`); other errors propagate at once (`EndpointUnreachable`, `ModelRequestRejected`:
    a retry would meet the same refusal).

    Each wait for trouble is logged before it starts — what, how long, why — so that the function's log
    says what a waiting run is waiting for: every backoff after a 5xx or timeout (WARNING), and rate-limit
    holds of LOGGED_HOLD_SECONDS or more (INFO)."""
    failures = 0
    while True:
        gate.wait_turn(must_finish_within)
        try:
            result = request()
        except RateLimited as error:
            held = gate.refused(error.retry_after_seconds)
            if held >= LOGGED_HOLD_SECONDS:
                _log(
                    "info",
                    "rate limited: holding this invocation's requests",
                    {"wait_seconds": round(held, 3), "reason": str(error)},
                )
            continue
        except ModelUnavailable as error:
            failures += 1
            reason = {"attempt": failures, "max_attempts": max_attempts, "reason": str(error)}
            if failures >= max_attempts:
                _log("error", "model unavailable: giving up on this request", reason)
                raise
            gate.backoff(failures, before=functools.partial(_log_backoff, reason))
            continue
        gate.admitted()
        backpressure = backpressure_of(result)
        if backpressure is not None:
            wait = backpressure.wait_before_next(tokens_per_request)
            if wait > 0:
                gate.hold(wait, rate_limited=True)
        return result


def _log_backoff(reason: dict[str, object], delay: float) -> None:
    _log("warning", "model unavailable: retrying", {**reason, "wait_seconds": round(delay, 3)})


def _log(level: str, message: str, fields: dict[str, object]) -> None:
    # Imported on first use: Powertools' Tracer brings the X-Ray SDK (a third of a second), which the
    # synthtune command, importing this module through the stages, would otherwise pay at every start.
    from synthtune.observability import logger

    getattr(logger, level)(message, extra=fields)
