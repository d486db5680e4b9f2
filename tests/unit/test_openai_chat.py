"""The teacher's adapter on a stand-in client: what it sends, how it reads n samples, and how the
provider's failures become the workflow's named errors."""

import errno
import http.server
import json
import re
import socket
import ssl
import threading
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

from synthtune.contracts.errors import (
    EndpointUnreachable,
    ModelRequestRejected,
    ModelUnavailable,
    RateLimited,
)
from synthtune.contracts.usage import Usage
from synthtune.providers.openai.chat import SOLUTION_FORMAT, OpenAIChat
from synthtune.providers.openai.client import provider_errors
from synthtune.providers.ports import Backpressure

TEACHER = "gpt-4.1-2025-04-14"
REQUEST = httpx2.Request("POST", "http://127.0.0.1:8787/v1/chat/completions")


def choice(index: int, finish_reason: str, content: str | None, refusal: str | None = None) -> dict[str, Any]:
    return {
        "index": index,
        "finish_reason": finish_reason,
        "message": {"role": "assistant", "content": content, "refusal": refusal},
    }


def solution(final_answer: str) -> str:
    return json.dumps({"steps": ["2 + 2 = 4"], "final_answer": final_answer})


def completion(*choices: dict[str, Any]) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_800_000_000,
            "model": TEACHER,
            "choices": list(choices),
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 90,
                "total_tokens": 210,
                "prompt_tokens_details": {"cached_tokens": 64},
            },
        }
    )


class RawResponse:
    def __init__(self, parsed: ChatCompletion, headers: dict[str, str]) -> None:
        self._parsed = parsed
        self.headers = headers

    def parse(self) -> ChatCompletion:
        return self._parsed


class StandInClient:
    """Just enough of `openai.OpenAI` for `chat.completions.with_raw_response.create`."""

    def __init__(self, reply: ChatCompletion | Exception, headers: dict[str, str] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []

        def create(**body: Any) -> RawResponse:
            self.bodies.append(body)
            if isinstance(reply, Exception):
                raise reply
            return RawResponse(reply, headers or {})

        self.chat = SimpleNamespace(
            completions=SimpleNamespace(with_raw_response=SimpleNamespace(create=create))
        )


def test_solve_asks_for_n_samples_in_one_request_and_reads_each() -> None:
    reply = completion(
        choice(0, "stop", solution("4")),
        choice(1, "length", '{"steps": ["2 + 2'),
        choice(2, "stop", "not json"),
        choice(3, "stop", None, refusal="I can't help with that."),
    )
    client = StandInClient(reply, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    chat = OpenAIChat(client)  # type: ignore[arg-type]
    result = chat.solve(TEACHER, "What is 2 plus 2?", temperature=0.7, max_tokens=400, samples=4)
    (body,) = client.bodies
    assert body["n"] == 4
    assert body["temperature"] == 0.7
    assert body["max_completion_tokens"] == 400
    assert body["response_format"] == SOLUTION_FORMAT
    assert body["messages"][-1] == {"role": "user", "content": "What is 2 plus 2?"}
    assert [sample.finish_reason for sample in result.samples] == ["stop", "length", "invalid_json", "stop"]
    assert result.samples[0].solution is not None and result.samples[0].solution.final_answer == "4"
    assert [sample.solution for sample in result.samples[1:]] == [None, None, None]
    assert result.samples[3].refusal == "I can't help with that."
    # One request, billed once, whatever the number of samples.
    assert result.usage == Usage(requests=1, input_tokens=120, cached_input_tokens=64, output_tokens=90)
    assert result.backpressure == Backpressure(remaining_requests=0, reset_requests_seconds=2.0)


def test_one_sample_sends_no_n_and_reasoning_models_no_temperature() -> None:
    client = StandInClient(completion(choice(0, "stop", solution("4"))))
    chat = OpenAIChat(client)  # type: ignore[arg-type]
    chat.solve(TEACHER, "What is 2 plus 2?", temperature=0.0, max_tokens=100)
    chat.solve("gpt-5-mini", "What is 2 plus 2?", temperature=0.7, max_tokens=100, samples=2)
    single, reasoning = client.bodies
    assert "n" not in single
    assert single["temperature"] == 0.0
    assert reasoning["n"] == 2
    assert "temperature" not in reasoning


def status_error(
    kind: type[openai.APIStatusError], status: int, headers: dict[str, str], code: str | None = None
) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers, request=REQUEST)
    return kind(f"HTTP {status}", response=response, body={"code": code} if code else None)


@pytest.mark.parametrize(
    ("headers", "advice"),
    [
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m30s"}, 90.0),
        ({}, None),
    ],
)
def test_a_429_becomes_rate_limited_with_the_providers_advice(
    headers: dict[str, str], advice: float | None
) -> None:
    client = StandInClient(status_error(openai.RateLimitError, 429, headers, code="rate_limit_exceeded"))
    with pytest.raises(RateLimited, match=r"gpt-4\.1-2025-04-14 solving a problem: rate limited") as raised:
        OpenAIChat(client).solve(TEACHER, "What is 2 plus 2?", temperature=0.0, max_tokens=100)  # type: ignore[arg-type]
    assert raised.value.retry_after_seconds == advice


def test_an_account_out_of_quota_is_not_retried() -> None:
    with pytest.raises(ModelRequestRejected, match="out of quota"), provider_errors("solving"):
        raise status_error(openai.RateLimitError, 429, {"retry-after": "1"}, code="insufficient_quota")


@pytest.mark.parametrize(
    ("error", "named", "message"),
    [
        (openai.APITimeoutError(request=REQUEST), ModelUnavailable, "solving: APITimeoutError"),
        (openai.APIConnectionError(request=REQUEST), ModelUnavailable, "solving: APIConnectionError"),
        (status_error(openai.InternalServerError, 503, {}), ModelUnavailable, "solving: HTTP 503"),
        (status_error(openai.BadRequestError, 400, {}), ModelRequestRejected, "solving: HTTP 400"),
        (
            status_error(openai.AuthenticationError, 401, {}),
            ModelRequestRejected,
            "authentication failed .*store a valid key in arn:secret",
        ),
    ],
)
def test_provider_failures_get_the_names_the_workflow_matches(
    error: Exception, named: type[Exception], message: str
) -> None:
    with pytest.raises(named, match=message) as raised, provider_errors("solving", "arn:secret"):
        raise error
    assert raised.value.__cause__ is error


def connection_error(kind: type[openai.APIConnectionError], cause: Exception) -> openai.APIConnectionError:
    """The SDK's error as it raises it: the transport's own error as its cause."""
    try:
        raise kind(request=REQUEST) from cause
    except openai.APIConnectionError as error:
        return error


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        # Never sent: the connection was not made, or no connection was free.
        (connection_error(openai.APIConnectionError, httpx2.ConnectError("refused")), False),
        (connection_error(openai.APITimeoutError, httpx2.ConnectTimeout("connect")), False),
        (connection_error(openai.APITimeoutError, httpx2.PoolTimeout("pool")), False),
        # Sent, and then the reply did not come: the service may have done the work.
        (connection_error(openai.APITimeoutError, httpx2.ReadTimeout("read")), True),
        (connection_error(openai.APIConnectionError, httpx2.RemoteProtocolError("closed")), True),
        (connection_error(openai.APIConnectionError, httpx2.ReadError("reset")), True),
        (status_error(openai.InternalServerError, 502, {}), True),
        (status_error(openai.InternalServerError, 500, {}), True),
    ],
)
def test_unavailable_says_whether_the_provider_may_have_done_the_work(
    error: Exception, unknown: bool
) -> None:
    with pytest.raises(ModelUnavailable) as raised, provider_errors("solving"):
        raise error
    assert raised.value.outcome_unknown is unknown


