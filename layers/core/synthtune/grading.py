"""Is this answer right? Normalised comparison first, a judge model only where that cannot tell.

Used twice: to verify the teacher's answers before they become training data, and to grade every
contestant in the benchmark — the same rules for both, so a verified training example and a correct
benchmark answer mean the same thing.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from synthtune.prompts import Verdict
from synthtune.usage import Usage

GradeMethod = Literal["match", "numeric", "judge", "mismatch", "no_answer"]

_ARTICLES = {"a", "an", "the"}
_NUMBER = re.compile(
    r"""^(?P<sign>[-+−]?)\s*(?P<currency>[$€£¥])?\s*
        (?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?:\s*/\s*(?P<denominator>\d+(?:\.\d+)?))?
        \s*(?P<unit>%|[a-zA-Z°][a-zA-Z°/²³ ]*)?\.?$""",
    re.VERBOSE,
)
_PUNCTUATION = re.compile(r"[^\w\s/.%-]+|(?<!\d)[./-]|[./-](?!\d)")


def normalise_text(answer: str) -> str:
    """Case, accents, punctuation, surrounding markup and leading articles removed."""
    text = unicodedata.normalize("NFKC", answer).casefold().strip()
    text = text.strip("*_`\"'“”‘’ ")
    text = _PUNCTUATION.sub(" ", text)
    words = text.split()
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


class NumericAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: Fraction
    unit: str | None
    decimals: int | None = None
    """Decimal places as written (`0.333` has 3); None for integers and fractions."""


def parse_numeric(answer: str) -> NumericAnswer | None:
    """`1,000`, `1000.0`, `3/4`, `-2`, `$12`, `75%`, `12 km` as an exact number and an optional unit."""
    text = unicodedata.normalize("NFKC", answer).strip().strip("*_`\"' ")
    match = _NUMBER.match(text)
    if match is None:
        return None
    number = match["number"].replace(",", "")
    value = Fraction(number)
    decimals = len(number.split(".")[1]) if "." in number and match["denominator"] is None else None
    if match["denominator"] is not None:
        denominator = Fraction(match["denominator"])
        if denominator == 0:
            return None
        value /= denominator
    if match["sign"] in {"-", "−"}:
        value = -value
    unit = (match["unit"] or "").strip().casefold() or None
    return NumericAnswer(value=value, unit=unit, decimals=decimals)


def _numbers_equal(left: NumericAnswer, right: NumericAnswer) -> bool:
    """Exactly equal, or a decimal that is the other side rounded (0.333 or 0.33 for 1/3).

    Rounding is allowed only against a number written without decimals (a fraction or an integer):
    0.48 does not equal 0.475 just because one rounds to the other, but 0.33 does stand for 1/3.
    """
    if left.value == right.value:
        return True
    for rounded, exact in ((left, right), (right, left)):
        if rounded.decimals is None or rounded.decimals < 2:
            continue
        if exact.decimals is not None:
            continue
        step = Fraction(1, 10**rounded.decimals)
        if abs(exact.value - rounded.value) <= step / 2:
            return True
    return False


def answers_match(reference: str, candidate: str) -> GradeMethod:
    """ "match" or "numeric" when they agree, "mismatch" otherwise (a judge may still accept it)."""
    ref_number, cand_number = parse_numeric(reference), parse_numeric(candidate)
    if ref_number is not None and cand_number is not None:
        units_agree = (
            ref_number.unit is None or cand_number.unit is None or ref_number.unit == cand_number.unit
        )
        if units_agree and _numbers_equal(ref_number, cand_number):
            return "numeric"
        return "mismatch"
    return "match" if normalise_text(reference) == normalise_text(candidate) else "mismatch"


class Judge(Protocol):
    def judge(self, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]: ...


class Grade(BaseModel):
    model_config = ConfigDict(frozen=True)

    correct: bool
    method: GradeMethod
    explanation: str | None = None


def grade_answer(
    question: str, reference: str, candidate: str | None, judge: Judge | None
) -> tuple[Grade, Usage]:
    """Grade one answer; the usage is the judge's, zero when no judge was asked."""
    if candidate is None or not candidate.strip():
        return Grade(correct=False, method="no_answer"), Usage()
    method = answers_match(reference, candidate)
    if method != "mismatch" or judge is None:
        return Grade(correct=method != "mismatch", method=method), Usage()
    # Two different numbers are not made equal by a judge; text answers may be phrased differently.
    if parse_numeric(reference) is not None and parse_numeric(candidate) is not None:
        return Grade(correct=False, method="mismatch"), Usage()
    verdict, usage = judge.judge(question, reference, candidate)
    method = "judge" if verdict.correct else "mismatch"
    return Grade(correct=verdict.correct, method=method, explanation=verdict.explanation), usage
