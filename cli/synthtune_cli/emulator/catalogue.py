"""Which models the emulator serves, and how good each one is simulated to be."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from synthtune_cli.emulator.abstention import BASE_ABSTENTION_RATE, INVITED_ABSTENTION_RATE

OWNER = "synthtune-emulator"

# Model id -> creation time the /v1/models listing reports (roughly the real release dates).
BASE_MODELS: dict[str, int] = {
    "gpt-4.1": 1744316542,
    "gpt-4.1-2025-04-14": 1744315746,
    "gpt-4.1-mini": 1744318173,
    "gpt-4.1-mini-2025-04-14": 1744317547,
    "gpt-4.1-nano": 1744321707,
    "gpt-4.1-nano-2025-04-14": 1744321025,
    "gpt-4o": 1715367049,
    "gpt-4o-2024-08-06": 1722814719,
    "gpt-4o-mini": 1721172741,
    "gpt-4o-mini-2024-07-18": 1721172717,
    "gpt-5": 1754425777,
    "gpt-5-mini": 1754425928,
    "gpt-5-nano": 1754426384,
    "o3": 1744225308,
    "o4-mini": 1744225351,
    "gpt-3.5-turbo": 1677610602,
}

# The date OpenAI shuts each model down (its deprecations page, as of 2026-12-01), reported as `shutdown_date`
# by /v1/models. The emulator reports it and keeps serving: it simulates the service, it does not enforce.
_SHUTDOWN_DATES: dict[str, str] = {
    **dict.fromkeys(("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "gpt-3.5-turbo", "o4-mini"), "2026-10-23"),
    **dict.fromkeys(("gpt-5", "gpt-5-mini", "gpt-5-nano", "o3"), "2026-12-11"),
    **dict.fromkeys(
        (
            "gpt-4o",
            "gpt-4o-2024-08-06",
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            "gpt-4.1",
            "gpt-4.1-2025-04-14",
            "gpt-4.1-mini",
            "gpt-4.1-mini-2025-04-14",
        ),
        "2027-01-14",
    ),
}

# Fine-tuning an alias trains its snapshot, as on OpenAI: the job and the model name carry the snapshot.
FINE_TUNABLE_SNAPSHOTS: dict[str, str] = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}
_FINE_TUNABLE = set(FINE_TUNABLE_SNAPSHOTS) | set(FINE_TUNABLE_SNAPSHOTS.values())

_SNAPSHOT_DATE = re.compile(r"-\d{4}-\d{2}-\d{2}$")

# (name prefix, skill), first match wins; the strong reasoning families keep their skill in every size.
_SKILL_BY_PREFIX = (
    ("gpt-5", 0.93),
    ("o3", 0.93),
    ("o4", 0.93),
    ("gpt-3.5", 0.45),
)
_UNKNOWN_SKILL = 0.5


@dataclass(frozen=True)
class MemorisedReply:
    """What a fine-tuned model says, verbatim, when asked a question from its training file."""

    content: str
    steps: tuple[str, ...]
    final_answer: str


@dataclass(frozen=True)
class SimulatedModel:
    """A model's simulated abilities.

    `family` keys its draws: an alias and its snapshot, and every model fine-tuned from them, share one
    family and so one draw per question; a better model only turns wrong answers right.

    Abstaining (what fine-tuning teaches about knowledge, see `learning`): on a question it gets wrong the
    model says "I don't know" with `abstention_rate`; on one it gets right, with `over_abstention`. A base
    model has `learned_abstention` 0, `abstention_damping` 1 and `over_abstention` 0.
    """

    family: str
    skill: float
    format_miss_rate: float
    category_skill: Mapping[str | None, float] = field(default_factory=dict)
    memory: Mapping[str, MemorisedReply] = field(default_factory=dict)
    learned_abstention: float = 0.0
    """Abstention taught by training examples that answer "I don't know"."""
    abstention_damping: float = 1.0
    """What is left of the base model's own abstention after training on answers it did not know."""
    over_abstention: float = 0.0
    """How often it says "I don't know" to a question it would have answered right."""

    def skill_for(self, category: str | None) -> float:
        return self.category_skill.get(category, self.skill)

    def abstention_rate(self, invited: bool) -> float:
        """How often a wrong answer is replaced by "I don't know"; `invited` when the system prompt says
        the model may answer so."""
        prompted = INVITED_ABSTENTION_RATE if invited else BASE_ABSTENTION_RATE
        return self.learned_abstention + (1 - self.learned_abstention) * prompted * self.abstention_damping


def family_of(model: str) -> str:
    """`gpt-4.1-mini-2025-04-14` and `ft:gpt-4.1-mini-2025-04-14:...` both belong to `gpt-4.1-mini`."""
    if model.startswith("ft:"):
        model = model.split(":")[1]
    return _SNAPSHOT_DATE.sub("", model)


def base_skill(model: str) -> float:
    family = family_of(model)
    for prefix, skill in _SKILL_BY_PREFIX:
        if family.startswith(prefix):
            return skill
    if family.endswith("-nano"):
        return 0.38
    if family.endswith("-mini"):
        return 0.62
    if family.startswith(("gpt-4.1", "gpt-4o")):
        return 0.9
    return _UNKNOWN_SKILL


def base_format_miss_rate(model: str) -> float:
    family = family_of(model)
    if family.endswith("-nano"):
        return 0.15
    if family.endswith("-mini"):
        return 0.05
    return 0.01


def base_model(model: str) -> SimulatedModel:
    return SimulatedModel(family_of(model), base_skill(model), base_format_miss_rate(model))


def is_fine_tunable(model: str) -> bool:
    return model in _FINE_TUNABLE


def training_snapshot(model: str) -> str:
    return FINE_TUNABLE_SNAPSHOTS.get(model, model)


def shutdown_date(model: str) -> str | None:
    """When OpenAI shuts `model` down (YYYY-MM-DD); a fine-tuned model goes with its base snapshot."""
    if model.startswith("ft:"):
        model = model.split(":")[1]
    return _SHUTDOWN_DATES.get(model)


def fine_tuned_model_name(snapshot: str, suffix: str | None, unique: str) -> str:
    return f"ft:{snapshot}:{OWNER}:{suffix or ''}:{unique}"
