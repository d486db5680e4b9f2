"""Batches: a JSONL file of chat requests answered over emulated hours, as OpenAI's Batch API does.

Nothing runs in the background. A batch's schedule is fixed when it is created from the knobs of that
moment (validating for `batch_validation_seconds`, then its lines finish one after another, evenly spread
over `max(batch_min_seconds, batch_seconds_per_request × lines)`, then finalizing), and every read works
out where the batch stands at `clock.now()`. A line is answered when a read finds its time has come, at
that time, by the same code as POST /v1/chat/completions, but without its rate limits or injected faults.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from synthtune_cli.emulator.draws import IdFactory, draw, token
from synthtune_cli.emulator.errors import ApiError, bad_request
from synthtune_cli.emulator.files import FileStore, StoredFile, cursor_page
from synthtune_cli.emulator.finetuning import validated_metadata
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.limits import fault_error

CHAT_ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
MAX_REQUESTS = 50_000
FINAL_STATUSES = ("failed", "completed", "expired", "cancelled")
# Every endpoint OpenAI's Batch API takes; only chat completions is emulated.
OPENAI_BATCH_ENDPOINTS = (
    "/v1/responses",
    CHAT_ENDPOINT,
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
_OUTPUT_EXPIRY_SECONDS = (3600, 2_592_000)
_EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
_CANCELLED = {
    "code": "batch_cancelled",
    "message": "This request could not be executed before the batch was cancelled.",
}

# (request body, time it is answered, completion id) -> chat.completion; raises ApiError like the route.
AnswerChat = Callable[[object, float, str], dict[str, Any]]
# A model name -> the name responses report; raises ApiError for a model the emulator does not serve.
ResolveModel = Callable[[str], str]


@dataclass(frozen=True)
class _Request:
    """One line that passed validation."""

    line: int
    custom_id: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class _Outcome:
    status_code: int
    body: dict[str, Any]


@dataclass
class _Batch:
    id: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: float
    validated_at: float
    expires_at: float
    requests: list[_Request]
    problems: list[dict[str, Any]]
    model: str | None
    processing_seconds: float
    finalizing_seconds: float
    line_error_rate: float
    status: str = "validating"
    outcomes: list[_Outcome] = field(default_factory=list)
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    cancel_done_at: float | None = None
    unfinished: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    # Running totals over the answered lines, so that reading a batch does not walk its lines.
    succeeded: int = 0
    usage: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("input", "cached", "output", "reasoning"), 0)
    )

    def record(self, outcome: _Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status_code != 200:
            return
        self.succeeded += 1
        usage = outcome.body["usage"]
        self.usage["input"] += usage["prompt_tokens"]
        self.usage["cached"] += usage["prompt_tokens_details"]["cached_tokens"]
        self.usage["output"] += usage["completion_tokens"]
        self.usage["reasoning"] += usage["completion_tokens_details"]["reasoning_tokens"]

    def finish_time(self, index: int) -> float:
        """When line `index` (from 0) is answered: lines finish in order, evenly spread."""
        assert self.in_progress_at is not None
        return self.in_progress_at + self.processing_seconds * (index + 1) / len(self.requests)


class Batches:
    """Batches by id. Not thread-safe: the emulator's state lock guards it."""

    def __init__(
        self, files: FileStore, ids: IdFactory, seed: int, answer: AnswerChat, resolve_model: ResolveModel
    ) -> None:
        self._files = files
        self._ids = ids
        self._seed = seed
        self._answer = answer
        self._resolve_model = resolve_model
        self._batches: dict[str, _Batch] = {}

    def clear(self) -> None:
        self._batches.clear()

    def saved(self) -> dict[str, Any]:
        """The batches, for a snapshot of the emulator (the callbacks stay with the process)."""
        return dict(self._batches)

    def load(self, saved: dict[str, Any]) -> None:
        self._batches = dict(saved)

    @property
    def batch_count(self) -> int:
        return len(self._batches)

    # -- create -----------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any], now: float, knobs: EmulatorKnobs) -> dict[str, Any]:
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise bad_request("Missing required parameter: 'input_file_id'.", param="input_file_id")
        _check_endpoint(body.get("endpoint"))
        window = body.get("completion_window")
        if window is None:
            raise bad_request("Missing required parameter: 'completion_window'.", param="completion_window")
        if window != COMPLETION_WINDOW:
            raise bad_request(
                f"Invalid value: {window!r}. Supported values are: '{COMPLETION_WINDOW}'.",
                param="completion_window",
            )
        metadata = validated_metadata(body.get("metadata"))
        _check_output_expiry(body.get("output_expires_after"))
        stored = self._files.find(input_file_id)
        if stored is None:
            raise bad_request(f"No such File object: {input_file_id}", param="input_file_id")
        if stored.purpose != "batch":
            raise bad_request(
                f"File {input_file_id} has purpose '{stored.purpose}'; a batch needs purpose 'batch'.",
                param="input_file_id",
            )

        # The file's bytes are read now: deleting or re-uploading it later changes nothing.
        requests, problems, model = _read_requests(stored.content, self._resolve_model)
        processing = max(knobs.batch_min_seconds, knobs.batch_seconds_per_request * len(requests))
        batch = _Batch(
            id=self._ids.new("batch_", 32),
            input_file_id=input_file_id,
            metadata=metadata,
            created_at=now,
            validated_at=now + knobs.batch_validation_seconds,
            expires_at=now + knobs.batch_expire_after_seconds,
            requests=requests,
            problems=problems,
            model=model,
            processing_seconds=processing,
            finalizing_seconds=knobs.batch_finalizing_seconds,
            line_error_rate=knobs.batch_line_error_rate,
        )
        self._batches[batch.id] = batch
        self._advance(batch, now)
        return self._to_api(batch)

    # -- lifecycle --------------------------------------------------------------------------------

    def refresh(self, now: float) -> None:
        """Move every unfinished batch to where it stands at `now`, answering the lines that are due."""
        for batch in self._batches.values():
            self._advance(batch, now)

    def _advance(self, batch: _Batch, now: float) -> None:
        if batch.status == "validating":
            if now < batch.validated_at:
                return
            if batch.problems:
                batch.status, batch.failed_at = "failed", batch.validated_at
                return
            batch.status, batch.in_progress_at = "in_progress", batch.validated_at
        if batch.status == "in_progress":
            assert batch.in_progress_at is not None
            # A batch whose validation outlasted its window expires as soon as it would start.
            deadline = max(batch.expires_at, batch.in_progress_at)
            self._answer_due(batch, min(now, deadline))
            if len(batch.outcomes) == len(batch.requests):
                batch.status = "finalizing"
                batch.finalizing_at = batch.finish_time(len(batch.requests) - 1)
            elif now >= deadline:
                batch.status, batch.expired_at = "expired", deadline
                self._write_results(batch, deadline, _EXPIRED)
                return
        if batch.status == "finalizing":
            assert batch.finalizing_at is not None
            done = batch.finalizing_at + batch.finalizing_seconds
            if now >= done:
                batch.status, batch.completed_at = "completed", done
                self._write_results(batch, done, None)
        if batch.status == "cancelling":
            assert batch.cancel_done_at is not None
            if now >= batch.cancel_done_at:
                batch.status, batch.cancelled_at = "cancelled", batch.cancel_done_at
                self._write_results(batch, batch.cancel_done_at, _CANCELLED)

    def _answer_due(self, batch: _Batch, horizon: float) -> None:
        """Answer, in order, every line whose finish time is at or before `horizon`."""
        while len(batch.outcomes) < len(batch.requests):
            index = len(batch.outcomes)
            at = batch.finish_time(index)
            if at > horizon:
                return
            batch.record(self._outcome(batch, index, at))

    def _outcome(self, batch: _Batch, index: int, at: float) -> _Outcome:
        if (
            batch.line_error_rate
            and draw(self._seed, "batch-line-error", batch.id, index) < batch.line_error_rate
        ):
            error = fault_error(500)
            return _Outcome(error.status, error.body())
        completion_id = "chatcmpl-" + token(29, self._seed, batch.id, index, "completion")
        try:
            return _Outcome(200, self._answer(batch.requests[index].body, at, completion_id))
        except ApiError as error:
            return _Outcome(error.status, error.body())

    def _write_results(self, batch: _Batch, at: float, unfinished: Mapping[str, str] | None) -> None:
        """Store the output and error files of a batch that has just ended at `at`.

        Lines answered 200 go to the output file, other answers to the error file with their error body,
        and (for an expired or cancelled batch) every line never answered to the error file with
        `unfinished` as its error.
        """
        if batch.in_progress_at is None:
            return  # cancelled while validating: no line was ever read as a request
        output: list[str] = []
        errors: list[str] = []
        for index, request in enumerate(batch.requests):
            line: dict[str, Any] = {
                "id": "batch_req_" + token(24, self._seed, batch.id, index, "request"),
                "custom_id": request.custom_id,
            }
            if index < len(batch.outcomes):
                outcome = batch.outcomes[index]
                line["response"] = {
                    "status_code": outcome.status_code,
                    "request_id": token(32, self._seed, batch.id, index, "request-id"),
                    "body": outcome.body,
                }
                line["error"] = None
                (output if outcome.status_code == 200 else errors).append(json.dumps(line))
            elif unfinished is not None:
                line["response"] = None
                line["error"] = dict(unfinished)
                errors.append(json.dumps(line))
        batch.unfinished = len(batch.requests) - len(batch.outcomes)
        batch.output_file_id = self._store(batch, "output", output, at)
        batch.error_file_id = self._store(batch, "error", errors, at)

    def _store(self, batch: _Batch, kind: str, lines: list[str], at: float) -> str | None:
        if not lines:
            return None
        stored = StoredFile(
            id="file-" + token(24, self._seed, batch.id, kind),
            filename=f"{batch.id}_{kind}.jsonl",
            purpose="batch_output",
            content=("\n".join(lines) + "\n").encode("utf-8"),
            created_at=int(at),
        )
        return self._files.add(stored).id

    def cancel(self, batch_id: str, now: float, knobs: EmulatorKnobs) -> dict[str, Any]:
        batch = self._batch(batch_id)
        self._advance(batch, now)
        if batch.status in ("validating", "in_progress"):
            # No line is answered after the cancel request; those answered before it are kept.
            batch.status, batch.cancelling_at = "cancelling", now
            batch.cancel_done_at = now + knobs.batch_cancelling_seconds
            self._advance(batch, now)
        elif batch.status != "cancelling":
            raise bad_request(f"Cannot cancel a batch with status '{batch.status}'.", param="batch_id")
        return self._to_api(batch)

    # -- reads ------------------------------------------------------------------------------------

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._to_api(self._batch(batch_id))

    def page(self, after: str | None, limit: int) -> dict[str, Any]:
        if not 1 <= limit <= 100:
            raise bad_request("limit must be between 1 and 100.", param="limit")
        batches = [self._to_api(batch) for batch in reversed(self._batches.values())]
        return cursor_page(batches, after, limit)

    def batches_snapshot(self) -> dict[str, dict[str, Any]]:
        return {batch_id: self._to_api(batch) for batch_id, batch in self._batches.items()}

    def _batch(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return batch

    def _to_api(self, batch: _Batch) -> dict[str, Any]:
        started = batch.in_progress_at is not None
        usage = batch.usage
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": CHAT_ENDPOINT,
            "errors": {"object": "list", "data": batch.problems} if batch.status == "failed" else None,
            "input_file_id": batch.input_file_id,
            "completion_window": COMPLETION_WINDOW,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at),
            "in_progress_at": _timestamp(batch.in_progress_at),
            "expires_at": int(batch.expires_at),
            "finalizing_at": _timestamp(batch.finalizing_at),
            "completed_at": _timestamp(batch.completed_at),
            "failed_at": _timestamp(batch.failed_at),
            "expired_at": _timestamp(batch.expired_at),
            "cancelling_at": _timestamp(batch.cancelling_at),
            "cancelled_at": _timestamp(batch.cancelled_at),
            # Like OpenAI's, the counts are all 0 until validation is over. Lines an expired or cancelled
            # batch never ran count as failed: they are in its error file.
            "request_counts": {
                "total": len(batch.requests) if started else 0,
                "completed": batch.succeeded,
                "failed": len(batch.outcomes) - batch.succeeded + batch.unfinished,
            },
            "metadata": batch.metadata,
            "model": batch.model if started else None,
            "usage": {
                "input_tokens": usage["input"],
                "input_tokens_details": {"cached_tokens": usage["cached"]},
                "output_tokens": usage["output"],
                "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
                "total_tokens": usage["input"] + usage["output"],
            },
        }


