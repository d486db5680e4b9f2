import string
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthtune.grading import answers_match, grade_answer, normalise_text, parse_numeric
from synthtune.prompts import Verdict
from synthtune.usage import Usage


@pytest.mark.parametrize(
    ("reference", "candidate"),
    [
        ("1000", "1,000"),
        ("1000", "1000.0"),
        ("0.75", "3/4"),
        ("12", "$12"),
        ("12 km", "12"),
        ("-3", "−3"),
        ("an echo", "Echo."),
        ("a shadow", "**A Shadow**"),
        ("Yes", "yes"),
        ("0.333", "1/3"),
    ],
)
def test_equivalent_answers_match(reference: str, candidate: str) -> None:
    assert answers_match(reference, candidate) != "mismatch"


@pytest.mark.parametrize(
    ("reference", "candidate"),
    [
        ("1000", "100"),
        ("3/4", "0.7"),
        ("0.48", "0.475"),
        ("1/3", "0.3"),
        ("12 km", "12 miles"),
        ("a candle", "a lamp"),
        ("yes", "no"),
        ("5", ""),
    ],
)
def test_different_answers_do_not(reference: str, candidate: str) -> None:
    assert answers_match(reference, candidate) == "mismatch"


def test_parse_numeric() -> None:
    assert parse_numeric("1,234.5") is not None
    assert parse_numeric("75%") == parse_numeric("75 %")
    assert parse_numeric("1/0") is None
    assert parse_numeric("about 5") is None


class RecordingJudge:
    def __init__(self, correct: bool) -> None:
        self.correct = correct
        self.calls: list[tuple[str, str]] = []

    def judge(self, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        self.calls.append((reference, candidate))
        return Verdict(correct=self.correct, explanation="because"), Usage(requests=1, input_tokens=10)


def test_judge_only_asked_when_text_differs() -> None:
    judge = RecordingJudge(correct=True)
    grade, usage = grade_answer("q", "a shadow", "shadow", judge)
    assert (grade.correct, grade.method, usage.requests, judge.calls) == (True, "match", 0, [])
    grade, usage = grade_answer("q", "7", "8", judge)
    assert (grade.correct, judge.calls) == (False, [])  # numbers are not up for interpretation
    grade, usage = grade_answer("q", "your breath", "breath", judge)
    assert (grade.correct, grade.method, usage.requests) == (True, "judge", 1)
    grade, _ = grade_answer("q", "x", None, judge)
    assert (grade.correct, grade.method) == (False, "no_answer")
    grade, _ = grade_answer("q", "your breath", "breath", None)
    assert (grade.correct, grade.method) == (False, "mismatch")


@given(st.integers(min_value=0, max_value=10**9))
def test_thousands_separators_and_decimals_never_change_a_number(value: int) -> None:
    assert answers_match(str(value), f"{value:,}") == "numeric"
    assert answers_match(str(value), f"{value}.0") == "numeric"


@given(st.integers(min_value=1, max_value=1000), st.integers(min_value=1, max_value=1000))
def test_fractions_equal_their_decimal(numerator: int, denominator: int) -> None:
    decimal = f"{numerator / denominator:.6f}"
    parsed = parse_numeric(f"{numerator}/{denominator}")
    assert parsed is not None and parsed.value == Fraction(numerator, denominator)
    assert answers_match(f"{numerator}/{denominator}", decimal) == "numeric"


@given(st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30))
def test_text_normalisation_ignores_case_and_surrounding_punctuation(text: str) -> None:
    assert normalise_text(text.upper() + ".") == normalise_text(f'"{text.lower()}"')
