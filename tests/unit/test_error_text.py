"""Error text leaving a function: keys redacted wherever they appear, sizes bounded whatever the data.

A provider that quotes a key (OpenAI does, masked: "sk-abc***...xyz") must not put it in a record, the
execution history (a Lambda's error message becomes a Step Functions cause) or a log; and an error that
echoes huge user data must stay small enough for a Step Functions state (256 KB).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from botocore.exceptions import ClientError

from synthtune.contracts.error_text import (
    MAX_ERROR_MESSAGE_CHARS,
    bounded,
    quoted,
    redact,
    safe_text,
)
from synthtune.contracts.errors import InvalidProblemSet, ModelRequestRejected
from synthtune.contracts.problems import parse_problem_set
from synthtune.contracts.workflow import FineTuneState
from synthtune.observability import logger, safe_errors
from synthtune.providers.bedrock.client import bedrock_errors
from synthtune.providers.openai.client import provider_errors

OPENAI_KEY = "sk-3f9aQ1bC7dE2fG8hJ4kL6mN0pR5sT9uVwXyZ1234abcd"
PROJECT_KEY = "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv12_Wx-Yz34"
MASKED_KEY = "sk-abc***********************************xyz"
AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
SECRETS = (OPENAI_KEY, PROJECT_KEY, MASKED_KEY, "abc***", "***xyz", AWS_ACCESS_KEY, AWS_SECRET_KEY, BEARER)

OPENAI_401 = (
    f"Incorrect API key provided: {MASKED_KEY}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {text[:300]!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OPENAI_401, OPENAI_401.replace(MASKED_KEY, "sk-[redacted]")),
        (f"key {OPENAI_KEY} rejected", "key sk-[redacted] rejected"),
        (f"project key {PROJECT_KEY}.", "project key sk-[redacted]."),
        (f"The key {AWS_ACCESS_KEY} is invalid", "The key AKIA[redacted] is invalid"),
        ("temporary ASIAY34FZKBOKMUTVV7A expired", "temporary ASIA[redacted] expired"),
        ("masked AKIA************MPLE", "masked AKIA[redacted]"),
        (f"Authorization: Bearer {BEARER}", "Authorization: Bearer [redacted]"),
        (f"aws_secret_access_key={AWS_SECRET_KEY}", "aws_secret_access_key=[redacted]"),
        ('{"api_key": "abc123", "x-api-key": "zzz"}', '{"api_key": "[redacted]", "x-api-key": "[redacted]"}'),
        ("api-key: 0123456789abcdef", "api-key: [redacted]"),
        ("https://user:p4ssw0rd@proxy.example/v1", "https://[redacted]@proxy.example/v1"),
    ],
)
def test_keys_tokens_and_credentials_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "store a valid key in arn:aws:secretsmanager:us-east-1:123456789012:secret:synthtune/openai-api-key",
        "task-force desk-lamp risk-free",
        "s3://synthtune-data/problem-sets/my-set.jsonl line 4: unknown field 'anwser'",
        "fine-tuning job ftjob-abc123 ended failed: invalid training file",
        "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0/abc",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_long_text_is_cut_around_a_note_of_what_was_cut_and_where_the_rest_is() -> None:
    text = "A" * 50_000 + "Z" * 50_000
    cut = bounded(text, 4096, rest="at s3://bucket/runs/r/failure/cause.txt")
    assert len(cut) <= 4096
    assert cut.startswith("AAAA")
    assert cut.endswith("ZZZZ")
    assert "of 100,000 characters cut; the full text is at s3://bucket/runs/r/failure/cause.txt" in cut
    assert bounded("short", 4096) == "short"
    assert safe_text(f"{OPENAI_KEY} " * 10_000, 1000).startswith("sk-[redacted] sk-[redacted]")


def test_a_quoted_value_is_cut_in_the_middle() -> None:
    assert quoted("train") == "'train'"
    shown = quoted("x" * 40_000)
    assert len(shown) < 120
    assert shown.endswith("(40,002 characters)")


def test_the_workflows_errors_redact_their_own_messages() -> None:
    error = ModelRequestRejected(f"creating a job: authentication failed ({OPENAI_401})")
    assert_no_secret(str(error))
    assert "sk-[redacted]" in str(error)


def test_openai_errors_leave_the_provider_redacted() -> None:
    def api(request: httpx2.Request) -> httpx2.Response:
        body = {"error": {"message": OPENAI_401, "type": "invalid_request_error", "code": "invalid_api_key"}}
        return httpx2.Response(401, json=body)

    client = openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url="http://openai.invalid/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(api)),
    )
    with pytest.raises(ModelRequestRejected) as raised, provider_errors("listing models", "arn:secret"):
        client.models.list()
    assert "authentication failed" in str(raised.value)
    assert_no_secret(str(raised.value))


def test_bedrock_errors_leave_the_provider_redacted() -> None:
    # SigV4 failures quote the credential scope, access key id first.
    message = (
        "The request signature we calculated does not match the signature you provided. The String-to-Sign "
        f"should have been 'AWS4-HMAC-SHA256\\n20261201T000000Z\\n{AWS_ACCESS_KEY}/20261201/us-east-1/"
        "bedrock/aws4_request'"
    )
    error = ClientError({"Error": {"Code": "InvalidSignatureException", "Message": message}}, "Converse")
    with pytest.raises(ModelRequestRejected) as raised, bedrock_errors("asking the teacher"):
        raise error
    assert "InvalidSignatureException" in str(raised.value)
    assert_no_secret(str(raised.value))


def test_a_providers_account_of_a_failed_job_is_redacted_and_bounded() -> None:
    job = FineTuneState(
        backend="openai",
        job_id="ftjob-1",
        status="failed",
        base_model="gpt-4.1-mini-2025-04-14",
        error=f"invalid_request: {OPENAI_401} " + "line too long; " * 10_000,
    )
    assert len(job.error) <= 2048
    assert_no_secret(job.error)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the shared Powertools logger writes, as CloudWatch would receive it."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream, handler.stream = handler.stream, io.StringIO()
    try:
        yield handler.stream
    finally:
        handler.stream = stream


def test_log_lines_are_redacted_message_extra_and_exception_alike(log_lines: io.StringIO) -> None:
    try:
        raise RuntimeError(OPENAI_401)
    except RuntimeError:
        logger.exception(f"the teacher refused with {OPENAI_KEY}", extra={"header": f"Bearer {BEARER}"})

    (line,) = log_lines.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == logging.getLevelName(logging.ERROR)
    assert "sk-[redacted]" in record["message"]
    assert "sk-[redacted]" in record["exception"]
    assert record["header"] == "Bearer [redacted]"
    assert_no_secret(line)


class _ValidationLike(Exception):
    """An exception whose str() ignores its args, like pydantic's ValidationError."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __str__(self) -> str:
        return self.text


