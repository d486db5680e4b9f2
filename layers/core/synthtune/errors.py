"""Failures the workflow reacts to.

Step Functions matches a Lambda failure by the exception's class name (the `errorType`), so each class
name here is part of the state machine's contract: `Retry` lists the transient ones, every `Catch`
records the rest on the run. Rename a class only together with statemachine/pipeline.asl.json.
"""

from __future__ import annotations

from pydantic import ValidationError


def describe_fields(error: ValidationError) -> str:
    """pydantic's errors as one line a user can act on: `field.path: what is wrong; ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or '(root)'}: {issue['msg']}"
        for issue in error.errors()
    )


class SynthtuneError(Exception):
    """Base class; never raised itself."""


# Bad input: nothing is retried and nothing has been spent.
class InvalidProblemSet(SynthtuneError):
    """The problem set is missing, unreadable or has invalid rows (the message names line and field)."""


class InvalidConfig(SynthtuneError):
    """The run's configuration has unknown or out-of-range fields."""


class GenerationIncomplete(SynthtuneError):
    """Some shards have no answers: a Generate iteration failed (the message lists each shard's error)."""


class InvalidDataset(SynthtuneError):
    """The assembled training data cannot be fine-tuned on (too few verified examples, bad format)."""


# The model provider.
class RateLimited(SynthtuneError):
    """The provider kept answering 429 after the client's own retries; retried by Step Functions."""


class ModelUnavailable(SynthtuneError):
    """Timeouts, connection errors or 5xx after the client's own retries; retried by Step Functions."""


class ModelRequestRejected(SynthtuneError):
    """The provider refused the request (bad key, unknown model, invalid parameters); not retried."""


# Fine-tuning.
class FineTuneUnavailable(SynthtuneError):
    """The backend cannot fine-tune this model now (not offered, or past the provider's cut-off)."""


class FineTuneFailed(SynthtuneError):
    """The fine-tuning job ended failed or cancelled."""


class FineTuneTimedOut(SynthtuneError):
    """The job did not finish within max_wait_seconds and was cancelled."""


class RunNotFound(SynthtuneError):
    """A stage was asked about a run that Prepare never recorded."""
