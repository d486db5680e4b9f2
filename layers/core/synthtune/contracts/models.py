"""Naming models: `provider/model-id`, as LiteLLM and distilabel users write them.

`bedrock/amazon.nova-micro-v1:0` is Amazon Bedrock's Nova Micro; `openai/gpt-4.1-2025-04-14` and the bare
`gpt-4.1-2025-04-14` are the same OpenAI model, so configurations written before Bedrock existed keep
working. A prefix that is not a provider's name is part of an OpenAI model id (`meta-llama/Llama-3-8B` on an
OpenAI-compatible server), and an id may hold further slashes (a Bedrock ARN).

The canonical form of a name — the one usage is recorded under and prices are looked up by — leaves
OpenAI's ids bare and prefixes every other provider's.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

ProviderName = Literal["openai", "bedrock"]
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
DEFAULT_PROVIDER: ProviderName = "openai"
PROVIDER_TITLES: dict[str, str] = {"openai": "OpenAI", "bedrock": "Amazon Bedrock"}
"""How a report names each provider."""


class ModelRef(NamedTuple):
    provider: ProviderName
    id: str
    """The model as its provider names it (an OpenAI model id, a Bedrock model id, profile id or ARN)."""

    @property
    def name(self) -> str:
        """The canonical name: bare for OpenAI, `provider/id` for every other provider."""
        return self.id if self.provider == DEFAULT_PROVIDER else f"{self.provider}/{self.id}"


def parse_model(name: str) -> ModelRef:
    """The provider and the provider's own id of a model name; a bare name is an OpenAI model."""
    prefix, slash, rest = name.partition("/")
    for provider in PROVIDERS:
        if slash and prefix == provider:
            return ModelRef(provider, rest)
    return ModelRef(DEFAULT_PROVIDER, name)


def provider_of(name: str) -> ProviderName:
    return parse_model(name).provider


def canonical_model(name: str) -> str:
    return parse_model(name).name


def check_model_name(name: str) -> str:
    """`name` unchanged, or ValueError saying what is wrong with it (for the config's validators)."""
    ref = parse_model(name)
    if not ref.id.strip():
        raise ValueError(
            f"{name!r} names no model after the provider; write e.g. 'bedrock/amazon.nova-micro-v1:0'"
        )
    if ref.id != ref.id.strip():
        raise ValueError(f"{name!r} has spaces around the model id")
    return name
