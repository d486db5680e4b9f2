from typing import Any

import pytest

from synthtune.contracts.config import DatasetConfig
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, parse_final_answer
from synthtune.providers.bedrock.format import conversation_record
from synthtune.stages.assemble.examples import training_example
from synthtune.stages.assemble.exports import huggingface_record
from synthtune.stages.assemble.gates import DROP_REASONS, Drop, answer_gate
from synthtune.stages.generate import GeneratedAnswer


def answer(**changes: Any) -> GeneratedAnswer:
    fields: dict[str, Any] = {
        "problem_id": "p1",
        "split": "train",
        "category": "math",
        "question": "What is 6 times 7?",
        "reference": "42",
        "status": "verified",
        "steps": ["6 times 7 is 42."],
        "final_answer": "42",
        "grade_method": "numeric",
        "finish_reason": "stop",
        "usage": {},
    }
    return GeneratedAnswer(**{**fields, **changes})


UNREFERENCED = {"status": "unverified", "reference": None}


def test_training_example_is_the_chat_format_the_benchmark_asks_in() -> None:
    example = training_example(answer())
    assert [m.role for m in example.messages] == ["system", "user", "assistant"]
    assert example.messages[0].content == SOLVER_SYSTEM_PROMPT
    assert example.messages[1].content == "What is 6 times 7?"
    assert parse_final_answer(example.messages[2].content) == "42"


@pytest.mark.parametrize(
    ("changes", "gates", "reason"),
    [
        ({}, {}, None),
        ({"status": "rejected", "final_answer": "48"}, {}, "wrong_answer"),
        (
            {"status": "failed", "failure": "truncated", "steps": [], "final_answer": None},
            {},
            "teacher_truncated",
        ),
        (
            {"status": "failed", "failure": "refused", "steps": [], "final_answer": None},
            {},
            "teacher_refused",
        ),
        ({"status": "failed", "failure": None, "steps": [], "final_answer": None}, {}, "teacher_no_answer"),
        ({"finish_reason": "length"}, {}, "teacher_truncated"),
        (UNREFERENCED, {}, None),
        (UNREFERENCED, {"keep_unreferenced": False}, "no_reference"),
        ({**UNREFERENCED, "samples": 5, "agreement": 0.4}, {"min_agreement": 0.6}, "low_agreement"),
        ({**UNREFERENCED, "samples": 5, "agreement": 0.6}, {"min_agreement": 0.6}, None),
        ({"status": "verified", "samples": 5, "agreement": 0.2}, {"min_agreement": 0.6}, None),
        ({"steps": ["  "]}, {}, "empty_reasoning"),
        ({"steps": []}, {}, "empty_reasoning"),
        ({**UNREFERENCED, "final_answer": "I'm sorry, but I can't help with that."}, {}, "refusal"),
        ({"steps": ["As an AI, I cannot do arithmetic.", "6 times 7 is 42."]}, {}, "refusal"),
        ({**UNREFERENCED, "final_answer": "Probably 42"}, {}, "hedging"),
        ({**UNREFERENCED, "final_answer": "I don't know"}, {}, "hedging"),
        ({**UNREFERENCED, "final_answer": "I don't know"}, {"drop_hedging": False}, None),
        ({"steps": ["I'm not sure, but 6 times 7 is 42."]}, {}, "hedging"),
        ({"steps": ["I am not certain, but 6 times 7 is 42."]}, {}, "hedging"),
        ({**UNREFERENCED, "final_answer": "As a language model I have no opinion"}, {}, "refusal"),
        # Exploring possibilities is reasoning, not hedging.
        ({"steps": ["It is possibly 40 or 42; checking: 6 x 7 = 42."]}, {}, None),
    ],
)
def test_each_gate_drops_what_it_names(
    changes: dict[str, Any], gates: dict[str, Any], reason: str | None
) -> None:
    drop = answer_gate(answer(**changes), DatasetConfig.model_validate(gates))
    assert (drop.reason if drop else None) == reason
    if drop is not None:
        assert drop.reason in DROP_REASONS


def test_a_wrong_answer_names_both_answers() -> None:
    drop = answer_gate(answer(status="rejected", final_answer="48"), DatasetConfig())
    assert drop == Drop("wrong_answer", "answered '48', reference '42'")


def test_bedrock_export_is_the_conversation_schema() -> None:
    record = conversation_record(training_example(answer()))
    assert record["schemaVersion"] == "bedrock-conversation-2024"
    assert record["system"] == [{"text": SOLVER_SYSTEM_PROMPT}]
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    assert record["messages"][0]["content"] == [{"text": "What is 6 times 7?"}]
    assert parse_final_answer(record["messages"][1]["content"][0]["text"]) == "42"


def test_huggingface_export_is_plain_role_and_content() -> None:
    example = training_example(answer())
    record = huggingface_record(example)
    assert record == {"messages": [{"role": m.role, "content": m.content} for m in example.messages]}
