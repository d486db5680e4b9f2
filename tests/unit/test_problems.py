import json
from pathlib import Path

import pytest

from synthtune.contracts.errors import InvalidProblemSet
from synthtune.contracts.problems import (
    MAX_LINE_BYTES,
    MAX_METADATA_CHARS,
    MAX_METADATA_DEPTH,
    ProblemSetFile,
    ProblemSetFormat,
    detect_format,
    parse_problem_set,
    question_id,
    read_problem_set,
)


def jsonl(*rows: object) -> list[bytes]:
    return [json.dumps(row).encode() for row in rows]


def test_jsonl_rows_become_problems_with_defaults() -> None:
    problems = parse_problem_set(
        jsonl(
            {"question": "What is 2+2?", "answer": 4, "category": "math", "id": "m1"},
            {"question": "  Name a colour.  "},
        ),
        "set.jsonl",
        "jsonl",
    )
    assert [(p.id, p.question, p.answer, p.category, p.split) for p in problems] == [
        ("m1", "What is 2+2?", "4", "math", None),
        (question_id("Name a colour."), "Name a colour.", None, "general", None),
    ]


def test_errors_name_every_bad_line_and_field() -> None:
    lines = [
        *jsonl({"question": "ok", "anwser": "typo"}),
        b"",
        *jsonl({"answer": "no question"}),
        b"{not json",
        *jsonl({"question": "q", "split": "training-ish"}),
        *jsonl({"question": "q2", "split": "holdout"}),
        *jsonl(["a", "list"]),
        *jsonl({"question": {"nested": True}}),
    ]
    with pytest.raises(InvalidProblemSet) as raised:
        parse_problem_set(lines, "s3://b/set.jsonl", "jsonl")
    message = str(raised.value)
    assert message.startswith("s3://b/set.jsonl: 7 errors")
    assert "line 1: unknown field 'anwser'" in message
    assert "line 3: field 'question' is required" in message
    assert "line 4: not valid JSON" in message
    assert "line 5: field 'split' is 'training-ish'" in message
    assert "line 6: a problem in the holdout split needs a reference 'answer'" in message
    assert "line 7: expected a JSON object (one problem), got an array" in message
    assert "line 8: field 'question' must be text, got an object" in message


def test_split_aliases_and_metadata() -> None:
    problems = parse_problem_set(
        jsonl(
            {"question": "a", "answer": "1", "split": "test"},
            {"question": "b", "split": "dev", "metadata": {"source": "x"}},
            {"question": "c", "split": "TRAIN"},
        ),
        "s",
        "jsonl",
    )
    assert [p.split for p in problems] == ["holdout", "validation", "train"]
    assert problems[1].metadata == {"source": "x"}


def test_duplicate_explicit_ids_are_an_error_but_repeated_questions_are_kept() -> None:
    with pytest.raises(InvalidProblemSet, match="line 2: id 'x' is already used at line 1"):
        parse_problem_set(jsonl({"id": "x", "question": "a"}, {"id": "x", "question": "b"}), "s", "jsonl")
    problems = parse_problem_set(jsonl({"question": "same"}, {"question": "same"}), "s", "jsonl")
    assert len({p.id for p in problems}) == 2


def test_json_array_reports_items() -> None:
    data = json.dumps([{"question": "a"}, {"question": ""}]).encode().splitlines()
    with pytest.raises(InvalidProblemSet, match="item 2: field 'question' is required"):
        parse_problem_set(data, "s.json", "json")
    with pytest.raises(InvalidProblemSet, match="must hold an array of problems"):
        parse_problem_set([b'{"question": "a"}'], "s.json", "json")


def test_csv_with_header() -> None:
    data = b'\xef\xbb\xbfid,question,answer,category\n1,What is 3*3?,9,math\n2,"Comma, inside",yes,logic\n\n'
    problems = parse_problem_set(data.splitlines(), "s.csv", "csv")
    assert [(p.id, p.question, p.answer) for p in problems] == [
        ("1", "What is 3*3?", "9"),
        ("2", "Comma, inside", "yes"),
    ]
    with pytest.raises(InvalidProblemSet, match="line 1: unknown column"):
        parse_problem_set(b"question,anwser\nq,a".splitlines(), "s.csv", "csv")
    with pytest.raises(InvalidProblemSet, match="line 2: more values than header columns"):
        parse_problem_set(b"question,answer\nq,a,extra".splitlines(), "s.csv", "csv")


def test_bad_encoding_and_empty_sets() -> None:
    with pytest.raises(InvalidProblemSet, match="line 2: not UTF-8"):
        parse_problem_set([b'{"question": "a"}', b'{"question": "\xff"}'], "s", "jsonl")
    with pytest.raises(InvalidProblemSet, match="has no problems"):
        parse_problem_set([b"", b"  "], "s", "jsonl")


def test_format_detection() -> None:
    assert detect_format("x.JSONL") == "jsonl"
    assert detect_format("x.csv") == "csv"
    assert detect_format("x.json") == "json"  # always one array: a .jsonl file is one problem a line
    with pytest.raises(InvalidProblemSet, match="cannot tell the format"):
        detect_format("x.txt")


