"""The dated table of models: list prices, fine-tuning, serving and lifecycle, per provider.

One table, one date (CATALOG_AS_OF), every figure with its source. Prices are USD per million tokens at
the standard on-demand tier (Bedrock: us-east-1; inference profiles at their own price); `training` is per
million trained tokens (the dataset's tokens times the epochs); `fine_tuned_*` the inference price of a
fine-tuned model; `custom_model_storage_per_month` what Bedrock charges each month a custom model is kept;
`provisioned_throughput_per_hour` one model unit without commitment. A model missing from the table still
runs; its cost is reported as unknown rather than guessed, and a budget cannot be enforced on it.

Names are canonical (`contracts.models`): OpenAI ids bare, Bedrock ids as `bedrock/<model id>`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from synthtune.contracts.models import parse_model

CATALOG_AS_OF = dt.date(2026, 12, 1)

OPENAI_FINE_TUNING_ENDS = dt.date(2027, 1, 6)
"""After this day OpenAI accepts no new fine-tuning jobs from anyone (notice 2026-05-07)."""

OPENAI_FINE_TUNING_RESTRICTED = dt.date(2026, 7, 2)
"""Since this day only organisations that used a fine-tuned model in the last 60 days may create jobs."""

OPENAI_BATCH_DISCOUNT = 0.5
"""The Batch API bills half the standard price."""

# -- sources ----------------------------------------------------------------------------------------
_OPENAI_PRICING = "OpenAI API pricing page (https://openai.com/api/pricing), read 2026-11-21"
_OPENAI_DEPRECATIONS = (
    "OpenAI deprecations page (https://platform.openai.com/docs/deprecations), read 2026-12-01"
)
_BEDROCK_PRICE_LIST = "AWS Price List API, Amazon Bedrock, us-east-1, published 2026-09-01"
_BEDROCK_PRICING_CACHE = "AWS pricing cache in aws/agent-toolkit-for-aws, last updated 2026-09-03"
_NOVA_FINE_TUNING_PRICE = (
    "AWS Machine Learning blog, 'Cost-efficient custom text-to-SQL using Amazon Nova Micro and Amazon "
    "Bedrock on-demand inference' (2026-04): training $0.001 per 1,000 tokens, storage $1.95 per month, "
    "on-demand inference at the base model's price"
)
_BEDROCK_FINE_TUNING_MODELS = (
    "Amazon Bedrock user guide, 'Supported models and Regions for fine-tuning' (custom-model-supported.html)"
)
_BEDROCK_ON_DEMAND_DEPLOYMENT = (
    "Amazon Bedrock user guide, 'Deploy a custom model for on-demand inference': Nova Micro, Lite and Pro "
    "customised on or after 2025-07-16, us-east-1 and us-west-2"
)
_NOVA_HYPERPARAMETERS = "Amazon Bedrock user guide, 'Amazon Nova hyperparameters' (cm-hp-nova-mm.html)"
_NOVA_DATA_LIMITS = (
    "aws-samples/amazon-nova-samples, nova_ft_dataset_validator.py: Nova v1 8-20,000 examples, "
    "Nova 2 Lite SFT 200-20,000"
)
_BEDROCK_LIFECYCLE = "Amazon Bedrock model lifecycle page (model-lifecycle.html), read 2026-09-29"


class ModelPrice(BaseModel):
    model_config = ConfigDict(frozen=True)

    input: float
    output: float
    cached_input: float | None = None
    training: float | None = None
    fine_tuned_input: float | None = None
    fine_tuned_cached_input: float | None = None
    fine_tuned_output: float | None = None
    custom_model_storage_per_month: float | None = None
    provisioned_throughput_per_hour: float | None = None


Serving = Literal["on_demand", "provisioned_throughput"]


class FineTuning(BaseModel):
    """How a model is fine-tuned and how its fine-tunes answer."""

    model_config = ConfigDict(frozen=True)

    base_id: str
    """The id a job names as its base (Bedrock's customisation id, e.g. `amazon.nova-micro-v1:0:128k`)."""
    serving: Serving = "on_demand"
    """on_demand: billed per token, nothing while idle; provisioned_throughput: billed by the hour."""
    regions: tuple[str, ...] = ()
    """The AWS Regions a job can run in (empty: wherever the provider is)."""
    min_examples: int = 10
    max_examples: int | None = None
    validation_file: bool = True
    max_example_tokens: int | None = None
    """The longest example a job accepts (longer ones are truncated or refused)."""
    default_epochs: int | None = None
    """The epochs a job runs when none are asked for; None: OpenAI's automatic rule (see
    `money.estimate.epochs_for`)."""


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    family: str
    price: ModelPrice | None = None
    aliases: tuple[str, ...] = ()
    fine_tuning: FineTuning | None = None
    temperature_range: tuple[float, float] | None = (0.0, 2.0)
    """The temperatures a request may set; None: only the model's default (reasoning models)."""
    shutdown_on: dt.date | None = None
    """From this day the provider no longer serves the model."""
    notice: str = ""
    """Where the shutdown was announced, and when."""
    replacement: str | None = None
    """What the provider names in its place."""
    replacement_fine_tunable: bool = True
    """Whether that replacement can be fine-tuned (OpenAI's gpt-6-luna cannot)."""
    sources: tuple[str, ...] = ()

    @property
    def provider(self) -> str:
        return parse_model(self.name).provider


# -- OpenAI -----------------------------------------------------------------------------------------
_GPT_4O_AND_4_1_SHUTDOWN = dt.date(2027, 1, 14)
_NOTICE_2026_10_14 = "OpenAI deprecation notice of 2026-10-14"
_NOTICE_2026_04_22 = "OpenAI deprecation notice of 2026-04-22 (legacy GPT model snapshots)"
_NOTICE_2026_06_11 = "OpenAI deprecation notice of 2026-06-11"
# OpenAI's fine-tuning guide: 65,536 tokens per training example for the gpt-4o and gpt-4.1 families.
_OPENAI_FINE_TUNING = {"min_examples": 10, "max_example_tokens": 65_536}
_REASONING: tuple[float, float] | None = None


def _openai_tunable(name: str) -> FineTuning:
    return FineTuning(base_id=name, **_OPENAI_FINE_TUNING)


def _retired(
    name: str, family: str, shutdown_on: dt.date, notice: str, *, reasoning: bool = False
) -> ModelInfo:
    """An OpenAI model kept in the table for its date alone (no price: it can no longer be used)."""
    return ModelInfo(
        name=name,
        family=family,
        shutdown_on=shutdown_on,
        notice=notice,
        temperature_range=_REASONING if reasoning else (0.0, 2.0),
        sources=(_OPENAI_DEPRECATIONS,),
    )


_OPENAI: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="gpt-4.1-2025-04-14",
        family="gpt-4.1",
        aliases=("gpt-4.1",),
        price=ModelPrice(
            input=2.00,
            cached_input=0.50,
            output=8.00,
            training=25.00,
            fine_tuned_input=3.00,
            fine_tuned_cached_input=0.75,
            fine_tuned_output=12.00,
        ),
        fine_tuning=_openai_tunable("gpt-4.1-2025-04-14"),
        shutdown_on=_GPT_4O_AND_4_1_SHUTDOWN,
        notice=_NOTICE_2026_10_14,
        replacement="gpt-6-luna",
        replacement_fine_tunable=False,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-4.1-mini-2025-04-14",
        family="gpt-4.1",
        aliases=("gpt-4.1-mini",),
        price=ModelPrice(
            input=0.40,
            cached_input=0.10,
            output=1.60,
            training=5.00,
            fine_tuned_input=0.80,
            fine_tuned_cached_input=0.20,
            fine_tuned_output=3.20,
        ),
        fine_tuning=_openai_tunable("gpt-4.1-mini-2025-04-14"),
        shutdown_on=_GPT_4O_AND_4_1_SHUTDOWN,
        notice=_NOTICE_2026_10_14,
        replacement="gpt-6-luna",
        replacement_fine_tunable=False,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-4.1-nano-2025-04-14",
        family="gpt-4.1",
        aliases=("gpt-4.1-nano",),
        price=ModelPrice(
            input=0.10,
            cached_input=0.025,
            output=0.40,
            training=1.50,
            fine_tuned_input=0.20,
            fine_tuned_cached_input=0.05,
            fine_tuned_output=0.80,
        ),
        fine_tuning=_openai_tunable("gpt-4.1-nano-2025-04-14"),
        shutdown_on=dt.date(2026, 10, 23),
        notice=_NOTICE_2026_04_22,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-4o-2024-08-06",
        family="gpt-4o",
        aliases=("gpt-4o",),
        price=ModelPrice(
            input=2.50,
            cached_input=1.25,
            output=10.00,
            training=25.00,
            fine_tuned_input=3.75,
            fine_tuned_cached_input=1.875,
            fine_tuned_output=15.00,
        ),
        fine_tuning=_openai_tunable("gpt-4o-2024-08-06"),
        shutdown_on=_GPT_4O_AND_4_1_SHUTDOWN,
        notice=_NOTICE_2026_10_14,
        replacement="gpt-6-luna",
        replacement_fine_tunable=False,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-4o-mini-2024-07-18",
        family="gpt-4o",
        aliases=("gpt-4o-mini",),
        price=ModelPrice(
            input=0.15,
            cached_input=0.075,
            output=0.60,
            training=3.00,
            fine_tuned_input=0.30,
            fine_tuned_cached_input=0.15,
            fine_tuned_output=1.20,
        ),
        fine_tuning=_openai_tunable("gpt-4o-mini-2024-07-18"),
        shutdown_on=_GPT_4O_AND_4_1_SHUTDOWN,
        notice=_NOTICE_2026_10_14,
        replacement="gpt-6-luna",
        replacement_fine_tunable=False,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-5",
        family="gpt-5",
        price=ModelPrice(input=1.25, cached_input=0.125, output=10.00),
        temperature_range=_REASONING,
        shutdown_on=dt.date(2026, 12, 11),
        notice=_NOTICE_2026_06_11,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-5-mini",
        family="gpt-5",
        price=ModelPrice(input=0.25, cached_input=0.025, output=2.00),
        temperature_range=_REASONING,
        shutdown_on=dt.date(2026, 12, 11),
        notice=_NOTICE_2026_06_11,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    ModelInfo(
        name="gpt-5-nano",
        family="gpt-5",
        price=ModelPrice(input=0.05, cached_input=0.005, output=0.40),
        temperature_range=_REASONING,
        shutdown_on=dt.date(2026, 12, 11),
        notice=_NOTICE_2026_06_11,
        sources=(_OPENAI_PRICING, _OPENAI_DEPRECATIONS),
    ),
    _retired("gpt-5-pro", "gpt-5", dt.date(2026, 12, 11), _NOTICE_2026_06_11, reasoning=True),
    _retired("o3", "o3", dt.date(2026, 12, 11), _NOTICE_2026_06_11, reasoning=True),
    _retired("o3-pro", "o3", dt.date(2026, 12, 11), _NOTICE_2026_06_11, reasoning=True),
    _retired("o1", "o1", dt.date(2026, 10, 23), _NOTICE_2026_04_22, reasoning=True),
    _retired("o3-mini", "o3", dt.date(2026, 10, 23), _NOTICE_2026_04_22, reasoning=True),
    _retired("o4-mini", "o4", dt.date(2026, 10, 23), _NOTICE_2026_04_22, reasoning=True),
    _retired("gpt-3.5-turbo", "gpt-3.5", dt.date(2026, 10, 23), _NOTICE_2026_04_22),
    _retired("gpt-4-0613", "gpt-4", dt.date(2026, 10, 23), _NOTICE_2026_04_22),
    _retired("gpt-4-turbo", "gpt-4", dt.date(2026, 10, 23), _NOTICE_2026_04_22),
    _retired("gpt-4o-2024-05-13", "gpt-4o", dt.date(2026, 10, 23), _NOTICE_2026_04_22),
)

