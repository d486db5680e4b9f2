"""Two contestants on the same held-out problems: how far apart, how sure, and what that says in words.

Contestants are compared problem by problem (paired by problem id), which is far more sensitive than
comparing two accuracies as if they came from different problems: only the problems one got right and
the other did not carry evidence. The numbers come from `synthtune.verdict.statistics`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.config import Contestant
from synthtune.verdict.statistics import (
    mcnemar_p_value,
    min_detectable_difference,
    paired_difference_interval,
)

SIGNIFICANCE = 0.05
"""The p-value below which the verdict calls one contestant better or worse than the other."""

COMPARED: tuple[tuple[Contestant, Contestant], ...] = (("fine_tuned", "base"), ("fine_tuned", "teacher"))
"""The comparisons that matter: did fine-tuning help, and how close did it come to the teacher."""

NAMES: dict[Contestant, str] = {
    "fine_tuned": "the fine-tuned student",
    "base": "the base model",
    "teacher": "the teacher",
}


class PairedComparison(BaseModel):
    """One entry of benchmark.json's `comparisons`: contestant `a` against contestant `b`."""

    model_config = ConfigDict(frozen=True)

    a: Contestant
    b: Contestant
    n: int = Field(description="Problems both answered (both have an answer to grade), paired by problem id.")
    both: int = Field(description="Problems both got right.")
    a_only: int = Field(description="Problems a got right and b did not.")
    b_only: int = Field(description="Problems b got right and a did not.")
    neither: int = Field(description="Problems neither got right.")
    a_accuracy: float = Field(description="a's accuracy on the n paired problems.")
    b_accuracy: float = Field(description="b's accuracy on the n paired problems.")
    difference: float = Field(description="a_accuracy - b_accuracy, a fraction (0.25: 25 points).")
    ci95: tuple[float, float] = Field(
        description="95 % interval of the difference: Newcombe's hybrid score interval, paired."
    )
    p_value: float = Field(description="Exact two-sided McNemar test on a_only and b_only.")
    min_detectable_difference: float | None = Field(
        description="The smallest difference this many problems detect with 80 % power at alpha 0.05 "
        "(Connor's approximation, at the observed share of problems answered differently); None when "
        "too few are answered differently for any difference to be detected reliably."
    )
    verdict: str = Field(description="What the numbers say, in words.")
    warning: str | None = Field(
        default=None, description="Set when the holdout is too small to detect the difference it shows."
    )

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


def compare(
    a: Contestant, b: Contestant, a_right: Mapping[str, bool], b_right: Mapping[str, bool]
) -> PairedComparison:
    """`a_right`, `b_right`: each contestant's problems by id, True where its answer was right. Problems
    only one of them answered are left out: a paired test needs both answers."""
    paired = sorted(a_right.keys() & b_right.keys())
    both = sum(a_right[problem] and b_right[problem] for problem in paired)
    a_only = sum(a_right[problem] and not b_right[problem] for problem in paired)
    b_only = sum(b_right[problem] and not a_right[problem] for problem in paired)
    n = len(paired)
    neither = n - both - a_only - b_only
    a_accuracy = (both + a_only) / n if n else 0.0
    b_accuracy = (both + b_only) / n if n else 0.0
    low, high = paired_difference_interval(both, a_only, b_only, neither)
    p_value = mcnemar_p_value(a_only, b_only)
    detectable = min_detectable_difference(n, a_only + b_only)
    difference = a_accuracy - b_accuracy
    return PairedComparison(
        a=a,
        b=b,
        n=n,
        both=both,
        a_only=a_only,
        b_only=b_only,
        neither=neither,
        a_accuracy=a_accuracy,
        b_accuracy=b_accuracy,
        difference=difference,
        ci95=(low, high),
        p_value=p_value,
        min_detectable_difference=detectable,
        verdict=_verdict(a, b, n, difference, (low, high), p_value),
        warning=_warning(n, a_only + b_only, difference, detectable, p_value),
    )


def points(fraction: float, *, signed: bool = True) -> str:
    """A difference of accuracies in percentage points: +25.0, −3.1 (a true minus sign)."""
    text = f"{fraction * 100:+.1f}" if signed else f"{fraction * 100:.1f}"
    return text.replace("-", "−")


def p_text(p_value: float) -> str:
    """p = 0.0123, p = 0.42, p < 0.001: three significant digits, so 0.0496 never reads as 0.05."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3g}"


def _verdict(
    a: Contestant, b: Contestant, n: int, difference: float, ci95: tuple[float, float], p_value: float
) -> str:
    subject, other = NAMES[a], NAMES[b]
    if n == 0:
        return f"No held-out problem was answered by both {subject} and {other}: nothing to compare."
    numbers = (
        f"{points(difference)} points, 95 % CI {points(ci95[0])} to {points(ci95[1])}, {p_text(p_value)}"
    )
    if p_value >= SIGNIFICANCE:
        claim = f"is not distinguishable from {other} at this holdout size"
    elif difference > 0:
        claim = f"is better than {other}"
    else:
        claim = f"is worse than {other}"
    return f"{subject[0].upper()}{subject[1:]} {claim} ({numbers}; {n} problems)."


def _warning(
    n: int, discordant: int, difference: float, detectable: float | None, p_value: float
) -> str | None:
    if n == 0:
        return None
    if discordant == 0:
        return (
            f"The two got the same {n} problems right and the same wrong: this holdout cannot tell them "
            "apart. A larger holdout might."
        )
    if detectable is None:
        return (
            f"The holdout is too small to detect any difference: only {discordant} of its {n} problems were "
            "answered right by one and not the other, too few for any difference to reach 80 % power."
        )
    if abs(difference) >= detectable:
        return None
    then = (
        "the difference is significant, but an estimate this far below what the holdout can reliably "
        "detect is likely to overstate it"
        if p_value < SIGNIFICANCE
        else "no difference this small would reliably show, so not finding one says little"
    )
    return (
        f"The holdout is too small to detect a difference this size: with {n} problems ({discordant} "
        "answered differently), the smallest difference detectable at 80 % power is "
        f"{points(detectable, signed=False)} points, and the observed difference is {points(difference)}; "
        f"{then}."
    )
