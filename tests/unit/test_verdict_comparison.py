"""Two contestants compared problem by problem: the numbers, and words that say what the numbers say."""

from __future__ import annotations

import pytest

from synthtune.verdict.comparison import compare, p_text, points
from synthtune.verdict.statistics import mcnemar_p_value, min_detectable_difference


def results(right: int, wrong: int, *, start: int = 0) -> dict[str, bool]:
    return {f"p{start + i:04d}": i < right for i in range(right + wrong)}


def table(both: int, a_only: int, b_only: int, neither: int) -> tuple[dict[str, bool], dict[str, bool]]:
    a: dict[str, bool] = {}
    b: dict[str, bool] = {}
    for index, (a_right, b_right) in enumerate(
        [(True, True)] * both
        + [(True, False)] * a_only
        + [(False, True)] * b_only
        + [(False, False)] * neither
    ):
        a[f"p{index:04d}"], b[f"p{index:04d}"] = a_right, b_right
    return a, b


def test_counts_are_paired_by_problem_id() -> None:
    a, b = table(3, 4, 1, 2)
    a["only-a-answered"] = True
    b["only-b-answered"] = False
    comparison = compare("fine_tuned", "base", a, b)
    assert (comparison.n, comparison.both, comparison.a_only, comparison.b_only, comparison.neither) == (
        10,
        3,
        4,
        1,
        2,
    )
    assert comparison.a_accuracy == 0.7
    assert comparison.b_accuracy == 0.4
    assert comparison.difference == pytest.approx(0.3)
    assert comparison.p_value == mcnemar_p_value(4, 1)
    assert comparison.ci95[0] < comparison.difference < comparison.ci95[1]


def test_a_clear_improvement_is_called_better_with_its_p_value() -> None:
    comparison = compare("fine_tuned", "base", *table(40, 30, 5, 25))
    assert comparison.p_value < 0.05
    assert comparison.verdict.startswith("The fine-tuned student is better than the base model (+25.0 points")
    assert p_text(comparison.p_value) in comparison.verdict
    assert comparison.min_detectable_difference is not None
    assert comparison.min_detectable_difference < comparison.difference
    assert comparison.warning is None


def test_a_clear_loss_is_called_worse() -> None:
    comparison = compare("fine_tuned", "teacher", *table(40, 5, 30, 25))
    assert comparison.verdict.startswith("The fine-tuned student is worse than the teacher (−25.0 points")


def test_a_small_holdout_is_not_distinguishable_and_warns() -> None:
    # The demo's shape: 12 problems, +25 points.
    comparison = compare("fine_tuned", "base", *table(4, 4, 1, 3))
    assert comparison.p_value == pytest.approx(0.375)
    assert "is not distinguishable from the base model at this holdout size" in comparison.verdict
    assert "+25.0 points" in comparison.verdict
    assert "p = 0.375" in comparison.verdict
    assert comparison.min_detectable_difference is None
    assert comparison.warning is not None
    assert "too small to detect any difference" in comparison.warning


def test_a_difference_below_what_the_holdout_detects_is_warned_about() -> None:
    comparison = compare("fine_tuned", "base", *table(300, 40, 30, 130))
    detectable = min_detectable_difference(500, 70)
    assert detectable is not None
    assert comparison.min_detectable_difference == detectable
    assert abs(comparison.difference) < detectable
    assert comparison.p_value >= 0.05
    assert comparison.warning is not None
    assert f"{detectable * 100:.1f} points" in comparison.warning
    assert "not finding one says little" in comparison.warning


def test_a_significant_difference_below_the_detectable_one_is_still_warned_about() -> None:
    # Significant, but with less than 80 % power for a difference this size.
    comparison = compare("fine_tuned", "base", *table(300, 60, 38, 102))
    assert comparison.significant
    assert comparison.min_detectable_difference is not None
    assert abs(comparison.difference) < comparison.min_detectable_difference
    assert comparison.warning is not None
    assert "likely to overstate it" in comparison.warning


def test_identical_answers_are_not_distinguishable() -> None:
    comparison = compare("fine_tuned", "base", *table(6, 0, 0, 6))
    assert comparison.p_value == 1.0
    assert comparison.difference == 0.0
    assert "not distinguishable" in comparison.verdict
    assert comparison.warning is not None
    assert "cannot tell them apart" in comparison.warning


def test_nothing_in_common_is_nothing_to_compare() -> None:
    comparison = compare("fine_tuned", "base", results(3, 2), results(2, 3, start=100))
    assert comparison.n == 0
    assert comparison.p_value == 1.0
    assert comparison.verdict.endswith("nothing to compare.")
    assert comparison.warning is None


def test_numbers_in_words() -> None:
    assert points(0.25) == "+25.0"
    assert points(-0.031) == "−3.1"
    assert points(0.125, signed=False) == "12.5"
    assert p_text(0.0496) == "p = 0.0496"
    assert p_text(0.42) == "p = 0.42"
    assert p_text(0.0004) == "p < 0.001"
