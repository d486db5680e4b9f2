"""bedrock-conversation-2024 and the rules a Nova job fails on: one bad line for each, and what passes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from synthtune.contracts.examples import ChatExample, ChatMessage
from synthtune.providers.bedrock.format import (
    CHECKS,
    RESERVED_KEYWORDS,
    ConversationFormat,
    ConversationValidator,
    conversation_record,
    validate_conversation_file,
)

MODEL = "bedrock/amazon.nova-micro-v1:0"


def example(question: str = "What is 2 plus 2?", answer: str = "2 + 2 = 4\nAnswer: 4") -> dict[str, Any]:
    return conversation_record(
        ChatExample(
            messages=[
                ChatMessage(role="system", content="Solve it step by step."),
                ChatMessage(role="user", content=question),
                ChatMessage(role="assistant", content=answer),
            ]
        )
    )


def issues(record: object, limit: int = 10_000) -> dict[str, list[str]]:
    validator = ConversationValidator("train.jsonl", MODEL, limit)
    validator.check(1, record)
    found: dict[str, list[str]] = {}
    for issue in validator.report().issues:
        found.setdefault(issue.check, []).append(issue.message)
    return found


def test_a_record_is_the_converse_shape_with_the_system_prompt_apart() -> None:
    assert example() == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Solve it step by step."}],
        "messages": [
            {"role": "user", "content": [{"text": "What is 2 plus 2?"}]},
            {"role": "assistant", "content": [{"text": "2 + 2 = 4\nAnswer: 4"}]},
        ],
    }
    assert issues(example()) == {}


def broken(change: str) -> object:
    record = example()
    if change == "not_an_object":
        return ["messages"]
    if change == "no_schema_version":
        del record["schemaVersion"]
    elif change == "system_as_text":
        record["system"] = "Solve it"
    elif change == "no_messages":
        record["messages"] = []
    elif change == "content_as_text":
        record["messages"][0]["content"] = "What is 2 plus 2?"
    elif change == "empty_text":
        record["messages"][1]["content"] = [{"text": "  "}]
    elif change == "system_role":
        record["messages"][0]["role"] = "system"
    elif change == "assistant_first":
        record["messages"].reverse()
    elif change == "user_last":
        record["messages"].append({"role": "user", "content": [{"text": "and 3 plus 3?"}]})
    elif change == "two_users":
        record["messages"].insert(0, {"role": "user", "content": [{"text": "Hello"}]})
    return record


@pytest.mark.parametrize(
    ("change", "check", "words"),
    [
        ("not_an_object", "data_type", "expected a JSON object, got an array"),
        ("no_schema_version", "schema_version", "no 'schemaVersion' string"),
        ("system_as_text", "system_format", "'system' is a string"),
        ("no_messages", "missing_messages_list", "no non-empty 'messages' list"),
        ("content_as_text", "message_format", "message 1's content is a string"),
        (
            "empty_text",
            "message_format",
            'message 2\'s content is an array; expected [{"text": ...}] with some text',
        ),
        ("system_role", "unrecognized_role", "message 1 has role 'system'; expected user or assistant"),
        ("assistant_first", "turn_order", "the first message is the assistant's; it must be the user's"),
        ("user_last", "turn_order", "the last message is the user's; it must be the assistant's"),
        ("two_users", "turn_order", "messages 1 and 2 are both the user's; turns must alternate"),
    ],
)
def test_each_rule_names_the_line_and_what_is_wrong(change: str, check: str, words: str) -> None:
    found = issues(broken(change))
    assert check in found, found
    assert all(message.startswith("line 1: ") for message in found[check])
    assert any(words in message for message in found[check])
    assert check in CHECKS


@pytest.mark.parametrize("keyword", RESERVED_KEYWORDS)
def test_a_reserved_keyword_anywhere_fails_the_line(keyword: str) -> None:
    for where in ("question", "answer", "system"):
        record = example()
        if where == "question":
            record["messages"][0]["content"][0]["text"] = f"{keyword} what is 2 plus 2?"
        elif where == "answer":
            record["messages"][1]["content"][0]["text"] = f"2 + 2 = 4 {keyword}\nAnswer: 4"
        else:
            record["system"][0]["text"] = f"Solve it. {keyword}"
        assert issues(record) == {
            "reserved_keyword": [
                f"line 1: the text holds {keyword!r}, which Nova reserves; the job would fail"
            ]
        }


def test_keywords_are_matched_as_written() -> None:
    # "Solve the system: ..." is a math problem, not Nova's "System:" marker.
    assert issues(example(question="Solve the system: x + y = 2, x - y = 0. What is x?")) == {}
    assert (
        ConversationFormat().unfit(
            ChatExample.model_validate(
                {
                    "messages": [
                        {"role": "user", "content": "Bot: hi"},
                        {"role": "assistant", "content": "Answer: hi"},
                    ]
                }
            )
        )
        == "the user's text holds 'Bot:', which Nova reserves"
    )


def test_an_example_over_the_limit_is_refused_with_its_count() -> None:
    long = example(answer="step\n" * 500 + "Answer: 4")
    found = issues(long, limit=100)
    assert list(found) == ["too_many_tokens"]
    assert "over the limit of 100 per example (Bedrock would refuse it)" in found["too_many_tokens"][0]


def test_a_file_name_bedrock_cannot_read_is_refused() -> None:
    validator = ConversationValidator("s3://b/runs/my run/train.jsonl", MODEL, 10_000)
    validator.check_file_name("runs/my run+1/train.jsonl")
    report = validator.report()
    assert report.issue_counts == {"file_name": 1}
    assert "its name has ' ', '+'" in report.issues[0].message
    validator = ConversationValidator("train.jsonl", MODEL, 10_000)
    validator.check_file_name("runs/run-1_a/dataset/bedrock/train.jsonl")
    assert validator.report().valid


def test_a_file_is_read_line_by_line_with_blank_lines_skipped_and_bad_json_named() -> None:
    lines = [json.dumps(example()).encode(), b"", b"{not json", json.dumps(copy.deepcopy(example())).encode()]
    report = validate_conversation_file(lines, "train.jsonl", MODEL, 10_000)
    assert report.examples == 3
    assert report.issue_counts == {"invalid_json": 1}
    assert report.issues[0].message.startswith("line 3: not valid JSON")
    assert report.tokens.count == 2
    assert report.billed_tokens == report.tokens.total


def test_the_formats_bounds_and_validation_follow_the_catalog() -> None:
    formats = ConversationFormat()
    assert formats.example_bounds(MODEL) == (8, 20_000)
    assert formats.example_bounds("bedrock/us.amazon.nova-2-lite-v1:0") == (200, 20_000)
    assert formats.accepts_validation(MODEL)
    assert not formats.accepts_validation("bedrock/us.amazon.nova-2-lite-v1:0")
