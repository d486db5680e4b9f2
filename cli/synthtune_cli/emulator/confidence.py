"""How sure a simulated model is of a question: the confidence behind its greedy and sampled answers.

A model *knows* a question iff its greedy draw `u0 = draw(seed, family, question, 0)` falls below its skill
`s`: exactly the questions it answers right at temperature 0 with a plain prompt. Confidence `c` turns
that yes/no into a degree, so that sampling and rewording can show what a probe calls "maybe known" and
"weakly known":

    known   (u0 < s):  c = 1 − 0.5·(u0/s)^p            (from 1 down to 0.5)
    unknown (u0 ≥ s):  c = 0.5·((1 − u0)/(1 − s))^q    (from 0.5 down to 0)

c is 0.5 at the boundary and decreases with u0, so c > 0.5 iff the model knows the question. The mean of
c over u0 ~ U(0, 1) is s − 0.5·s/(p+1) + 0.5·(1−s)/(q+1), which equals s iff s/(p+1) = (1−s)/(q+1):
then a sampled answer (right iff a fresh draw < c) is right with probability s on average, the model's
skill. Both exponents must be positive for c to decrease, so the side holding more of the unit interval
gets exponent 1 and the other side a larger one:

    q + 1 = max(2, 2·(1 − s)/s),   p + 1 = s·(q + 1)/(1 − s) = max(2, 2·s/(1 − s)).

A strong model (s = 0.9: p = 17, q = 1) is near-certain of most of what it knows and unsure of the rest;
a weak one (s = 0.38: p = 1, q ≈ 2.26) is lukewarm about what it knows and seldom stumbles on the rest.
"""

from __future__ import annotations

# Skills are kept this far from 0 and 1 when the exponents are worked out, so they stay finite.
_SKILL_GUARD = 1e-3


def exponents(skill: float) -> tuple[float, float]:
    """(p, q) for a model of this skill."""
    s = min(max(skill, _SKILL_GUARD), 1 - _SKILL_GUARD)
    q_plus_1 = max(2.0, 2 * (1 - s) / s)
    p_plus_1 = s * q_plus_1 / (1 - s)
    return p_plus_1 - 1, q_plus_1 - 1


def confidence(u0: float, skill: float) -> float:
    """The confidence in (0, 1] of a model of this skill in a question whose greedy draw is `u0`."""
    if skill <= 0:
        return 0.5 * (1 - u0)
    if skill >= 1:
        return 1 - 0.5 * u0
    p, q = exponents(skill)
    if u0 < skill:
        return 1 - 0.5 * float((u0 / skill) ** p)
    return 0.5 * float(((1 - u0) / (1 - skill)) ** q)
