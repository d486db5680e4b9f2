"""The model providers as this machine reaches them, for the plan `synthtune validate` and `synthtune run`
make before anything starts.

Each provider is live or emulated, as `synthtune run --openai/--bedrock` says. Live: OpenAI with
OPENAI_API_KEY (and OPENAI_BASE_URL: empty means the official API, whose dates then apply), Amazon Bedrock
with boto3's usual credentials, Region and endpoints. Emulated: the project's emulator, started on
loopback for the plan's lookups (a run starts its own): what a local run's Prepare will find there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.workflow import S3Location
from synthtune.providers.bedrock import BedrockProvider
from synthtune.providers.bedrock.client import BedrockEndpoint
from synthtune.providers.openai import OpenAIProvider
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.artifacts import ArtifactStore

ProviderMode = Literal["emulator", "live"]

EMULATOR_API_KEY = "sk-emulator"
EMULATOR_REGION = "us-east-1"
"""The Region a local run's functions run in (the offline stack's)."""


def _store(bucket: str) -> ArtifactStore:
    import boto3

    return ArtifactStore(bucket, boto3.client("s3"))


def _download(location: S3Location, path: Path) -> None:
    _store(location.bucket).download(location.key, path)


def _api_key() -> str:
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise InvalidConfig("asking OpenAI needs OPENAI_API_KEY in the environment")
    return key


def _live_base_url() -> str | None:
    return os.environ.get("OPENAI_BASE_URL", "").strip() or None


@dataclass(frozen=True)
class OpenAIEndpoint:
    base_url: str | None
    api_key: Callable[[], str]


def local_providers(
    *, openai: OpenAIEndpoint | None = None, bedrock: BedrockEndpoint | None = None
) -> ProviderRegistry:
    """The providers at the given endpoints; by default, the live ones the environment names."""
    openai = openai or OpenAIEndpoint(_live_base_url(), _api_key)
    return ProviderRegistry(
        {
            "openai": OpenAIProvider(
                api_key=openai.api_key,
                base_url=openai.base_url,
                max_retries=2,
                timeout_seconds=60.0,
                download=_download,
            ),
            "bedrock": BedrockProvider(
                role_arn=None,
                read_text=lambda location: _store(location.bucket).read_text(location.key),
                list_keys=lambda location: _store(location.bucket).keys(location.key),
                endpoint=bedrock,
            ),
        }
    )


@dataclass(frozen=True)
class RunProviders:
    registry: ProviderRegistry
    emulator_url: str | None
    """The emulator's root URL, when it stands in for a provider."""


@contextmanager
def run_providers(openai: ProviderMode, bedrock: ProviderMode) -> Iterator[RunProviders]:
    """The providers a `synthtune run --openai OPENAI --bedrock BEDROCK` would call, for as long as the
    block runs: an emulator on loopback stands in for each emulated one."""
    if openai == "live" and bedrock == "live":
        yield RunProviders(local_providers(), None)
        return
    from synthtune_cli.emulator import OpenAIEmulator

    with OpenAIEmulator(region=EMULATOR_REGION).serve() as server:
        emulated_openai = OpenAIEndpoint(server.base_url, lambda: EMULATOR_API_KEY)
        emulated_bedrock = BedrockEndpoint(
            server.root_url, EMULATOR_REGION, credentials=("emulator", "emulator")
        )
        registry = local_providers(
            openai=emulated_openai if openai == "emulator" else None,
            bedrock=emulated_bedrock if bedrock == "emulator" else None,
        )
        yield RunProviders(registry, server.root_url)
