"""POST /v1/chat/completions: the request checked like OpenAI does, answered by a simulated model."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthtune_cli.emulator.behaviour import Reply, reply_to
from synthtune_cli.emulator.conversation import Conversation
from synthtune_cli.emulator.errors import bad_request
from synthtune_cli.emulator.structured import SchemaError, fill_schema
from synthtune_cli.emulator.tokens import count_message_tokens, count_tokens, truncate_to_tokens

if TYPE_CHECKING:
    from synthtune_cli.emulator.catalogue import SimulatedModel
    from synthtune_cli.emulator.state import EmulatorState

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_CHOICES = 128


@dataclass(frozen=True)
class ResponseFormat:
    kind: str
    schema: Mapping[str, Any] | None = None

    def render(self, reply: Reply) -> str:
        if self.kind == "json_object":
            return reply.as_json_object()
        if self.kind == "json_schema":
            assert self.schema is not None
            return json.dumps(fill_schema(self.schema, reply), ensure_ascii=False)
        return reply.as_text()


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[tuple[str, str]]
    n: int
    temperature: float
    max_tokens: int | None
    response_format: ResponseFormat

    @property
    def conversation(self) -> Conversation:
        """What the simulated model reads: the last user message, the system prompt, the turns before."""
        return Conversation.from_messages(self.messages)


def parse_chat_request(body: object) -> ChatRequest:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("You must provide a model parameter.", param="model")
    if body.get("stream"):
        raise bad_request("stream=true is not supported by the emulator.", param="stream")
    messages = _messages(body.get("messages"))
    n = _integer(body, "n", 1, 1, _MAX_CHOICES)
    # OpenAI's default temperature is 1, so an omitted temperature samples.
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
        raise bad_request(
            f"Invalid temperature {temperature!r}: expected a number from 0 to 2.", param="temperature"
        )
    if body.get("seed") is not None:
        _integer(body, "seed", 0, -(2**63), 2**63 - 1)
    max_tokens = None
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None:
            max_tokens = _integer(body, name, 1, 1, 10**9)
    response_format = _response_format(body.get("response_format"), messages)
    return ChatRequest(model, messages, n, float(temperature), max_tokens, response_format)


def _messages(raw: object) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty array of messages.", param="messages")
    messages = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict):
            raise bad_request(
                f"Invalid message at index {index}: expected an object.", param=f"messages[{index}]"
            )
        role = message.get("role")
        if role not in _ROLES:
            raise bad_request(
                f"Invalid value: {role!r}. Supported values are: {', '.join(repr(r) for r in _ROLES)}.",
                param=f"messages[{index}].role",
            )
        messages.append((role, _content_text(message.get("content"), index)))
    return messages


def _content_text(content: object, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
                raise bad_request(
                    "Invalid content part: expected an object.", param=f"messages[{index}].content"
                )
            if part.get("type") in ("text", "input_text"):
                texts.append(part["text"])
        return "\n".join(texts)
    raise bad_request(
        "Invalid content: expected a string or an array of content parts.", param=f"messages[{index}].content"
    )


def _integer(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(f"Invalid {name} {value!r}: expected an integer from {low} to {high}.", param=name)
    return value


def _response_format(raw: object, messages: list[tuple[str, str]]) -> ResponseFormat:
    if raw is None:
        return ResponseFormat("text")
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or kind not in ("text", "json_object", "json_schema"):
        raise bad_request(
            "Invalid response_format: type must be 'text', 'json_object' or 'json_schema'.",
            param="response_format.type",
        )
    if kind == "json_object" and not any("json" in text.casefold() for _, text in messages):
        raise bad_request(
            "'messages' must contain the word 'json' in some form, "
            "to use 'response_format' of type 'json_object'.",
            param="messages",
        )
    if kind != "json_schema":
        return ResponseFormat(kind)
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise bad_request(
            "Missing required parameter: 'response_format.json_schema'.", param="response_format.json_schema"
        )
    if not isinstance(spec.get("name"), str) or not _SCHEMA_NAME.match(spec["name"]):
        raise bad_request(
            "Invalid 'response_format.json_schema.name': expected 1 to 64 letters, digits, '_' or '-'.",
            param="response_format.json_schema.name",
        )
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise bad_request(
            "Invalid 'response_format.json_schema.schema': expected a JSON Schema object.",
            param="response_format.json_schema.schema",
        )
    try:
        # Filled once with an empty reply so a schema the emulator cannot fill is refused before the request
        # counts against the rate limits.
        fill_schema(schema, Reply((), ""))
    except SchemaError as error:
        raise bad_request(f"Invalid schema: {error}", param="response_format.json_schema.schema") from error
    return ResponseFormat("json_schema", schema)


def chat_completion(state: EmulatorState, body: object) -> tuple[dict[str, Any], dict[str, str]]:
    """The chat.completion object and the rate-limit headers for one request. Call under the state lock."""
    request = parse_chat_request(body)
    simulated, reported_model = state.simulated_model(request.model)
    now = state.clock.now()
    prompt_tokens = count_message_tokens(request.messages)
    estimated = prompt_tokens + (request.max_tokens or 0) * request.n
    state.limiter.admit(now, state.knobs, request.model, estimated)
    completion_id = state.ids.new("chatcmpl-", 29)
    completion = _complete(state, request, simulated, reported_model, prompt_tokens, now, completion_id)
    state.limiter.record_tokens(now, completion["usage"]["total_tokens"])
    return completion, state.limiter.headers(now, state.knobs)


def batch_chat_completion(
    state: EmulatorState, body: object, now: float, completion_id: str
) -> dict[str, Any]:
    """One batch line's chat.completion, answered at `now`: the same checks and replies as
    POST /v1/chat/completions, without its rate limits. Raises `ApiError` as that route would."""
    request = parse_chat_request(body)
    simulated, reported_model = state.simulated_model(request.model)
    prompt_tokens = count_message_tokens(request.messages)
    return _complete(state, request, simulated, reported_model, prompt_tokens, now, completion_id)


def _complete(
    state: EmulatorState,
    request: ChatRequest,
    simulated: SimulatedModel,
    reported_model: str,
    prompt_tokens: int,
    now: float,
    completion_id: str,
) -> dict[str, Any]:
    choices = []
    completion_tokens = 0
    conversation = request.conversation
    for index in range(request.n):
        sample = index if request.temperature > 0 else 0
        reply = reply_to(simulated, conversation, state.knowledge, state.seed, sample)
        content = request.response_format.render(reply)
        truncated = False
        if request.max_tokens is not None:
            content, truncated = truncate_to_tokens(content, request.max_tokens)
        completion_tokens += count_tokens(content)
        choices.append(
            {
                "index": index,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "length" if truncated else "stop",
            }
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(now),
        "model": reported_model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_synthtune_emulator",
    }