# -- Amazon Bedrock -----------------------------------------------------------------------------------
_BEDROCK_TEMPERATURE = (0.0, 1.0)
"""The temperatures Bedrock's Converse takes."""
_NOVA_STORAGE = 1.95
_BY_THE_HOUR = {"fine_tuned_input": 0.0, "fine_tuned_cached_input": 0.0, "fine_tuned_output": 0.0}
"""A fine-tune on Provisioned Throughput is billed by the hour it exists, not by the token."""
_NOVA_PROVISIONED_HOUR = 60.50
"""One model unit of Nova Micro, Lite or Pro, no commitment (the Price List gives one figure for all)."""
_NOVA_V1_EXAMPLES = {"min_examples": 8, "max_examples": 20_000}
_NOVA_DEFAULT_EPOCHS = 2
"""epochCount's default (Amazon Nova hyperparameters)."""


def _nova_v1(
    name: str, base_id: str, context: int, price: ModelPrice, *, aliases: tuple[str, ...]
) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="nova",
        aliases=aliases,
        price=price,
        fine_tuning=FineTuning(
            base_id=base_id,
            serving="on_demand",
            regions=("us-east-1",),
            max_example_tokens=context,
            default_epochs=_NOVA_DEFAULT_EPOCHS,
            **_NOVA_V1_EXAMPLES,
        ),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(
            _BEDROCK_PRICE_LIST,
            _NOVA_FINE_TUNING_PRICE,
            _BEDROCK_FINE_TUNING_MODELS,
            _BEDROCK_ON_DEMAND_DEPLOYMENT,
            _NOVA_HYPERPARAMETERS,
            _NOVA_DATA_LIMITS,
        ),
    )


