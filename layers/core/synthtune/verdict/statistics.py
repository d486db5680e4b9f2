"""The few statistics the benchmark's verdict needs, for accuracies measured on the same held-out problems.

Written out by hand: the layer would otherwise ship scipy (about 100 MB) for four short formulas. The tests
check each one against scipy and statsmodels (dev dependencies), on random and edge cases.

- `wilson_interval`: the Wilson score 95 % interval of one accuracy (statsmodels' `proportion_confint(...,
  method="wilson")`).
- `mcnemar_p_value`: the exact two-sided McNemar test of two contestants on the same problems: a binomial
  test on the problems exactly one of them got right (statsmodels' `mcnemar(..., exact=True)`).
- `paired_difference_interval`: a 95 % interval for the difference of two accuracies on the same problems,
  Newcombe's hybrid score interval for paired proportions (method 10 of Newcombe 1998, "Improved confidence
  intervals for the difference between binomial proportions based on paired data", Stat Med 17:2635-50;
  worked through in Altman et al., "Statistics with confidence", 2000, ch. 6). It stays within [-1, 1], is
  never empty or zero-width, and with no correlation between the two it is statsmodels'
  `confint_proportions_2indep(..., method="newcomb")` at equal sizes.
- `min_detectable_difference`: the smallest difference a paired design of this size detects with 80 %
  power at a two-sided alpha of 0.05, by Connor's approximation for McNemar's test (Connor 1987, "Sample
  size for testing differences in proportions for the paired-sample design", Biometrics 43:207-11),
  taking the share of problems the two answer differently as observed.
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054
"""The standard normal's 97.5th percentile: two-sided 95 % (alpha 0.05)."""
Z_80 = 0.8416212335729143
"""The standard normal's 80th percentile: 80 % power."""


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson score 95 % interval of successes / trials, as fractions; (0, 1) when there were none."""
    _check_counts(successes, trials - successes)
    if trials == 0:
        return 0.0, 1.0
    z2 = Z_95 * Z_95
    share = successes / trials
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z_95 / (1 + z2 / trials) * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials))
    # At 0 or every success one bound is exact in theory; rounding must not push it past [0, 1].
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def mcnemar_p_value(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value: min(1, 2 P(X <= min(a_only, b_only))) with X ~ Bin(a_only + b_only,
    1/2), the chance of a split at least this uneven if neither contestant were better; 1.0 when no problem
    was answered right by one and not the other."""
    _check_counts(a_only, b_only)
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    # Whole numbers throughout (the sum of binomial coefficients over 2^n), so a large holdout neither
    # overflows nor loses the tail to rounding.
    fewer = min(a_only, b_only)
    term, tail = 1, 1
    for k in range(1, fewer + 1):
        term = term * (discordant - k + 1) // k
        tail += term
    return min(1.0, 2 * tail / (1 << discordant))


def paired_difference_interval(both: int, a_only: int, b_only: int, neither: int) -> tuple[float, float]:
    """95 % interval for accuracy(a) - accuracy(b) on the same problems: Newcombe's method 10.

    `both`, `a_only`, `b_only`, `neither`: problems both got right, only a, only b, neither. Each accuracy
    gets its Wilson interval; the two are combined by "square and add", corrected for the correlation
    between a's and b's results (the phi coefficient of the 2x2 table, with the continuity correction
    Newcombe applies when it is positive, and 0 when a margin is empty).
    """
    _check_counts(both, a_only, b_only, neither)
    total = both + a_only + b_only + neither
    if total == 0:
        return -1.0, 1.0
    a_right, b_right = both + a_only, both + b_only
    a_share, b_share = a_right / total, b_right / total
    a_low, a_high = wilson_interval(a_right, total)
    b_low, b_high = wilson_interval(b_right, total)
    margins = a_right * (total - a_right) * b_right * (total - b_right)
    phi = 0.0
    if margins > 0:
        association: float = both * neither - a_only * b_only
        if association > 0:
            association = max(association - total / 2, 0.0)
        phi = association / math.sqrt(margins)
    # How far each accuracy's own interval reaches on the side that widens the difference that way.
    a_down, a_up, b_down, b_up = a_share - a_low, a_high - a_share, b_share - b_low, b_high - b_share
    below = math.sqrt(max(0.0, a_down**2 - 2 * phi * a_down * b_up + b_up**2))
    above = math.sqrt(max(0.0, a_up**2 - 2 * phi * a_up * b_down + b_down**2))
    difference = a_share - b_share
    return max(-1.0, difference - below), min(1.0, difference + above)


def min_detectable_difference(total: int, discordant: int) -> float | None:
    """The smallest |accuracy(a) - accuracy(b)| that `total` paired problems detect with 80 % power at a
    two-sided alpha of 0.05, if `discordant` of them (right for exactly one of the two) is typical.

    Connor's approximation: n d^2 = (z_alpha sqrt(psi) + z_beta sqrt(psi - d^2))^2, with psi the share of
    problems answered differently and d the difference, solved for d (the larger root of a quadratic).
    None when no difference up to psi itself (every differing problem going the same way) reaches 80 %
    power: too few problems are answered differently for this holdout to show any difference reliably.
    The approximation is a normal one; at a few dozen discordant problems the exact test needs a little
    more than it says.
    """
    _check_counts(discordant, total - discordant)
    if total == 0 or discordant == 0:
        return None
    psi = discordant / total
    under_root = total - Z_95 * Z_95 + Z_80 * Z_80
    if under_root <= 0:
        return None
    difference = (
        math.sqrt(psi) * (Z_95 * math.sqrt(total) + Z_80 * math.sqrt(under_root)) / (total + Z_80 * Z_80)
    )
    return difference if difference <= psi else None


def _check_counts(*counts: int) -> None:
    if any(count < 0 for count in counts):
        raise ValueError(f"counts must not be negative: {counts}")
