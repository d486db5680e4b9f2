"""The Batch API through the openai SDK on a virtual clock: validation, lifecycle, results, expiry."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types import Batch

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, CAPITALS, SEED, START

SOLUTION_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "Solution",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "steps": {"type": "array", "items": {"type": "string"}},
                "final_answer": {"type": "string"},
            },
            "required": ["steps", "final_answer"],
            "additionalProperties": False,
        },
    },
}


def chat_body(question: str, model: str = "gpt-4.1-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


def request_line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def jsonl(lines: list[Any]) -> bytes:
    return ("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n").encode()


def start_batch(client: OpenAI, lines: list[Any], **create: Any) -> Batch:
    uploaded = client.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **create
    )


def questions(count: int) -> list[dict[str, Any]]:
    return [
        request_line(f"q{index}", chat_body(item.question, temperature=0))
        for index, item in enumerate(ARITHMETIC[:count])
    ]


def read_lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_a_batch_answers_like_chat_completions_and_sums_usage(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    bodies = [
        chat_body(ARITHMETIC[0].question, temperature=0, response_format=SOLUTION_FORMAT),
        chat_body(CAPITALS[0].question, temperature=0.7, n=2, response_format=SOLUTION_FORMAT),
        chat_body(ARITHMETIC[1].question, temperature=0, max_tokens=5),
    ]
    batch = start_batch(
        client, [request_line(f"line-{i}", body) for i, body in enumerate(bodies)], metadata={"run": "r1"}
    )

    assert (batch.status, batch.created_at, batch.expires_at) == (
        "validating",
        int(START),
        int(START) + 86_400,
    )
    assert batch.id.startswith("batch_") and batch.metadata == {"run": "r1"}
    assert batch.request_counts is not None and batch.request_counts.total == 0  # counted once validated
    clock.advance(9.9)
    assert client.batches.retrieve(batch.id).status == "validating"
    clock.advance(0.1)
    started = client.batches.retrieve(batch.id)
    assert (started.status, started.in_progress_at, started.model) == (
        "in_progress",
        int(START) + 10,
        "gpt-4.1-mini-2025-04-14",
    )
    # Three lines spread over the 60 s minimum: they finish at +30, +50 and +70.
    clock.advance(20)
    partly = client.batches.retrieve(batch.id)
    assert partly.request_counts is not None
    assert (partly.request_counts.total, partly.request_counts.completed) == (3, 1)
    assert partly.usage is not None and partly.usage.total_tokens > 0
    assert partly.output_file_id is None  # the files are written when the batch ends
    clock.advance(40)
    finalizing = client.batches.retrieve(batch.id)
    assert (finalizing.status, finalizing.finalizing_at) == ("finalizing", int(START) + 70)
    clock.advance(10)
    done = client.batches.retrieve(batch.id)

    assert (done.status, done.completed_at, done.error_file_id) == ("completed", int(START) + 80, None)
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 0)
    assert done.output_file_id is not None
    output_file = client.files.retrieve(done.output_file_id)
    assert (output_file.purpose, output_file.filename) == ("batch_output", f"{batch.id}_output.jsonl")
    lines = read_lines(client, done.output_file_id)
    assert [line["custom_id"] for line in lines] == ["line-0", "line-1", "line-2"]
    for line, body in zip(lines, bodies, strict=True):
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
        answered = line["response"]["body"]
        direct = client.chat.completions.with_raw_response.create(**body).http_response.json()
        # The same body POST /v1/chat/completions returns, but for its id and time.
        assert {key: value for key, value in answered.items() if key not in ("id", "created")} == {
            key: value for key, value in direct.items() if key not in ("id", "created")
        }
        assert answered["id"].startswith("chatcmpl-") and answered["id"] != direct["id"]
    assert [line["response"]["body"]["created"] for line in lines] == [int(START) + t for t in (30, 50, 70)]
    assert len(lines[1]["response"]["body"]["choices"]) == 2
    assert set(json.loads(lines[0]["response"]["body"]["choices"][0]["message"]["content"])) == {
        "steps",
        "final_answer",
    }
    assert lines[2]["response"]["body"]["choices"][0]["finish_reason"] == "length"

    usages = [line["response"]["body"]["usage"] for line in lines]
    assert done.usage is not None
    assert done.usage.input_tokens == sum(usage["prompt_tokens"] for usage in usages)
    assert done.usage.output_tokens == sum(usage["completion_tokens"] for usage in usages)
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    assert done.usage.input_tokens_details.cached_tokens == 0
    assert done.usage.output_tokens_details.reasoning_tokens == 0
    assert emulator.batches[batch.id]["status"] == "completed"


def test_batch_lines_skip_rate_limits_and_injected_faults(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(requests_per_minute=1, tokens_per_minute=10)
    emulator.inject_errors(1, status=500, path_prefix="/v1/chat/")
    batch = start_batch(client, questions(5))

    clock.advance(80)
    done = client.batches.retrieve(batch.id)

    assert done.request_counts is not None and done.request_counts.completed == 5
    assert emulator.http_client().get("http://emulator.invalid/_emulator/state").json()["pending_errors"] == [
        {"count": 1, "status": 500, "path_prefix": "/v1/chat/"}
    ]


def test_a_line_is_answered_with_the_world_as_it_was_when_it_was_due(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    question = "What is the emulator's favourite number?"
    batch = start_batch(client, [request_line(f"r{i}", chat_body(question, temperature=0)) for i in range(2)])
    clock.advance(45)  # the first line was due at +40, though nothing has read the batch since

    emulator.add_knowledge([KnowledgeItem(question=question, answer="17")])
    clock.advance(35)
    lines = read_lines(client, client.batches.retrieve(batch.id).output_file_id)

    contents = [line["response"]["body"]["choices"][0]["message"]["content"] for line in lines]
    assert "I don't know" in contents[0] and "I don't know" not in contents[1]


def test_an_invalid_input_file_fails_the_batch_after_validation(client: OpenAI, clock: VirtualClock) -> None:
    good = request_line("a", chat_body("What is 1 times 8?"))
    lines: list[Any] = [
        good,
        "{not json",
        request_line("a", chat_body("again")),
        {**request_line("b", chat_body("x")), "url": "/v1/embeddings"},
        {**request_line("c", chat_body("x")), "method": "GET"},
        request_line("d", chat_body("x", model="gpt-nonexistent")),
        {"custom_id": "e", "method": "POST", "url": "/v1/chat/completions"},
        request_line("f", chat_body("x", model="gpt-4o")),
        {**request_line("g", chat_body("x")), "custom_id": 7},
        request_line("h", {"messages": [{"role": "user", "content": "x"}]}),
        "[1, 2]",
    ]
    batch = start_batch(client, lines)
    assert client.batches.retrieve(batch.id).errors is None

    clock.advance(10)
    failed = client.batches.retrieve(batch.id)

    assert (failed.status, failed.failed_at, failed.in_progress_at) == ("failed", int(START) + 10, None)
    assert failed.errors is not None and failed.errors.object == "list"
    assert failed.errors.data is not None
    assert [(error.line, error.code, error.param) for error in failed.errors.data] == [
        (2, "invalid_json_line", None),
        (3, "duplicate_custom_id", "custom_id"),
        (4, "mismatched_url", "url"),
        (5, "invalid_value", "method"),
        (6, "model_not_found", "body.model"),
        (7, "missing_required_parameter", "body"),
        (8, "mismatched_model", "body.model"),
        (9, "invalid_value", "custom_id"),
        (10, "missing_required_parameter", "body.model"),
        (11, "invalid_json_line", None),
    ]
    assert all(error.message for error in failed.errors.data)
    assert failed.request_counts is not None and failed.request_counts.total == 0
    assert (failed.output_file_id, failed.error_file_id) == (None, None)
    clock.advance(1000)
    assert client.batches.retrieve(batch.id).status == "failed"


def test_an_empty_or_oversized_file_fails_with_one_error(client: OpenAI, clock: VirtualClock) -> None:
    empty = start_batch(client, ["", "  "])
    line = json.dumps(request_line("x", chat_body("x")))
    uploaded = client.files.create(file=("big.jsonl", ("\n".join([line] * 50_001)).encode()), purpose="batch")
    oversized = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    clock.advance(10)

    for batch_id, code in ((empty.id, "empty_file"), (oversized.id, "too_many_tasks")):
        batch = client.batches.retrieve(batch_id)
        assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
        assert [(error.code, error.line) for error in batch.errors.data] == [(code, None)]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"endpoint": "/v1/embeddings"}, "endpoint"),
        ({"endpoint": "/v1/nothing"}, "endpoint"),
        ({"completion_window": "48h"}, "completion_window"),
        ({"input_file_id": "file-missing"}, "input_file_id"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"output_expires_after": {"anchor": "created_at", "seconds": 60}}, "output_expires_after.seconds"),
    ],
)
def test_create_rejects_bad_parameters(client: OpenAI, change: dict[str, Any], param: str) -> None:
    uploaded = client.files.create(file=("r.jsonl", jsonl(questions(1))), purpose="batch")
    create = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}

    with pytest.raises(openai.BadRequestError) as error:
        client.batches.create(**{**create, **change})

    assert error.value.param == param


def test_create_needs_a_batch_purpose_file(client: OpenAI) -> None:
    uploaded = client.files.create(file=("r.jsonl", jsonl(questions(1))), purpose="fine-tune")

    with pytest.raises(openai.BadRequestError, match="purpose 'batch'") as error:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )

    assert error.value.param == "input_file_id"


def test_line_failures_go_to_the_error_file(clock: VirtualClock) -> None:
    def run(seed: int) -> tuple[Batch, list[dict[str, Any]], list[dict[str, Any]]]:
        emulator = OpenAIEmulator(clock=clock, seed=seed)
        emulator.configure(batch_line_error_rate=0.4)
        client = emulator.openai_client(max_retries=0)
        lines = [
            *questions(12),
            # Valid lines as far as the batch goes; POST /v1/chat/completions would refuse their bodies.
            request_line("no-json-word", chat_body("x", response_format={"type": "json_object"})),
            request_line("stream", chat_body("x", stream=True)),
        ]
        batch = start_batch(client, lines)
        clock.advance(100)
        done = client.batches.retrieve(batch.id)
        return done, read_lines(client, done.output_file_id), read_lines(client, done.error_file_id)

    done, output, errors = run(SEED + 1)

    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (len(output), len(errors))
    assert len(output) + len(errors) == done.request_counts.total == 14
    assert all(line["response"]["status_code"] == 200 for line in output)
    assert all(line["error"] is None and line["response"]["request_id"] for line in errors)
    drawn = [line for line in errors if line["custom_id"].startswith("q")]
    assert 1 <= len(drawn) <= 8
    for line in drawn:
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
    refused = {
        line["custom_id"]: line["response"] for line in errors if not line["custom_id"].startswith("q")
    }
    assert {custom_id: response["status_code"] for custom_id, response in refused.items()} == {
        "no-json-word": 400,
        "stream": 400,
    }
    assert refused["no-json-word"]["body"]["error"]["param"] == "messages"
    assert refused["stream"]["body"]["error"]["param"] == "stream"
    # The 500s are a seeded draw per line: the same seed fails the same lines, another seed others.
    assert run(SEED + 1)[2] == errors
    assert [line["custom_id"] for line in run(SEED)[2]] != [line["custom_id"] for line in errors]


def test_a_batch_whose_every_line_failed_completes_with_only_an_error_file(
    client: OpenAI, clock: VirtualClock
) -> None:
    lines = [request_line(f"bad-{i}", {"model": "gpt-4.1-mini", "messages": []}) for i in range(3)]
    batch = start_batch(client, lines)

    clock.advance(80)
    done = client.batches.retrieve(batch.id)

    assert (done.status, done.output_file_id) == ("completed", None)
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (0, 3)
    assert done.usage is not None and done.usage.total_tokens == 0
    errors = read_lines(client, done.error_file_id)
    assert [line["custom_id"] for line in errors] == ["bad-0", "bad-1", "bad-2"]
    assert {line["response"]["status_code"] for line in errors} == {400}
    assert {line["response"]["body"]["error"]["param"] for line in errors} == {"messages"}


def test_expiry_keeps_the_finished_lines_and_fails_the_rest(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(batch_expire_after_seconds=40)
    batch = start_batch(client, questions(4))  # lines due at +25, +40, +55, +70
    assert batch.expires_at == int(START) + 40

    clock.advance(39)
    running = client.batches.retrieve(batch.id)
    assert running.status == "in_progress" and running.request_counts is not None
    assert running.request_counts.completed == 1
    clock.advance(1)
    expired = client.batches.retrieve(batch.id)

    assert (expired.status, expired.expired_at, expired.finalizing_at) == ("expired", int(START) + 40, None)
    assert expired.request_counts is not None
    assert (expired.request_counts.completed, expired.request_counts.failed) == (2, 2)
    assert [line["custom_id"] for line in read_lines(client, expired.output_file_id)] == ["q0", "q1"]
    errors = read_lines(client, expired.error_file_id)
    assert [line["custom_id"] for line in errors] == ["q2", "q3"]
    for line in errors:
        assert line["response"] is None
        assert line["error"] == {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
    clock.advance(1000)
    assert client.batches.retrieve(batch.id) == expired


def test_cancel_keeps_the_finished_lines(client: OpenAI, clock: VirtualClock) -> None:
    batch = start_batch(client, questions(4))  # lines due at +25, +40, +55, +70
    clock.advance(30)

    cancelling = client.batches.cancel(batch.id)

    assert (cancelling.status, cancelling.cancelling_at) == ("cancelling", int(START) + 30)
    clock.advance(9)
    still = client.batches.retrieve(batch.id)
    assert still.status == "cancelling" and still.request_counts is not None
    assert still.request_counts.completed == 1  # the line due at +40 is never run
    assert client.batches.cancel(batch.id).status == "cancelling"
    clock.advance(1)
    cancelled = client.batches.retrieve(batch.id)
    assert (cancelled.status, cancelled.cancelled_at) == ("cancelled", int(START) + 40)
    assert cancelled.request_counts is not None
    assert (cancelled.request_counts.completed, cancelled.request_counts.failed) == (1, 3)
    assert [line["custom_id"] for line in read_lines(client, cancelled.output_file_id)] == ["q0"]
    errors = read_lines(client, cancelled.error_file_id)
    assert [line["custom_id"] for line in errors] == ["q1", "q2", "q3"]
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    with pytest.raises(openai.BadRequestError, match="cancelled"):
        client.batches.cancel(batch.id)


def test_cancel_while_validating_leaves_no_files(client: OpenAI, clock: VirtualClock) -> None:
    batch = start_batch(client, questions(2))

    client.batches.cancel(batch.id)
    clock.advance(10)
    cancelled = client.batches.retrieve(batch.id)

    assert (cancelled.status, cancelled.in_progress_at) == ("cancelled", None)
    assert (cancelled.output_file_id, cancelled.error_file_id) == (None, None)
    assert cancelled.request_counts is not None and cancelled.request_counts.total == 0
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_missing")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")


def test_list_is_newest_first_and_paged_and_reset_forgets(client: OpenAI, emulator: OpenAIEmulator) -> None:
    ids = [start_batch(client, questions(1)).id for _ in range(3)]

    first = client.batches.list(limit=2)

    assert [batch.id for batch in first.data] == [ids[2], ids[1]] and first.has_more
    assert [batch.id for batch in client.batches.list(limit=1)] == list(reversed(ids))
    assert [batch.id for batch in client.batches.list(after=ids[1])] == [ids[0]]
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)
    state = emulator.http_client().get("http://emulator.invalid/_emulator/state").json()
    assert state["counts"]["batches"] == 3
    emulator.reset()
    assert not emulator.batches and not client.batches.list().data
