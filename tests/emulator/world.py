"""The small world the emulator's tests share: fixed questions, a fixed start time, training files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from openai.types.fine_tuning import FineTuningJob

from synthtune_cli.emulator import KnowledgeItem

START = 1_700_000_000.0
SEED = 7

ARITHMETIC = [
    KnowledgeItem(question=f"What is {i} times {i + 7}?", answer=str(i * (i + 7)), category="arithmetic")
    for i in range(1, 121)
]
CAPITALS = [
    KnowledgeItem(question=f"What is the capital of {country}?", answer=capital, category="geography")
    for country, capital in [
        ("France", "Paris"),
        ("Spain", "Madrid"),
        ("Italy", "Rome"),
        ("Japan", "Tokyo"),
        ("Kenya", "Nairobi"),
        ("Peru", "Lima"),
        ("Canada", "Ottawa"),
        ("Egypt", "Cairo"),
    ]
]

FINAL_STATUSES = ("succeeded", "failed", "cancelled")


def chat_example(question: str, reply: str) -> dict[str, object]:
    return {
        "messages": [
            {"role": "system", "content": "Solve the problem."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": reply},
        ]
    }


def training_jsonl(pairs: Iterable[tuple[str, str]]) -> bytes:
    """A training file whose examples answer `question` with reasoning and `Answer: answer`."""
    lines = [
        json.dumps(chat_example(question, f"Work it out.\nAnswer: {answer}")) for question, answer in pairs
    ]
    return ("\n".join(lines) + "\n").encode()


RunJob = Callable[..., FineTuningJob]
