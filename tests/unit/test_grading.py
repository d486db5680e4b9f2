import string
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthtune.contracts.usage import Usage
from synthtune.prompts import Verdict
from synthtune.quality.grading import (
    answers_match,
    grade_answer,
    normalise_text,
    parse_choices,
    parse_numeric,
)

EQUAL_NUMBERS = [
    # as the issue reported them
    ("1,000", "1000.0"),
    ("1000", "1,000"),
    ("1000", "1000.0"),
    ("1000", "1 000"),
    ("1000", "1\u2009000"),  # thin space
    ("1000", "1\u202f000"),  # narrow no-break space
    ("1000", "1e3"),
    ("1500", "1.5E3"),
    ("3000", "3 \\times 10^{3}"),
    ("3/4", "0.75"),
    ("0.75", "3/4"),
    ("-2", "−2"),
    ("-3", "−3"),
    ("+5", "5"),
    ("3/4", "\\frac{3}{4}"),
    ("3/4", "$\\dfrac{3}{4}$"),
    ("12", "\\boxed{12}"),
    ("12", "$\\boxed{12}$"),
    ("1.5", "1\\frac{1}{2}"),
    ("5", "x = 5"),
    ("5", "n=5"),
    ("0.75", "x = \\frac{3}{4}"),
    ("1.5", "1 1/2"),
    ("-1.5", "-1 1/2"),
    ("0.333", "1/3"),
    ("0.33", "1/3"),
    ("1000", "1\\,000"),
    ("1000", "1{,}000"),
    ("1,200,000", "1.2 million"),
    ("2/3", "two thirds"),
    # units and currency
    ("12", "$12"),
    ("$12", "12 dollars"),
    ("$12", "USD 12"),
    ("$12", "12.00"),
    ("USD 12", "12 US dollars"),
    ("$12", "$12 USD"),
    ("$12", "CAD 12"),
    ("-$5", "$-5"),
    ("€5", "5€"),
    ("€5", "5 euros"),
    ("£12", "12 pounds"),
    ("12 lb", "12 pounds"),
    ("12 km", "12"),
    ("12 km", "12 kilometres"),
    ("12 km", "12 kilometers"),
    ("12 km", "12km"),
    ("12 km", "12\\text{ km}"),
    ("5 km/h", "5 kilometres per hour"),
    ("5 kph", "5 km / h"),
    ("5 m²", "5 square metres"),
    ("5 m^2", "5 sq m"),
    ("30 min", "30 minutes"),
    ("2 h", "2 hours"),
    ("3 kg", "3 kilograms"),
    ("12 °C", "12 degrees Celsius"),
    ("12℃", "12°C"),
    ("12^\\circ C", "12 °C"),
    ("75%", "75 percent"),
    ("75%", "75 per cent"),
    ("75%", "75"),
    ("75\\%", "75%"),
    ("3 apples", "3 apple"),
    ("3 apples", "3"),
    ("4 boxes", "4 box"),
    ("2 horses", "2 horse"),
    # number words and answer prefixes
    ("12", "The final answer is: 12"),
    ("12", "twelve"),
    ("21", "twenty-one"),
    ("21", "Twenty one"),
    ("0", "zero"),
    ("99", "ninety-nine"),
    ("12 apples", "twelve apples"),
]

EQUAL_TEXT = [
    ("an echo", "Echo."),
    ("a shadow", "**A Shadow**"),
    ("Yes", "yes"),
    ("Paris", "Answer: Paris"),
    ("Paris", "The answer is Paris."),
    ("Paris", "Final answer: **Paris**"),
    ("Paris", "\\boxed{\\text{Paris}}"),
    ("café", "Cafe"),
    ("A", "a"),
    ("(b)", "B"),
]

NOT_EQUIVALENT = [
    ("1000", "100"),
    ("12", "120"),
    ("1/2", "2/1"),
    ("3/4", "0.7"),
    ("0.48", "0.475"),
    ("1/3", "0.3"),
    ("1000", "1.000"),  # a decimal point, not a European thousands separator
    ("12", "12 million"),
    ("1 1/2", "11/2"),
    ("-2", "2"),
    ("12 km", "12 miles"),
    ("12 km", "12 m"),  # different units, and no conversion: 1 km is not 1000 m either
    ("1 km", "1000 m"),
    ("12 km", "12 kg"),
    ("12 °C", "12 °F"),
    ("€5", "$5"),
    ("USD 12", "CAD 12"),
    ("£12", "12 lb"),
    ("$12", "12 km"),
    ("3 apples", "3 oranges"),
    ("12", "12 or 13"),
    ("3", "3x"),
    ("3", "3π"),
    ("200", "two hundred fifty"),
    ("a candle", "a lamp"),
    ("yes", "no"),
    ("A", "B"),
    ("A", "the"),
    ("5", ""),
    ("the", ""),
]


@pytest.mark.parametrize(("reference", "candidate"), EQUAL_NUMBERS)
def test_equal_numbers_match_as_numbers(reference: str, candidate: str) -> None:
    assert answers_match(reference, candidate) == "numeric"
    assert answers_match(candidate, reference) == "numeric"


@pytest.mark.parametrize(("reference", "candidate"), EQUAL_TEXT)
def test_equal_text_matches(reference: str, candidate: str) -> None:
    assert answers_match(reference, candidate) == "match"
    assert answers_match(candidate, reference) == "match"


@pytest.mark.parametrize(("reference", "candidate"), NOT_EQUIVALENT)
def test_different_answers_do_not(reference: str, candidate: str) -> None:
    assert answers_match(reference, candidate) == "mismatch"
    assert answers_match(candidate, reference) == "mismatch"


