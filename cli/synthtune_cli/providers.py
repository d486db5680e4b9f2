"""The model providers as this machine reaches them, for `synthtune validate`.

OpenAI with OPENAI_API_KEY (and OPENAI_BASE_URL: empty means the official API, whose dates then apply);
Amazon Bedrock with boto3's usual credentials, Region and endpoints. Nothing here is called offline
except to read the dated catalog: a client is made only by `validate --live`.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthtune.contracts.workflow import S3Location
from synthtune.providers.bedrock import BedrockProvider
from synthtune.providers.openai import OpenAIProvider
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.artifacts import ArtifactStore


def _store(bucket: str) -> ArtifactStore:
    import boto3

    return ArtifactStore(bucket, boto3.client("s3"))


def _download(location: S3Location, path: Path) -> None:
    _store(location.bucket).download(location.key, path)


def _api_key() -> str:
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise RuntimeError("asking OpenAI needs OPENAI_API_KEY in the environment")
    return key


def local_providers() -> ProviderRegistry:
    return ProviderRegistry(
        {
            "openai": OpenAIProvider(
                api_key=_api_key,
                base_url=os.environ.get("OPENAI_BASE_URL", "").strip() or None,
                max_retries=2,
                timeout_seconds=60.0,
                download=_download,
            ),
            "bedrock": BedrockProvider(
                role_arn=None,
                read_text=lambda location: _store(location.bucket).read_text(location.key),
                list_keys=lambda location: _store(location.bucket).keys(location.key),
            ),
        }
    )
