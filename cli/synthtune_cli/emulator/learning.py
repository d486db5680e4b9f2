"""What a fine-tuned model learns from its training file, and from nothing else.

For each example the question is the last user message and the trained answer is the last `Answer:` line
of the last assistant message. An example whose trained answer is an abstention ("I don't know" and close
variants, `abstention.is_abstention`) is counted apart: it is neither right nor wrong about the question.
Every other example on a question in the knowledge is ok (its answer matches the reference) or bad, and ok
examples are split by whether the *base* model knew the question (its greedy draw, same seed and family,
fell below its skill), because a model learns differently from facts it knew and facts it did not
(Gekhman et al. 2024: fine-tuning on unknown facts teaches hallucination). The fine-tuned model:

1. memorises: asked a training question, it replies with the trained reply, right, wrong or abstaining;
2. generalises per category c: skill(c) = clamp(base + gain(c) − 0.6·n_bad(c)/(n_ok(c)+n_bad(c)+1)
   + 0.1·(1−exp(−N_ok/40)), 0.02, 0.97), n_ok = n_known_ok + n_unknown_ok, N_ok over all categories, with
   - in a reasoning category (`REASONING_CATEGORIES`): gain = 0.45·(1−exp(−n_ok(c)/8)), since a worked
     problem teaches method whether or not the base could solve it;
   - in any other (factual) category: gain = 0.15·(1−exp(−n_known_ok(c)/8)) − 0.3·n_unknown_ok(c)/(n_ok(c)
     + n_bad(c) + 1): facts it half knew are recalled more reliably, but training cannot teach it the
     held-out facts it never knew (so the gain is small), and each fact it did not know teaches it to
     guess;
3. learns when to say "I don't know": abstention rate on what it gets wrong = a + (1−a)·base_rate·
   exp(−N_unknown_ok/10), a = 1 − exp(−N_abstain/6), base_rate 0.05 or 0.25 when the prompt invites
   abstention; and it over-abstains on what it gets right with probability 0.5·(N_abstain / N), N the
   examples with an answer line;
4. learns the format: its format-miss rate is the base rate × exp(−N/10).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from synthtune_cli.emulator.abstention import is_abstention
from synthtune_cli.emulator.answers import answers_match
from synthtune_cli.emulator.catalogue import MemorisedReply, SimulatedModel
from synthtune_cli.emulator.draws import draw
from synthtune_cli.emulator.knowledge import Knowledge
from synthtune_cli.emulator.training_data import TrainingExample, split_answer

_SKILL_FLOOR, _SKILL_CEILING = 0.02, 0.97

REASONING_CATEGORIES = frozenset(
    {"math", "maths", "mathematics", "arithmetic", "algebra", "geometry", "logic", "reasoning"}
)
"""Categories (compared case-insensitively) where an example the base model could not solve still teaches:
the method carries over to other problems, where an unknown fact does not."""

_KNOWN_GAIN, _KNOWN_SCALE = 0.45, 8
_FACT_GAIN = 0.15
_UNKNOWN_COST = 0.3
_BAD_COST = 0.6
_GENERAL_GAIN, _GENERAL_SCALE = 0.1, 40
_ABSTAIN_SCALE = 6
_GUESSING_SCALE = 10
_OVER_ABSTENTION = 0.5


def is_reasoning(category: str | None) -> bool:
    return category is not None and category.casefold() in REASONING_CATEGORIES


@dataclass(frozen=True)
class TrainingAssessment:
    """The training file judged against the knowledge, and against what the base model knew, when the
    job was created. Tallies are per category (None for questions without one, or not in the knowledge)."""

    examples: int
    with_answer_line: int
    n_known_ok: Mapping[str | None, int]
    n_unknown_ok: Mapping[str | None, int]
    n_bad: Mapping[str | None, int]
    n_abstain: Mapping[str | None, int]
    memory: Mapping[str, MemorisedReply]

    def n_ok(self, category: str | None) -> int:
        return self.n_known_ok.get(category, 0) + self.n_unknown_ok.get(category, 0)

    @property
    def total_ok(self) -> int:
        return sum(self.n_known_ok.values()) + sum(self.n_unknown_ok.values())

    @property
    def answer_noise(self) -> float:
        """Share of judged examples whose trained answer is wrong."""
        bad = sum(self.n_bad.values())
        judged = bad + self.total_ok
        return bad / judged if judged else 0.0

    @property
    def format_noise(self) -> float:
        """Share of examples with no answer line."""
        return 1 - self.with_answer_line / self.examples if self.examples else 0.0

    @property
    def abstain_share(self) -> float:
        """Share of examples with an answer line whose answer is an abstention."""
        return sum(self.n_abstain.values()) / self.with_answer_line if self.with_answer_line else 0.0


def assess(
    examples: list[TrainingExample], knowledge: Knowledge, base: SimulatedModel, seed: int
) -> TrainingAssessment:
    """Judge `examples`; `base` and `seed` say which questions the base model knew (its greedy draws)."""
    n_known_ok: dict[str | None, int] = {}
    n_unknown_ok: dict[str | None, int] = {}
    n_bad: dict[str | None, int] = {}
    n_abstain: dict[str | None, int] = {}
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
        category = None if known is None else known.category
        if is_abstention(answered.final_answer):
            tally = n_abstain
        elif known is None:
            continue
        elif not answers_match(answered.final_answer, known.reference):
            tally = n_bad
        elif draw(seed, base.family, key, 0) < base.skill_for(category):
            tally = n_known_ok
        else:
            tally = n_unknown_ok
        tally[category] = tally.get(category, 0) + 1
    return TrainingAssessment(
        len(examples), with_answer_line, n_known_ok, n_unknown_ok, n_bad, n_abstain, memory
    )


def fine_tuned(base: SimulatedModel, assessment: TrainingAssessment) -> SimulatedModel:
    general = _GENERAL_GAIN * (1 - math.exp(-assessment.total_ok / _GENERAL_SCALE))
    category_skill = {}
    judged = set(assessment.n_known_ok) | set(assessment.n_unknown_ok) | set(assessment.n_bad)
    for category in judged:
        known_ok = assessment.n_known_ok.get(category, 0)
        unknown_ok = assessment.n_unknown_ok.get(category, 0)
        ok, bad = known_ok + unknown_ok, assessment.n_bad.get(category, 0)
        if is_reasoning(category):
            gain = _KNOWN_GAIN * (1 - math.exp(-ok / _KNOWN_SCALE))
        else:
            gain = _FACT_GAIN * (1 - math.exp(-known_ok / _KNOWN_SCALE))
            gain -= _UNKNOWN_COST * unknown_ok / (ok + bad + 1)
        gain -= _BAD_COST * bad / (ok + bad + 1)
        category_skill[category] = _clamp(base.skill_for(category) + gain + general)
    abstained = sum(assessment.n_abstain.values())
    guessed = sum(assessment.n_unknown_ok.values())
    return SimulatedModel(
        family=base.family,
        skill=_clamp(base.skill + general),
        format_miss_rate=base.format_miss_rate * math.exp(-assessment.with_answer_line / 10),
        category_skill=category_skill,
        memory=assessment.memory,
        learned_abstention=1 - math.exp(-abstained / _ABSTAIN_SCALE),
        abstention_damping=math.exp(-guessed / _GUESSING_SCALE),
        over_abstention=_OVER_ABSTENTION * assessment.abstain_share,
    )


def _clamp(skill: float) -> float:
    return min(max(skill, _SKILL_FLOOR), _SKILL_CEILING)
