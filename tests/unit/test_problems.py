import json

import pytest

from synthtune.contracts.errors import InvalidProblemSet
from synthtune.contracts.problems import detect_format, parse_problem_set, question_id


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
    assert "line 7: expected a JSON object, got list" in message
    assert "line 8: field 'question' must be a string, got dict" in message


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
    with pytest.raises(InvalidProblemSet, match="must be an array"):
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
    assert detect_format("x.json", b"  [") == "json"
    assert detect_format("x.json", b'{"question"') == "jsonl"
    with pytest.raises(InvalidProblemSet, match="cannot tell the format"):
        detect_format("x.txt")