def _timestamp(at: float | None) -> int | None:
    return None if at is None else int(at)


def _check_endpoint(endpoint: object) -> None:
    if endpoint is None:
        raise bad_request("Missing required parameter: 'endpoint'.", param="endpoint")
    if endpoint == CHAT_ENDPOINT:
        return
    if endpoint in OPENAI_BATCH_ENDPOINTS:
        raise bad_request(
            f"The emulator runs batches for '{CHAT_ENDPOINT}' only, not {endpoint!r}.", param="endpoint"
        )
    supported = ", ".join(repr(value) for value in OPENAI_BATCH_ENDPOINTS)
    raise bad_request(f"Invalid value: {endpoint!r}. Supported values are: {supported}.", param="endpoint")


def _check_output_expiry(policy: object) -> None:
    """`output_expires_after` is checked like OpenAI does, then ignored: the emulator's files never expire."""
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise bad_request("output_expires_after must be an object.", param="output_expires_after")
    if policy.get("anchor") != "created_at":
        raise bad_request(
            f"Invalid value: {policy.get('anchor')!r}. Supported values are: 'created_at'.",
            param="output_expires_after.anchor",
        )
    seconds = policy.get("seconds")
    low, high = _OUTPUT_EXPIRY_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not low <= seconds <= high:
        raise bad_request(
            f"Invalid output_expires_after.seconds {seconds!r}: expected an integer from {low} to {high}.",
            param="output_expires_after.seconds",
        )


