"""boto3 clients for Amazon Bedrock, and Bedrock's failures as the workflow's named errors.

boto3 reads the standard endpoint variables itself (AWS_ENDPOINT_URL_BEDROCK,
AWS_ENDPOINT_URL_BEDROCK_RUNTIME), which is how offline runs reach the project's emulator, and signs with
the function's role: Bedrock needs no key of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    SSLError,
)

from synthtune.contracts.errors import (
    EndpointUnreachable,
    ModelRequestRejected,
    ModelUnavailable,
    RateLimited,
)
from synthtune.providers.network import unreachable_because

CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 300.0
"""Nova answers within minutes; botocore's default of 60 s would cut long answers off."""

# ThrottlingException is Bedrock's 429: quota per model, no retry advice in the response.
_RATE_LIMITED = frozenset({"ThrottlingException", "TooManyRequestsException"})
# The service or the model is down, busy loading (ModelNotReady: a deployment waking up) or slow.
_UNAVAILABLE = frozenset(
    {
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "ModelErrorException",
        "ModelStreamErrorException",
    }
)
# Refused before any work: a model still loading takes no request in.
_NOT_STARTED = frozenset({"ModelNotReadyException"})
# No connection could be made at all (refused, a host name that does not resolve, TLS failed): the
# endpoint is wrong or down, which no retry within the run fixes; nothing reached Bedrock.
_UNREACHABLE = (EndpointConnectionError, SSLError)
_CONNECTION_ERRORS = (ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
# The connection was not made in time, so the request never reached Bedrock (every other connection
# error may have come after it was sent: a read timeout, a connection closed while waiting for the reply).
_NEVER_SENT = (ConnectTimeoutError,)


@dataclass(frozen=True)
class BedrockEndpoint:
    """Bedrock as the CLI reaches it before the offline stack exists, in the stack's Region: the project's
    emulator, or the live service (the functions find either through the stack's own environment)."""

    url: str | None
    """None: where boto3's own settings point (AWS_ENDPOINT_URL_BEDROCK, or the service)."""
    region: str
    credentials: tuple[str, str] | None = None
    """An access key id and secret to sign with, for an endpoint that wants a signature but checks no
    account's (the emulator); None: boto3's usual chain."""


@lru_cache(maxsize=16)
def bedrock_client(
    service: str,
    *,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    max_attempts: int = 3,
    endpoint: BedrockEndpoint | None = None,
) -> Any:
    """A `bedrock` or `bedrock-runtime` client; `max_attempts=1` turns botocore's own retries off (chat:
    every Converse attempt may be billed, so the engine retries it, in the ledger).

    botocore's retries stay on for the control plane, creates included: every create the run makes
    (customisation job, custom model deployment, Provisioned Throughput) carries a clientRequestToken
    derived from the run id (`names.request_token`), and Bedrock answers a repeated token with what the
    first request created, so a retry after a lost reply creates nothing new."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
    )
    if endpoint is None:
        return boto3.client(service, config=config)  # type: ignore[call-overload]
    key_id, secret = endpoint.credentials or (None, None)
    return boto3.client(  # type: ignore[call-overload]
        service,
        config=config,
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def bedrock_errors(action: str, client: Any = None) -> Iterator[None]:
    """Translate botocore's exceptions into the names Retry and Catch match on; a refusal names the
    endpoint of `client` (the boto3 client that made the call), when given."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        if code in _RATE_LIMITED:
            raise RateLimited(f"{action}: rate limited by Amazon Bedrock ({message})") from error
        if code in _UNAVAILABLE:
            raise ModelUnavailable(
                f"{action}: {code} ({message})", outcome_unknown=code not in _NOT_STARTED
            ) from error
        at = _client_endpoint(client)
        if code == "AccessDeniedException":
            raise ModelRequestRejected(
                f"{action}: access denied{at} ({message}). Request access to the model in the Bedrock "
                "console (Model access) and check that the function's role may use it"
            ) from error
        if code == "ServiceQuotaExceededException":
            raise ModelRequestRejected(
                f"{action}: a Bedrock quota is used up ({message}); ask for more in Service Quotas"
            ) from error
        raise ModelRequestRejected(f"{action}: {code or 'error'}{at} ({message})") from error
    except _UNREACHABLE as error:
        why = unreachable_because(error) or f"no connection could be made ({type(error).__name__})"
        raise EndpointUnreachable(f"{action}: cannot reach {_endpoint(error)}: {why}") from error
    except _CONNECTION_ERRORS as error:
        raise ModelUnavailable(
            f"{action}: {type(error).__name__}: {error}", outcome_unknown=not isinstance(error, _NEVER_SENT)
        ) from error
    except NoCredentialsError as error:
        raise ModelRequestRejected(f"{action}: no AWS credentials to sign the request with") from error
    except BotoCoreError as error:
        raise ModelUnavailable(f"{action}: {type(error).__name__}: {error}") from error


def _endpoint(error: BotoCoreError) -> str:
    url = str(getattr(error, "kwargs", {}).get("endpoint_url") or "Amazon Bedrock's endpoint")
    return url.split("?", 1)[0]


def _client_endpoint(client: Any) -> str:
    """ " at <endpoint URL>" of a boto3 client, or nothing for anything else (a test's stand-in)."""
    url = getattr(getattr(client, "meta", None), "endpoint_url", None)
    return f" at {url}" if isinstance(url, str) else ""


def bedrock_call(
    action: str, operation: Callable[..., Any], *, tolerate: Collection[str] = (), **arguments: Any
) -> Any:
    """`operation(**arguments)` with Bedrock's failures translated; None when it fails with one of the
    error codes in `tolerate` (a lookup that finds nothing, a create that finds the name taken)."""
    with bedrock_errors(action, getattr(operation, "__self__", None)):
        try:
            return operation(**arguments)
        except ClientError as error:
            if error_code(error) in tolerate:
                return None
            raise
