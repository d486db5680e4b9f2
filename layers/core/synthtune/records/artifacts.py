"""S3 adapter: the run's files, as JSON Lines streamed in and out.

Reads iterate the object's body a chunk at a time and writes send the object to S3 part by part as the
rows arrive (a multipart upload), so neither a handler's memory nor its /tmp grows with the data.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

ModelT = TypeVar("ModelT", bound=BaseModel)

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's minimum for every part of a multipart upload but the last."""
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
"""At most 10,000 parts make an object: 8 MiB parts allow objects up to 78 GiB."""
READ_CHUNK_SIZE = 1024 * 1024
"""What a read asks S3's body for at a time; botocore's default of 1 KiB is slow on objects of GBs."""
JSONL_CONTENT_TYPE = "application/x-ndjson"


class ArtifactNotFound(LookupError):
    """The object does not exist (or the bucket does not)."""


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket", "NotFound"}


class _StreamingUpload:
    """Bytes sent to one S3 object part by part as they arrive, so memory holds about one part.

    The object appears only on `complete`: a single PUT when everything fits in one part, otherwise the
    multipart upload that began when the first part filled. `abort` discards the parts already sent.
    """

    def __init__(self, s3: S3Client, bucket: str, key: str, content_type: str, part_size: int) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(
                f"part_size must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB) bytes, "
                f"S3's limits for the parts of a multipart upload; got {part_size}"
            )
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._content_type = content_type
        self._part_size = part_size
        self._buffer = io.BytesIO()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def write(self, *pieces: bytes) -> None:
        for piece in pieces:
            self._buffer.write(piece)
        if self._buffer.tell() >= self._part_size:
            self._send_part()

    def complete(self) -> None:
        if self._upload_id is None:
            body = self._take_buffer()
            self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=body, ContentType=self._content_type)
            return
        if self._buffer.tell():
            self._send_part()  # the last part may be smaller than the minimum
        self._s3.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self, cause: BaseException) -> None:
        self._buffer = io.BytesIO()
        if self._upload_id is None:
            return
        try:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
        except Exception as error:
            # The cause is what the workflow's Retry/Catch must see; the bucket's lifecycle rule
            # (AbortIncompleteMultipartUpload) deletes the parts this could not.
            cause.add_note(
                f"aborting the multipart upload of s3://{self._bucket}/{self._key} failed too: {error!r}"
            )

    def _take_buffer(self) -> bytes:
        # CPython's BytesIO hands over its buffer rather than copying it, and botocore streams a bytes
        # body without copying it either: a part is in memory once.
        body = self._buffer.getvalue()
        self._buffer = io.BytesIO()
        return body

    def _send_part(self) -> None:
        body = self._take_buffer()
        if self._upload_id is None:
            # CRC32 part checksums, as boto3's managed transfer sends them; an upload created with an
            # algorithm must list each part's checksum when it completes.
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=self._content_type, ChecksumAlgorithm="CRC32"
            )["UploadId"]
        number = len(self._parts) + 1
        response = self._s3.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
        if checksum := response.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = checksum
        self._parts.append(part)


class JsonlWriter:
    """Rows appended to one JSON Lines object; `count` rows and `bytes` bytes so far."""

    def __init__(self, upload: _StreamingUpload) -> None:
        self._upload = upload
        self.count = 0
        self.bytes = 0

    def write(self, row: BaseModel | dict[str, Any]) -> None:
        line = row.model_dump_json() if isinstance(row, BaseModel) else json.dumps(row, ensure_ascii=False)
        self.write_raw(line.encode())

    def write_raw(self, line: bytes) -> None:
        """A row its caller has already serialised, such as the bytes it just validated: one JSON value,
        UTF-8, without the newline (which the writer adds). It is written as is, not parsed again."""
        if not line or b"\n" in line or b"\r" in line:
            # A line break would split the row in two for every reader, iter_lines included.
            raise ValueError(f"a JSON Lines row is one non-empty line without a line break: {line[:80]!r}")
        self._upload.write(line, b"\n")
        self.count += 1
        self.bytes += len(line) + 1


@dataclass(frozen=True)
class StoredObject:
    """One version of an object: its ETag (unquoted), its version id (versioned buckets only), its size."""

    etag: str
    version_id: str | None
    size: int


class ArtifactStore:
    def __init__(self, bucket: str, s3: S3Client) -> None:
        self.bucket = bucket
        self._s3 = s3

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def iter_lines(self, key: str, chunk_size: int = READ_CHUNK_SIZE) -> Iterator[bytes]:
        """The object's lines without their line breaks; memory holds one chunk and the longest line."""
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _missing(error):
                raise ArtifactNotFound(self.uri(key)) from error
            raise
        try:
            yield from body.iter_lines(chunk_size=chunk_size)
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
        return self.stored(key) is not None

    def stored(self, key: str) -> StoredObject | None:
        """Which version of the object is there now (one HEAD); None if there is none."""
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        version = response.get("VersionId")
        return StoredObject(
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=version if version and version != "null" else None,
            size=int(response.get("ContentLength", 0)),
        )

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

    def read_text(self, key: str) -> str:
        """A small text object (a provider's metrics file), whole."""
        return b"\n".join(self.iter_lines(key)).decode("utf-8")

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
    def jsonl_writer(
        self, key: str, skip_empty: bool = False, part_size: int = DEFAULT_PART_SIZE
    ) -> Iterator[JsonlWriter]:
        """A writer whose rows become one object when the block ends without an error.

        Rows go to S3 in parts of `part_size` bytes (at least 5 MiB) while the block runs; an object
        smaller than one part is a single PUT. An error in the block aborts the upload: no object, not
        even a partial one, and no parts left to pay for. With `skip_empty`, nothing is uploaded when no
        row was written.
        """
        upload = _StreamingUpload(self._s3, self.bucket, key, JSONL_CONTENT_TYPE, part_size)
        writer = JsonlWriter(upload)
        try:
            yield writer
            if writer.count or not skip_empty:
                upload.complete()
        except BaseException as error:  # an interrupt strands the parts as surely as an error does
            upload.abort(error)
            raise

    def upload(self, path: Path, key: str, content_type: str = JSONL_CONTENT_TYPE) -> None:
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
