from typing import Any

import pytest

from synthtune.config import RunConfig
from synthtune.dataset import drop_reason, training_example
from synthtune.generation import GeneratedAnswer
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, parse_final_answer


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


def test_training_example_is_the_chat_format_the_benchmark_asks_in() -> None:
    example = training_example(answer())
    assert [m.role for m in example.messages] == ["system", "user", "assistant"]
    assert example.messages[0].content == SOLVER_SYSTEM_PROMPT
    assert example.messages[1].content == "What is 6 times 7?"
    assert parse_final_answer(example.messages[2].content) == "42"


@pytest.mark.parametrize(
    ("changes", "keep_unreferenced", "reason"),
    [
        ({}, True, None),
        ({"status": "rejected", "final_answer": "48"}, True, "wrong_answer"),
        (
            {"status": "failed", "failure": "truncated", "steps": [], "final_answer": None},
            True,
            "teacher_truncated",
        ),
        ({"status": "unverified", "reference": None}, True, None),
        ({"status": "unverified", "reference": None}, False, "no_reference"),
        ({"steps": ["  "]}, True, "empty_reasoning"),
    ],
)
def test_only_what_deserves_training_is_kept(
    changes: dict[str, Any], keep_unreferenced: bool, reason: str | None
) -> None:
    assert drop_reason(answer(**changes), RunConfig(keep_unreferenced=keep_unreferenced)) == reason