@pytest.mark.parametrize(
    "error",
    [
        InvalidProblemSet("line 1: " + "x" * 1_000_000),
        _ValidationLike(f"input {OPENAI_KEY} " + "y" * 100_000),
        openai.AuthenticationError(
            OPENAI_401,
            response=httpx2.Response(401, request=httpx2.Request("GET", "http://openai.invalid/v1/models")),
            body=None,
        ),
    ],
)
def test_an_error_leaves_a_handler_under_its_own_name_redacted_and_bounded(
    error: Exception, log_lines: io.StringIO
) -> None:
    @safe_errors
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise error

    with pytest.raises(Exception) as raised:  # noqa: PT011 - any class: the name is what is checked
        handler({}, None)

    # Lambda reports type(error).__name__ as errorType and str(error) as errorMessage.
    assert type(raised.value).__name__ == type(error).__name__
    message = str(raised.value)
    assert len(message) <= MAX_ERROR_MESSAGE_CHARS
    assert_no_secret(message)
    if len(str(error)) > MAX_ERROR_MESSAGE_CHARS:
        assert "characters cut; the full text is in this function's log" in message
        logged = log_lines.getvalue()
        assert '"message":"the whole error message"' in logged
        assert_no_secret(logged)


def test_an_error_that_is_already_safe_leaves_unchanged() -> None:
    error = ModelRequestRejected("gpt-4.1-typo: HTTP 404 (model not found)")

    @safe_errors
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise error

    with pytest.raises(ModelRequestRejected) as raised:
        handler({}, None)
    assert raised.value is error


def test_rows_echoing_huge_values_make_a_small_readable_error() -> None:
    # 25 bad rows, each echoing a 40,000-character value, used to make a 1 MB message: past the 256 KB a
    # Step Functions state may hold, so the execution failed with States.DataLimitExceeded.
    huge = "v" * 40_000
    rows = [json.dumps({"question": f"q{i}", "split": huge, huge[:30_000]: 1}) for i in range(25)]
    rows += [json.dumps({"question": "q", "id": huge}), json.dumps({"question": "q", "id": huge})]

    with pytest.raises(InvalidProblemSet) as raised:
        parse_problem_set([row.encode() for row in rows], "s3://b/problem-sets/big.jsonl", "jsonl")

    message = str(raised.value)
    assert len(message) < 10_000
    assert message.startswith("s3://b/problem-sets/big.jsonl: 27 errors")
    assert "line 1: unknown field 'vvvv" in message
    assert "(30,002 characters)" in message
    assert "... and 7 more" in message
