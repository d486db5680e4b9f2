"""synthtune.verdict.statistics, written by hand for the layer, against scipy and statsmodels (dev only)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from synthtune.verdict.statistics import (
    Z_80,
    Z_95,
    mcnemar_p_value,
    min_detectable_difference,
    paired_difference_interval,
    wilson_interval,
)


@st.composite
def paired_tables(draw: st.DrawFn, most: int = 400) -> tuple[int, int, int, int]:
    """(both, a_only, b_only, neither) for a holdout of 1 to `most` problems."""
    total = draw(st.integers(1, most))
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=3, max_size=3)))
    return cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], total - cuts[2]


def test_the_quantiles_are_the_normal_distributions() -> None:
    assert abs(Z_95 - stats.norm.ppf(0.975)) < 1e-15
    assert abs(Z_80 - stats.norm.ppf(0.80)) < 1e-15


# -- Wilson ----------------------------------------------------------------------------------------------


@given(st.integers(1, 20_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_is_statsmodels(case: tuple[int, int]) -> None:
    successes, trials = case
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize("trials", [1, 2, 12, 100, 5000])
def test_wilson_interval_at_none_and_every_problem_right(trials: int) -> None:
    assert wilson_interval(0, trials)[0] == 0.0
    assert wilson_interval(trials, trials)[1] == 1.0
    assert wilson_interval(0, trials) == pytest.approx(proportion_confint(0, trials, method="wilson"))
    assert wilson_interval(trials, trials) == pytest.approx(
        proportion_confint(trials, trials, method="wilson")
    )
    # Symmetric: n right out of n mirrors none right.
    low, high = wilson_interval(0, trials)
    assert wilson_interval(trials, trials) == pytest.approx((1 - high, 1 - low), abs=1e-15)


def test_wilson_interval_of_no_problems_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="negative"):
        mcnemar_p_value(-1, 2)


# -- McNemar ---------------------------------------------------------------------------------------------


@given(st.integers(0, 3000), st.integers(0, 3000))
def test_mcnemar_is_statsmodels_exact_test(a_only: int, b_only: int) -> None:
    # Far in the tail statsmodels' floating-point binomial underflows to 0 where the exact sum does not.
    expected = mcnemar([[7, a_only], [b_only, 3]], exact=True).pvalue
    assert mcnemar_p_value(a_only, b_only) == pytest.approx(expected, rel=1e-9, abs=1e-280)


@given(st.integers(0, 500), st.integers(0, 500))
def test_mcnemar_is_scipy_binomial_test(a_only: int, b_only: int) -> None:
    if a_only + b_only == 0:
        assert mcnemar_p_value(0, 0) == 1.0
        return
    expected = stats.binomtest(a_only, a_only + b_only, 0.5, alternative="two-sided").pvalue
    assert mcnemar_p_value(a_only, b_only) == pytest.approx(expected, rel=1e-9, abs=1e-280)


def test_mcnemar_edge_cases() -> None:
    assert mcnemar_p_value(0, 0) == 1.0  # no discordant pairs: no evidence either way
    assert mcnemar_p_value(9, 9) == 1.0
    assert mcnemar_p_value(5, 0) == 2 / 2**5  # all discordant one way
    assert mcnemar_p_value(0, 6) == 2 / 2**6
    assert mcnemar_p_value(1, 0) == 1.0
    # A holdout far past what 2**n in floating point could hold keeps its tail.
    assert mcnemar_p_value(1200, 800) == pytest.approx(
        mcnemar([[0, 1200], [800, 0]], exact=True).pvalue, rel=1e-9
    )
    assert 0 < mcnemar_p_value(1200, 800) < 1e-15


# -- the paired difference -------------------------------------------------------------------------------


def _newcombe_from_libraries(both: int, a_only: int, b_only: int, neither: int) -> tuple[float, float]:
    """Method 10 put together from statsmodels' Wilson intervals and numpy's correlation of the two
    contestants' per-problem results (the phi coefficient), with Newcombe's continuity correction."""
    total = both + a_only + b_only + neither
    a = np.array([1] * both + [1] * a_only + [0] * b_only + [0] * neither)
    b = np.array([1] * both + [0] * a_only + [1] * b_only + [0] * neither)
    p1, p2 = a.mean(), b.mean()
    l1, u1 = proportion_confint(int(a.sum()), total, method="wilson")
    l2, u2 = proportion_confint(int(b.sum()), total, method="wilson")
    if a.std() == 0 or b.std() == 0:
        phi = 0.0
    else:
        phi = float(np.corrcoef(a, b)[0, 1])
        if phi > 0:
            margins = math.sqrt(a.sum() * (total - a.sum()) * b.sum() * (total - b.sum()))
            phi = max(phi - (total / 2) / margins, 0.0)
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return low, high


@settings(max_examples=300)
@given(paired_tables())
def test_paired_interval_is_newcombe_method_10(table: tuple[int, int, int, int]) -> None:
    low, high = paired_difference_interval(*table)
    assert (low, high) == pytest.approx(_newcombe_from_libraries(*table), abs=1e-9)
    _, a_only, b_only, _ = table
    difference = (a_only - b_only) / sum(table)
    assert -1.0 <= low <= difference <= high <= 1.0
    assert low < high


@given(
    st.integers(1, 40), st.integers(0, 40), st.integers(1, 40), st.integers(0, 40)
)  # rows: a right / wrong; columns: b right / wrong
def test_uncorrelated_results_give_statsmodels_independent_newcombe(
    rows: int, a_right: int, columns: int, b_right: int
) -> None:
    # A table that is the product of its margins has phi = 0, and the paired interval is then Newcombe's
    # interval for independent proportions of the same size (statsmodels' "newcomb").
    a_right, b_right = min(a_right, rows), min(b_right, columns)
    both, a_only = a_right * b_right, a_right * (columns - b_right)
    b_only, neither = (rows - a_right) * b_right, (rows - a_right) * (columns - b_right)
    total = rows * columns
    expected = confint_proportions_2indep(
        both + a_only, total, both + b_only, total, method="newcomb", compare="diff"
    )
    assert paired_difference_interval(both, a_only, b_only, neither) == pytest.approx(expected, abs=1e-9)


def test_paired_interval_reproduces_the_published_worked_example() -> None:
    # Altman, Machin, Bryant & Gardner, "Statistics with confidence" (2000), Table 6.2: 14 both, 5 first
    # only, 0 second only, 22 neither; 0.011 to 0.226 (biostatUZH::confIntPairedProportion agrees).
    low, high = paired_difference_interval(14, 5, 0, 22)
    assert (round(low, 3), round(high, 3)) == (0.011, 0.226)


def test_paired_interval_edge_cases() -> None:
    assert paired_difference_interval(0, 0, 0, 0) == (-1.0, 1.0)
    # No discordant pairs: a difference of 0, but not certainly 0.
    low, high = paired_difference_interval(7, 0, 0, 5)
    assert low < 0 < high
    assert (low, high) == pytest.approx(_newcombe_from_libraries(7, 0, 0, 5))
    # All discordant one way: a got every problem right, b none.
    low, high = paired_difference_interval(0, 12, 0, 0)
    assert high == 1.0
    assert 0 < low < 1
    assert (low, high) == pytest.approx(_newcombe_from_libraries(0, 12, 0, 0))
    # Everyone right, or everyone wrong.
    for table in ((20, 0, 0, 0), (0, 0, 0, 20)):
        low, high = paired_difference_interval(*table)
        assert low < 0 < high
        assert (low, high) == pytest.approx(_newcombe_from_libraries(*table))


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    # Coverage over simulated holdouts of 60 problems with correlated contestants: a wrong sign on phi or
    # a swapped bound would move it well away from 95 %.
    rng = np.random.default_rng(11)
    probabilities = np.array([0.45, 0.15, 0.08, 0.32])  # both, a only, b only, neither
    truth = probabilities[1] - probabilities[2]
    covered = 0
    runs = 2000
    for counts in rng.multinomial(60, probabilities, size=runs):
        low, high = paired_difference_interval(*(int(count) for count in counts))
        covered += low <= truth <= high
    assert 0.93 <= covered / runs <= 0.975


# -- the smallest detectable difference ------------------------------------------------------------------


def _connor_power(total: int, discordant: int, difference: float) -> float:
    """Connor's (1987) normal approximation to the power of McNemar's test, through scipy."""
    psi = discordant / total
    z_alpha = stats.norm.ppf(0.975)
    spread = math.sqrt(psi - difference**2)
    if spread == 0:
        return 1.0 if math.sqrt(total) * difference > z_alpha * math.sqrt(psi) else 0.0
    return float(stats.norm.cdf((math.sqrt(total) * difference - z_alpha * math.sqrt(psi)) / spread))


@settings(max_examples=300)
@given(st.integers(1, 20_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_min_detectable_difference_has_80_percent_power(case: tuple[int, int]) -> None:
    total, discordant = case
    detectable = min_detectable_difference(total, discordant)
    psi = discordant / total
    if detectable is None:
        # Not even every differing problem going one way would be detected reliably.
        assert total < 4 or _connor_power(total, discordant, psi) < 0.8
    else:
        assert 0 < detectable <= psi
        assert _connor_power(total, discordant, detectable) == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize(("total", "discordant"), [(1000, 200), (2000, 300)])
def test_min_detectable_difference_is_close_to_the_exact_tests_power(total: int, discordant: int) -> None:
    # The exact McNemar test's power at that difference, by scipy's binomial distribution: the number of
    # discordant problems varies around `discordant`, and the split among them decides the test.
    detectable = min_detectable_difference(total, discordant)
    assert detectable is not None
    psi = discordant / total
    counts = np.arange(total + 1)
    weights = stats.binom.pmf(counts, total, psi)
    power = 0.0
    for count, weight in zip(counts, weights, strict=True):
        if weight < 1e-12 or count == 0:
            continue
        splits = np.arange(count + 1)
        tails = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(splits, count - splits), count, 0.5))
        rejected = tails < 0.05
        power += weight * stats.binom.pmf(splits[rejected], count, (psi + detectable) / (2 * psi)).sum()
    assert power == pytest.approx(0.8, abs=0.03)


def test_min_detectable_difference_edge_cases() -> None:
    assert min_detectable_difference(0, 0) is None  # no holdout
    assert min_detectable_difference(50, 0) is None  # no problem answered differently
    assert min_detectable_difference(12, 5) is None  # the demo's size: nothing is detectable
    assert min_detectable_difference(3, 3) is None
    every = min_detectable_difference(40, 40)  # every problem answered differently
    assert every is not None
    assert every < 1
    # More problems at the same discordance detect smaller differences.
    sizes = [min_detectable_difference(n, n // 5) for n in (100, 400, 1600)]
    assert all(size is not None for size in sizes)
    assert sizes[0] > sizes[1] > sizes[2]  # type: ignore[operator]
