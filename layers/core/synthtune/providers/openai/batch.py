"""The batch port over OpenAI's Batch API (or any server that implements it): upload, create, poll, read.

Requests are `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}` lines; results
come back as an output file (successes) and an error file (failures, expired requests), matched to
requests by custom_id only: their order is not the input's.

The upload and the create are sent once, never retried by the SDK: a retried SubmitBatch finds the
file by its name (unique per run, round and part) and the batch by its metadata instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from synthtune.providers.openai.chat import solve_request, solve_result
from synthtune.providers.openai.client import provider_errors, sent_once
from synthtune.providers.openai.files import upload_once
from synthtune.providers.ports import BatchInfo, BatchOutcome

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import Batch

ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"
COMPLETION_WINDOW: Literal["24h"] = "24h"
MAX_REQUESTS_PER_BATCH = 50_000
MAX_FILE_BYTES = 190_000_000
"""OpenAI takes batch input files of up to 200 MB; a margin below it."""


def batch_line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}


class OpenAIBatches:
    max_requests_per_batch = MAX_REQUESTS_PER_BATCH
    max_file_bytes = MAX_FILE_BYTES

    def __init__(self, client: OpenAI, secret_hint: str = "") -> None:
        self._client = client
        self._secret_hint = secret_hint

    def request_line(
        self, custom_id: str, model: str, question: str, *, temperature: float, max_tokens: int, samples: int
    ) -> bytes:
        body = solve_request(model, question, temperature=temperature, max_tokens=max_tokens, samples=samples)
        return (json.dumps(batch_line(custom_id, body), ensure_ascii=False) + "\n").encode()

    def submit(self, requests_file: Path, metadata: dict[str, str]) -> BatchInfo:
        file_id = upload_once(
            self._client, requests_file, "batch", "uploading a batch request file", self._secret_hint
        )
        with provider_errors("creating a batch", self._secret_hint):
            batch = sent_once(self._client).batches.create(
                input_file_id=file_id,
                endpoint=ENDPOINT,
                completion_window=COMPLETION_WINDOW,
                metadata=metadata,
            )
        return _info(batch)

    def find(self, metadata: dict[str, str]) -> BatchInfo | None:
        """The newest batch whose metadata holds every pair of `metadata` (the list has no filter)."""
        with provider_errors("looking for an earlier batch", self._secret_hint):
            for batch in self._client.batches.list(limit=100):
                found = batch.metadata or {}
                if all(found.get(key) == value for key, value in metadata.items()):
                    return _info(batch)
        return None

    def status(self, batch_id: str) -> BatchInfo:
        with provider_errors(f"checking batch {batch_id}", self._secret_hint):
            return _info(self._client.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> BatchInfo:
        # Cancelling is idempotent (a second cancel of a cancelling batch changes nothing): the SDK's
        # retries may send it again.
        with provider_errors(f"cancelling batch {batch_id}", self._secret_hint):
            return _info(self._client.batches.cancel(batch_id))

    def outcomes(self, info: BatchInfo) -> Iterator[BatchOutcome]:
        """The output file's answers, then the error file's failures with their codes."""
        from openai.types.chat import ChatCompletion

        if info.output_ref is not None:
            for line in self._lines(info.output_ref):
                record = json.loads(line)
                response = record.get("response") or {}
                if response.get("status_code") == 200:
                    result = solve_result(ChatCompletion.model_validate(response["body"]))
                    yield BatchOutcome(custom_id=record["custom_id"], result=result)
                else:
                    yield BatchOutcome(custom_id=record["custom_id"], error=_error_code(record))
        if info.error_ref is not None:
            for line in self._lines(info.error_ref):
                record = json.loads(line)
                yield BatchOutcome(custom_id=record["custom_id"], error=_error_code(record))

    def _lines(self, file_id: str) -> Iterator[str]:
        """A result file's lines, streamed (output files reach hundreds of megabytes)."""
        with (
            provider_errors(f"reading batch results {file_id}", self._secret_hint),
            self._client.files.with_streaming_response.content(file_id) as response,
        ):
            for line in response.iter_lines():
                if line.strip():
                    yield line


def _error_code(record: dict[str, Any]) -> str:
    if record.get("error"):
        return str(record["error"].get("code") or "error")
    response = record.get("response") or {}
    error = (response.get("body") or {}).get("error") or {}
    return str(error.get("code") or error.get("type") or f"http_{response.get('status_code')}")


def _info(batch: Batch) -> BatchInfo:
    counts = batch.request_counts
    errors = [
        f"line {error.line}: {error.code}: {error.message}"
        if error.line is not None
        else f"{error.code}: {error.message}"
        for error in ((batch.errors.data or []) if batch.errors else [])
    ]
    return BatchInfo(
        id=batch.id,
        status=batch.status,
        output_ref=batch.output_file_id,
        error_ref=batch.error_file_id,
        total=counts.total if counts else 0,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        errors=errors,
    )