def ask(base_url: str) -> None:
    """One chat request as the teacher sends it (no SDK retries), through `provider_errors`."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)
    with provider_errors("solving"):
        client.chat.completions.create(model=TEACHER, messages=[{"role": "user", "content": "2+2?"}])


def test_a_refused_connection_fails_at_once_naming_the_endpoint(closed_port: int) -> None:
    with pytest.raises(EndpointUnreachable) as raised:
        ask(f"http://127.0.0.1:{closed_port}/v1")
    assert str(raised.value) == (
        f"solving: cannot reach POST http://127.0.0.1:{closed_port}/v1/chat/completions: "
        "connection refused (nothing listens there)"
    )


def test_tls_spoken_to_a_plain_http_port_is_unreachable_with_a_hint() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(EndpointUnreachable, match=r"TLS handshake failed .*is it plain http\?"):
            ask(f"https://127.0.0.1:{server.server_address[1]}/v1")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("underneath", "why"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "its host name does not resolve"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS certificate is not trusted"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "no route to it (No route to host)"),
    ],
)
def test_a_connection_never_made_says_why(underneath: OSError, why: str) -> None:
    # As httpx2 raises it: its ConnectError wraps the socket's error, and the SDK's error wraps that.
    with pytest.raises(EndpointUnreachable, match=re.escape(why)), provider_errors("solving"):
        raise connection_error(openai.APIConnectionError, httpx2.ConnectError(underneath))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (openai.AuthenticationError, 401),
        (openai.PermissionDeniedError, 403),
        (openai.NotFoundError, 404),
    ],
)
def test_a_refusal_is_not_retried_and_names_the_endpoint(
    kind: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(ModelRequestRejected) as raised, provider_errors("solving"):
        raise status_error(kind, status, {})
    assert "POST http://127.0.0.1:8787/v1/chat/completions" in str(raised.value)
