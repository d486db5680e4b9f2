"""Bedrock's wire protocol as botocore speaks it: restJson1 bodies, typed errors, ARNs, timestamps, pages.

botocore reads an error's code from the `x-amzn-ErrorType` header and its message from the body's
`message`, so an error here is a status, a code and a sentence. Field checks word their messages the way
AWS's request validation does ("1 validation error detected: Value 'x' at 'jobName' failed to satisfy
constraint: ..."), so a caller's error handling sees what it would see in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

# moto's default account: ARNs the emulator hands out look like the ones moto's other services use.
ACCOUNT_ID = "123456789012"
# A name, job name or token Bedrock accepts, by the patterns of botocore's service model.
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*")
RESOURCE_NAME = re.compile(r"([0-9a-zA-Z][_-]?){1,63}")
CLIENT_REQUEST_TOKEN = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?")
NAME_MAX = 63
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_MAX_RESULTS = 1000


class BedrockError(Exception):
    """An error answered as Bedrock answers it: status, `x-amzn-ErrorType: code`, `{"message": ...}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        return Response(
            json.dumps({"message": self.message}),
            status=self.status,
            headers={"x-amzn-ErrorType": self.code},
            mimetype="application/json",
        )


def validation_error(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


def constraint_error(field: str, value: object, constraint: str) -> BedrockError:
    """AWS's wording for a request field that breaks its model's constraint."""
    return validation_error(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        + constraint
    )


def not_found(message: str) -> BedrockError:
    return BedrockError(404, "ResourceNotFoundException", message)


def conflict(message: str) -> BedrockError:
    # botocore's model gives ConflictException status 400, not 409.
    return BedrockError(400, "ConflictException", message)


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def read_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; AWS answers anything else with a SerializationException."""
    try:
        body = json.loads(request.get_data() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BedrockError(400, "SerializationException", "The request body is not valid JSON.") from error
    if not isinstance(body, dict):
        raise BedrockError(400, "SerializationException", "The request body must be a JSON object.")
    return body


def iso_time(at: float) -> str:
    """A timestamp as restJson1 sends it: ISO 8601, UTC, with a Z."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str, field: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise constraint_error(field, text, "Member must be an ISO 8601 timestamp") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def required_string(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise constraint_error(field, value, "Member must not be null and must be a non-empty string")
    return value


def optional_string(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise constraint_error(field, value, "Member must be a string")
    return value


def checked_name(value: str, field: str, pattern: re.Pattern[str]) -> str:
    if len(value) > NAME_MAX:
        raise constraint_error(field, value, f"Member must have length less than or equal to {NAME_MAX}")
    if not pattern.fullmatch(value):
        raise constraint_error(
            field, value, f"Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return value


def client_request_token(body: Mapping[str, Any]) -> str | None:
    token = optional_string(body, "clientRequestToken")
    if token is not None and not CLIENT_REQUEST_TOKEN.fullmatch(token):
        raise constraint_error(
            "clientRequestToken",
            token,
            f"Member must satisfy regular expression pattern: {CLIENT_REQUEST_TOKEN.pattern}",
        )
    return token


@dataclass(frozen=True)
class Arns:
    """The ARNs of one region of the emulated account, shaped like AWS's."""

    region: str

    def __post_init__(self) -> None:
        if not _REGION.fullmatch(self.region):
            raise ValueError(f"{self.region!r} is not an AWS region name (like us-east-1)")

    def foundation_model(self, model_id: str) -> str:
        return f"arn:aws:bedrock:{self.region}::foundation-model/{model_id}"

    def customization_job(self, base_model_id: str, job_id: str) -> str:
        return f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:model-customization-job/{base_model_id}/{job_id}"

    def custom_model(self, base_model_id: str, model_id: str) -> str:
        # The base customisation id is part of the ARN; callers read it to price the model.
        return f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:custom-model/{base_model_id}/{model_id}"

    def deployment(self, deployment_id: str) -> str:
        return f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:custom-model-deployment/{deployment_id}"

    def provisioned_model(self, provisioned_id: str) -> str:
        return f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:provisioned-model/{provisioned_id}"


_ARN = re.compile(r"^arn:aws(?:-[^:]+)?:bedrock:(?P<region>[^:]*):(?P<account>\d{12})?:(?P<resource>.+)$")


def arn_resource(identifier: str) -> tuple[str, str] | None:
    """(resource type, rest) of a Bedrock ARN: `custom-model`, `amazon.nova-micro-v1:0:128k/abc...`."""
    match = _ARN.match(identifier)
    if match is None:
        return None
    kind, _, rest = match.group("resource").partition("/")
    return kind, rest


@dataclass(frozen=True)
class Listing:
    """One object as a List* operation sees it: what the common filters read, and its summary."""

    name: str
    status: str
    created_at: float
    summary: dict[str, Any]


@dataclass(frozen=True)
class ListQuery:
    """The filters, order and page every Bedrock List* operation shares."""

    name_contains: str | None
    status_equals: str | None
    created_after: float | None
    created_before: float | None
    descending: bool
    max_results: int
    offset: int

    @classmethod
    def from_request(
        cls,
        request: Request,
        *,
        status: str = "statusEquals",
        after: str = "creationTimeAfter",
        before: str = "creationTimeBefore",
    ) -> ListQuery:
        """The query of a List* request; the operations name the status and time filters differently."""
        args = request.args
        sort_by = args.get("sortBy", "CreationTime")
        if sort_by != "CreationTime":
            raise constraint_error("sortBy", sort_by, "Member must satisfy enum value set: [CreationTime]")
        sort_order = args.get("sortOrder", "Descending")
        if sort_order not in ("Ascending", "Descending"):
            raise constraint_error(
                "sortOrder", sort_order, "Member must satisfy enum value set: [Ascending, Descending]"
            )
        return cls(
            name_contains=args.get("nameContains"),
            status_equals=args.get(status),
            created_after=_time_arg(request, after),
            created_before=_time_arg(request, before),
            descending=sort_order == "Descending",
            max_results=_max_results(request),
            offset=_offset(request),
        )

    def page(self, listings: list[Listing]) -> tuple[list[dict[str, Any]], str | None]:
        """The summaries on this page, and the token of the next page (None on the last)."""
        chosen = [
            listing
            for listing in listings
            if (self.name_contains is None or self.name_contains in listing.name)
            and (self.status_equals is None or listing.status == self.status_equals)
            and (self.created_after is None or listing.created_at > self.created_after)
            and (self.created_before is None or listing.created_at < self.created_before)
        ]
        # Python's sort is stable, so objects created in the same instant keep their creation order.
        chosen.sort(key=lambda listing: listing.created_at)
        if self.descending:
            chosen.reverse()
        end = self.offset + self.max_results
        page = [listing.summary for listing in chosen[self.offset : end]]
        return page, (str(end) if end < len(chosen) else None)


def with_next_token(body: dict[str, Any], next_token: str | None) -> dict[str, Any]:
    if next_token is not None:
        body["nextToken"] = next_token
    return body


def _time_arg(request: Request, name: str) -> float | None:
    raw = request.args.get(name)
    return None if raw is None else parse_time(raw, name)


def _max_results(request: Request) -> int:
    raw = request.args.get("maxResults")
    if raw is None:
        return _MAX_RESULTS
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_RESULTS:
        raise constraint_error(
            "maxResults", raw, f"Member must have value between 1 and {_MAX_RESULTS}, inclusive"
        )
    return int(raw)


def _offset(request: Request) -> int:
    # The next token is an offset into the filtered, sorted list: opaque to callers, simple here.
    raw = request.args.get("nextToken")
    if raw is None:
        return 0
    if not raw.isdigit():
        raise validation_error(f"Invalid nextToken {raw!r}: pass the nextToken of the previous page.")
    return int(raw)
