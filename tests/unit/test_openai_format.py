"""The chat fine-tuning file validator: OpenAI's cookbook checks, token counts, histograms and reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthtune.providers.openai.format import CHECKS, ChatFormatValidator, validate_chat_file
from synthtune.quality.format_report import (
    MAX_REPORTED_ISSUES,
    TOKEN_BIN_BOUNDS,
    FormatReport,
    TokenHistogram,
    describe_issues,
    describe_tokens,
)
from synthtune.tokens import count_chat_tokens, encoding_for

MODEL = "gpt-4.1-nano-2025-04-14"
LIMIT = 65_536


def example(
    question: str = "What is 6 times 7?", answer: str = "6 x 7 = 42. The answer is 42."
) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Solve the problem step by step."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def validate(lines: list[bytes], max_example_tokens: int = LIMIT) -> FormatReport:
    return validate_chat_file(lines, "train.jsonl", MODEL, max_example_tokens)


USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Hello"}

BAD_LINES: list[tuple[str, bytes, list[str]]] = [
    ("invalid_json", b'{"messages": [{"role": "user"\n', ["not valid JSON", "column"]),
    ("invalid_json", b"\xff\xfe{}\n", ["not valid JSON"]),
    ("data_type", line([USER, ASSISTANT]), ["expected a JSON object", "got an array"]),
    ("data_type", line({"messages": ["Hi", ASSISTANT]}), ["message 1 is a string", "expected an object"]),
    ("missing_messages_list", line({"prompt": "Hi", "completion": "Hello"}), ["no 'messages' list"]),
    ("missing_messages_list", line({"messages": []}), ["'messages' is an empty list"]),
    ("missing_messages_list", line({"messages": "Hi"}), ["'messages' is a string"]),
    (
        "message_missing_key",
        line({"messages": [{"role": "user"}, ASSISTANT]}),
        ["message 1 (user) has no 'content'"],
    ),
    ("message_missing_key", line({"messages": [{"content": "Hi"}, ASSISTANT]}), ["message 1 has no 'role'"]),
    (
        "message_unrecognized_key",
        line({"messages": [{**USER, "text": "Hi"}, ASSISTANT]}),
        ["message 1 (user) has unrecognized key 'text'", "allowed: content, function_call"],
    ),
    (
        "unrecognized_role",
        line({"messages": [USER, {"role": "bot", "content": "Hello"}, ASSISTANT]}),
        ["message 2 has role 'bot'; expected one of assistant, function, system, tool, user"],
    ),
    (
        "unrecognized_role",
        line({"messages": [{"role": ["user"], "content": "Hi"}, ASSISTANT]}),
        ["role ['user']"],
    ),
    (
        "missing_content",
        line({"messages": [{"role": "user", "content": ""}, ASSISTANT]}),
        ["the content of message 1 (user) is an empty string; expected a non-empty string"],
    ),
    (
        "missing_content",
        line({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, ASSISTANT]}),
        ["the content of message 1 (user) is an array"],
    ),
    (
        "missing_content",
        line({"messages": [USER, {"role": "assistant", "content": None}]}),
        ["the content of message 2 (assistant) is null"],
    ),
    (
        "missing_content",
        line({"messages": [USER, {"role": "assistant", "content": 42, "tool_calls": [{"id": "c"}]}]}),
        ["the content of message 2 (assistant) is a number; expected a string or null"],
    ),
    (
        "invalid_weight",
        line({"messages": [USER, {**ASSISTANT, "weight": 2}]}),
        ["message 2 (assistant) has weight 2"],
    ),
    (
        "invalid_weight",
        line({"messages": [USER, {**ASSISTANT, "weight": True}]}),
        ["has weight True; expected 0 or 1"],
    ),
    ("invalid_weight", line({"messages": [USER, {**ASSISTANT, "weight": 1.0}]}), ["has weight 1.0"]),
    (
        "invalid_weight",
        line({"messages": [{**USER, "weight": 1}, ASSISTANT]}),
        ["message 1 (user) has a weight; only assistant messages may"],
    ),
    (
        "example_missing_assistant_message",
        line({"messages": [{"role": "system", "content": "Be brief."}, USER]}),
        ["no assistant message"],
    ),
]


@pytest.mark.parametrize(("check", "raw", "expected"), BAD_LINES)
def test_each_check_names_the_line_and_what_is_wrong(check: str, raw: bytes, expected: list[str]) -> None:
    report = validate([line(example()), b"\n", raw, line(example())])

    assert not report.valid
    assert report.examples == 3
    assert [(issue.line, issue.check) for issue in report.issues] == [(3, check)]
    assert report.issue_counts == {check: 1}
    assert check in CHECKS
    message = report.issues[0].message
    assert message.startswith("line 3: ")
    for part in expected:
        assert part in message
    # The bad line is neither counted nor billed; its neighbours are.
    good = count_chat_tokens(example()["messages"], MODEL)
    assert report.tokens.count == 2
    assert report.billed_tokens == 2 * good


def test_too_many_tokens_is_refused_not_truncated() -> None:
    long = example(answer="step " * 200)
    tokens = count_chat_tokens(long["messages"], MODEL)
    validator = ChatFormatValidator("train.jsonl", MODEL, max_example_tokens=tokens - 1)

    assert validator.check(1, long) is None
    assert validator.check(2, example()) == count_chat_tokens(example()["messages"], MODEL)

    report = validator.report()
    [issue] = report.issues
    assert issue.check == "too_many_tokens"
    assert issue.message == (
        f"line 1: {tokens:,} tokens, over the limit of {tokens - 1:,} per example (OpenAI would truncate it)"
    )
    assert report.billed_tokens == count_chat_tokens(example()["messages"], MODEL)
    # Well-formed, so it shows in the distribution: that is how a user sees why it failed.
    assert (report.tokens.count, report.tokens.max) == (2, tokens)
    # Exactly at the limit is allowed.
    at_limit = ChatFormatValidator("train.jsonl", MODEL, max_example_tokens=tokens)
    assert at_limit.check(1, long) == tokens
    assert at_limit.report().valid


def test_what_the_api_accepts_beyond_the_cookbook_is_valid() -> None:
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    examples = [
        {"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [tool_call]}]},
        {
            "messages": [
                USER,
                {"role": "assistant", "tool_calls": [tool_call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "3"},
                {**ASSISTANT, "weight": 1},
            ]
        },
        {"messages": [USER, {"role": "assistant", "function_call": {"name": "add", "arguments": "{}"}}]},
        {"messages": [USER, {"role": "function", "name": "add", "content": "3"}, ASSISTANT]},
        {"messages": [USER, {**ASSISTANT, "weight": 0}, {**ASSISTANT, "refusal": None, "name": "bot"}]},
    ]

    report = validate([line(value) for value in examples])

    assert report.valid, describe_issues(report)
    assert report.examples == report.tokens.count == 5
    assert report.billed_tokens == report.tokens.total > 0


def test_a_valid_file_counts_tokens_exactly_as_count_chat_tokens() -> None:
    examples = [example(f"What is {n} plus {n}?", f"{n} + {n} = {2 * n}. " * n) for n in range(1, 8)]
    examples.append({"messages": [USER, ASSISTANT]})  # no system message
    expected = [count_chat_tokens(value["messages"], MODEL) for value in examples]
    encoding = encoding_for(MODEL)
    assistant = [
        sum(len(encoding.encode(m["content"])) for m in value["messages"] if m["role"] == "assistant")
        for value in examples
    ]

    validator = ChatFormatValidator("train.jsonl", MODEL, LIMIT)
    returned = [validator.check(number, value) for number, value in enumerate(examples, 1)]
    report = validator.report()

    assert returned == expected
    assert report.valid
    assert describe_issues(report) == "train.jsonl: no problems in 8 examples"
    assert report.examples == 8
    assert report.billed_tokens == sum(expected)
    assert (report.tokens.count, report.tokens.total) == (8, sum(expected))
    assert (report.tokens.min, report.tokens.max) == (min(expected), max(expected))
    assert report.tokens.mean == sum(expected) / 8
    assert (report.assistant_tokens.total, report.assistant_tokens.max) == (sum(assistant), max(assistant))
    assert (report.examples_without_system, report.examples_without_user) == (1, 0)


def test_lines_are_numbered_as_in_the_file_and_blank_lines_are_not_examples() -> None:
    lines = [line(example()), b"\n", b"   \r\n", b"", line({"messages": []}), line(example())]

    report = validate(lines)

    assert report.examples == 3
    assert [issue.line for issue in report.issues] == [5]


def test_check_line_takes_text_or_bytes() -> None:
    validator = ChatFormatValidator("train.jsonl", MODEL, LIMIT)
    tokens = count_chat_tokens(example()["messages"], MODEL)

    assert validator.check_line(1, json.dumps(example())) == tokens
    assert validator.check_line(2, line(example())) == tokens
    assert validator.check_line(3, "not json") is None
    assert validator.check_line(4, "\n") is None
    assert validator.report().issue_counts == {"invalid_json": 1}


def test_every_problem_of_a_line_is_counted_but_only_the_first_twenty_listed() -> None:
    # Each bad line fails twice: an unknown role and an empty content.
    bad = line({"messages": [{"role": "bot", "content": ""}, ASSISTANT]})
    lines = [line(example()), *[bad] * 30, line({"messages": [USER]})]

    report = validate(lines)

    assert len(report.issues) == MAX_REPORTED_ISSUES
    assert report.issues[0].line == 2
    assert report.issues[-1].line == 11
    assert report.issue_counts == {
        "example_missing_assistant_message": 1,
        "missing_content": 30,
        "unrecognized_role": 30,
    }
    assert report.examples == 32
    assert report.billed_tokens == count_chat_tokens(example()["messages"], MODEL)
    description = describe_issues(report)
    assert description.startswith("train.jsonl: 61 problems\n  line 2: message 1 has role 'bot'")
    assert len(description.splitlines()) == 1 + MAX_REPORTED_ISSUES + 1
    assert description.endswith(
        "  ... and 41 more (all problems by check: 1 example_missing_assistant_message, 30 missing_content, "
        "30 unrecognized_role)"
    )


def test_describe_issues_lists_all_when_few() -> None:
    report = validate([line(example()), line([1])])

    assert describe_issues(report) == (
        "train.jsonl: 1 problem\n  line 2: expected a JSON object with a 'messages' list, got an array"
    )


def test_histogram_bins_are_powers_of_two_with_an_open_end() -> None:
    histogram = TokenHistogram()
    for tokens in (0, 1, 64, 65, 128, 129, 131_072, 131_073, 10**7):
        histogram.add(tokens)

    counts = {histogram_bin.up_to: histogram_bin.examples for histogram_bin in histogram.bins}
    assert [histogram_bin.up_to for histogram_bin in histogram.bins] == [*TOKEN_BIN_BOUNDS, None]
    assert TOKEN_BIN_BOUNDS[0] == 64 and TOKEN_BIN_BOUNDS[-1] == 131_072 and len(TOKEN_BIN_BOUNDS) == 12
    assert counts[64] == 3
    assert counts[128] == 2
    assert counts[256] == 1
    assert counts[131_072] == 1
    assert counts[None] == 2
    assert sum(counts.values()) == histogram.count == 9
    assert (histogram.min, histogram.max, histogram.total) == (
        0,
        10**7,
        sum((0, 1, 64, 65, 128, 129, 131_072, 131_073, 10**7)),
    )
    with pytest.raises(ValueError, match="negative"):
        histogram.add(-1)


def test_histogram_percentiles_are_bin_upper_bounds() -> None:
    histogram = TokenHistogram()
    assert histogram.percentile(50) is None
    assert histogram.mean is None

    for tokens in [50] * 50 + [100] * 40 + [300] * 9 + [200_000]:
        histogram.add(tokens)

    assert histogram.percentile(0) == 64
    assert histogram.percentile(50) == 64
    assert histogram.percentile(51) == 128
    assert histogram.percentile(90) == 128
    assert histogram.percentile(95) == 512
    assert histogram.percentile(99) == 512
    assert histogram.percentile(100) == 200_000  # the open-ended bin: its largest value
    with pytest.raises(ValueError, match="between 0 and 100"):
        histogram.percentile(101)

    small = TokenHistogram()
    small.add(70)
    assert small.percentile(50) == 70  # never above the maximum

    three = TokenHistogram()
    for tokens in (10, 100, 1_000):
        three.add(tokens)
    assert [three.percentile(q) for q in (33, 34, 50, 66, 67)] == [64, 128, 128, 128, 1_000]


def test_histogram_json_is_small_and_stable() -> None:
    empty = TokenHistogram().model_dump(mode="json")
    histogram = TokenHistogram()
    for tokens in range(1_000):
        histogram.add(tokens * 37)
    dumped = histogram.model_dump(mode="json")

    assert set(dumped) == set(empty) == {"bins", "count", "total", "min", "max"}
    assert len(dumped["bins"]) == len(empty["bins"]) == 13
    assert dumped["bins"][0] == {"up_to": 64, "examples": 2}
    assert dumped["bins"][-1] == {"up_to": None, "examples": 0}
    assert TokenHistogram.model_validate(dumped) == histogram
    assert describe_tokens(histogram) == (
        f"min 0, mean {histogram.mean:,.1f}, p50 ≤32,768, p90 ≤36,963, max 36,963"
    )
    assert describe_tokens(TokenHistogram()) == "none"


def test_the_report_does_not_change_when_the_validator_goes_on() -> None:
    validator = ChatFormatValidator("train.jsonl", MODEL, LIMIT)
    validator.check(1, example())
    report = validator.report()

    validator.check(2, example())
    validator.check(3, [])

    assert (report.examples, report.tokens.count, report.valid) == (1, 1, True)


def test_the_validator_streams_a_generator_once() -> None:
    lines = (line(example(f"What is {n} squared?", f"{n * n}")) for n in range(2_000))

    report = validate_chat_file(lines, "big.jsonl", MODEL, LIMIT)

    assert (report.examples, report.tokens.count, report.valid) == (2_000, 2_000, True)
    assert len(report.model_dump_json()) < 2_000
