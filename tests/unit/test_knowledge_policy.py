"""What the student knows, and what Assemble does with it: SliCK's categories from probe answers, each
`dataset.knowledge_policy` over crafted shards, the abstention cap, and the hedging gate's exemption for
the abstentions the pipeline writes itself (but not for the teacher's)."""

from __future__ import annotations

from typing import Any

import pytest

from synthtune.contracts.config import RunConfig, load_run_config
from synthtune.contracts.errors import InvalidConfig
from synthtune.engine.probing import exemplar_sets
from synthtune.prompts import ABSTAINING_SYSTEM_PROMPT, ABSTENTION_ANSWER, SOLVER_SYSTEM_PROMPT, Exemplar
from synthtune.providers.registry import dataset_format
from synthtune.quality.abstention import is_abstention
from synthtune.quality.grading import Grade
from synthtune.quality.knowledge import KnowledgeEvidence, Probe, ProbeAnswer, classify, evidence
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import RunStore
from synthtune.stages.assemble.assemble import assemble_dataset
from synthtune.stages.assemble.card import DatasetCard
from synthtune.stages.assemble.knowledge import abstentions_allowed
from synthtune.stages.generate import GeneratedAnswer
from tests.support import OPENAI_MODELS
from tests.unit.test_assembly import LAYOUT, answer, lines, write_run


@pytest.mark.parametrize(
    ("greedy", "sampled", "category"),
    [
        ([True], [], "highly_known"),
        ([True, True, True], [False, False], "highly_known"),  # samples do not matter once greedy decides
        ([True, False], [False], "maybe_known"),
        ([False, True], [], "maybe_known"),
        ([False, False], [False, True], "weakly_known"),
        ([False], [True, True, True], "weakly_known"),
        ([False, False], [False, False], "unknown"),
        ([False], [], "unknown"),
    ],
)
def test_slick_categories(greedy: list[bool], sampled: list[bool], category: str) -> None:
    assert classify(greedy, sampled) == category


def test_a_category_needs_a_greedy_answer() -> None:
    with pytest.raises(ValueError, match="greedy"):
        classify([], [True])


def probe_answer(mode: str, final: str | None, correct: bool | None) -> ProbeAnswer:
    grade = None if correct is None else Grade(correct=correct, method="match" if correct else "mismatch")
    text = None if final is None else f"Work.\nAnswer: {final}"
    return ProbeAnswer(mode=mode, text=text, final_answer=final, finish_reason="stop", grade=grade)  # type: ignore[arg-type]


def test_evidence_counts_and_agreement() -> None:
    probe = Probe(
        model="student",
        target="42",
        answers=[
            probe_answer("greedy", "41", False),
            probe_answer("greedy", "41 ", False),
            probe_answer("sampled", "42", True),
            probe_answer("sampled", None, False),
        ],
    )
    found = evidence(probe)
    assert found.category == "weakly_known"
    assert (found.greedy_correct, found.greedy, found.sampled_correct, found.sampled) == (0, 2, 1, 2)
    assert found.agreement == 0.5  # "41" twice of four answers (an empty one counts as an answer given)
    assert found.answers == ["41", "41 ", "42", None]
    assert found.describe() == "weakly_known: 0 of 2 greedy answers right, 1 of 2 sampled"


def test_an_ungraded_probe_is_not_classified() -> None:
    probe = Probe(model="student", target="42", answers=[probe_answer("greedy", "42", None)])
    with pytest.raises(ValueError, match="graded"):
        evidence(probe)


def test_the_abstention_the_pipeline_writes_is_one_the_benchmark_recognises() -> None:
    assert is_abstention(ABSTENTION_ANSWER)
    assert ABSTENTION_ANSWER in ABSTAINING_SYSTEM_PROMPT and ABSTAINING_SYSTEM_PROMPT.startswith(
        SOLVER_SYSTEM_PROMPT
    )


@pytest.mark.parametrize(
    ("share", "taught", "candidates", "allowed"),
    [
        (0.1, 90, 50, 10),
        (0.1, 89, 50, 9),
        (0.5, 3, 10, 3),
        (0.0, 100, 5, 0),
        (0.2, 100, 3, 3),
        (0.25, 0, 4, 0),
    ],
)
def test_abstentions_stay_within_their_share(
    share: float, taught: int, candidates: int, allowed: int
) -> None:
    assert abstentions_allowed(share, taught, candidates) == allowed
    assert allowed == 0 or allowed / (taught + allowed) <= share