def refused(lines: list[bytes], file_format: ProblemSetFormat = "jsonl", source: str = "s") -> str:
    with pytest.raises(InvalidProblemSet) as raised:
        parse_problem_set(lines, source, file_format)
    return str(raised.value)


def test_a_field_of_the_wrong_type_names_the_line_the_field_and_the_type() -> None:
    message = refused(jsonl({"question": 42, "answer": "x"}, {"question": "q", "answer": True}))
    assert "line 1: field 'question' must be text, got a number (42)" in message
    assert "line 2: field 'answer' must be text or a number, got true/false (true)" in message
    assert "item 1: field 'category' must be text, got an array" in refused(
        [json.dumps([{"question": "q", "category": ["a"]}]).encode()], "json"
    )
    # A reference answer or an id may be a number: it is written as its text.
    (problem,) = parse_problem_set(jsonl({"question": "q", "answer": 0.5, "id": 7}), "s", "jsonl")
    assert (problem.answer, problem.id) == ("0.5", "7")
    assert "field 'id' must be text or a whole number, got a number (7.5)" in refused(
        jsonl({"question": "q", "id": 7.5})
    )


def test_a_json_file_must_hold_an_array() -> None:
    single = json.dumps({"question": "What is 2+2?", "answer": "4"}, indent=2).encode().splitlines()
    message = refused(single, "json")
    assert "file: a .json problem set must hold an array of problems" in message
    assert "got an object (a single problem? put it in [ ])" in message
    lines = jsonl({"question": "a"}, {"question": "b"})
    assert "line 2: a second JSON value" in refused(lines, "json")
    assert "name the file .jsonl" in refused(lines, "json")
    assert "got a number" in refused([b"42"], "json")


def test_text_that_shows_nothing_is_blank() -> None:
    invisible = "\u200b \u200d\ufeff\u2060\u3164"
    message = refused(jsonl({"question": invisible}, {"question": "\t "}))
    assert (
        "line 1: field 'question' is blank: it holds only invisible characters (U+200B ZERO WIDTH" in message
    )
    assert "line 2: field 'question' is required and must not be empty" in message
    (problem,) = parse_problem_set(
        jsonl({"question": "\u200bWhat is 2+2?\u200b", "answer": "\u200b"}), "s", "jsonl"
    )
    assert (problem.question, problem.answer) == ("What is 2+2?", None)


def test_csv_headers_are_matched_ignoring_case_and_spaces() -> None:
    data = b" Question , ANSWER,Category\nWhat is 3*3?,9,math\n"
    (problem,) = parse_problem_set(data.splitlines(), "s.csv", "csv")
    assert (problem.question, problem.answer, problem.category) == ("What is 3*3?", "9", "math")
    message = refused(b"What is 2+2?,4\nWhat is 3+3?,6".splitlines(), "csv")
    assert "line 1: the first row must name the columns: question, and any of id, answer" in message
    assert "it reads 'What is 2+2?', '4'" in message
    assert "named twice" in refused(b"question,Question\na,b".splitlines(), "csv")


def test_nesting_and_size_have_limits_with_plain_messages() -> None:
    deep: dict[str, object] = {}
    for _ in range(MAX_METADATA_DEPTH - 1):
        deep = {"a": deep}
    assert "metadata' nests 17 levels deep; the limit is 16" in refused(
        jsonl({"question": "q", "metadata": {"x": deep}})
    )
    parse_problem_set(jsonl({"question": "q", "metadata": deep}), "s", "jsonl")  # 16 levels: fine
    # Deeper than the JSON parser can go: a message, not a RecursionError.
    too_deep = b'{"question": "q", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert "line 1: nested too deeply to read" in refused([too_deep])
    assert "nested too deeply to read" in refused([b"[" * 100_000 + b"]" * 100_000], "json")
    big = {"question": "q", "metadata": {"notes": "x" * MAX_METADATA_CHARS}}
    assert f"is 10,012 characters as JSON; the limit is {MAX_METADATA_CHARS:,}" in refused(jsonl(big))
    assert "field 'answer' is 20,001 characters; the limit is 20,000" in refused(
        jsonl({"question": "q", "answer": "x" * 20_001})
    )
    assert "line 1: 1,000,001 bytes long; a line may hold at most 1,000,000" in refused(
        [b"x" * (MAX_LINE_BYTES + 1)], "csv"
    )


def test_a_file_is_read_by_the_name_it_has(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(InvalidProblemSet, match=r"empty.jsonl is empty \(0 bytes\)"):
        read_problem_set(ProblemSetFile.local(empty))
    with pytest.raises(InvalidProblemSet, match=r"missing.jsonl: no such file"):
        ProblemSetFile.local(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidProblemSet, match="is a folder"):
        ProblemSetFile.local(tmp_path)
    only_header = tmp_path / "header.csv"
    only_header.write_bytes(b"question,answer\n")
    with pytest.raises(InvalidProblemSet, match=r"header.csv: the problem set has no problems"):
        read_problem_set(ProblemSetFile.local(only_header))
