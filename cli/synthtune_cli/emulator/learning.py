"""What a fine-tuned model learns from its training file, and from nothing else.

For each example the question is the last user message and the trained answer is the last `Answer:` line
of the last assistant message. The fine-tuned model:

1. memorises: asked a training question, it replies with the trained reply, right or wrong;
2. generalises per category c, with n_ok(c) examples whose trained answer matches the reference and
   n_bad(c) that do not: skill(c) = clamp(base + 0.45·(1−exp(−n_ok(c)/8)) − 0.6·n_bad(c)/(n_ok(c)+n_bad(c)+1)
   + 0.1·(1−exp(−N_ok/40)), 0.02, 0.97), N_ok over all categories;
3. learns the format: its format-miss rate is the base rate × exp(−N/10), N the examples with an answer line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from synthtune_cli.emulator.answers import answers_match
from synthtune_cli.emulator.catalogue import MemorisedReply, SimulatedModel
from synthtune_cli.emulator.knowledge import Knowledge
from synthtune_cli.emulator.training_data import TrainingExample, split_answer

_SKILL_FLOOR, _SKILL_CEILING = 0.02, 0.97


@dataclass(frozen=True)
class TrainingAssessment:
    """The training file judged against the knowledge when the job was created."""

    examples: int
    with_answer_line: int
    n_ok: Mapping[str | None, int]
    n_bad: Mapping[str | None, int]
    memory: Mapping[str, MemorisedReply]

    @property
    def answer_noise(self) -> float:
        """Share of judged examples whose trained answer is wrong."""
        bad = sum(self.n_bad.values())
        judged = bad + sum(self.n_ok.values())
        return bad / judged if judged else 0.0

    @property
    def format_noise(self) -> float:
        """Share of examples with no answer line."""
        return 1 - self.with_answer_line / self.examples if self.examples else 0.0


def assess(examples: list[TrainingExample], knowledge: Knowledge) -> TrainingAssessment:
    n_ok: dict[str | None, int] = {}
    n_bad: dict[str | None, int] = {}
    memory: dict[str, MemorisedReply] = {}
    with_answer_line = 0
    for example in examples:
        answered = split_answer(example.reply)
        if answered is None:
            continue
        with_answer_line += 1
        key = knowledge.resolve(example.question)
        # A question trained twice is answered the way the later example says.
        memory[key] = MemorisedReply(example.reply, answered.steps, answered.final_answer)
        known = knowledge.get(key)
        if known is None:
            continue
        tally = n_ok if answers_match(answered.final_answer, known.reference) else n_bad
        tally[known.category] = tally.get(known.category, 0) + 1
    return TrainingAssessment(len(examples), with_answer_line, n_ok, n_bad, memory)


def fine_tuned(base: SimulatedModel, assessment: TrainingAssessment) -> SimulatedModel:
    total_ok = sum(assessment.n_ok.values())
    general = 0.1 * (1 - math.exp(-total_ok / 40))
    category_skill = {}
    for category in set(assessment.n_ok) | set(assessment.n_bad):
        ok, bad = assessment.n_ok.get(category, 0), assessment.n_bad.get(category, 0)
        gain = 0.45 * (1 - math.exp(-ok / 8)) - 0.6 * bad / (ok + bad + 1)
        category_skill[category] = _clamp(base.skill + gain + general)
    return SimulatedModel(
        family=base.family,
        skill=_clamp(base.skill + general),
        format_miss_rate=base.format_miss_rate * math.exp(-assessment.with_answer_line / 10),
        category_skill=category_skill,
        memory=assessment.memory,
    )


def _clamp(skill: float) -> float:
    return min(max(skill, _SKILL_FLOOR), _SKILL_CEILING)
