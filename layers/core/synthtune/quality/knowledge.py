"""What the student already knows: each problem classified by how the base student answers it.

The categories are Gekhman et al.'s SliCK ("Does Fine-Tuning LLMs on New Knowledge Encourage
Hallucinations?", EMNLP 2024), from `greedy` answers at temperature 0 (each worded apart) and `samples`
answers at a temperature above 0, every one graded against the problem's target:

- `highly_known`: every greedy answer is right;
- `maybe_known`: some greedy answers are right, not all;
- `weakly_known`: no greedy answer is right, some sampled answer is;
- `unknown`: no answer is right.

Fine-tuning on `unknown` examples teaches a model to state what it cannot know: they are learned slowly
and, once learned, raise hallucination roughly linearly with their share (Gekhman et al.), which is why
`dataset.knowledge_policy` may drop them or teach an honest abstention instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.usage import Usage, UsageByModel
from synthtune.quality.grading import Grade

KnowledgeCategory = Literal["highly_known", "maybe_known", "weakly_known", "unknown"]
KNOWLEDGE_CATEGORIES: tuple[KnowledgeCategory, ...] = (
    "highly_known",
    "maybe_known",
    "weakly_known",
    "unknown",
)
KNOWLEDGE_MEANINGS: dict[KnowledgeCategory, str] = {
    "highly_known": "every greedy answer of the base student is right",
    "maybe_known": "some greedy answers are right, not all",
    "weakly_known": "no greedy answer is right, some sampled answer is",
    "unknown": "no answer of the base student is right",
}

ProbeMode = Literal["greedy", "sampled"]


class ProbeAnswer(BaseModel):
    """One answer of the base student to a probed problem, and its grade (None until graded)."""

    model_config = ConfigDict(frozen=True)

    mode: ProbeMode
    text: str | None
    final_answer: str | None
    finish_reason: str
    grade: Grade | None = None

    @property
    def correct(self) -> bool:
        return self.grade is not None and self.grade.correct


class Probe(BaseModel):
    """A problem's probe, as far as it went: what the base student answered, and what it was paid.

    Saved on the problem's checkpoint after every request, so a retry asks only for what is missing."""

    model_config = ConfigDict(frozen=True)

    model: str
    target: str = Field(
        description="What the answers were graded against: the reference, else the teacher's."
    )
    answers: list[ProbeAnswer] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage, description="The student's tokens, every request's.")
    judge_usage: UsageByModel = Field(
        default_factory=dict, description="The judge's tokens by model, where grading needed a judge."
    )

    def of_mode(self, mode: ProbeMode) -> list[ProbeAnswer]:
        return [answer for answer in self.answers if answer.mode == mode]

    @property
    def graded(self) -> bool:
        return all(answer.grade is not None for answer in self.answers)


class KnowledgeEvidence(BaseModel):
    """What a problem's probe found, on its answer line and in dropped.jsonl."""

    model_config = ConfigDict(frozen=True)

    category: KnowledgeCategory
    greedy_correct: int
    greedy: int
    sampled_correct: int
    sampled: int
    agreement: float | None = Field(
        description="Share of the probe answers that gave the most common final answer (None: no answer)."
    )
    answers: list[str | None] = Field(
        default_factory=list, description="The final answers, greedy first, as the student gave them."
    )

    def describe(self) -> str:
        sampled = f", {self.sampled_correct} of {self.sampled} sampled" if self.sampled else ""
        return f"{self.category}: {self.greedy_correct} of {self.greedy} greedy answers right{sampled}"


def classify(greedy: list[bool], sampled: list[bool]) -> KnowledgeCategory:
    """SliCK's category from which greedy and sampled answers were right (see the module's docstring)."""
    if not greedy:
        raise ValueError("classifying what a model knows needs at least one greedy answer")
    if all(greedy):
        return "highly_known"
    if any(greedy):
        return "maybe_known"
    if any(sampled):
        return "weakly_known"
    return "unknown"


def evidence(probe: Probe) -> KnowledgeEvidence:
    """The category of a graded probe and what it rests on."""
    if not probe.graded:
        raise ValueError("a probe is classified once every answer is graded")
    greedy, sampled = probe.of_mode("greedy"), probe.of_mode("sampled")
    finals = [answer.final_answer for answer in probe.answers]
    given = Counter(" ".join(final.casefold().split()) for final in finals if final and final.strip())
    agreement = given.most_common(1)[0][1] / len(finals) if given else None
    return KnowledgeEvidence(
        category=classify([a.correct for a in greedy], [a.correct for a in sampled]),
        greedy_correct=sum(a.correct for a in greedy),
        greedy=len(greedy),
        sampled_correct=sum(a.correct for a in sampled),
        sampled=len(sampled),
        agreement=agreement,
        answers=finals,
    )
