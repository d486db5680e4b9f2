"""ArtifactStore's JSON Lines streaming: writes leave in parts while the rows arrive, and only a finished
block makes an object; reads go a large chunk at a time. Memory is measured with tracemalloc against fake
clients that keep nothing, since moto keeps every byte it is sent."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from synthtune.records.artifacts import (
    JSONL_CONTENT_TYPE,
    MIN_PART_SIZE,
    READ_CHUNK_SIZE,
    ArtifactStore,
)
from tests.unit.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
KEY = "runs/run-1/dataset/train.jsonl"


class RecordingS3:
    """A boto3 S3 client that records the name of every call and can fail a chosen one."""

    def __init__(self, client: S3Client, fail: dict[str, int] | None = None) -> None:
        self._client = client
        self._fail = fail or {}
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.calls.count(name) == self._fail.get(name):
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, name)
            return method(*args, **kwargs)

        return recorded

    def count(self, name: str) -> int:
        return self.calls.count(name)


def recording_store(
    data: ArtifactStore, fail: dict[str, int] | None = None
) -> tuple[ArtifactStore, RecordingS3]:
    s3 = RecordingS3(boto3.client("s3", region_name=REGION), fail)
    return ArtifactStore(data.bucket, cast("S3Client", s3)), s3


def example_rows(total_bytes: int) -> Iterator[dict[str, Any]]:
    """Distinct rows of uneven length (about 1 KiB), non-ASCII included, until `total_bytes` of JSON."""
    written = 0
    index = 0
    while written < total_bytes:
        row = {"index": index, "text": f"é{index:07d}" * (100 + index % 37)}
        written += len(json.dumps(row, ensure_ascii=False).encode()) + 1
        index += 1
        yield row


def as_lines(rows: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(row, ensure_ascii=False).encode() for row in rows]


def write_rows(
    store: ArtifactStore, total_bytes: int, *, then: Exception | None = None, part_size: int = MIN_PART_SIZE
) -> None:
    """About `total_bytes` of rows through one writer; with `then`, the block raises it at the end."""
    with store.jsonl_writer(KEY, part_size=part_size) as writer:
        for row in example_rows(total_bytes):
            writer.write(row)
        if then is not None:
            raise then


def in_progress_uploads(data: ArtifactStore) -> list[Any]:
    listing = boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=data.bucket)
    return list(listing.get("Uploads", []))


def test_an_object_larger_than_a_part_is_streamed_as_a_multipart_upload(data: ArtifactStore) -> None:
    store, s3 = recording_store(data)
    rows = list(example_rows(12 * MiB))

    with store.jsonl_writer(KEY, part_size=MIN_PART_SIZE) as writer:
        for row in rows:
            writer.write(row)
        # The parts left while the block ran, and none of it is an object yet.
        assert s3.count("create_multipart_upload") == 1
        assert s3.count("upload_part") == 2
        assert not data.exists(KEY)

    assert Counter(s3.calls) == {
        "create_multipart_upload": 1,
        "upload_part": 3,
        "complete_multipart_upload": 1,
    }
    assert list(data.iter_lines(KEY)) == as_lines(rows)
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=data.bucket, Key=KEY)
    assert head["ContentType"] == JSONL_CONTENT_TYPE
    assert head["ContentLength"] == writer.bytes
    assert writer.count == len(rows)
    assert in_progress_uploads(data) == []


def test_an_object_of_exactly_two_parts_has_no_empty_third(data: ArtifactStore) -> None:
    store, s3 = recording_store(data)
    line = b'{"text": "' + b"x" * 1011 + b'"}'  # 1,023 bytes and a newline
    assert MIN_PART_SIZE % (len(line) + 1) == 0

    with store.jsonl_writer(KEY, part_size=MIN_PART_SIZE) as writer:
        for _ in range(2 * MIN_PART_SIZE // (len(line) + 1)):
            writer.write_raw(line)

    assert Counter(s3.calls) == {
        "create_multipart_upload": 1,
        "upload_part": 2,
        "complete_multipart_upload": 1,
    }
    assert writer.bytes == 2 * MIN_PART_SIZE
    assert sum(1 for read in data.iter_lines(KEY) if read == line) == writer.count


def test_an_object_smaller_than_a_part_is_one_put(data: ArtifactStore) -> None:
    store, s3 = recording_store(data)
    rows = list(example_rows(100_000))

    assert store.write_jsonl(KEY, rows) == len(rows)

    assert s3.calls == ["put_object"]
    assert list(data.iter_lines(KEY)) == as_lines(rows)
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=data.bucket, Key=KEY)
    assert head["ContentType"] == JSONL_CONTENT_TYPE


def test_an_error_in_the_block_aborts_the_upload_and_leaves_nothing(data: ArtifactStore) -> None:
    store, s3 = recording_store(data)

    with pytest.raises(RuntimeError, match="validation failed"):
        write_rows(store, 12 * MiB, then=RuntimeError("validation failed"))

    assert s3.count("upload_part") == 2
    assert s3.count("abort_multipart_upload") == 1
    assert s3.count("complete_multipart_upload") == 0
    assert not data.exists(KEY)
    assert in_progress_uploads(data) == []


def test_an_error_before_the_first_part_sends_nothing(data: ArtifactStore) -> None:
    store, s3 = recording_store(data)

    with pytest.raises(RuntimeError, match="too few"):
        write_rows(store, 100, then=RuntimeError("too few examples"))

    assert s3.calls == []
    assert not data.exists(KEY)


@pytest.mark.parametrize(
    ("failing", "calls_before"),
    [("upload_part", 2), ("complete_multipart_upload", 1)],
)
def test_a_failed_s3_call_aborts_the_upload(data: ArtifactStore, failing: str, calls_before: int) -> None:
    store, s3 = recording_store(data, fail={failing: calls_before})

    with pytest.raises(ClientError, match="injected"):
        write_rows(store, 12 * MiB)

    assert s3.count("abort_multipart_upload") == 1
    assert not data.exists(KEY)
    assert in_progress_uploads(data) == []


def test_a_failed_abort_is_noted_on_the_error_that_caused_it(data: ArtifactStore) -> None:
    store, s3 = recording_store(data, fail={"abort_multipart_upload": 1})

    with pytest.raises(RuntimeError, match="validation failed") as raised:
        write_rows(store, 6 * MiB, then=RuntimeError("validation failed"))

    assert s3.count("abort_multipart_upload") == 1
    assert any("aborting the multipart upload" in note for note in raised.value.__notes__)
    assert not data.exists(KEY)


def test_skip_empty_uploads_nothing_when_no_row_was_written(data: ArtifactStore) -> None:
    store, s3 = recording_store(data)

    with store.jsonl_writer(KEY, skip_empty=True):
        pass
    with store.jsonl_writer("runs/run-1/dataset/empty.jsonl"):
        pass
    with store.jsonl_writer("runs/run-1/dataset/one.jsonl", skip_empty=True) as writer:
        writer.write({"index": 1})

    assert not data.exists(KEY)
    assert list(data.iter_lines("runs/run-1/dataset/empty.jsonl")) == []
    assert list(data.iter_lines("runs/run-1/dataset/one.jsonl")) == [b'{"index": 1}']
    assert s3.calls == ["put_object", "put_object"]


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE - 1, 0, 5 * 1024 * MiB + 1])
def test_a_part_size_outside_s3s_limits_is_refused(data: ArtifactStore, part_size: int) -> None:
    store, s3 = recording_store(data)

    with (
        pytest.raises(ValueError, match="part_size must be between"),
        store.jsonl_writer(KEY, part_size=part_size),
    ):
        pass

    assert s3.calls == []


def test_write_raw_sends_the_callers_bytes_as_they_are(data: ArtifactStore) -> None:
    already_validated = '{"b": 2,  "a": "ü"}'.encode()  # not how json.dumps would write it

    with data.jsonl_writer(KEY) as writer:
        writer.write({"a": 1})
        writer.write_raw(already_validated)

    assert list(data.iter_lines(KEY)) == [b'{"a": 1}', already_validated]
    assert (writer.count, writer.bytes) == (2, len(b'{"a": 1}\n') + len(already_validated) + 1)


@pytest.mark.parametrize("line", [b"", b'{"a": 1}\n', b'{"a":\n1}', b'{"a": 1}\r'])
def test_write_raw_refuses_what_is_not_one_line(data: ArtifactStore, line: bytes) -> None:
    with pytest.raises(ValueError, match="one non-empty line"), data.jsonl_writer(KEY) as writer:
        writer.write_raw(line)

    assert not data.exists(KEY)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64])
def test_iter_lines_joins_lines_across_chunk_boundaries(data: ArtifactStore, chunk_size: int) -> None:
    body = b'{"a": 1}\n\n{"b": "' + b"long" * 40 + b'"}\r\n{"c": 3}\n{"d": 4}'  # the last line has no newline
    data.write_text("problem-sets/p.jsonl", body.decode())

    assert list(data.iter_lines("problem-sets/p.jsonl", chunk_size=chunk_size)) == [
        b'{"a": 1}',
        b"",
        b'{"b": "' + b"long" * 40 + b'"}',
        b'{"c": 3}',
        b'{"d": 4}',
    ]


def test_iter_lines_reads_megabytes_with_lines_longer_than_a_chunk(data: ArtifactStore) -> None:
    lines = [f"{index:06d}".encode() * (1 + index % 300) for index in range(5000)]
    lines.insert(2500, b"y" * (2 * READ_CHUNK_SIZE + 17))
    data.write_text(KEY, b"\n".join(lines).decode())  # ends without a newline

    assert list(data.iter_lines(KEY)) == lines


class GeneratedObject:
    """An object body made on demand, line after line, recording how much each read asked for."""

    def __init__(self, lines: int, line: bytes) -> None:
        self.size = lines * (len(line) + 1)
        self._line = line + b"\n"
        self._left = self.size
        self.reads: list[int] = []

    def read(self, amount: int | None = None) -> bytes:
        assert amount is not None, "a read of the whole object"
        self.reads.append(amount)
        start = (self.size - self._left) % len(self._line)
        amount = min(amount, self._left)
        self._left -= amount
        repeated = self._line * (amount // len(self._line) + 2)
        return repeated[start : start + amount]

    def close(self) -> None:
        pass


class DiscardingS3:
    """Just enough of an S3 client to write and read through, keeping only sizes."""

    def __init__(self, body: GeneratedObject | None = None) -> None:
        self.body = body
        self.part_sizes: list[int] = []
        self.completed = False

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        return {"UploadId": "upload-1"}

    def upload_part(self, Body: bytes, **kwargs: Any) -> dict[str, Any]:
        self.part_sizes.append(len(Body))
        return {"ETag": f'"{len(self.part_sizes)}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.completed = True
        return {}

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        assert self.body is not None
        return {"Body": StreamingBody(cast("IO[bytes]", self.body), self.body.size)}


def peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_writing_50_mib_holds_about_one_part_in_memory() -> None:
    s3 = DiscardingS3()
    store = ArtifactStore("synthtune-unit-data", cast("S3Client", s3))

    peak = peak_bytes(lambda: write_rows(store, 50 * MiB))

    assert s3.completed
    assert sum(s3.part_sizes) >= 50 * MiB
    assert len(s3.part_sizes) == 10
    assert peak < 1.5 * MIN_PART_SIZE, f"peak {peak / MiB:.1f} MiB"


def test_reading_50_mib_goes_a_mebibyte_at_a_time_in_bounded_memory() -> None:
    body = GeneratedObject(lines=250_000, line=b'{"text": "' + b"z" * 196 + b'"}')
    store = ArtifactStore("synthtune-unit-data", cast("S3Client", DiscardingS3(body)))
    seen = Counter[int]()

    def read_all() -> None:
        for line in store.iter_lines(KEY):
            seen[len(line)] += 1

    peak = peak_bytes(read_all)

    assert seen == {208: 250_000}
    assert max(body.reads) == READ_CHUNK_SIZE
    assert len(body.reads) <= body.size // READ_CHUNK_SIZE + 2
    assert peak < 6 * READ_CHUNK_SIZE, f"peak {peak / MiB:.1f} MiB"
