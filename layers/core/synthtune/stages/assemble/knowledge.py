"""The knowledge policy: what becomes of a training example the base student does not know.

Generate probed the base student on every answer worth training (`quality.knowledge`); here each answer
that passed the per-answer gates meets its problem category's `dataset.knowledge_policy`:

- `keep_all`: taught as the teacher wrote it, whatever the student knows;
- `drop_unknown`: an `unknown` example is dropped (`student_unknown`, the probe's evidence in
  dropped.jsonl): taught, it would train the student to state what it cannot know;
- `abstain_unknown`: an `unknown` example teaches a short, honest abstention in the training format
  (`prompts.abstention_solution`) instead — at most `dataset.max_abstention_share` of a split's examples,
  so the student does not learn to refuse everything. Which unknown examples become abstentions is fixed
  by their problem ids (not by shard order); those past the cap are dropped as `student_unknown`.

The hedging gate runs before this, on the teacher's answer only: it keeps dropping the teacher's hedges,
and never sees the abstentions the pipeline writes itself.

The card's `knowledge` section counts every probed answer by problem category × split × knowledge
category, with what the policy did to it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.config import DatasetConfig, KnowledgePolicy, ProbeConfig
from synthtune.quality.knowledge import KNOWLEDGE_CATEGORIES, KnowledgeCategory
from synthtune.stages.assemble.gates import Drop
from synthtune.stages.generate import GeneratedAnswer

Treatment = Literal["teach", "abstain"]
Fate = Literal["kept", "abstained", "dropped"]


def treatment(answer: GeneratedAnswer, gates: DatasetConfig) -> Treatment | Drop:
    """What the category's policy does with an answer that passed the per-answer gates."""
    knowledge = answer.knowledge
    if knowledge is None or knowledge.category != "unknown":
        return "teach"
    policy = gates.knowledge_policy.for_category(answer.category)
    if policy == "drop_unknown":
        return Drop("student_unknown", knowledge.describe())
    if policy == "abstain_unknown":
        return "abstain"
    return "teach"


def abstention_rank(problem_id: str) -> bytes:
    """Orders the unknown examples that may become abstentions: by id, the same whatever the shard order."""
    return hashlib.blake2b(problem_id.encode(), digest_size=8).digest()


def abstentions_allowed(share: float, taught: int, candidates: int) -> int:
    """The most abstentions a split of `taught` other examples may hold so that they stay within `share`
    of it: a / (taught + a) ≤ share."""
    if share <= 0:
        return 0
    return min(candidates, math.floor(share * taught / (1 - share) + 1e-9))


class KnowledgeRow(BaseModel):
    """Probed answers of one problem category, split and knowledge category, and what became of them."""

    model_config = ConfigDict(frozen=True)

    category: str
    split: str
    knowledge: KnowledgeCategory
    policy: KnowledgePolicy
    probed: int = Field(description="Answers the student was probed on (every answer worth training).")
    kept: int = Field(description="Taught as the teacher wrote them.")
    abstained: int = Field(description="Taught as an abstention (abstain_unknown).")
    dropped: int = Field(description="Dropped by the policy (student_unknown) or a later gate.")


class KnowledgeSummary(BaseModel):
    """dataset_card.json's `knowledge`: what the student knew of its training set, and what was done."""

    model_config = ConfigDict(frozen=True)

    probe: ProbeConfig
    policies: dict[str, KnowledgePolicy] = Field(description="The policy of each problem category seen.")
    max_abstention_share: float
    probed: int
    not_probed: int = Field(
        description="Examples taught without a probe (dataset.probe off, or answers checkpointed by a "
        "version that did not probe)."
    )
    by_knowledge: dict[KnowledgeCategory, int] = Field(description="Probed answers per knowledge category.")
    abstention_share: dict[str, float] = Field(description="Abstentions among each split's examples.")
    rows: list[KnowledgeRow]


@dataclass
class _Counts:
    probed: int = 0
    kept: int = 0
    abstained: int = 0


class KnowledgeTally:
    """Counts what the policy and the later gates did to each probed answer."""

    def __init__(self, gates: DatasetConfig) -> None:
        self._gates = gates
        self._counts: dict[tuple[str, str, KnowledgeCategory], _Counts] = {}
        self._categories: set[str] = set()
        self._not_probed = 0

    def record(self, answer: GeneratedAnswer, fate: Fate) -> None:
        """A probed answer, or any example, and what became of it."""
        self._categories.add(answer.category)
        if answer.knowledge is None:
            self._not_probed += 1
            return
        counts = self._counts.setdefault(
            (answer.category, answer.split, answer.knowledge.category), _Counts()
        )
        counts.probed += 1
        if fate == "kept":
            counts.kept += 1
        elif fate == "abstained":
            counts.abstained += 1

    def summary(self, examples: dict[str, int]) -> KnowledgeSummary:
        """`examples`: each split's example count, abstentions included."""
        policy = self._gates.knowledge_policy.for_category
        rows = [
            KnowledgeRow(
                category=category,
                split=split,
                knowledge=knowledge,
                policy=policy(category),
                probed=counts.probed,
                kept=counts.kept,
                abstained=counts.abstained,
                dropped=counts.probed - counts.kept - counts.abstained,
            )
            for (category, split, knowledge), counts in sorted(
                self._counts.items(), key=lambda item: (item[0][0], item[0][1], _order(item[0][2]))
            )
        ]
        abstained = {split: sum(row.abstained for row in rows if row.split == split) for split in examples}
        return KnowledgeSummary(
            probe=self._gates.probe,
            policies={category: policy(category) for category in sorted(self._categories)},
            max_abstention_share=self._gates.max_abstention_share,
            probed=sum(row.probed for row in rows),
            not_probed=self._not_probed,
            by_knowledge={
                knowledge: sum(row.probed for row in rows if row.knowledge == knowledge)
                for knowledge in KNOWLEDGE_CATEGORIES
            },
            abstention_share={
                split: abstained[split] / count if count else 0.0 for split, count in examples.items()
            },
            rows=rows,
        )


def _order(knowledge: KnowledgeCategory) -> int:
    return KNOWLEDGE_CATEGORIES.index(knowledge)


def render_knowledge(summary: KnowledgeSummary) -> list[str]:
    """The card's markdown section."""
    probe = summary.probe
    lines = [
        "## What the student knew",
        "",
        f"The base student was asked each training problem {probe.greedy} time(s) at temperature 0 and "
        f"{probe.samples} time(s) at temperature {probe.temperature:g} (SliCK categories: highly_known, "
        "maybe_known, weakly_known, unknown).",
        "",
        "| policy | categories |",
        "|---|---|",
    ]
    by_policy: dict[str, list[str]] = {}
    for category, policy in summary.policies.items():
        by_policy.setdefault(policy, []).append(category)
    lines += [f"| `{policy}` | {', '.join(names)} |" for policy, names in sorted(by_policy.items())]
    lines += [
        "",
        "| category | split | knowledge | probed | kept | abstained | dropped |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.category} | {row.split} | {row.knowledge} | {row.probed:,} | {row.kept:,} | "
        f"{row.abstained:,} | {row.dropped:,} |"
        for row in summary.rows
    ]
    shares = ", ".join(f"{split} {share:.1%}" for split, share in summary.abstention_share.items())
    lines += [
        "",
        f"Abstentions: {shares} of the examples (at most {summary.max_abstention_share:.0%}).",
    ]
    if summary.not_probed:
        lines.append(f"{summary.not_probed:,} example(s) were not probed.")
    return [*lines, ""]
