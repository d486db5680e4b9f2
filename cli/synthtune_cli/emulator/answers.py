"""When two answers mean the same, and how to be plausibly wrong.

This is the emulator's own notion of equality, deliberately independent of synthtune's grading: the
emulator plays the outside world, so a bug in the pipeline's grader must not be mirrored here.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from synthtune_cli.emulator.draws import pick

_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_NUMBER = re.compile(
    r"^(?P<currency>[$€£¥]?)\s*"
    r"(?P<number>[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+−]?\.\d+)"
    r"(?:\s*/\s*(?P<denominator>\d+))?"
    r"\s*(?P<unit>[^\d]{0,24})$"
)


def strip_surrounding(text: str) -> str:
    """`text` without whitespace, punctuation or markdown emphasis at either end."""
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]) and not _starts_number(text, start):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def _starts_number(text: str, index: int) -> bool:
    """A sign or decimal point that belongs to the number after it ("-3", ".5") is not punctuation."""
    return text[index] in "-+." and index + 1 < len(text) and text[index + 1].isdigit()


def _is_edge_noise(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P") or char in "*_`~"


@dataclass(frozen=True)
class NumericAnswer:
    """An answer that is a number, perhaps with a currency sign or a unit."""

    value: float
    currency: str
    unit: str
    decimals: int
    grouped: bool

    def render(self, value: float) -> str:
        if self.decimals:
            number = f"{value:,.{self.decimals}f}" if self.grouped else f"{value:.{self.decimals}f}"
        elif value == int(value):
            number = f"{int(value):,}" if self.grouped else str(int(value))
        else:
            number = f"{value:.6f}".rstrip("0")
        unit = f" {self.unit}" if self.unit and self.unit[0].isalpha() else self.unit
        return f"{self.currency}{number}{unit}"


def parse_numeric(text: str) -> NumericAnswer | None:
    cleaned = strip_surrounding(unicodedata.normalize("NFKC", text)).replace("−", "-")
    match = _NUMBER.match(cleaned)
    if not match:
        return None
    number = match.group("number").replace(",", "")
    value = float(number)
    denominator = match.group("denominator")
    if denominator is not None:
        if int(denominator) == 0:
            return None
        value /= int(denominator)
    decimals = len(number.split(".")[1]) if "." in number and denominator is None else 0
    unit = strip_surrounding(match.group("unit")).strip()
    if match.group("unit").strip().startswith("%"):
        unit = "%"
    return NumericAnswer(value, match.group("currency"), unit, decimals, "," in match.group("number"))


def _text_key(text: str) -> str:
    folded = strip_surrounding(unicodedata.normalize("NFKC", text).casefold())
    folded = _ARTICLE.sub("", folded)
    return "".join(char for char in folded if char.isalnum())


def answers_match(candidate: str, reference: str) -> bool:
    """Lenient equality: numbers compared numerically (1,000 = 1000 = 1000.0), units optional on one
    side; text compared without case, punctuation, spacing or a leading article."""
    left, right = parse_numeric(candidate), parse_numeric(reference)
    if left is not None and right is not None:
        same_unit = not left.unit or not right.unit or _text_key(left.unit) == _text_key(right.unit)
        return same_unit and math.isclose(left.value, right.value, rel_tol=1e-6, abs_tol=1e-9)
    key = _text_key(candidate)
    return bool(key) and key == _text_key(reference)


_PERTURBATIONS = (
    lambda value: value + 1,
    lambda value: value - 1,
    lambda value: value * 2,
    lambda value: value / 2,
    lambda value: value + 10,
    lambda value: value * 10,
)


def wrong_answer(reference: str, alternatives: list[str], *draw_parts: object) -> str:
    """A plausible wrong answer to a question whose right answer is `reference`.

    A number is perturbed (±1, ×2, ÷2, +10, ×10, chosen by the draw); text is swapped for another answer
    of the same category (`alternatives`); with neither, the model hedges.
    """
    numeric = parse_numeric(reference)
    if numeric is not None:
        start = pick(len(_PERTURBATIONS), *draw_parts, "perturbation")
        for offset in range(len(_PERTURBATIONS)):
            candidate = numeric.render(_PERTURBATIONS[(start + offset) % len(_PERTURBATIONS)](numeric.value))
            if not answers_match(candidate, reference):
                return candidate
    others = sorted({answer for answer in alternatives if not answers_match(answer, reference)})
    if others:
        return others[pick(len(others), *draw_parts, "alternative")]
    return "I am not sure"
