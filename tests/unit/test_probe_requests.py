"""The student's probe requests on the wire, at the emulator: the system prompt, the exemplars as earlier
turns in order, `n` on OpenAI and one Converse request per sample on Bedrock, each read back as free text
with its usage."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import httpx2
import pytest
from botocore.config import Config

from synthtune.contracts.usage import Usage
from synthtune.prompts import ABSTAINING_SYSTEM_PROMPT, SOLVER_SYSTEM_PROMPT, Exemplar
from synthtune.providers.bedrock.chat import BedrockChat
from synthtune.providers.openai.chat import OpenAIChat
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator

STUDENT = "gpt-4.1-nano-2025-04-14"
NOVA = "bedrock/amazon.nova-micro-v1:0"
QUESTION = "What is the capital of France?"
EXEMPLARS = (
    Exemplar(question="What is 3 plus 5?", reply="3 plus 5 is 8.\nAnswer: 8"),
    Exemplar(question="What is the capital of Italy?", reply="Answer: Rome"),
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RecordedBodies:
    """A WSGI app in front of the emulator's that keeps every chat request's JSON body."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["PATH_INFO"].endswith("/chat/completions"):
            self.bodies.append(json.loads(body))
        environ["wsgi.input"] = io.BytesIO(body)
        return self._app(environ, start_response)


@pytest.fixture
def recorded(emulator: OpenAIEmulator) -> RecordedBodies:
    return RecordedBodies(emulator.wsgi_app)


@pytest.fixture
def openai_chat(emulator: OpenAIEmulator, recorded: RecordedBodies) -> OpenAIChat:
    http = httpx2.Client(transport=httpx2.WSGITransport(app=recorded))
    return OpenAIChat(emulator.openai_client(max_retries=0, http_client=http))


def roles_and_texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (
            message["role"],
            message["content"] if isinstance(message["content"], str) else message["content"][0]["text"],
        )
        for message in messages
    ]


WIRE_TURNS = [
    ("user", "What is 3 plus 5?"),
    ("assistant", "3 plus 5 is 8.\nAnswer: 8"),
    ("user", "What is the capital of Italy?"),
    ("assistant", "Answer: Rome"),
    ("user", QUESTION),
]


def test_an_openai_probe_sends_the_exemplars_as_earlier_turns_and_n_in_one_request(
    emulator: OpenAIEmulator, recorded: RecordedBodies, openai_chat: OpenAIChat
) -> None:
    asked = openai_chat.replies(
        STUDENT,
        QUESTION,
        system=ABSTAINING_SYSTEM_PROMPT,
        exemplars=EXEMPLARS,
        temperature=0.7,
        max_tokens=200,
        samples=3,
    )
    (body,) = recorded.bodies
    assert roles_and_texts(body["messages"]) == [("system", ABSTAINING_SYSTEM_PROMPT), *WIRE_TURNS]
    assert (body["n"], body["temperature"], body["max_completion_tokens"]) == (3, 0.7, 200)
    assert "response_format" not in body  # free text, in the training format
    (billed,) = emulator.billed  # three answers, one request
    assert asked.model == STUDENT
    assert len(asked.replies) == 3
    assert all(reply.text for reply in asked.replies)
    assert {reply.finish_reason for reply in asked.replies} == {"stop"}
    assert asked.usage == Usage(
        requests=1, input_tokens=billed.input_tokens, output_tokens=billed.output_tokens
    )
    assert asked.backpressure is not None


def test_a_greedy_openai_probe_without_exemplars_is_the_answer_request(
    recorded: RecordedBodies, openai_chat: OpenAIChat
) -> None:
    asked = openai_chat.replies(
        STUDENT, QUESTION, system=SOLVER_SYSTEM_PROMPT, temperature=0.0, max_tokens=200
    )
    openai_chat.answer(STUDENT, QUESTION, max_tokens=200)
    openai_chat.replies("o4-mini", QUESTION, system=SOLVER_SYSTEM_PROMPT, temperature=0.7, max_tokens=200)
    probe, answer, reasoning = recorded.bodies
    assert probe == answer  # the first greedy probe asks exactly what the benchmark asks
    assert "n" not in probe and probe["temperature"] == 0.0
    assert "temperature" not in reasoning  # reasoning models take only their default
    assert len(asked.replies) == 1


def test_an_openai_answer_sends_the_runs_system_prompt(
    recorded: RecordedBodies, openai_chat: OpenAIChat
) -> None:
    openai_chat.answer(STUDENT, QUESTION, max_tokens=200, system=ABSTAINING_SYSTEM_PROMPT)
    openai_chat.answer(STUDENT, QUESTION, max_tokens=200)
    abstaining, usual = recorded.bodies
    assert abstaining["messages"] == [
        {"role": "system", "content": ABSTAINING_SYSTEM_PROMPT},
        {"role": "user", "content": QUESTION},
    ]
    assert usual["messages"][0] == {"role": "system", "content": SOLVER_SYSTEM_PROMPT}


@pytest.fixture
def bedrock_server(aws: None, emulator: OpenAIEmulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as server:
        yield server


@pytest.fixture
def converse_bodies(bedrock_server: EmulatorServer) -> tuple[BedrockChat, list[dict[str, Any]]]:
    runtime = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=bedrock_server.root_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    bodies: list[dict[str, Any]] = []

    def keep(request: Any, **kwargs: Any) -> None:
        bodies.append(json.loads(request.body))

    runtime.meta.events.register("before-send.bedrock-runtime.Converse", keep)
    return BedrockChat(runtime), bodies


def test_a_bedrock_probe_asks_once_per_sample_with_the_exemplars_as_earlier_turns(
    emulator: OpenAIEmulator, converse_bodies: tuple[BedrockChat, list[dict[str, Any]]]
) -> None:
    chat, bodies = converse_bodies
    assert chat.samples_per_request(NOVA) == 1
    asked = chat.replies(
        NOVA,
        QUESTION,
        system=ABSTAINING_SYSTEM_PROMPT,
        exemplars=EXEMPLARS,
        temperature=0.7,
        max_tokens=200,
        samples=3,
    )
    assert len(bodies) == 3  # Converse has no `n`
    for body in bodies:
        assert body["system"] == [{"text": ABSTAINING_SYSTEM_PROMPT}]
        assert roles_and_texts(body["messages"]) == WIRE_TURNS
        assert body["inferenceConfig"] == {"maxTokens": 200, "temperature": 0.7}
        assert "toolConfig" not in body
    billed = emulator.billed
    assert len(billed) == 3
    assert asked.model == NOVA
    assert len(asked.replies) == 3
    assert all(reply.text for reply in asked.replies)
    assert asked.usage == Usage(
        requests=3,
        input_tokens=sum(request.input_tokens for request in billed),
        output_tokens=sum(request.output_tokens for request in billed),
    )
    assert asked.backpressure is None  # Bedrock says nothing of its windows


def test_a_bedrock_answer_sends_the_runs_system_prompt(
    converse_bodies: tuple[BedrockChat, list[dict[str, Any]]],
) -> None:
    chat, bodies = converse_bodies
    reply = chat.answer(NOVA, QUESTION, max_tokens=200, system=ABSTAINING_SYSTEM_PROMPT)
    (body,) = bodies
    assert body["system"] == [{"text": ABSTAINING_SYSTEM_PROMPT}]
    assert roles_and_texts(body["messages"]) == [("user", QUESTION)]
    assert reply.text and reply.usage.requests == 1