def test_a_policy_that_needs_a_probe_refuses_a_run_without_one() -> None:
    with pytest.raises(
        InvalidConfig, match=r"dataset: knowledge_policy drop_unknown needs .* probe\.enabled is false"
    ):
        load_run_config({"dataset": {"probe": {"enabled": False}}})  # the default policy drops unknowns
    config = load_run_config({"dataset": {"probe": {"enabled": False}, "knowledge_policy": "keep_all"}})
    assert not config.dataset.abstains


def test_by_default_facts_drop_unknowns_and_reasoning_keeps_them() -> None:
    policy = RunConfig().dataset.knowledge_policy
    assert policy.for_category("riddles") == "drop_unknown"
    assert policy.for_category("Math") == policy.for_category("logic") == "keep_all"
    custom = load_run_config(
        {
            "dataset": {
                "knowledge_policy": {"default": "abstain_unknown", "categories": {"History": "keep_all"}}
            }
        }
    ).dataset.knowledge_policy
    assert (custom.for_category("history"), custom.for_category("math")) == ("keep_all", "abstain_unknown")


def knowing(kind: str, n: int, **changes: Any) -> GeneratedAnswer:
    greedy_right = {"highly_known": 2, "maybe_known": 1}.get(kind, 0)
    sampled_right = 1 if kind == "weakly_known" else 0
    evidence = KnowledgeEvidence(
        category=kind,  # type: ignore[arg-type]
        greedy_correct=greedy_right,
        greedy=2,
        sampled_correct=sampled_right,
        sampled=4,
        agreement=0.5,
        answers=["x"] * 6,
    )
    fields: dict[str, Any] = {"category": "facts", "knowledge": evidence}
    return answer(
        f"{kind}-{n}",
        f"Which river flows past landmark number {n} in the {kind} atlas?",
        f"river {n}",
        **{**fields, **changes},
    )


def knowledge_set() -> list[GeneratedAnswer]:
    """20 facts the student knows in some way, 10 it does not; 5 unknown math problems; one teacher hedge."""
    known = [
        knowing(k, n)
        for n, k in enumerate(["highly_known", "maybe_known", "weakly_known", "highly_known"] * 5)
    ]
    unknown = [knowing("unknown", n) for n in range(100, 110)]
    math = [knowing("unknown", n, category="math") for n in range(200, 205)]
    hedge = answer(
        "hedge",
        "How many moons will Mars have in 2100?",
        "2",
        status="unverified",
        reference=None,
        final_answer="I don't know",
        category="facts",
    )
    return [*known[:10], *unknown[:5], hedge, *math, *known[10:], *unknown[5:]]


def assembled(
    data: ArtifactStore, runs: RunStore, policy: Any, **dataset: Any
) -> tuple[DatasetCard, dict[str, Any]]:
    task = write_run(
        data,
        [knowledge_set()[:18], knowledge_set()[18:]],
        dataset={"max_example_tokens": 300, "knowledge_policy": policy, **dataset},
        **OPENAI_MODELS,
    )
    assemble_dataset(task, data=data, runs=runs, formats=dataset_format)
    card = DatasetCard.model_validate(data.read_json(LAYOUT.dataset_card))
    dropped = {row["problem_id"]: row for row in lines(data, LAYOUT.dropped)}
    return card, dropped


def test_keep_all_teaches_every_verified_example_and_still_counts_what_the_student_knew(
    data: ArtifactStore, runs: RunStore
) -> None:
    card, dropped = assembled(data, runs, "keep_all")
    assert card.train_examples == 35 and set(dropped) == {"hedge"}
    assert card.knowledge is not None
    assert card.knowledge.by_knowledge == {
        "highly_known": 10,
        "maybe_known": 5,
        "weakly_known": 5,
        "unknown": 15,
    }
    rows = {(row.category, row.knowledge): row for row in card.knowledge.rows}
    assert rows["facts", "unknown"].kept == 10 and rows["math", "unknown"].kept == 5
    assert all(row.split == "train" for row in card.knowledge.rows)


def test_drop_unknown_drops_exactly_the_unknown_examples_with_their_evidence(
    data: ArtifactStore, runs: RunStore
) -> None:
    card, dropped = assembled(data, runs, "drop_unknown")
    unknown = {f"unknown-{n}" for n in [*range(100, 110), *range(200, 205)]}
    assert {pid for pid, row in dropped.items() if row["reason"] == "student_unknown"} == unknown
    assert dropped["unknown-100"]["detail"] == "unknown: 0 of 2 greedy answers right, 0 of 4 sampled"
    assert card.train_examples == 20 and card.accounted
    assert {drop.reason: drop.count for drop in card.dropped}["student_unknown"] == 15
    assert card.knowledge is not None
    assert {row.knowledge: row.dropped for row in card.knowledge.rows if row.category == "facts"}[
        "unknown"
    ] == 10
    markdown = b"".join(data.iter_lines(LAYOUT.dataset_card_markdown)).decode()
    assert "What the student knew" in markdown and "`student_unknown`" in markdown