def _per_token_as_fine_tuned(
    input_price: float, cached: float, output: float, **more: float | None
) -> ModelPrice:
    """A Nova price whose fine-tunes answer at the base model's per-token price (on-demand deployment)."""
    return ModelPrice(
        input=input_price,
        cached_input=cached,
        output=output,
        fine_tuned_input=input_price,
        fine_tuned_cached_input=cached,
        fine_tuned_output=output,
        custom_model_storage_per_month=_NOVA_STORAGE,
        provisioned_throughput_per_hour=_NOVA_PROVISIONED_HOUR,
        **more,
    )


_BEDROCK: tuple[ModelInfo, ...] = (
    _nova_v1(
        "bedrock/amazon.nova-micro-v1:0",
        "amazon.nova-micro-v1:0:128k",
        128_000,
        _per_token_as_fine_tuned(0.035, 0.00875, 0.14, training=1.00),
        aliases=("bedrock/us.amazon.nova-micro-v1:0",),
    ),
    # Training prices for Nova Lite and Pro are not in any source we could read: left unpriced.
    _nova_v1(
        "bedrock/amazon.nova-lite-v1:0",
        "amazon.nova-lite-v1:0:300k",
        300_000,
        _per_token_as_fine_tuned(0.06, 0.015, 0.24),
        aliases=("bedrock/us.amazon.nova-lite-v1:0",),
    ),
    _nova_v1(
        "bedrock/amazon.nova-pro-v1:0",
        "amazon.nova-pro-v1:0:300k",
        300_000,
        _per_token_as_fine_tuned(0.80, 0.20, 3.20),
        aliases=("bedrock/us.amazon.nova-pro-v1:0",),
    ),
    ModelInfo(
        # Answers only through a cross-Region inference profile; `us.` costs about 10% more than `global.`.
        name="bedrock/us.amazon.nova-2-lite-v1:0",
        family="nova-2",
        price=ModelPrice(
            input=0.33, cached_input=0.0825, output=2.75, custom_model_storage_per_month=_NOVA_STORAGE
        ),
        # On-demand deployment of Nova 2 Lite fine-tunes is not documented: assume Provisioned Throughput.
        fine_tuning=FineTuning(
            base_id="amazon.nova-2-lite-v1:0:256k",
            serving="provisioned_throughput",
            regions=("us-east-1",),
            min_examples=200,
            max_examples=20_000,
            validation_file=False,
            max_example_tokens=256_000,
            default_epochs=_NOVA_DEFAULT_EPOCHS,
        ),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICE_LIST, _BEDROCK_FINE_TUNING_MODELS, _NOVA_DATA_LIMITS),
    ),
    ModelInfo(
        name="bedrock/global.amazon.nova-2-lite-v1:0",
        family="nova-2",
        price=ModelPrice(input=0.30, cached_input=0.075, output=2.50),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICING_CACHE,),
    ),
    ModelInfo(
        name="bedrock/us.amazon.nova-premier-v1:0",
        family="nova",
        aliases=("bedrock/amazon.nova-premier-v1:0",),
        price=ModelPrice(input=2.50, cached_input=0.625, output=12.50),
        temperature_range=_BEDROCK_TEMPERATURE,
        shutdown_on=dt.date(2026, 9, 14),
        notice="Amazon Bedrock model lifecycle: legacy from 2026-03-13, end of life 2026-09-14",
        replacement="bedrock/us.amazon.nova-2-lite-v1:0",
        sources=(_BEDROCK_PRICE_LIST, _BEDROCK_LIFECYCLE),
    ),
    ModelInfo(
        name="bedrock/anthropic.claude-3-haiku-20240307-v1:0",
        family="claude-3",
        aliases=("bedrock/us.anthropic.claude-3-haiku-20240307-v1:0",),
        price=ModelPrice(input=0.25, output=1.25),
        temperature_range=_BEDROCK_TEMPERATURE,
        shutdown_on=dt.date(2026, 9, 10),
        notice="Amazon Bedrock model lifecycle: end of life 2026-09-10",
        replacement="bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        sources=(_BEDROCK_LIFECYCLE,),
    ),
    ModelInfo(
        name="bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        family="claude-4.5",
        price=ModelPrice(input=1.10, cached_input=0.11, output=5.50),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICING_CACHE,),
    ),
    ModelInfo(
        name="bedrock/global.anthropic.claude-haiku-4-5-20251001-v1:0",
        family="claude-4.5",
        price=ModelPrice(input=1.00, cached_input=0.10, output=5.00),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICING_CACHE,),
    ),
    ModelInfo(
        name="bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        family="claude-4.5",
        price=ModelPrice(input=3.30, cached_input=0.33, output=16.50),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICING_CACHE,),
    ),
    ModelInfo(
        name="bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        family="claude-4.5",
        price=ModelPrice(input=3.00, cached_input=0.30, output=15.00),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICING_CACHE,),
    ),
    ModelInfo(
        name="bedrock/openai.gpt-oss-120b-1:0",
        family="gpt-oss",
        price=ModelPrice(input=0.15, output=0.60),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICING_CACHE,),
    ),
    ModelInfo(
        name="bedrock/meta.llama3-1-8b-instruct-v1:0",
        family="llama-3.1",
        aliases=("bedrock/us.meta.llama3-1-8b-instruct-v1:0",),
        price=ModelPrice(
            input=0.22,
            output=0.22,
            training=1.49,
            custom_model_storage_per_month=1.95,
            provisioned_throughput_per_hour=24.00,
            **_BY_THE_HOUR,
        ),
        fine_tuning=FineTuning(
            base_id="meta.llama3-1-8b-instruct-v1:0:128k",
            serving="provisioned_throughput",
            regions=("us-west-2",),
            max_example_tokens=128_000,
        ),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICE_LIST, _BEDROCK_PRICING_CACHE, _BEDROCK_FINE_TUNING_MODELS),
    ),
    ModelInfo(
        name="bedrock/meta.llama3-1-70b-instruct-v1:0",
        family="llama-3.1",
        aliases=("bedrock/us.meta.llama3-1-70b-instruct-v1:0",),
        price=ModelPrice(
            input=0.72,
            output=0.72,
            training=7.99,
            custom_model_storage_per_month=1.95,
            provisioned_throughput_per_hour=24.00,
            **_BY_THE_HOUR,
        ),
        fine_tuning=FineTuning(
            base_id="meta.llama3-1-70b-instruct-v1:0:128k",
            serving="provisioned_throughput",
            regions=("us-west-2",),
            max_example_tokens=128_000,
        ),
        temperature_range=_BEDROCK_TEMPERATURE,
        sources=(_BEDROCK_PRICE_LIST, _BEDROCK_PRICING_CACHE, _BEDROCK_FINE_TUNING_MODELS),
    ),
)

