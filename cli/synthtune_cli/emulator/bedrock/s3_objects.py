"""The S3 objects customisation jobs read (training and validation data) and write (metrics files).

Bedrock reads a job's data from the caller's bucket and writes its results there; the emulator does the
same through boto3, so under moto's `mock_aws` in the same process it reads and writes moto's S3. The
client is made on first use, never at import, and the factory can be replaced (tests, another endpoint).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3ClientFactory = Callable[[], "S3Client"]

# botocore's S3Uri pattern for Bedrock's data configs.
S3_URI = re.compile(
    r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?"
)


class S3ObjectError(Exception):
    """An object could not be read or written; the message names the URI and says why."""


def default_factory(region: str) -> S3ClientFactory:
    def create() -> S3Client:
        import boto3

        return boto3.client("s3", region_name=region)

    return create


def join_uri(prefix: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), *parts])


class S3Objects:
    """Reads and writes `s3://bucket/key` objects with one lazily made client."""

    def __init__(self, factory: S3ClientFactory) -> None:
        self._factory: S3ClientFactory | None = factory
        self._client: S3Client | None = None

    @property
    def factory(self) -> S3ClientFactory | None:
        return self._factory

    def use(self, factory: S3ClientFactory | None) -> None:
        """Make clients with `factory` from now on (a restored emulator is given its process's)."""
        self._factory = factory
        self._client = None

    def __getstate__(self) -> dict[str, object]:
        # A client, and the factory that makes one, belong to the process: a snapshot holds neither.
        return {"_factory": None, "_client": None}

    def _s3(self) -> S3Client:
        if self._client is None:
            if self._factory is None:
                raise S3ObjectError("no S3 client: this emulator was restored without one")
            self._client = self._factory()
        return self._client

    def forget_client(self) -> None:
        """Make the next access create a new client (after a reset, say, or a new moto mock)."""
        self._client = None

    def read(self, uri: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = _split(uri)
        try:
            return self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Error")
            raise S3ObjectError(f"could not read {uri} ({code})") from error
        except BotoCoreError as error:
            raise S3ObjectError(f"could not read {uri} ({error})") from error

    def write(self, uri: str, body: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = _split(uri)
        try:
            self._s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Error")
            raise S3ObjectError(f"could not write {uri} ({code})") from error
        except BotoCoreError as error:
            raise S3ObjectError(f"could not write {uri} ({error})") from error


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not key or key.endswith("/"):
        raise S3ObjectError(f"{uri} names no object (expected s3://bucket/key)")
    return bucket, key