def _problem(code: str, message: str, param: str | None = None, line: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


class _BadLine(Exception):
    """A line of the input file that is not a valid request: one entry of the batch's `errors`."""

    def __init__(self, code: str, message: str, param: str | None, line: int) -> None:
        super().__init__(message)
        self.problem = _problem(code, message, param, line)


def _read_requests(
    content: bytes, resolve_model: ResolveModel
) -> tuple[list[_Request], list[dict[str, Any]], str | None]:
    """The file's requests, every problem found in it (one per bad line), and the model its lines use."""
    numbered = [(number, raw) for number, raw in enumerate(content.split(b"\n"), start=1) if raw.strip()]
    if not numbered:
        return [], [_problem("empty_file", "The batch input file is empty.")], None
    if len(numbered) > MAX_REQUESTS:
        message = f"The batch input file has {len(numbered)} requests; the maximum is {MAX_REQUESTS}."
        return [], [_problem("too_many_tasks", message)], None
    requests: list[_Request] = []
    problems: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    model: str | None = None
    for number, raw in numbered:
        try:
            request, reported = _read_line(number, raw, resolve_model)
            if model is not None and reported != model:
                raise _BadLine(
                    "mismatched_model",
                    f"The model {reported!r} differs from the model {model!r} of the batch's other requests: "
                    "a batch's requests must all use one model.",
                    "body.model",
                    number,
                )
            earlier = first_line.get(request.custom_id)
            if earlier is not None:
                raise _BadLine(
                    "duplicate_custom_id",
                    f"The custom_id {request.custom_id!r} is not unique: line {earlier} uses it too.",
                    "custom_id",
                    number,
                )
        except _BadLine as bad:
            problems.append(bad.problem)
            continue
        model = reported
        first_line[request.custom_id] = number
        requests.append(request)
    return requests, problems, model


def _read_line(number: int, raw: bytes, resolve_model: ResolveModel) -> tuple[_Request, str]:
    """A line read as a request, with the model name its responses report; `_BadLine` at its first problem."""
    try:
        item = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        item = None
    if not isinstance(item, dict):
        raise _BadLine("invalid_json_line", "This line is not parseable as a JSON object.", None, number)
    for name in ("custom_id", "method", "url", "body"):
        if item.get(name) is None:
            raise _BadLine(
                "missing_required_parameter", f"Missing required parameter: '{name}'.", name, number
            )
    custom_id, method, url, body = item["custom_id"], item["method"], item["url"], item["body"]
    if not isinstance(custom_id, str) or not custom_id:
        message = f"Invalid custom_id {custom_id!r}: expected a non-empty string."
        raise _BadLine("invalid_value", message, "custom_id", number)
    if method != "POST":
        message = f"Invalid method {method!r}: batch requests must use 'POST'."
        raise _BadLine("invalid_value", message, "method", number)
    if url != CHAT_ENDPOINT:
        message = f"The url {url!r} does not match the batch's endpoint {CHAT_ENDPOINT!r}."
        raise _BadLine("mismatched_url", message, "url", number)
    if not isinstance(body, dict):
        raise _BadLine("invalid_value", "Invalid body: expected a JSON object.", "body", number)
    # The model is checked as POST /v1/chat/completions checks it; the rest of the body only when the
    # line is answered, where a bad body is that line's 400.
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadLine(
            "missing_required_parameter", "You must provide a model parameter.", "body.model", number
        )
    try:
        reported = resolve_model(model)
    except ApiError as error:
        raise _BadLine(error.code or "invalid_value", error.message, "body.model", number) from error
    return _Request(number, custom_id, body), reported
