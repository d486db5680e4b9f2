"""The small world the emulator's tests share: fixed questions, a fixed start time, training files, and the
AWS side of the Bedrock tests (region, bucket, role)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable

import boto3
from botocore.config import Config
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


REGION = "us-east-1"
# botocore retries throttling, 5xx and ModelNotReadyException on its own, sleeping real time; the tests
# want to see each error, and the emulator's windows move on the virtual clock anyway.
NO_RETRIES = Config(retries={"total_max_attempts": 1})
BUCKET = "synthtune-training"
ROLE_ARN = "arn:aws:iam::123456789012:role/bedrock-customization"
BEDROCK_FINAL_STATUSES = ("Completed", "Failed", "Stopped")


def conversation(question: str, reply: str) -> dict[str, object]:
    """One `bedrock-conversation-2024` record."""
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Solve the problem."}],
        "messages": [
            {"role": "user", "content": [{"text": question}]},
            {"role": "assistant", "content": [{"text": reply}]},
        ],
    }


def conversation_jsonl(pairs: Iterable[tuple[str, str]]) -> bytes:
    """A Bedrock training file whose records answer `question` with reasoning and `Answer: answer`."""
    lines = [
        json.dumps(conversation(question, f"Work it out.\nAnswer: {answer}")) for question, answer in pairs
    ]
    return ("\n".join(lines) + "\n").encode()


RunCustomization = Callable[..., dict[str, object]]


@functools.cache
def aws_session() -> boto3.session.Session:
    """One boto3 session for every test: moto replaces boto3's default session on each `mock_aws`, and a
    new session parses each service model again (a tenth of a second for S3)."""
    return boto3.session.Session(region_name=REGION)
