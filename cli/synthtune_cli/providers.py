"""The model providers as this machine reaches them, for the plan `synthtune validate` and `synthtune run`
make before anything starts.

Each provider is live or emulated, as `synthtune run --openai/--bedrock` says. Live: OpenAI with
OPENAI_API_KEY (and OPENAI_BASE_URL: empty means the official API, whose dates then apply), Amazon Bedrock
with boto3's usual credentials, Region and endpoints. Emulated: the project's emulator, started on
loopback for the plan's lookups (a run starts its own): what a local run's Prepare will find there.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import InvalidConfig, SynthtuneError
from synthtune.contracts.problems import ProblemSetFile
from synthtune.contracts.workflow import S3Location
from synthtune.providers.bedrock import BedrockProvider
from synthtune.providers.bedrock.client import BedrockEndpoint
from synthtune.providers.openai import OpenAIProvider
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.artifacts import ArtifactStore
from synthtune.stages.plan import RunPlan, plan_run

ProviderMode = Literal["emulator", "live"]

EMULATOR_API_KEY = "sk-emulator"
EMULATOR_CREDENTIALS = ("emulator", "emulator")
LOCAL_RUN_REGION = "us-east-1"
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


def local_run_providers(
    openai_base_url: str | None, openai_api_key: Callable[[], str], bedrock_url: str | None
) -> ProviderRegistry:
    """The providers as a local run's functions reach them: OpenAI at `openai_base_url` (None: the official
    API); Bedrock in the offline stack's Region, at `bedrock_url` — the emulator, which wants requests
    signed but checks no account's — or, when None, where boto3's own settings point."""
    return local_providers(
        openai=OpenAIEndpoint(openai_base_url or None, openai_api_key),
        bedrock=BedrockEndpoint(
            bedrock_url, LOCAL_RUN_REGION, credentials=EMULATOR_CREDENTIALS if bedrock_url else None
        ),
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
    live_openai = (_live_base_url(), _api_key)
    if openai == "live" and bedrock == "live":
        yield RunProviders(local_run_providers(*live_openai, None), None)
        return
    from synthtune_cli.emulator import OpenAIEmulator

    with OpenAIEmulator(region=LOCAL_RUN_REGION).serve() as server:
        registry = local_run_providers(
            *(live_openai if openai == "live" else (server.base_url, lambda: EMULATOR_API_KEY)),
            server.root_url if bedrock == "emulator" else None,
        )
        yield RunProviders(registry, server.root_url)


def plan_local_run(
    problem_set: Path, config: RunConfig, providers: ProviderRegistry, emulator_url: str | None
) -> RunPlan:
    """The plan Prepare will make of a run of this local file (`stages.plan`), made before anything
    starts: refused with Prepare's own message, naming the user's file. A model looked up at the
    emulator carries a note saying that the URL is the emulator's."""
    try:
        return plan_run(
            ProblemSetFile.local(problem_set),
            config,
            providers=providers,
            today=dt.datetime.now(dt.UTC).date(),
        )
    except SynthtuneError as error:
        if emulator_url is not None and emulator_url in str(error):
            error.add_note(
                f"({emulator_url} is the project's emulator, which synthtune run uses unless told "
                "--openai live or --bedrock live)"
            )
        raise
