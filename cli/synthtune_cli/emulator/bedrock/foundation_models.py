"""The Bedrock foundation models the emulator serves: identity, lifecycle, how they are invoked and
customised, and how good each one is simulated to be.

The catalogue is as of `CATALOGUE_DATE` (2026-12-01). Lifecycle states are fixed facts of that date, not
worked out from the emulator's clock (tests run it in 2023): Nova Premier's end of life has passed, so
Converse refuses it whatever the clock says, as Bedrock does on that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from synthtune_cli.emulator.bedrock.protocol import Arns, arn_resource
from synthtune_cli.emulator.catalogue import SimulatedModel

# The day the catalogue describes: a lifecycle date on or before it has passed.
CATALOGUE_DATE = "2026-12-01"
# Geo and global cross-Region inference profiles: `us.amazon.nova-2-lite-v1:0` serves amazon.nova-2-lite-v1:0.
PROFILE_PREFIXES = ("us", "eu", "apac", "global")


@dataclass(frozen=True)
class HyperParameter:
    """One customisation hyperparameter: its type, inclusive range and default, as Bedrock documents it."""

    name: str
    kind: type[int] | type[float]
    minimum: float
    maximum: float
    default: str


_NOVA_HYPERPARAMETERS = (
    HyperParameter("epochCount", int, 1, 5, "2"),
    HyperParameter("learningRate", float, 1e-6, 1e-4, "0.00001"),
    HyperParameter("learningRateWarmupSteps", int, 0, 100, "10"),
)
_LLAMA_HYPERPARAMETERS = (
    HyperParameter("epochCount", int, 1, 10, "5"),
    HyperParameter("batchSize", int, 1, 1, "1"),
    HyperParameter("learningRate", float, 5e-6, 0.1, "0.0001"),
)


@dataclass(frozen=True)
class Customization:
    """How a foundation model is fine-tuned: the id a job names as its base, and the job's rules."""

    model_id: str
    hyperparameters: tuple[HyperParameter, ...] = _NOVA_HYPERPARAMETERS
    min_examples: int = 8
    max_examples: int = 20_000
    accepts_validation_data: bool = True
    # Served per token through CreateCustomModelDeployment; otherwise only Provisioned Throughput serves it.
    on_demand_deployment: bool = False


@dataclass(frozen=True)
class Lifecycle:
    status: str = "ACTIVE"
    legacy: str | None = None
    end_of_life: str | None = None

    @property
    def ended(self) -> bool:
        return self.end_of_life is not None and self.end_of_life <= CATALOGUE_DATE


@dataclass(frozen=True)
class FoundationModel:
    model_id: str
    name: str
    provider: str
    skill: float
    format_miss_rate: float
    profile_only: bool = False
    structured_output: bool = False
    lifecycle: Lifecycle = Lifecycle()
    customization: Customization | None = None

    @property
    def simulated(self) -> SimulatedModel:
        """The model's simulated abilities; its draws are keyed by its id, which custom models keep."""
        return SimulatedModel(self.model_id, self.skill, self.format_miss_rate)

    def summary(self, arns: Arns) -> dict[str, Any]:
        """The base model as GetFoundationModel and ListFoundationModels describe it."""
        inference = ["INFERENCE_PROFILE"] if self.profile_only else ["ON_DEMAND"]
        return _summary(self, self.model_id, arns, inference)

    def customization_summary(self, arns: Arns) -> dict[str, Any]:
        """The customisation variant (`amazon.nova-micro-v1:0:128k`): fine-tunable, served provisioned."""
        assert self.customization is not None
        return _summary(self, self.customization.model_id, arns, ["PROVISIONED"])


def _summary(model: FoundationModel, model_id: str, arns: Arns, inference: list[str]) -> dict[str, Any]:
    lifecycle: dict[str, Any] = {"status": model.lifecycle.status}
    if model.lifecycle.legacy is not None:
        lifecycle["legacyTime"] = _date_time(model.lifecycle.legacy)
    if model.lifecycle.end_of_life is not None:
        lifecycle["endOfLifeTime"] = _date_time(model.lifecycle.end_of_life)
    return {
        "modelArn": arns.foundation_model(model_id),
        "modelId": model_id,
        "modelName": model.name,
        "providerName": model.provider,
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "customizationsSupported": ["FINE_TUNING"] if model.customization else [],
        "inferenceTypesSupported": inference,
        "modelLifecycle": lifecycle,
    }


def _date_time(date: str) -> str:
    return datetime.fromisoformat(date).replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# Format-miss rates follow size, as on the OpenAI side: the smallest 0.15, "lite" 0.05, the rest 0.01.