MODELS: tuple[ModelInfo, ...] = (*_OPENAI, *_BEDROCK)

_BY_NAME: dict[str, ModelInfo] = {}
for _model in MODELS:
    for _name in (_model.name, *_model.aliases):
        _BY_NAME[_name] = _model
_BY_FINE_TUNING_BASE = {
    f"{_model.provider}/{_model.fine_tuning.base_id}": _model for _model in MODELS if _model.fine_tuning
}

# OpenAI: ft:<base model>:<organisation>:<suffix>:<id>, and checkpoints ft:...:ckpt-step-N.
_OPENAI_FINE_TUNED = re.compile(r"^ft:(?P<base>[^:]+):")
# Bedrock: arn:aws:bedrock:<region>:<account>:custom-model/<customisation base id>/<id>.
_BEDROCK_CUSTOM_MODEL = re.compile(r"^arn:aws[\w-]*:bedrock:[^:]*:\d*:custom-model/(?P<base>.+)/[^/]+$")


def base_model_of(model: str) -> str:
    """The base model a fine-tuned model was trained from (canonical name); the name itself otherwise."""
    ref = parse_model(model)
    if ref.provider == "openai":
        match = _OPENAI_FINE_TUNED.match(ref.id)
        return match.group("base") if match else ref.name
    match = _BEDROCK_CUSTOM_MODEL.match(ref.id)
    if match:
        tuned_from = _BY_FINE_TUNING_BASE.get(f"{ref.provider}/{match.group('base')}")
        return tuned_from.name if tuned_from else f"{ref.provider}/{match.group('base')}"
    return ref.name