def test_parse_numeric() -> None:
    assert parse_numeric("1,234.5") is not None
    assert parse_numeric("75%") == parse_numeric("75 %")
    assert parse_numeric("1/0") is None
    assert parse_numeric("about 5") is None
    assert parse_numeric("3 5/4") is None  # not a mixed number
    assert parse_numeric("12 or 13") is None
    assert parse_numeric("1e999999999") is None  # not computed: that would take minutes


@pytest.mark.parametrize(
    ("answer", "value", "unit", "decimals"),
    [
        ("1 000.50", Fraction(2001, 2), None, 2),
        ("1.5e-3", Fraction(3, 2000), None, 4),
        ("-1 1/2", Fraction(-3, 2), None, None),
        ("USD 12", 12, "usd", None),
        ("$12", 12, "$", None),
        ("C$5", 5, "cad", None),
        ("Rs. 500", 500, "inr", None),
        ("(-5)", -5, None, None),
        ("12 kilometres", 12, "km", None),
        ("5 km/h", 5, "km per h", None),
        ("5 square metres", 5, "m²", None),
        ("12 degrees Celsius", 12, "°c", None),
        ("12^\\circ C", 12, "°c", None),
        ("90^{\\circ}", 90, "°", None),
        ("75 per cent", 75, "%", None),
        ("$1.2 billion", 1_200_000_000, "$", None),
        ("3 apples", 3, "appl", None),  # a key both apple and apples reduce to
    ],
)
def test_parse_numeric_values_and_units(
    answer: str, value: Fraction, unit: str | None, decimals: int | None
) -> None:
    parsed = parse_numeric(answer)
    assert parsed is not None
    assert (parsed.value, parsed.unit, parsed.decimals) == (value, unit, decimals)


@pytest.mark.parametrize(
    ("question", "choices"),
    [
        ("Which? A) 12 B) 15 C) 20 D) 25", {"A": "12", "B": "15", "C": "20", "D": "25"}),
        ("Which?\n(A) 12\n(B) 15\n(C) 20\nAnswer with a letter.", {"A": "12", "B": "15", "C": "20"}),
        ("Pick one:\nA. twelve\nB. fifteen", {"A": "twelve", "B": "fifteen"}),
        ("Pick one:\nA: a cat\nB: a dog", {"A": "a cat", "B": "a dog"}),
        ("Is it a) 12, b) 15, or c) 20?", {"A": "12", "B": "15", "C": "20"}),
        ("Which vitamin? Vitamin C. It is in oranges. A) C B) D", {"A": "C", "B": "D"}),
        ("Which vitamin is in oranges? Vitamin C. It is also in lemons.", {}),
        ("Grade A. Then B) the rest.", {}),  # two letters, two styles: not a list
        ("Only A) one option", {}),
    ],
)
def test_parse_choices(question: str, choices: dict[str, str]) -> None:
    assert parse_choices(question) == choices


CHOICES = {"A": "12", "B": "15", "C": "20", "D": "25"}


@pytest.mark.parametrize(
    "candidate",
    [
        "B",
        "(B)",
        "b)",
        "b",
        "B.",
        "Option B",
        "option (b)",
        "B) 15",
        "(B) 15",
        "15",
        "15.0",
        "fifteen",
        "**B**",
        "The answer is (B).",
        "\\boxed{B}",
    ],
)
def test_an_option_matches_by_letter_or_text(candidate: str) -> None:
    assert answers_match("B", candidate, choices=CHOICES) == "choice"
    assert answers_match("15", candidate, choices=CHOICES) == "choice"
    assert answers_match("C", candidate, choices=CHOICES) == "mismatch"
    assert answers_match("20", candidate, choices=CHOICES) == "mismatch"


@pytest.mark.parametrize("candidate", ["C", "(c)", "B) 20", "E", "16", "B or C"])
def test_another_option_or_none_does_not_match(candidate: str) -> None:
    assert answers_match("B", candidate, choices=CHOICES) == "mismatch"


def test_without_choices_letters_compare_as_letters() -> None:
    assert answers_match("B", "(b)") == "match"
    assert answers_match("B", "C") == "mismatch"
    assert answers_match("B", "15") == "mismatch"  # nothing says B is 15


def test_grading_reads_the_options_from_the_question() -> None:
    judge = RecordingJudge(correct=True)
    question = "How many? (A) 12 (B) 15 (C) 20"
    grade, usage = grade_answer(question, "B", "15", judge)
    assert (grade.correct, grade.method, usage.requests) == (True, "choice", 0)
    grade, usage = grade_answer(question, "15", "Option B", judge)
    assert (grade.correct, grade.method) == (True, "choice")
    grade, usage = grade_answer(question, "B", "(C)", judge)
    assert (grade.correct, grade.method, judge.calls) == (False, "mismatch", [])  # not up for interpretation


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


def test_a_judge_may_accept_a_number_in_another_unit_never_another_number() -> None:
    judge = RecordingJudge(correct=True)
    grade, usage = grade_answer("What is the hourly rate?", "$5", "$5 per hour", judge)
    assert (grade.correct, grade.method, usage.requests) == (True, "judge", 1)
    grade, usage = grade_answer("How far?", "12 km", "13 kilometres", judge)
    assert (grade.correct, grade.method, usage.requests) == (False, "mismatch", 0)
    assert answers_match("$5", "$5 per hour") == "mismatch"  # without a judge, still not the same


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
