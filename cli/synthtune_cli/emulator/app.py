"""The WSGI application: OpenAI's /v1 routes, the emulator's /_emulator admin routes, and Bedrock's
routes (every other path, see bedrock/routes.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator.bedrock.protocol import BedrockError
from synthtune_cli.emulator.bedrock.routes import BedrockApi
from synthtune_cli.emulator.catalogue import BASE_MODELS
from synthtune_cli.emulator.chat import chat_completion
from synthtune_cli.emulator.errors import ApiError, bad_request
from synthtune_cli.emulator.files import UPLOAD_PURPOSES, StoredFile
from synthtune_cli.emulator.knowledge import KnowledgeItem
from synthtune_cli.emulator.limits import fault_error
from synthtune_cli.emulator.state import BilledRequest, EmulatorState, ServedRequest, mark_lost

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Handler = Callable[[Request, dict[str, str]], Response]

_AUTHORIZATION = re.compile(r"^Bearer\s+\S+")
_METADATA_FILTER = re.compile(r"^metadata\[(?P<key>.*)\]$")

_API_ROUTES = Map(
    [
        Rule("/v1/models", methods=["GET"], endpoint="list_models"),
        Rule("/v1/models/<model>", methods=["GET"], endpoint="get_model"),
        Rule("/v1/models/<model>", methods=["DELETE"], endpoint="delete_model"),
        Rule("/v1/chat/completions", methods=["POST"], endpoint="chat"),
        Rule("/v1/files", methods=["POST"], endpoint="upload_file"),
        Rule("/v1/files", methods=["GET"], endpoint="list_files"),
        Rule("/v1/files/<file_id>", methods=["GET"], endpoint="get_file"),
        Rule("/v1/files/<file_id>", methods=["DELETE"], endpoint="delete_file"),
        Rule("/v1/files/<file_id>/content", methods=["GET"], endpoint="file_content"),
        Rule("/v1/fine_tuning/jobs", methods=["POST"], endpoint="create_job"),
        Rule("/v1/fine_tuning/jobs", methods=["GET"], endpoint="list_jobs"),
        Rule("/v1/fine_tuning/jobs/<job_id>", methods=["GET"], endpoint="get_job"),
        Rule("/v1/fine_tuning/jobs/<job_id>/cancel", methods=["POST"], endpoint="cancel_job"),
        Rule("/v1/fine_tuning/jobs/<job_id>/events", methods=["GET"], endpoint="job_events"),
        Rule("/v1/fine_tuning/jobs/<job_id>/checkpoints", methods=["GET"], endpoint="job_checkpoints"),
        Rule("/v1/batches", methods=["POST"], endpoint="create_batch"),
        Rule("/v1/batches", methods=["GET"], endpoint="list_batches"),
        Rule("/v1/batches/<batch_id>", methods=["GET"], endpoint="get_batch"),
        Rule("/v1/batches/<batch_id>/cancel", methods=["POST"], endpoint="cancel_batch"),
    ],
    strict_slashes=False,
)

_ADMIN_ROUTES = Map(
    [
        Rule("/_emulator/state", methods=["GET"], endpoint="state"),
        Rule("/_emulator/knobs", methods=["POST"], endpoint="knobs"),
        Rule("/_emulator/clock/advance", methods=["POST"], endpoint="advance_clock"),
        Rule("/_emulator/knowledge", methods=["POST"], endpoint="knowledge"),
        Rule("/_emulator/errors", methods=["POST"], endpoint="errors"),
        Rule("/_emulator/reset", methods=["POST"], endpoint="reset"),
    ],
    strict_slashes=False,
)


class EmulatorApp:
    """A WSGI callable over the emulator's state. Thread-safe: handlers run under the state lock."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._api: dict[str, Handler] = {
            "list_models": self._list_models,
            "get_model": self._get_model,
            "delete_model": self._delete_model,
            "chat": self._chat,
            "upload_file": self._upload_file,
            "list_files": self._list_files,
            "get_file": self._get_file,
            "delete_file": self._delete_file,
            "file_content": self._file_content,
            "create_job": self._create_job,
            "list_jobs": self._list_jobs,
            "get_job": self._get_job,
            "cancel_job": self._cancel_job,
            "job_events": self._job_events,
            "job_checkpoints": self._job_checkpoints,
            "create_batch": self._create_batch,
            "list_batches": self._list_batches,
            "get_batch": self._get_batch,
            "cancel_batch": self._cancel_batch,
        }
        self._admin: dict[str, Handler] = {
            "state": self._admin_state,
            "knobs": self._admin_knobs,
            "advance_clock": self._admin_advance_clock,
            "knowledge": self._admin_knowledge,
            "errors": self._admin_errors,
            "reset": self._admin_reset,
        }
        self._bedrock = BedrockApi(state)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        bedrock = _is_bedrock(request)
        try:
            response = self._bedrock.respond(request) if bedrock else self._respond(request)
        except ApiError as error:
            response = _json(error.body(), error.status, error.headers)
        except BedrockError as error:
            response = error.response()
        with self._state.lock:
            if bedrock:
                response.headers["x-amzn-RequestId"] = _uuid_shaped(
                    self._state.ids.bare("bedrock-request", 32)
                )
            else:
                response.headers["x-request-id"] = self._state.ids.new("req_", 32)
            self._state.served.append(ServedRequest(request.method, request.path, response.status_code))
        # Before the caller hears of it: a job it learns the id of is one the emulator will remember.
        self._state.changed(request.method, request.path)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.path.startswith("/_emulator/"):
            handler, arguments = _route(_ADMIN_ROUTES, self._admin, request)
            with self._state.lock:
                return handler(request, arguments)
        _authenticate(request)
        with self._state.lock:
            fault = self._state.faults.next_fault(request.path, self._state.knobs, self._state.seed)
            if fault is not None:
                raise fault
            handler, arguments = _route(_API_ROUTES, self._api, request)
            self._state.refresh()
            billed_before = len(self._state.billed)
            response = handler(request, arguments)
            lost = self._state.faults.next_loss(request.method, request.path)
            if lost is not None:
                mark_lost(self._state.billed, billed_before)
                raise fault_error(lost)  # the work is done; the caller never learns of it
            latency = self._state.knobs.latency_seconds
        # Like the real service, a request is admitted (or refused with a fast 429 or 400) on arrival
        # and its latency is the time spent producing the answer. Slept outside the lock, so slow
        # requests overlap as they would on a real service.
        self._state.clock.sleep(latency)
        return response

    # -- models ---------------------------------------------------------------------------------

    def _list_models(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json({"object": "list", "data": self._state.model_objects()})

    def _get_model(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.model_object(arguments["model"]))

    def _delete_model(self, request: Request, arguments: dict[str, str]) -> Response:
        model = arguments["model"]
        if self._state.fine_tuning.find_model(model) is None:
            if model in BASE_MODELS:
                raise ApiError(
                    403, f"Model {model} is not a fine-tuned model of yours and cannot be deleted."
                )
            raise ApiError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")
        self._state.fine_tuning.delete_model(model)
        return _json({"id": model, "object": "model", "deleted": True})

    # -- chat -----------------------------------------------------------------------------------

    def _chat(self, request: Request, arguments: dict[str, str]) -> Response:
        completion, headers = chat_completion(self._state, _json_body(request))
        usage = completion["usage"]
        self._state.billed.append(
            BilledRequest("openai", completion["model"], usage["prompt_tokens"], usage["completion_tokens"])
        )
        return _json(completion, headers=headers)

    # -- files ----------------------------------------------------------------------------------

    def _upload_file(self, request: Request, arguments: dict[str, str]) -> Response:
        upload = request.files.get("file")
        if upload is None:
            raise bad_request("Missing required parameter: 'file'.", param="file")
        purpose = request.form.get("purpose")
        if purpose not in UPLOAD_PURPOSES:
            raise bad_request(
                f"Invalid purpose {purpose!r}: expected one of {', '.join(UPLOAD_PURPOSES)}.", param="purpose"
            )
        stored = StoredFile(
            id=self._state.ids.new("file-"),
            filename=upload.filename or "upload",
            purpose=purpose,
            content=upload.read(),
            created_at=int(self._state.clock.now()),
        )
        return _json(self._state.files.add(stored).to_api())

    def _list_files(self, request: Request, arguments: dict[str, str]) -> Response:
        page = self._state.files.page(
            purpose=request.args.get("purpose"),
            after=request.args.get("after"),
            limit=_int_arg(request, "limit", 10_000),
            order=request.args.get("order", "desc"),
        )
        return _json(page)

    def _get_file(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.files.get(arguments["file_id"]).to_api())

    def _delete_file(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.files.delete(arguments["file_id"]))

    def _file_content(self, request: Request, arguments: dict[str, str]) -> Response:
        return Response(
            self._state.files.get(arguments["file_id"]).content, mimetype="application/octet-stream"
        )

    # -- fine-tuning ----------------------------------------------------------------------------

    def _create_job(self, request: Request, arguments: dict[str, str]) -> Response:
        body = _json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        return _json(self._state.fine_tuning.create(body, self._state.clock.now(), self._state.knobs))

    def _list_jobs(self, request: Request, arguments: dict[str, str]) -> Response:
        metadata: dict[str, str] = {}
        null_metadata = False
        for key, value in request.args.items(multi=True):
            match = _METADATA_FILTER.match(key)
            if match:
                metadata[match.group("key")] = value
            elif key == "metadata" and value == "null":
                null_metadata = True
        page = self._state.fine_tuning.page(
            request.args.get("after"), _int_arg(request, "limit", 20), metadata, null_metadata
        )
        return _json(page)

    def _get_job(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.fine_tuning.retrieve(arguments["job_id"]))

    def _cancel_job(self, request: Request, arguments: dict[str, str]) -> Response:
        job = self._state.fine_tuning.cancel(arguments["job_id"], self._state.clock.now(), self._state.knobs)
        return _json(job)

    def _job_events(self, request: Request, arguments: dict[str, str]) -> Response:
        page = self._state.fine_tuning.events(
            arguments["job_id"],
            self._state.clock.now(),
            request.args.get("after"),
            _int_arg(request, "limit", 20),
        )
        return _json(page)

    def _job_checkpoints(self, request: Request, arguments: dict[str, str]) -> Response:
        page = self._state.fine_tuning.checkpoints(
            arguments["job_id"],
            self._state.clock.now(),
            request.args.get("after"),
            _int_arg(request, "limit", 10),
        )
        return _json(page)

    # -- batches --------------------------------------------------------------------------------

    def _create_batch(self, request: Request, arguments: dict[str, str]) -> Response:
        body = _json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        return _json(self._state.batches.create(body, self._state.clock.now(), self._state.knobs))

    def _list_batches(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.batches.page(request.args.get("after"), _int_arg(request, "limit", 20)))

    def _get_batch(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.batches.retrieve(arguments["batch_id"]))

    def _cancel_batch(self, request: Request, arguments: dict[str, str]) -> Response:
        batch = self._state.batches.cancel(arguments["batch_id"], self._state.clock.now(), self._state.knobs)
        return _json(batch)

    # -- admin ----------------------------------------------------------------------------------

    def _admin_state(self, request: Request, arguments: dict[str, str]) -> Response:
        return _json(self._state.summary())

    def _admin_knobs(self, request: Request, arguments: dict[str, str]) -> Response:
        changes = _json_body(request)
        if not isinstance(changes, dict):
            raise bad_request("Send the knobs to change as a JSON object.")
        try:
            knobs = self._state.configure(**changes)
        except ValidationError as error:
            raise bad_request(f"Invalid knobs: {error}") from error
        return _json(knobs.model_dump(mode="json"))

    def _admin_advance_clock(self, request: Request, arguments: dict[str, str]) -> Response:
        clock = self._state.clock
        if not isinstance(clock, VirtualClock):
            raise ApiError(
                409, f"The emulator runs on a {type(clock).__name__}; only a VirtualClock can be advanced."
            )
        body = _json_body(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise bad_request('Send {"seconds": N} with N a number of seconds, 0 or more.', param="seconds")
        clock.advance(float(seconds))
        return _json({"now": self._state.refresh()})

    def _admin_knowledge(self, request: Request, arguments: dict[str, str]) -> Response:
        body = _json_body(request)
        if not isinstance(body, list):
            raise bad_request('Send a JSON list of {"question", "answer", "category"} objects.')
        try:
            items = [KnowledgeItem.model_validate(item) for item in body]
        except ValidationError as error:
            raise bad_request(f"Invalid knowledge item: {error}") from error
        added = self._state.add_knowledge(items)
        return _json({"added": added, "total": len(self._state.knowledge)})

    def _admin_errors(self, request: Request, arguments: dict[str, str]) -> Response:
        body = _json_body(request)
        if not isinstance(body, dict):
            raise bad_request('Send {"count": N, "status": 500, "path_prefix": "/v1/"}.')
        count, status, prefix = body.get("count"), body.get("status", 500), body.get("path_prefix", "/v1/")
        if not isinstance(count, int) or not isinstance(status, int) or not isinstance(prefix, str):
            raise bad_request('"count" and "status" must be integers and "path_prefix" a string.')
        try:
            self._state.faults.inject(count, status, prefix)
        except ValueError as error:
            raise bad_request(str(error)) from error
        return _json({"pending": self._state.faults.pending()})

    def _admin_reset(self, request: Request, arguments: dict[str, str]) -> Response:
        body = _json_body(request) if request.get_data() else {}
        forget_knowledge = bool(body.get("knowledge")) if isinstance(body, dict) else False
        self._state.reset(knowledge=forget_knowledge)
        return _json(self._state.summary())


def _route(routes: Map, handlers: dict[str, Handler], request: Request) -> tuple[Handler, dict[str, str]]:
    adapter = routes.bind_to_environ(request.environ)
    try:
        endpoint, arguments = adapter.match()
    except MethodNotAllowed as error:
        raise ApiError(405, f"Invalid method for URL ({request.method} {request.path})") from error
    except NotFound as error:
        raise ApiError(404, f"Invalid URL ({request.method} {request.path})") from error
    return handlers[str(endpoint)], {key: str(value) for key, value in arguments.items()}


def _is_bedrock(request: Request) -> bool:
    """OpenAI's API lives under /v1 and the admin API under /_emulator; every other path is Bedrock's."""
    return not request.path.startswith(("/v1/", "/_emulator/"))


def _uuid_shaped(text: str) -> str:
    """AWS request ids look like UUIDs: 8-4-4-4-12 characters."""
    return "-".join((text[:8], text[8:12], text[12:16], text[16:20], text[20:32]))


def _authenticate(request: Request) -> None:
    if not _AUTHORIZATION.match(request.headers.get("Authorization", "")):
        raise ApiError(
            401,
            "You didn't provide an API key. Send it in an Authorization header: 'Bearer YOUR_KEY' "
            "(the emulator accepts any non-empty key).",
            code="invalid_api_key",
        )


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.get_data() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise bad_request(
            "We could not parse the JSON body of your request. "
            "(HINT: This likely means you aren't using your HTTP library correctly.)"
        ) from error


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise bad_request(f"Invalid {name} {raw!r}: expected an integer.", param=name) from error


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")
