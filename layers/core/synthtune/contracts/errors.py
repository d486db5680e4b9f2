"""Failures the workflow reacts to, and the names they go by.

Step Functions matches a Lambda failure by the exception's class name (the `errorType`), so each class
name here is part of the state machine's contract: `Retry` lists the transient ones, every `Catch`
records the rest on the run. `ErrorName` lists every error name a run can fail with, these classes' and
the ones only the state machine or RecordFailure give; tests/infra/test_infra_error_names.py holds
statemachine/pipeline.asl.json to it and it to the definition and the classes, so a name is renamed in
all three or the tests fail.

Every message is redacted as the error is made (`error_text.redact`): the providers' errors become these
classes where they leave `providers/`, so a key a provider quotes never reaches a cause, a record or a log.
"""

from __future__ import annotations

from enum import StrEnum, auto
from typing import Any

from pydantic import ValidationError

from synthtune.contracts.error_text import redact


def describe_fields(error: ValidationError) -> str:
    """pydantic's errors as one line a user can act on: `field.path: what is wrong; ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or '(root)'}: {issue['msg']}"
        for issue in error.errors()
    )


class ErrorName(StrEnum):
    """Every error name a run can fail with, as the execution, the run record and the report spell it."""

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
        return name  # spelled once: ErrorName.BudgetExceeded == "BudgetExceeded"

    # Raised by the handlers: each is the name of an exception class below.
    InvalidProblemSet = auto()
    InvalidConfig = auto()
    GenerationIncomplete = auto()
    BudgetExceeded = auto()
    InvalidDataset = auto()
    RateLimited = auto()
    ShardIncomplete = auto()
    BenchmarkIncomplete = auto()
    ModelUnavailable = auto()
    ModelRequestRejected = auto()
    EndpointUnreachable = auto()
    BatchFailed = auto()
    FineTuneUnavailable = auto()
    FineTuneFailed = auto()
    ModelRetired = auto()
    ServingFailed = auto()
    # Given by the state machine's own states; no handler raises them.
    FineTuneTimedOut = auto()
    ServingTimedOut = auto()
    FailureNotRecorded = auto()
    # Given by RecordFailure to an execution that failed or was stopped outside every Catch.
    ExecutionFailed = auto()
    ExecutionAborted = auto()


GIVEN_BY_THE_STATE_MACHINE = frozenset(
    {ErrorName.FineTuneTimedOut, ErrorName.ServingTimedOut, ErrorName.FailureNotRecorded}
)
"""The errors only pipeline.asl.json's Pass and Fail states give (FineTuneFailed too, but a handler also
raises that one)."""
GIVEN_BY_RECORD_FAILURE = frozenset({ErrorName.ExecutionFailed, ErrorName.ExecutionAborted})
"""The errors RecordFailure records for an execution that ended outside every Catch (`States.Timeout`,
Step Functions' own, for one out of time)."""


class SynthtuneError(Exception):
    """Base class; never raised itself."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A class Step Functions sees by a name ErrorName does not list would be matched by no Retry and
        # spelled nowhere else: refused as the class is made.
        if cls.__name__ not in ErrorName.__members__:
            raise TypeError(f"{cls.__name__} is not an ErrorName: add it there, and to the definition")

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


# Bad input: nothing is retried and nothing has been spent.
class InvalidProblemSet(SynthtuneError):
    """The problem set is missing, unreadable or has invalid rows (the message names line and field)."""


class InvalidConfig(SynthtuneError):
    """The run's configuration has unknown or out-of-range fields."""


class GenerationIncomplete(SynthtuneError):
    """More shards failed than `generation.tolerated_failure_percent` allows (the message lists each
    failed shard's error)."""


class BudgetExceeded(SynthtuneError):
    """Going on would spend more than `budget_usd`: raised before the request, job or run that would."""


class InvalidDataset(SynthtuneError):
    """The assembled training data cannot be fine-tuned on (too few verified examples, bad format)."""


# The model provider.
class RateLimited(SynthtuneError):
    """The provider answered 429; retried by Step Functions when it outlasts a shard's own backoff.

    `retry_after_seconds` is the provider's own advice (retry-after, x-ratelimit-reset-*), when it gave any.
    """

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ShardIncomplete(SynthtuneError):
    """A Generate shard ran out of invocation time; its retry resumes from the answers checkpointed so far."""


class BenchmarkIncomplete(SynthtuneError):
    """A Benchmark contestant ran out of invocation time; its retry resumes from the answers (and verdicts)
    checkpointed so far."""


class ModelUnavailable(SynthtuneError):
    """Timeouts, connection errors or 5xx after the client's own retries; retried by Step Functions.

    `outcome_unknown`: the request may have reached the provider and been carried out (a timeout while
    waiting for the reply, a connection lost after sending, a 5xx): a completion may have been billed, a
    job or a batch created. False only when the provider certainly did nothing (the connection was never
    made). The cost ledger counts an unknown outcome at its worst case, and a create whose outcome is
    unknown is retried only through the step that finds what an earlier attempt made.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = True) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class ModelRequestRejected(SynthtuneError):
    """The provider refused the request (bad key, unknown model, invalid parameters); not retried."""


class EndpointUnreachable(SynthtuneError):
    """No connection to the provider's endpoint could be made: refused, a host name that does not
    resolve, a TLS handshake that failed. Nothing was sent, so nothing was billed. Not retried where
    the run first meets the provider (a wrong or down endpoint is not fixed by minutes of retries: the
    run fails within seconds, naming the endpoint and the cause); retried only by the states that poll
    a job the same endpoint accepted earlier in the run, where it is a passing outage."""


# Batch generation.
class BatchFailed(SynthtuneError):
    """A batch failed validation, or finished without a single successful request."""


# Fine-tuning.
class FineTuneUnavailable(SynthtuneError):
    """The backend cannot fine-tune this model now (not offered, or past the provider's cut-off)."""


class FineTuneFailed(SynthtuneError):
    """The fine-tuning job ended failed or cancelled."""


class ModelRetired(SynthtuneError):
    """A model the run names is no longer served by its provider (the message names the date and a
    replacement); refused before anything is spent."""


class ServingFailed(SynthtuneError):
    """The fine-tuned model could not be made to answer (its deployment failed or never became active)."""