def fine_tunable_by_base_id(provider: str, base_id: str) -> ModelInfo | None:
    """The model a provider's job names as `base_id` (Bedrock's `amazon.nova-micro-v1:0:128k`)."""
    return _BY_FINE_TUNING_BASE.get(f"{provider}/{base_id}")


def is_fine_tuned(model: str) -> bool:
    return base_model_of(model) != parse_model(model).name


def model_info(model: str) -> ModelInfo | None:
    """The table's entry for a model (fine-tuned models resolved to their base); None when unknown."""
    base = base_model_of(model)
    return _BY_NAME.get(base) or _BY_FINE_TUNING_BASE.get(base)


def accepts_temperature(model: str) -> bool:
    """Reasoning models take only their default temperature; a request that sets one is rejected."""
    info = model_info(model)
    if info is not None:
        return info.temperature_range is not None
    return not parse_model(model).id.startswith(("o1", "o3", "o4", "gpt-5"))


def temperature_range(model: str) -> tuple[float, float] | None:
    info = model_info(model)
    if info is not None:
        return info.temperature_range
    if not accepts_temperature(model):
        return None
    return (0.0, 1.0) if parse_model(model).provider == "bedrock" else (0.0, 2.0)


def training_example_limit(model: str) -> int:
    """The provider's per-example token limit for fine-tuning `model`; OpenAI's for a model the table
    does not know."""
    info = model_info(model)
    if info is None or info.fine_tuning is None or info.fine_tuning.max_example_tokens is None:
        return int(_OPENAI_FINE_TUNING["max_example_tokens"])
    return info.fine_tuning.max_example_tokens
