"""Small cached factories for everything a handler talks to.

Nothing is created at import time: a handler builds what it needs on first use, and a warm Lambda
reuses it. The offline runtime and the tests call `reset()` between runs so that clients bound to one
mocked account never leak into the next.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from synthtune.contracts.workflow import S3Location
from synthtune.providers.registry import ProviderRegistry, RoutedChat
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import RunStore
from synthtune.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@lru_cache(maxsize=1)
def s3() -> S3Client:
    return boto3.client("s3", config=_AWS_CONFIG)


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_AWS_CONFIG)


def artifacts(bucket: str | None = None) -> ArtifactStore:
    return ArtifactStore(bucket or settings().data_bucket_name, s3())


def runs() -> RunStore:
    return RunStore(settings().runs_table_name, dynamodb())


def _download(location: S3Location, path: Path) -> None:
    artifacts(location.bucket).download(location.key, path)


@lru_cache(maxsize=1)
def providers() -> ProviderRegistry:
    """Every model provider, each building its clients only when a run first needs them."""
    from synthtune.providers.bedrock import BedrockProvider
    from synthtune.providers.openai import OpenAIProvider
    from synthtune.providers.openai.client import api_key_from_secret

    config = settings()
    return ProviderRegistry(
        {
            "openai": OpenAIProvider(
                api_key=lambda: api_key_from_secret(config.openai_api_key_secret_arn),
                base_url=config.openai_base_url,
                max_retries=config.openai_max_retries,
                timeout_seconds=config.openai_timeout_seconds,
                download=_download,
                secret_hint=config.openai_api_key_secret_arn,
            ),
            "bedrock": BedrockProvider(
                role_arn=config.bedrock_role_arn,
                read_text=lambda location: artifacts(location.bucket).read_text(location.key),
                list_keys=lambda location: artifacts(location.bucket).keys(location.key),
            ),
        }
    )


def chat(request_timeout_seconds: float | None = None) -> RoutedChat:
    """Every model's chat, with no SDK retries: each attempt may be billed, so the stage's RateLimitGate
    paces and retries every request (synthtune.engine.pacing) and the ledger settles each attempt."""
    return providers().chat(request_timeout_seconds=request_timeout_seconds)


def teacher_chat(request_timeout_seconds: float) -> RoutedChat:
    """The teacher's chat, with the run's per-request timeout."""
    return chat(request_timeout_seconds)


def reset() -> None:
    """Forget every cached client and setting (after the environment or the mocked account changed)."""
    from aws_lambda_powertools.utilities import parameters

    from synthtune.providers.bedrock.client import bedrock_client
    from synthtune.providers.openai.client import openai_client

    s3.cache_clear()
    dynamodb.cache_clear()
    settings.cache_clear()
    providers.cache_clear()
    openai_client.cache_clear()
    bedrock_client.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
