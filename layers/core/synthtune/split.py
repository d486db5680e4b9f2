"""Deterministic, stratified train / validation / holdout split.

An explicit `split` on a problem is always respected; the fractions apply only to the rest. Only
problems with a reference answer can be held out, because the benchmark grades against it. Within
each category, problems are ordered by a keyed hash of their normalised question and the first ones
are taken, so the split depends on the seed and the questions alone — not on file order — and
identical questions sort next to each other. Category quotas use the largest-remainder method, so the
total held out is exactly round(eligible × fraction).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from synthtune.contracts.problems import Problem, Split, SplitCounts, normalise_question


class HoldoutSplit(BaseModel):
    model_config = ConfigDict(frozen=True)

    train: list[Problem]
    validation: list[Problem]
    holdout: list[Problem]

    @property
    def counts(self) -> SplitCounts:
        return SplitCounts(train=len(self.train), validation=len(self.validation), holdout=len(self.holdout))


def _rank(problem: Problem, seed: str) -> str:
    return hashlib.sha256(f"{seed}\x00{normalise_question(problem.question)}".encode()).hexdigest()


def _quotas(sizes: dict[str, int], fraction: float) -> dict[str, int]:
    total = round(sum(sizes.values()) * fraction)
    exact = {category: size * fraction for category, size in sizes.items()}
    quotas = {category: int(share) for category, share in exact.items()}
    by_remainder = sorted(exact, key=lambda category: (-(exact[category] - quotas[category]), category))
    for category in by_remainder[: total - sum(quotas.values())]:
        quotas[category] += 1
    return quotas


def _take_stratified(candidates: Sequence[Problem], fraction: float, seed: str) -> set[str]:
    """Ids of round(len × fraction) candidates, spread across categories in proportion."""
    by_category: dict[str, list[Problem]] = defaultdict(list)
    for problem in candidates:
        by_category[problem.category].append(problem)
    quotas = _quotas({category: len(group) for category, group in by_category.items()}, fraction)
    taken: set[str] = set()
    for category, group in by_category.items():
        ranked = sorted(group, key=lambda problem: _rank(problem, seed))
        taken.update(problem.id for problem in ranked[: quotas[category]])
    return taken


def split_problems(
    problems: Sequence[Problem], holdout_fraction: float, validation_fraction: float, seed: str
) -> HoldoutSplit:
    holdout_ids = _take_stratified(
        [p for p in problems if p.split is None and p.answer is not None], holdout_fraction, f"holdout:{seed}"
    )
    validation_ids = _take_stratified(
        [p for p in problems if p.split is None and p.id not in holdout_ids],
        validation_fraction,
        f"validation:{seed}",
    )

    def split_of(problem: Problem) -> Split:
        if problem.split is not None:
            return problem.split
        if problem.id in holdout_ids:
            return "holdout"
        return "validation" if problem.id in validation_ids else "train"

    assigned: dict[Split, list[Problem]] = {"train": [], "validation": [], "holdout": []}
    for problem in problems:
        split = split_of(problem)
        assigned[split].append(problem.model_copy(update={"split": split}))
    return HoldoutSplit(**assigned)
