"""Small cached factories for everything a handler talks to.

Nothing is created at import time: a handler builds what it needs on first use, and a warm Lambda
reuses it. The offline runtime and the tests call `reset()` between runs so that clients bound to one
mocked account never leak into the next.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from synthtune.contracts.errors import InvalidConfig
from synthtune.engine.chat import ChatModel
from synthtune.providers.ports import FineTuneBackend
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import RunStore
from synthtune.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from openai import OpenAI

    from synthtune.stages.batch import BatchService

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


def openai() -> OpenAI:
    from synthtune.providers.openai.client import api_key_from_secret, openai_client

    config = settings()
    return openai_client(
        api_key_from_secret(config.openai_api_key_secret_arn),
        config.openai_base_url,
        config.openai_max_retries,
        config.openai_timeout_seconds,
    )


def chat() -> ChatModel:
    from synthtune.providers.openai.chat import OpenAIChat

    return OpenAIChat(openai(), secret_hint=settings().openai_api_key_secret_arn)


def teacher_chat(request_timeout_seconds: float) -> ChatModel:
    """The teacher's ChatModel: no SDK retries (the shard's RateLimitGate paces and retries every
    request, see synthtune.engine.pacing) and the run's per-request timeout."""
    from synthtune.providers.openai.chat import OpenAIChat

    client = openai().with_options(max_retries=0, timeout=request_timeout_seconds)
    return OpenAIChat(client, secret_hint=settings().openai_api_key_secret_arn)


def batches() -> BatchService:
    from synthtune.providers.openai.batch import OpenAIBatches

    return OpenAIBatches(openai(), secret_hint=settings().openai_api_key_secret_arn)


def fine_tune_backend(name: str) -> FineTuneBackend:
    if name == "openai":
        from synthtune.providers.openai.finetune import OpenAIFineTuneBackend

        config = settings()
        return OpenAIFineTuneBackend(
            openai, config.openai_base_url, secret_hint=config.openai_api_key_secret_arn
        )
    raise InvalidConfig(f"fine_tune_backend {name!r} is not available (available: openai)")


def reset() -> None:
    """Forget every cached client and setting (after the environment or the mocked account changed)."""
    from aws_lambda_powertools.utilities import parameters

    from synthtune.providers.openai.client import openai_client

    s3.cache_clear()
    dynamodb.cache_clear()
    settings.cache_clear()
    openai_client.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
