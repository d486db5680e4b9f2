"""Converse through boto3's bedrock-runtime client: simulated answers, tool use and structured output,
limits, sampling across requests, inference-profile and lifecycle rules, throttling and injected faults."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, CAPITALS, NO_RETRIES, SEED, START, aws_session

MICRO = "amazon.nova-micro-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SOLUTION_SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {"type": "array", "items": {"type": "string"}},
        "final_answer": {"type": "string"},
    },
    "required": ["steps", "final_answer"],
}


def converse(runtime: BaseClient, model_id: str, question: str, **options: Any) -> dict[str, Any]:
    response: dict[str, Any] = runtime.converse(
        modelId=model_id, messages=[{"role": "user", "content": [{"text": question}]}], **options
    )
    return response


def text_of(response: dict[str, Any]) -> str:
    return str(response["output"]["message"]["content"][0]["text"])


def final_answer(text: str) -> str | None:
    last = text.splitlines()[-1]
    return last.removeprefix("Answer: ") if last.startswith("Answer: ") else None


def error_of(call: Any, **arguments: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    response = raised.value.response
    return {**response["Error"], "Status": response["ResponseMetadata"]["HTTPStatusCode"]}


def accuracy(runtime: BaseClient, model_id: str, items: list[KnowledgeItem]) -> float:
    answers = [
        final_answer(text_of(converse(runtime, model_id, item.question, inferenceConfig={"temperature": 0})))
        for item in items
    ]
    return sum(answer == item.answer for answer, item in zip(answers, items, strict=True)) / len(items)


def test_a_text_reply_is_reasoning_then_an_answer_line(
    bedrock_runtime: BaseClient, emulator: OpenAIEmulator
) -> None:
    emulator.configure(latency_seconds=1.5)

    response = converse(
        bedrock_runtime,
        "us.amazon.nova-pro-v1:0",
        "What is the capital of France?",
        system=[{"text": "Answer with a final line 'Answer: ...'."}],
    )

    text = text_of(response)
    assert "What is the capital of France?" in text.splitlines()[0]
    assert final_answer(text) in {item.answer for item in CAPITALS}
    assert response["stopReason"] == "end_turn"
    usage = response["usage"]
    assert usage["inputTokens"] > 10 and usage["outputTokens"] > 5
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert response["metrics"]["latencyMs"] == 1500
    assert emulator.clock.now() == START + 1.5


def test_skill_orders_the_models(bedrock_runtime: BaseClient) -> None:
    items = ARITHMETIC[:40]

    micro, pro = (
        accuracy(bedrock_runtime, MICRO, items),
        accuracy(bedrock_runtime, "amazon.nova-pro-v1:0", items),
    )
    sonnet = accuracy(bedrock_runtime, "global.anthropic.claude-sonnet-4-5-20250929-v1:0", items)

    assert micro < 0.6 < pro <= sonnet


def test_a_named_tool_is_called_with_input_filling_its_schema(bedrock_runtime: BaseClient) -> None:
    tools = [
        {"toolSpec": {"name": "log", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        {"toolSpec": {"name": "solution", "inputSchema": {"json": SOLUTION_SCHEMA}}},
    ]

    response = converse(
        bedrock_runtime,
        MICRO,
        ARITHMETIC[0].question,
        toolConfig={"tools": tools, "toolChoice": {"tool": {"name": "solution"}}},
        inferenceConfig={"temperature": 0},
    )

    assert response["stopReason"] == "tool_use"
    (block,) = response["output"]["message"]["content"]
    tool_use = block["toolUse"]
    assert tool_use["name"] == "solution" and tool_use["toolUseId"].startswith("tooluse_")
    assert set(tool_use["input"]) == {"steps", "final_answer"} and tool_use["input"]["steps"]
    text = text_of(
        converse(bedrock_runtime, MICRO, ARITHMETIC[0].question, inferenceConfig={"temperature": 0})
    )
    assert tool_use["input"]["final_answer"] == final_answer(text)
    auto = converse(bedrock_runtime, MICRO, ARITHMETIC[0].question, toolConfig={"tools": tools[1:]})
    assert auto["output"]["message"]["content"][0]["toolUse"]["name"] == "solution"
    unknown = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "user", "content": [{"text": "q"}]}],
        toolConfig={"tools": tools, "toolChoice": {"tool": {"name": "missing"}}},
    )
    assert unknown["Code"] == "ValidationException" and "missing" in unknown["Message"]


def test_json_schema_output_is_for_claude_and_gpt_oss_not_nova(bedrock_runtime: BaseClient) -> None:
    output_config = {
        "textFormat": {
            "type": "json_schema",
            "structure": {"jsonSchema": {"schema": json.dumps(SOLUTION_SCHEMA), "name": "solution"}},
        }
    }

    for model in (HAIKU, "openai.gpt-oss-120b-1:0"):
        response = converse(bedrock_runtime, model, ARITHMETIC[1].question, outputConfig=output_config)
        assert set(json.loads(text_of(response))) == {"steps", "final_answer"}
    refused = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "user", "content": [{"text": "q"}]}],
        outputConfig=output_config,
    )
    assert refused["Code"] == "ValidationException" and "structured outputs" in refused["Message"]


def test_max_tokens_and_stop_sequences_cut_the_reply(bedrock_runtime: BaseClient) -> None:
    response = converse(bedrock_runtime, MICRO, ARITHMETIC[2].question, inferenceConfig={"maxTokens": 4})
    stopped = converse(
        bedrock_runtime, MICRO, ARITHMETIC[2].question, inferenceConfig={"stopSequences": ["Answer:"]}
    )
    cut_tool = converse(
        bedrock_runtime,
        MICRO,
        ARITHMETIC[2].question,
        inferenceConfig={"maxTokens": 5},
        toolConfig={"tools": [{"toolSpec": {"name": "solution", "inputSchema": {"json": SOLUTION_SCHEMA}}}]},
    )

    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 4
    assert len(text_of(response)) < 40
    assert stopped["stopReason"] == "stop_sequence" and "Answer:" not in text_of(stopped)
    assert text_of(stopped).startswith(("The question asks", "We need to find", "Restating the problem"))
    assert cut_tool["stopReason"] == "max_tokens" and text_of(cut_tool).startswith('{"steps": [')


@pytest.mark.parametrize(("name", "value"), [("temperature", 1.5), ("topP", 1.01)])
def test_sampling_parameters_must_be_between_0_and_1(
    bedrock_runtime: BaseClient, name: str, value: float
) -> None:
    refused = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "user", "content": [{"text": "q"}]}],
        inferenceConfig={name: value},
    )

    assert refused["Code"] == "ValidationException"
    assert f"inferenceConfig.{name}" in refused["Message"] and "less than or equal to 1" in refused["Message"]


def test_separate_requests_are_successive_samples_when_the_temperature_is_above_0(
    bedrock_runtime: BaseClient, clock: VirtualClock
) -> None:
    question = ARITHMETIC[10].question

    def answers(**config: Any) -> list[str | None]:
        return [
            final_answer(
                text_of(converse(bedrock_runtime, "amazon.nova-lite-v1:0", question, inferenceConfig=config))
            )
            for _ in range(12)
        ]

    greedy = answers(temperature=0)
    sampled = answers(temperature=0.7)
    again = answers()  # the model's default temperature samples too: the next twelve samples

    assert len(set(greedy)) == 1
    assert len(set(sampled)) > 1 and ARITHMETIC[10].answer in sampled
    assert sampled != again
    fresh = OpenAIEmulator(clock=clock, seed=SEED)
    fresh.add_knowledge(ARITHMETIC)
    with fresh.serve() as server:
        other = aws_session().client("bedrock-runtime", endpoint_url=server.root_url, config=NO_RETRIES)
        replay = [
            final_answer(
                text_of(
                    converse(other, "amazon.nova-lite-v1:0", question, inferenceConfig={"temperature": 1})
                )
            )
            for _ in range(12)
        ]
    assert replay == sampled  # deterministic: the same seed gives the same sequence of samples


def test_a_judge_prompt_gets_a_verdict(bedrock_runtime: BaseClient) -> None:
    prompt = "Grade the candidate.\nReference answer: 1,000\nCandidate answer: 1000.0"

    assert final_answer(text_of(converse(bedrock_runtime, MICRO, prompt))) == "correct"


@pytest.mark.parametrize(
    ("model_id", "fragment"),
    [
        ("amazon.nova-2-lite-v1:0", "Retry your request with the ID or ARN of an inference profile"),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", "with on-demand throughput isn't supported"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "inference profile"),
        ("amazon.nova-micro-v1:0:128k", "doesn't support on-demand throughput"),
        ("amazon.nova-premier-v1:0", "reached the end of its life"),
        ("us.amazon.nova-premier-v1:0", "reached the end of its life"),
        ("amazon.nova-nano-v9:0", "The provided model identifier is invalid."),
    ],
)
def test_model_ids_bedrock_refuses(bedrock_runtime: BaseClient, model_id: str, fragment: str) -> None:
    refused = error_of(
        bedrock_runtime.converse, modelId=model_id, messages=[{"role": "user", "content": [{"text": "q"}]}]
    )

    assert (refused["Code"], refused["Status"]) == ("ValidationException", 400)
    assert fragment in refused["Message"]


@pytest.mark.parametrize(
    ("model_id", "same_as"),
    [
        ("global.amazon.nova-2-lite-v1:0", "us.amazon.nova-2-lite-v1:0"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-2-lite-v1:0",
            "eu.amazon.nova-2-lite-v1:0",
        ),
        ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", HAIKU),
        ("apac.amazon.nova-micro-v1:0", MICRO),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0", MICRO),
        ("us.meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),
    ],
)
def test_profiles_and_arns_answer_as_their_base_model(
    bedrock_runtime: BaseClient, model_id: str, same_as: str
) -> None:
    questions = [item.question for item in ARITHMETIC[:4]]

    def replies(model: str) -> list[str]:
        return [
            text_of(converse(bedrock_runtime, model, question, inferenceConfig={"temperature": 0}))
            for question in questions
        ]

    assert replies(model_id) == replies(same_as)


def test_a_conversation_starts_with_the_user_and_alternates(bedrock_runtime: BaseClient) -> None:
    starts_wrong = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "assistant", "content": [{"text": "hello"}]}],
    )
    repeats = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}],
    )

    assert "must start with a user message" in starts_wrong["Message"]
    assert "must alternate" in repeats["Message"]


def test_throttling_is_a_429_throttling_exception_on_the_emulators_clock(
    bedrock_runtime: BaseClient, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(requests_per_minute=2)

    converse(bedrock_runtime, MICRO, "q1")
    converse(bedrock_runtime, MICRO, "q2")
    throttled = error_of(
        bedrock_runtime.converse, modelId=MICRO, messages=[{"role": "user", "content": [{"text": "q"}]}]
    )

    assert (throttled["Code"], throttled["Status"]) == ("ThrottlingException", 429)
    assert throttled["Message"] == "Too many requests, please wait before trying again."
    clock.advance(60)
    assert converse(bedrock_runtime, MICRO, "q3")["stopReason"] == "end_turn"
    emulator.configure(requests_per_minute=None, tokens_per_minute=20)
    tokens = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "user", "content": [{"text": "q"}]}],
        inferenceConfig={"maxTokens": 100},
    )
    assert tokens["Message"] == "Too many tokens, please wait before trying again."


@pytest.mark.parametrize(
    ("status", "code", "answered"),
    [
        (503, "ServiceUnavailableException", 503),
        (502, "ServiceUnavailableException", 503),
        (500, "InternalServerException", 500),
        (429, "ThrottlingException", 429),
        (400, "ValidationException", 400),
    ],
)
def test_injected_faults_take_bedrocks_error_codes(
    bedrock_runtime: BaseClient, emulator: OpenAIEmulator, status: int, code: str, answered: int
) -> None:
    emulator.inject_errors(1, status=status, path_prefix="/model/")

    injected = error_of(
        bedrock_runtime.converse, modelId=MICRO, messages=[{"role": "user", "content": [{"text": "q"}]}]
    )

    assert (injected["Code"], injected["Status"]) == (code, answered)
    assert "injected by the emulator" in injected["Message"]
    assert converse(bedrock_runtime, MICRO, "q")["stopReason"] == "end_turn"
    assert [request.status for request in emulator.requests] == [answered, 200]


def test_the_error_rate_applies_to_bedrock_too(bedrock: BaseClient, emulator: OpenAIEmulator) -> None:
    emulator.configure(error_rate=1.0, error_status=503)

    refused = error_of(bedrock.list_foundation_models)

    assert (refused["Code"], refused["Status"]) == ("ServiceUnavailableException", 503)


def test_a_converse_request_is_billed_whether_or_not_its_response_arrives(
    bedrock_runtime: BaseClient, emulator: OpenAIEmulator
) -> None:
    answered = converse(bedrock_runtime, MICRO, "What is the capital of Peru?")
    emulator.lose_fraction(1.0, path_prefix="/model/")
    lost = error_of(
        bedrock_runtime.converse,
        modelId=MICRO,
        messages=[{"role": "user", "content": [{"text": "What is the capital of Peru?"}]}],
    )

    assert lost["Code"] == "ServiceUnavailableException"
    usage = answered["usage"]
    assert [(b.api, b.model, b.input_tokens, b.output_tokens) for b in emulator.billed[:1]] == [
        ("bedrock", MICRO, usage["inputTokens"], usage["outputTokens"])
    ]
    assert [b.lost for b in emulator.billed] == [False, True]  # carried out, billed, its answer lost
