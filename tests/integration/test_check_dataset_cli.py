"""`synthtune check-dataset` as a user runs it: the report it prints and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.examples import ChatExample
from synthtune.providers.bedrock.format import conversation_record
from synthtune.quality.format_report import MAX_REPORTED_ISSUES
from synthtune.tokens import count_chat_tokens
from synthtune_cli.main import OPENAI_REFERENCE_STUDENT, main


def example(n: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Solve the problem step by step."},
            {"role": "user", "content": f"What is {n} plus {n}?"},
            {"role": "assistant", "content": f"{n} + {n} = {2 * n}. The answer is {2 * n}."},
        ]
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_valid_file_exits_zero_with_its_token_distribution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [example(n) for n in range(12)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    # An OpenAI chat file is checked against an OpenAI student (the default student is Bedrock's).
    model = OPENAI_REFERENCE_STUDENT
    [tokens] = {count_chat_tokens(row["messages"], model) for row in rows}

    code = main(["check-dataset", str(path)])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"{path}: 12 examples for {model}, at most 65,536 tokens each" in out
    assert "  format: openai-chat\n" in out
    # The percentiles are bin upper bounds (64 here), capped at the maximum.
    assert (
        f"  tokens per example: min {tokens}, mean {tokens}.0, p50 ≤{tokens}, p90 ≤{tokens}, max {tokens}\n"
        in out
    )
    assert "  assistant tokens per example: min " in out
    assert f"  billed tokens per epoch: {12 * tokens:,}\n" in out
    assert "examples without a system message: 0, without a user message: 0" in out
    assert out.endswith(f"{path}: no problems in 12 examples\n")


def test_an_invalid_file_exits_one_and_lists_every_problem_up_to_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_role = {"messages": [{"role": "bot", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    rows = [example(1), bad_role, *[[1, 2]] * 25, example(2)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)

    code = main(["check-dataset", str(path), "--model", "gpt-4o-mini-2024-07-18"])

    out, _ = capsys.readouterr()
    assert code == 2
    assert f"{path}: 28 examples for gpt-4o-mini-2024-07-18" in out
    assert f"{path}: 26 problems\n" in out
    assert (
        "  line 2: message 1 has role 'bot'; expected one of assistant, function, system, tool, user\n" in out
    )
    assert "  line 3: expected a JSON object with a 'messages' list, got an array\n" in out
    assert out.count("\n  line ") == MAX_REPORTED_ISSUES
    assert "  ... and 6 more (all problems by check: 25 data_type, 1 unrecognized_role)" in out


def test_max_example_tokens_refuses_longer_examples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [example(1)])
    tokens = count_chat_tokens(example(1)["messages"], OPENAI_REFERENCE_STUDENT)

    code = main(["check-dataset", str(path), "--max-example-tokens", str(tokens - 1)])

    out, _ = capsys.readouterr()
    assert code == 2
    assert f"line 1: {tokens} tokens, over the limit of {tokens - 1} per example" in out
    assert "billed tokens per epoch: 0\n" in out


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check-dataset", str(tmp_path / "nowhere.jsonl")])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert f"synthtune: {tmp_path / 'nowhere.jsonl'}: no such file" in err


def test_a_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-dataset", str(tmp_path)]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_a_bad_token_limit_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [example(1)])

    with pytest.raises(SystemExit) as exit_info:
        main(["check-dataset", str(path), "--max-example-tokens", "0"])

    assert exit_info.value.code == 2
    assert "must be at least 1, not 0" in capsys.readouterr().err


def bedrock_example(n: int) -> dict[str, Any]:
    return conversation_record(ChatExample.model_validate(example(n)))


def test_a_bedrock_file_is_checked_as_bedrock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [bedrock_example(n) for n in range(12)])

    code = main(["check-dataset", str(path)])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"{path}: 12 examples for {RunConfig().student_model}, at most 128,000 tokens each" in out
    assert "  format: bedrock-conversation-2024\n" in out
    assert out.endswith(f"{path}: no problems in 12 examples\n")


def test_a_bedrock_file_that_breaks_nova_rules_exits_one_naming_line_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reserved = bedrock_example(3)
    reserved["messages"][0]["content"][0]["text"] = "User: what is 3 plus 3?"
    assistant_first = bedrock_example(4)
    assistant_first["messages"].reverse()
    rows = [*[bedrock_example(n) for n in range(10)], reserved, assistant_first]
    path = write_jsonl(tmp_path / "train.jsonl", rows)

    code = main(["check-dataset", str(path)])

    out, _ = capsys.readouterr()
    assert code == 2
    assert "  line 11: the text holds 'User:', which Nova reserves; the job would fail\n" in out
    assert "  line 12: the first message is the assistant's; it must be the user's\n" in out


def test_too_few_examples_for_the_student_exit_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [bedrock_example(n) for n in range(5)])

    assert main(["check-dataset", str(path)]) == 2
    assert (
        "5 examples; fine-tuning bedrock/amazon.nova-micro-v1:0 takes 8 to 20,000" in capsys.readouterr().out
    )
