"""S3 adapter: the run's files, as JSON Lines streamed in and out.

Reads iterate the object's body line by line and writes spool to a temporary file that S3's managed
transfer uploads (multipart above 8 MB), so a handler's memory does not grow with the data.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ModelT = TypeVar("ModelT", bound=BaseModel)

_SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


class ArtifactNotFound(LookupError):
    """The object does not exist (or the bucket does not)."""


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket", "NotFound"}


class JsonlWriter:
    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.count = 0
        self.bytes = 0

    def write(self, row: BaseModel | dict[str, Any]) -> None:
        line = row.model_dump_json() if isinstance(row, BaseModel) else json.dumps(row, ensure_ascii=False)
        encoded = line.encode() + b"\n"
        self._sink.write(encoded)
        self.count += 1
        self.bytes += len(encoded)


class ArtifactStore:
    def __init__(self, bucket: str, s3: S3Client) -> None:
        self.bucket = bucket
        self._s3 = s3

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def iter_lines(self, key: str) -> Iterator[bytes]:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _missing(error):
                raise ArtifactNotFound(self.uri(key)) from error
            raise
        try:
            yield from body.iter_lines()
        finally:
            body.close()

    def head(self, key: str, size: int = 64) -> bytes:
        """The first bytes of an object (format sniffing)."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}")
        except ClientError as error:
            if _missing(error):
                raise ArtifactNotFound(self.uri(key)) from error
            raise
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def keys(self, prefix: str) -> set[str]:
        """Every key under a prefix: one LIST per thousand keys, where HEADs would cost one each."""
        paginator = self._s3.get_paginator("list_objects_v2")
        return {
            entry["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for entry in page.get("Contents", [])
        }

    def read_jsonl(self, key: str, model: type[ModelT]) -> Iterator[ModelT]:
        for line in self.iter_lines(key):
            if line.strip():
                yield model.model_validate_json(line)

    def read_json(self, key: str) -> Any:
        return json.loads(b"\n".join(self.iter_lines(key)))

    def write_json(self, key: str, document: Any) -> None:
        self._put(key, json.dumps(document, indent=2, ensure_ascii=False).encode(), "application/json")

    def write_text(self, key: str, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self._put(key, text.encode(), content_type)

    def write_jsonl(self, key: str, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
        """Stream rows to one JSONL object; returns how many were written."""
        with self.jsonl_writer(key) as writer:
            for row in rows:
                writer.write(row)
        return writer.count

    @contextmanager
    def jsonl_writer(self, key: str, skip_empty: bool = False) -> Iterator[JsonlWriter]:
        """A writer whose rows are uploaded as one object when the block ends without an error.

        With `skip_empty`, nothing is uploaded when no row was written.
        """
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES) as spool:
            writer = JsonlWriter(spool)
            yield writer
            if writer.count or not skip_empty:
                spool.seek(0)
                self._s3.upload_fileobj(
                    spool, self.bucket, key, ExtraArgs={"ContentType": "application/x-ndjson"}
                )

    def upload(self, path: Path, key: str, content_type: str = "application/x-ndjson") -> None:
        """A local file to S3; boto3 switches to a multipart upload for large files."""
        self._s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def download(self, key: str, path: Path) -> None:
        try:
            self._s3.download_file(self.bucket, key, str(path))
        except ClientError as error:
            if _missing(error):
                raise ArtifactNotFound(self.uri(key)) from error
            raise

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
