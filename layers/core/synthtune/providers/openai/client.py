"""The OpenAI client: its key from Secrets Manager, its failures as the workflow's named errors.

`import openai` costs about a third of a second, almost all of it the typed models, so it happens
inside these functions, on first use, never at module import (cold starts of the functions that do
not call OpenAI stay cheap).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

from synthtune.contracts.errors import (
    EndpointUnreachable,
    ModelRequestRejected,
    ModelUnavailable,
    RateLimited,
)
from synthtune.providers.network import unreachable_because
from synthtune.providers.openai.headers import backpressure_from_headers

if TYPE_CHECKING:
    from openai import OpenAI

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
SECRET_MAX_AGE_SECONDS = 300


def api_key_from_secret(secret_id: str) -> str:
    """The key stored in the secret: the plain string, or `api_key` / `OPENAI_API_KEY` in a JSON object."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    if text.startswith("{"):
        document = json.loads(text)
        for field in ("api_key", "OPENAI_API_KEY"):
            if isinstance(document.get(field), str):
                return str(document[field]).strip()
        raise ModelRequestRejected(f"secret {secret_id} is a JSON object without an 'api_key' field")
    if not text:
        raise ModelRequestRejected(f"secret {secret_id} is empty: store the OpenAI API key in it")
    return text


@lru_cache(maxsize=8)
def openai_client(api_key: str, base_url: str | None, max_retries: int, timeout_seconds: float) -> OpenAI:
    from openai import OpenAI

    return OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_seconds)


def sent_once(client: OpenAI) -> OpenAI:
    """`client` without the SDK's retries, for a request that must not be sent twice: a create (a file,
    a job, a batch) or a model request (billed per attempt). The SDK retries with no idempotency key,
    which OpenAI's API does not take anyway, so a create whose reply was lost would be made twice; the
    caller retries instead, through the step that first finds what an earlier attempt created."""
    return client.with_options(max_retries=0)


def is_official_endpoint(base_url: str | None) -> bool:
    return base_url is None or base_url.rstrip("/") == OFFICIAL_BASE_URL


@contextmanager
def provider_errors(action: str, secret_hint: str = "") -> Iterator[None]:
    """Translate openai's exceptions into the names Retry and Catch match on, naming the endpoint.

    Reads (retrieve, list) have been retried by the SDK `max_retries` times by the time one surfaces
    here; model requests and creates never are (see `OpenAIProvider`): what remains is handed to the
    caller's own retry (`synthtune.engine.pacing`) or to Step Functions, which backs off for longer.
    A `ModelUnavailable` says whether the request may have been carried out (`outcome_unknown`). An
    endpoint that cannot be connected to at all (`EndpointUnreachable`), a refused key or an unknown
    model (`ModelRequestRejected`) is not retried: the run stops at once, saying where and why.
    """
    import openai

    try:
        yield
    except openai.RateLimitError as error:
        if error.code == "insufficient_quota":
            raise ModelRequestRejected(
                f"{action}: the OpenAI account is out of quota ({error.message})"
            ) from error
        advice = backpressure_from_headers(error.response.headers).wait_after_429()
        raise RateLimited(f"{action}: rate limited ({error.message})", advice) from error
    except openai.AuthenticationError as error:
        hint = f"; store a valid key in {secret_hint}" if secret_hint else ""
        raise ModelRequestRejected(
            f"{action}: authentication failed at {endpoint_of(error.request)} ({error.message}){hint}"
        ) from error
    except openai.APIConnectionError as error:  # includes APITimeoutError
        endpoint = endpoint_of(error.request)
        cause = unreachable_because(error)
        if cause is not None:
            raise EndpointUnreachable(f"{action}: cannot reach {endpoint}: {cause}") from error
        raise ModelUnavailable(
            f"{action}: {type(error).__name__} at {endpoint}: {error.message}",
            outcome_unknown=_maybe_sent(error),
        ) from error
    except openai.APIStatusError as error:
        where = endpoint_of(error.request)
        if error.status_code >= 500:
            # The service may have done the work before it failed (or before the reply was lost).
            raise ModelUnavailable(
                f"{action}: HTTP {error.status_code} from {where} ({error.message})"
            ) from error
        raise ModelRequestRejected(
            f"{action}: HTTP {error.status_code} from {where} ({error.message})"
        ) from error


def endpoint_of(request: object) -> str:
    """The request's method and URL, without its query (which a server's URL scheme may put a key in)."""
    url = getattr(request, "url", None)
    if url is None:
        return "the OpenAI endpoint"
    return f"{getattr(request, 'method', 'POST')} {str(url).split('?', 1)[0]}"


def _maybe_sent(error: Exception) -> bool:
    """Whether the request may have reached the service: False only when the connection was never made
    (refused, or not established in time, or no connection free in the pool), which httpx2 names apart
    from a timeout or a failure while the request was on its way or its reply was awaited."""
    import httpx2

    return not isinstance(error.__cause__, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)
