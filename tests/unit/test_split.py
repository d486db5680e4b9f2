from collections import Counter

from synthtune.contracts.problems import Problem
from synthtune.split import split_problems


def problems(n: int, categories: tuple[str, ...] = ("a", "b", "c")) -> list[Problem]:
    return [
        Problem(
            id=f"p{i}",
            question=f"question number {i}",
            answer=str(i),
            category=categories[i % len(categories)],
        )
        for i in range(n)
    ]


def test_exact_counts_stratified_by_category() -> None:
    split = split_problems(problems(90), holdout_fraction=0.2, validation_fraction=0.1, seed="s")
    assert split.counts.holdout == 18
    assert split.counts.validation == round(72 * 0.1)
    assert split.counts.train == 90 - 18 - 7
    assert Counter(p.category for p in split.holdout) == {"a": 6, "b": 6, "c": 6}
    assert {p.split for p in split.train} == {"train"}


def test_deterministic_and_independent_of_order() -> None:
    items = problems(50)
    first = split_problems(items, 0.3, 0.1, "seed")
    again = split_problems(list(reversed(items)), 0.3, 0.1, "seed")
    other_seed = split_problems(items, 0.3, 0.1, "other")
    assert {p.id for p in first.holdout} == {p.id for p in again.holdout}
    assert {p.id for p in first.holdout} != {p.id for p in other_seed.holdout}


def test_explicit_splits_respected_and_only_referenced_problems_held_out() -> None:
    items = [
        Problem(id="forced-train", question="q1", answer="1", split="train"),
        Problem(id="forced-holdout", question="q2", answer="2", split="holdout"),
        *[Problem(id=f"noref{i}", question=f"no reference {i}") for i in range(20)],
        *[Problem(id=f"ref{i}", question=f"with reference {i}", answer="x") for i in range(10)],
    ]
    split = split_problems(items, holdout_fraction=0.5, validation_fraction=0.0, seed="s")
    holdout_ids = {p.id for p in split.holdout}
    assert "forced-holdout" in holdout_ids
    assert "forced-train" in {p.id for p in split.train}
    assert all(p.answer is not None for p in split.holdout)
    assert len(holdout_ids) == 1 + 5  # half of the ten eligible, plus the explicit one
