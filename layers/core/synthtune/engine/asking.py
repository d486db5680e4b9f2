"""Asking a model many problems: the one engine Generate's shards and Benchmark's contestants share.

`ask_many` answers every problem of a list, in one Lambda invocation, with
- at most `request_concurrency` requests in flight (`engine.chat.with_requests_in_flight`);
- every request waiting its turn at the invocation's `RateLimitGate`, retried on 429 for as long as the
  invocation's time allows and on 5xx and timeouts up to `generation.max_attempts` tries, each try
  cut off after `generation.request_timeout_seconds` (`engine.paced`);
- every try reserved against the run's budget and settled in its ledger (`engine.budgeted`);
- each problem's progress checkpointed to S3 the moment it is paid for (`engine.checkpoints`): the
  caller's `ask` is handed what an earlier attempt saved for its problem and saves what it pays for, so
  a retried invocation resumes and never pays for an answer twice.

When the invocation's time runs out it raises `Unfinished` with how far it got; the stage turns that
into the error its state retries (`ShardIncomplete`, `BenchmarkIncomplete`, or `RateLimited` when a 429
was why). Any other failure propagates as it is, after the requests in flight have landed (and been
checkpointed); the requests not yet sent are never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from synthtune.contracts.config import RunConfig
from synthtune.engine.budgeted import BudgetedChat
from synthtune.engine.chat import with_requests_in_flight
from synthtune.engine.checkpoints import CheckpointStore
from synthtune.engine.paced import PacedChat
from synthtune.engine.pacing import OutOfTime, RateLimitGate
from synthtune.money.ledger import CostLedger
from synthtune.providers.ports import ChatPort

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
CheckpointT = TypeVar("CheckpointT", bound=BaseModel)


@dataclass(frozen=True)
class RequestPolicy:
    """How each request of an invocation is sent."""

    in_flight: int
    max_attempts: int
    timeout_seconds: float

    @classmethod
    def of(cls, config: RunConfig) -> RequestPolicy:
        """The run's: `request_concurrency` and `generation`'s tries and timeout (the benchmark's too)."""
        return cls(
            in_flight=config.request_concurrency,
            max_attempts=config.generation.max_attempts,
            timeout_seconds=config.generation.request_timeout_seconds,
        )


class Progress(Generic[CheckpointT]):
    """One problem's checkpoint: what was saved for it (by an earlier attempt, or by this one so far),
    and how to save more."""

    def __init__(self, position: int, saved: CheckpointT | None, store: CheckpointStore[CheckpointT]) -> None:
        self.position = position
        self.saved = saved
        self._store = store

    def save(self, checkpoint: CheckpointT) -> CheckpointT:
        """Write `checkpoint` to S3 before anything else happens to it; returns it."""
        self._store.save(self.position, checkpoint)
        self.saved = checkpoint
        return checkpoint


class Unfinished(Exception):
    """The invocation's time ran out before every problem was answered; what was paid for is checkpointed.

    `rate_limited`: a 429 held the gate when it did."""

    def __init__(self, *, checkpointed: int, total: int, rate_limited: bool) -> None:
        super().__init__(f"{checkpointed} of {total} problems checkpointed when the time ran out")
        self.checkpointed = checkpointed
        self.total = total
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class Answered(Generic[ResultT]):
    results: list[ResultT]
    """One per problem, in the problems' order."""
    resumed: int
    """Problems that had a checkpoint when the invocation started (a retry, or batch mode's answers)."""


def ask_many(
    problems: Sequence[ItemT],
    ask: Callable[[ItemT, Progress[CheckpointT], ChatPort], ResultT],
    *,
    checkpoints: CheckpointStore[CheckpointT],
    chat: ChatPort,
    ledger: CostLedger,
    spender: str,
    gate: RateLimitGate,
    policy: RequestPolicy,
    name: str,
) -> Answered[ResultT]:
    """`ask(problem, its Progress, the paced and budgeted chat)` for every problem.

    `checkpoints` holds one checkpoint per problem, by its position in `problems`; `spender` names who
    pays in the run's records (`generation`, `benchmark: <contestant>`); `name` the worker threads.
    """
    saved = checkpoints.load()
    paid = PacedChat(
        BudgetedChat(chat, ledger, spender),
        gate,
        max_attempts=policy.max_attempts,
        request_timeout=policy.timeout_seconds,
    )
    try:
        results = with_requests_in_flight(
            lambda item: ask(item[1], Progress(item[0], saved.get(item[0]), checkpoints), paid),
            list(enumerate(problems)),
            policy.in_flight,
            name,
        )
    except OutOfTime as stopped:
        raise Unfinished(
            checkpointed=checkpoints.count(), total=len(problems), rate_limited=stopped.rate_limited
        ) from None
    return Answered(results=results, resumed=len(saved))