def test_the_default_policy_keeps_unknown_math_and_drops_unknown_facts(
    data: ArtifactStore, runs: RunStore
) -> None:
    card, dropped = assembled(data, runs, {"default": "drop_unknown", "categories": {"math": "keep_all"}})
    assert {pid for pid, row in dropped.items() if row["reason"] == "student_unknown"} == {
        f"unknown-{n}" for n in range(100, 110)
    }
    assert card.knowledge is not None and card.knowledge.policies == {
        "facts": "drop_unknown",
        "math": "keep_all",
    }


def test_abstain_unknown_writes_capped_abstentions_under_the_abstaining_prompt(
    data: ArtifactStore, runs: RunStore
) -> None:
    card, dropped = assembled(data, runs, "abstain_unknown", max_abstention_share=0.1)
    # 20 known examples are taught; 0.1 of the split allows 2 abstentions (2/22); 13 unknown are dropped.
    train = lines(data, LAYOUT.train)
    abstentions = [
        row for row in train if row["messages"][-1]["content"].endswith(f"Answer: {ABSTENTION_ANSWER}")
    ]
    assert len(train) == 22 and len(abstentions) == 2
    assert len(abstentions) / len(train) <= 0.1
    assert all(row["messages"][0]["content"] == ABSTAINING_SYSTEM_PROMPT for row in train)
    capped = [row for row in dropped.values() if row["reason"] == "student_unknown"]
    assert len(capped) == 13 and all("past dataset.max_abstention_share" in row["detail"] for row in capped)
    # The teacher's own "I don't know" is still a hedge; the pipeline's abstentions are not.
    assert dropped["hedge"]["reason"] == "hedging"
    assert card.knowledge is not None
    assert sum(row.abstained for row in card.knowledge.rows) == 2
    assert card.knowledge.abstention_share["train"] == pytest.approx(2 / 22)
    assert card.accounted


def test_which_unknowns_become_abstentions_does_not_depend_on_shard_order(
    data: ArtifactStore, runs: RunStore
) -> None:
    assembled(data, runs, "abstain_unknown", max_abstention_share=0.1)
    first = [row["messages"][1]["content"] for row in lines(data, LAYOUT.train)][-2:]
    task = write_run(
        data,
        [knowledge_set()[18:], knowledge_set()[:18]],
        dataset={
            "max_example_tokens": 300,
            "knowledge_policy": "abstain_unknown",
            "max_abstention_share": 0.1,
        },
        **OPENAI_MODELS,
    )
    assemble_dataset(task, data=data, runs=runs, formats=dataset_format)
    assert [row["messages"][1]["content"] for row in lines(data, LAYOUT.train)][-2:] == first


def test_an_answer_without_a_probe_is_taught_and_counted_as_not_probed(
    data: ArtifactStore, runs: RunStore
) -> None:
    task = write_run(data, [[knowing("highly_known", n, knowledge=None) for n in range(12)]], **OPENAI_MODELS)
    summary = assemble_dataset(task, data=data, runs=runs, formats=dataset_format)
    card = DatasetCard.model_validate(data.read_json(LAYOUT.dataset_card))
    assert summary.train_examples == 12
    assert card.knowledge is not None and (card.knowledge.probed, card.knowledge.not_probed) == (0, 12)


def test_each_greedy_answer_after_the_first_shows_other_problems_the_same_way_on_every_retry() -> None:
    candidates = [(f"p{n}", f"Question {n}?", str(n)) for n in range(20)]
    sets = exemplar_sets("p3", candidates, greedy=3, per_set=3)
    assert sets[0] == () and [len(shown) for shown in sets] == [0, 3, 3]
    assert all(exemplar.question != "Question 3?" for shown in sets for exemplar in shown)
    assert sets[1] != sets[2]  # worded apart
    assert sets == exemplar_sets("p3", candidates, greedy=3, per_set=3)  # a retry asks the same
    assert sets[1][0].reply.startswith("Answer: ")
    assert exemplar_sets("p0", candidates[:2], greedy=2, per_set=3)[1] == (
        Exemplar(question="Question 1?", reply="Answer: 1"),
    )
