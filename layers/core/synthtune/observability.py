"""Powertools Logger, Tracer and Metrics, shared by every handler, and what a handler lets out when it fails.

Configured from the environment template.yaml sets (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL,
POWERTOOLS_METRICS_NAMESPACE); creating them calls no AWS API, so module-level instances are the
Powertools convention and cost a cold start nothing measurable.

Everything a function says goes through `synthtune.contracts.error_text`: every log line is redacted as it
is written (`RedactingFormatter`), and an error leaving a handler (`safe_errors`) is redacted and cut to
`MAX_ERROR_MESSAGE_CHARS`, because Lambda hands its message to Step Functions as the Catch's Cause, which
lives in the state: an unbounded message could fail the execution with States.DataLimitExceeded, past
every Catch.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import PowertoolsLogRecord

from synthtune.contracts.error_text import MAX_ERROR_MESSAGE_CHARS, bounded, redact, safe_text

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "synthtune")

Handler = TypeVar("Handler", bound=Callable[..., Any])

MAX_LOGGED_MESSAGE_CHARS = 200_000
"""The most of an error message one log line holds: CloudWatch Logs takes events of up to 256 KB."""


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log lines, message, extra keys and exception alike, with secrets redacted."""

    def serialize(self, log: dict[str, Any] | PowertoolsLogRecord) -> str:
        return redact(super().serialize(log))


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Synthtune"))


def safe_errors(handler: Handler) -> Handler:
    """Let an error out of `handler` under its own name (Retry and Catch match on it) with its message
    redacted and bounded; a message that had to be cut is logged whole (redacted) first."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            message = str(error)
            safe = safe_text(message, MAX_ERROR_MESSAGE_CHARS, rest="in this function's log")
            if safe == message:
                raise
            if len(message) > MAX_ERROR_MESSAGE_CHARS:
                whole = bounded(message, MAX_LOGGED_MESSAGE_CHARS)
                logger.error("the whole error message", extra={"error_message": whole})
            raise _renamed(error, safe) from error.__cause__

    return wrapper  # type: ignore[return-value]


def _renamed(error: Exception, message: str) -> Exception:
    """`error` with `message` instead of its own, still an instance of a class of the same name."""
    try:
        replacement = copy.copy(error)
        replacement.args = (message,)
        if str(replacement) == message:
            return replacement.with_traceback(error.__traceback__)
    except Exception:  # a class that cannot be copied gets the fallback below
        pass
    # A class whose str() ignores its args (pydantic's ValidationError, botocore's ClientError) or that
    # cannot be copied: a plain Exception subclass of the same name carries the message instead.
    renamed: type[Exception] = type(
        type(error).__name__, (Exception,), {"__module__": type(error).__module__}
    )
    return renamed(message).with_traceback(error.__traceback__)
