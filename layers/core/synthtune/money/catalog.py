"""The dated table of models: prices, fine-tuning availability and retirement.

One table, one date. Prices are USD per million tokens as OpenAI lists them for standard (non-batch)
processing; `training` is the per-million-token price of supervised fine-tuning, `fine_tuned_*` the
inference price of the resulting model. Check them against https://openai.com/api/pricing before
relying on a figure, and move CATALOG_AS_OF when you do. A model missing from the table still runs;
its cost is reported as unknown rather than guessed.

Known deadlines (OpenAI's deprecation notices): no new fine-tuning jobs for organisations without
recent fine-tuning use since mid-2026 and for anyone after 2027-01-06; the gpt-4o and gpt-4.1
families shut down on 2027-01-14.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict

CATALOG_AS_OF = dt.date(2026, 11, 21)

OPENAI_FINE_TUNING_ENDS = dt.date(2027, 1, 6)
"""After this day OpenAI accepts no new fine-tuning jobs from anyone."""

BATCH_DISCOUNT = 0.5
"""The Batch API bills half the standard price."""


class ModelPrice(BaseModel):
    model_config = ConfigDict(frozen=True)

    input: float
    cached_input: float
    output: float
    training: float | None = None
    fine_tuned_input: float | None = None
    fine_tuned_cached_input: float | None = None
    fine_tuned_output: float | None = None


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    family: str
    price: ModelPrice
    fine_tunable: bool = False
    training_example_tokens: int | None = None
    """The longest example fine-tuning accepts (longer ones are truncated by the provider)."""
    retires_on: dt.date | None = None


_GPT_4O_AND_4_1_SHUTDOWN = dt.date(2027, 1, 14)
# OpenAI's fine-tuning guide: 65,536 tokens per training example for the gpt-4o and gpt-4.1 families.
_TRAINING_EXAMPLE_TOKENS = 65_536

_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="gpt-4.1-2025-04-14",
        family="gpt-4.1",
        price=ModelPrice(
            input=2.00,
            cached_input=0.50,
            output=8.00,
            training=25.00,
            fine_tuned_input=3.00,
            fine_tuned_cached_input=0.75,
            fine_tuned_output=12.00,
        ),
        fine_tunable=True,
        training_example_tokens=_TRAINING_EXAMPLE_TOKENS,
        retires_on=_GPT_4O_AND_4_1_SHUTDOWN,
    ),
    ModelInfo(
        name="gpt-4.1-mini-2025-04-14",
        family="gpt-4.1",
        price=ModelPrice(
            input=0.40,
            cached_input=0.10,
            output=1.60,
            training=5.00,
            fine_tuned_input=0.80,
            fine_tuned_cached_input=0.20,
            fine_tuned_output=3.20,
        ),
        fine_tunable=True,
        training_example_tokens=_TRAINING_EXAMPLE_TOKENS,
        retires_on=_GPT_4O_AND_4_1_SHUTDOWN,
    ),
    ModelInfo(
        name="gpt-4.1-nano-2025-04-14",
        family="gpt-4.1",
        price=ModelPrice(
            input=0.10,
            cached_input=0.025,
            output=0.40,
            training=1.50,
            fine_tuned_input=0.20,
            fine_tuned_cached_input=0.05,
            fine_tuned_output=0.80,
        ),
        fine_tunable=True,
        training_example_tokens=_TRAINING_EXAMPLE_TOKENS,
        retires_on=_GPT_4O_AND_4_1_SHUTDOWN,
    ),
    ModelInfo(
        name="gpt-4o-2024-08-06",
        family="gpt-4o",
        price=ModelPrice(
            input=2.50,
            cached_input=1.25,
            output=10.00,
            training=25.00,
            fine_tuned_input=3.75,
            fine_tuned_cached_input=1.875,
            fine_tuned_output=15.00,
        ),
        fine_tunable=True,
        training_example_tokens=_TRAINING_EXAMPLE_TOKENS,
        retires_on=_GPT_4O_AND_4_1_SHUTDOWN,
    ),
    ModelInfo(
        name="gpt-4o-mini-2024-07-18",
        family="gpt-4o",
        price=ModelPrice(
            input=0.15,
            cached_input=0.075,
            output=0.60,
            training=3.00,
            fine_tuned_input=0.30,
            fine_tuned_cached_input=0.15,
            fine_tuned_output=1.20,
        ),
        fine_tunable=True,
        training_example_tokens=_TRAINING_EXAMPLE_TOKENS,
        retires_on=_GPT_4O_AND_4_1_SHUTDOWN,
    ),
    ModelInfo(name="gpt-5", family="gpt-5", price=ModelPrice(input=1.25, cached_input=0.125, output=10.00)),
    ModelInfo(
        name="gpt-5-mini", family="gpt-5", price=ModelPrice(input=0.25, cached_input=0.025, output=2.00)
    ),
    ModelInfo(
        name="gpt-5-nano", family="gpt-5", price=ModelPrice(input=0.05, cached_input=0.005, output=0.40)
    ),
)

# Aliases without a snapshot date resolve to the snapshot above.
_ALIASES = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}

_BY_NAME = {model.name: model for model in _MODELS}

# ft:<base model>:<organisation>:<suffix>:<id>, and checkpoints ft:...:ckpt-step-N
_FINE_TUNED = re.compile(r"^ft:(?P<base>[^:]+):")


def base_model_of(model: str) -> str:
    """The base model a fine-tuned model name was trained from; the name itself otherwise."""
    match = _FINE_TUNED.match(model)
    return match.group("base") if match else model


def model_info(model: str) -> ModelInfo | None:
    """The table's entry for a model, fine-tuned models resolved to their base; None when unknown."""
    base = base_model_of(model)
    return _BY_NAME.get(_ALIASES.get(base, base))


# Reasoning models accept only their default temperature; a request that sets one is rejected.
_REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def accepts_temperature(model: str) -> bool:
    return not base_model_of(model).startswith(_REASONING_MODEL_PREFIXES)


def is_fine_tuned(model: str) -> bool:
    return _FINE_TUNED.match(model) is not None


def training_example_limit(model: str) -> int:
    """The provider's per-example token limit for fine-tuning `model`; for a model the table does not
    know, the limit of OpenAI's current fine-tunable models."""
    info = model_info(model)
    if info is None or info.training_example_tokens is None:
        return _TRAINING_EXAMPLE_TOKENS
    return info.training_example_tokens