FOUNDATION_MODELS: tuple[FoundationModel, ...] = (
    FoundationModel(
        "amazon.nova-micro-v1:0",
        "Nova Micro",
        "Amazon",
        0.40,
        0.15,
        customization=Customization("amazon.nova-micro-v1:0:128k", on_demand_deployment=True),
    ),
    FoundationModel(
        "amazon.nova-lite-v1:0",
        "Nova Lite",
        "Amazon",
        0.55,
        0.05,
        customization=Customization("amazon.nova-lite-v1:0:300k", on_demand_deployment=True),
    ),
    FoundationModel(
        "amazon.nova-pro-v1:0",
        "Nova Pro",
        "Amazon",
        0.80,
        0.01,
        customization=Customization("amazon.nova-pro-v1:0:300k", on_demand_deployment=True),
    ),
    FoundationModel(
        "amazon.nova-premier-v1:0",
        "Nova Premier",
        "Amazon",
        0.90,
        0.01,
        profile_only=True,
        lifecycle=Lifecycle("LEGACY", legacy="2026-03-13", end_of_life="2026-09-14"),
    ),
    FoundationModel(
        "amazon.nova-2-lite-v1:0",
        "Nova 2 Lite",
        "Amazon",
        0.88,
        0.05,
        profile_only=True,
        customization=Customization(
            "amazon.nova-2-lite-v1:0:256k", min_examples=200, accepts_validation_data=False
        ),
    ),
    FoundationModel(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Claude Haiku 4.5",
        "Anthropic",
        0.86,
        0.01,
        profile_only=True,
        structured_output=True,
    ),
    FoundationModel(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Claude Sonnet 4.5",
        "Anthropic",
        0.94,
        0.01,
        profile_only=True,
        structured_output=True,
    ),
    FoundationModel("openai.gpt-oss-120b-1:0", "gpt-oss-120b", "OpenAI", 0.90, 0.01, structured_output=True),
    FoundationModel(
        "meta.llama3-1-8b-instruct-v1:0",
        "Llama 3.1 8B Instruct",
        "Meta",
        0.35,
        0.15,
        customization=Customization(
            "meta.llama3-1-8b-instruct-v1:0:128k", hyperparameters=_LLAMA_HYPERPARAMETERS
        ),
    ),
    FoundationModel(
        "meta.llama3-1-70b-instruct-v1:0",
        "Llama 3.1 70B Instruct",
        "Meta",
        0.70,
        0.01,
        customization=Customization(
            "meta.llama3-1-70b-instruct-v1:0:128k", hyperparameters=_LLAMA_HYPERPARAMETERS
        ),
    ),
)

_BY_ID = {model.model_id: model for model in FOUNDATION_MODELS}
_BY_CUSTOMIZATION_ID = {
    model.customization.model_id: model for model in FOUNDATION_MODELS if model.customization
}


@dataclass(frozen=True)
class ModelReference:
    """What a model identifier names: a base model (perhaps through an inference profile) or its
    customisation variant."""

    model: FoundationModel
    via_profile: bool = False
    customization_variant: bool = False


def find_foundation_model(identifier: str) -> ModelReference | None:
    """The foundation model an id, a foundation-model ARN, a profile id or a profile ARN names."""
    resource = arn_resource(identifier)
    if resource is not None:
        kind, rest = resource
        if kind not in ("foundation-model", "inference-profile"):
            return None
        identifier = rest
    via_profile = False
    prefix, dot, rest = identifier.partition(".")
    if dot and prefix in PROFILE_PREFIXES:
        identifier, via_profile = rest, True
    if identifier in _BY_ID:
        return ModelReference(_BY_ID[identifier], via_profile)
    if identifier in _BY_CUSTOMIZATION_ID:
        return ModelReference(_BY_CUSTOMIZATION_ID[identifier], via_profile, customization_variant=True)
    return None


def customization_base(identifier: str) -> FoundationModel | None:
    """The foundation model a customisation job may start from: its customisation id or that id's ARN."""
    resource = arn_resource(identifier)
    if resource is not None:
        kind, identifier = resource
        if kind != "foundation-model":
            return None
    return _BY_CUSTOMIZATION_ID.get(identifier)


def customization_ids() -> list[str]:
    return list(_BY_CUSTOMIZATION_ID)


def catalogue_summaries(arns: Arns) -> list[dict[str, Any]]:
    """Every base model, each followed by its customisation variant, as ListFoundationModels lists them."""
    summaries = []
    for model in FOUNDATION_MODELS:
        summaries.append(model.summary(arns))
        if model.customization is not None:
            summaries.append(model.customization_summary(arns))
    return summaries
