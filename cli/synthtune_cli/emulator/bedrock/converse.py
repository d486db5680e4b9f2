"""Converse (bedrock-runtime): a conversation checked like Bedrock checks it, answered by a simulated model.

The model id may be a foundation model (bare, or through a `us.`/`eu.`/`apac.`/`global.` inference
profile, or as an ARN), a custom model deployment's ARN or a Provisioned Throughput's ARN. The reply is
the same simulation as the OpenAI side's (`behaviour.reply_to`), rendered as Converse content: text, a
`toolUse` block whose input fills the tool's schema, or JSON filling `outputConfig.textFormat`'s schema.
Converse has no `n`: with a temperature above 0, successive requests for one (model, question) are that
model's successive samples, so self-consistency voting over separate requests works deterministically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.bedrock.account import BedrockAccount
from synthtune_cli.emulator.bedrock.foundation_models import FoundationModel, find_foundation_model
from synthtune_cli.emulator.bedrock.protocol import (
    BedrockError,
    arn_resource,
    constraint_error,
    validation_error,
)
from synthtune_cli.emulator.behaviour import Reply, reply_to
from synthtune_cli.emulator.catalogue import SimulatedModel
from synthtune_cli.emulator.conversation import Conversation
from synthtune_cli.emulator.errors import ApiError
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import Knowledge
from synthtune_cli.emulator.structured import SchemaError, fill_schema
from synthtune_cli.emulator.tokens import count_message_tokens, count_tokens, truncate_to_tokens

_ROLES = ("user", "assistant")
_NO_ON_DEMAND = (
    "The provided model doesn't support on-demand throughput. Invoke it through a custom model "
    "deployment or Provisioned Throughput."
)
_END_OF_LIFE = (
    "This model version has reached the end of its life. Please refer to the AWS documentation for more "
    "details."
)
_THROTTLED = {
    "requests": "Too many requests, please wait before trying again.",
    "tokens": "Too many tokens, please wait before trying again.",
}


@dataclass(frozen=True)
class _Tool:
    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class ConverseRequest:
    messages: tuple[tuple[str, str], ...]
    conversation: Conversation
    max_tokens: int | None
    temperature: float | None
    stop_sequences: tuple[str, ...]
    tool: _Tool | None
    output_schema: Mapping[str, Any] | None

    @property
    def samples(self) -> bool:
        """Whether the request draws a fresh sample: every model's default temperature is above 0."""
        return self.temperature is None or self.temperature > 0


@dataclass(frozen=True)
class Target:
    """What answers a request: `identity` keys its sample counts (a model id, a deployment's ARN...)."""

    identity: str
    foundation: FoundationModel
    simulated: SimulatedModel


def resolve_target(account: BedrockAccount, model_id: str) -> Target:
    """The model a Converse model id names, or the error Bedrock gives for it."""
    resource = arn_resource(model_id)
    if resource is not None:
        kind = resource[0]
        if kind == "custom-model-deployment":
            return Target(model_id, *account.deployments.serving(model_id))
        if kind == "provisioned-model":
            return Target(model_id, *account.provisioned.serving(model_id))
        if kind == "custom-model":
            account.custom_models.get(model_id)  # a deleted model is ResourceNotFoundException
            raise validation_error(_NO_ON_DEMAND)
    reference = find_foundation_model(model_id)
    if reference is None:
        raise validation_error("The provided model identifier is invalid.")
    model = reference.model
    if model.lifecycle.ended:
        raise validation_error(_END_OF_LIFE)
    if reference.customization_variant:
        raise validation_error(_NO_ON_DEMAND)
    if model.profile_only and not reference.via_profile:
        raise validation_error(
            f"Invocation of model ID {model.model_id} with on-demand throughput isn't supported. Retry your "
            "request with the ID or ARN of an inference profile that contains this model."
        )
    return Target(model.model_id, model, model.simulated)


def converse(
    account: BedrockAccount,
    model_id: str,
    body: Mapping[str, Any],
    *,
    knowledge: Knowledge,
    seed: int,
    knobs: EmulatorKnobs,
    now: float,
) -> dict[str, Any]:
    """The Converse response for one request. Call under the emulator's state lock."""
    request = parse_converse(body)
    target = resolve_target(account, model_id)
    if request.output_schema is not None and not target.foundation.structured_output:
        raise validation_error(
            f"The model {target.foundation.model_id} doesn't support structured outputs "
            "(outputConfig.textFormat). Use a tool with toolChoice instead."
        )
    input_tokens = count_message_tokens(list(request.messages))
    try:
        account.limiter.admit(now, knobs, model_id, input_tokens + (request.max_tokens or 0))
    except ApiError as error:
        message = _THROTTLED.get(error.error_type, _THROTTLED["requests"])
        raise BedrockError(429, "ThrottlingException", message) from error
    sample = 0
    if request.samples:
        sample = account.next_sample(target.identity, knowledge.resolve(request.conversation.question))
    reply = reply_to(target.simulated, request.conversation, knowledge, seed, sample)
    tool_use_id = None if request.tool is None else "tooluse_" + account.ids.bare("tooluse", 22)
    content, stop_reason, output_tokens = _render(request, reply, tool_use_id)
    account.limiter.record_tokens(now, input_tokens + output_tokens)
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": round(knobs.latency_seconds * 1000)},
    }


def _render(
    request: ConverseRequest, reply: Reply, tool_use_id: str | None
) -> tuple[list[dict[str, Any]], str, int]:
    """(content blocks, stopReason, output tokens) of a reply."""
    if request.tool is not None:
        tool_input = fill_schema(request.tool.schema, reply)
        rendered = json.dumps(tool_input, ensure_ascii=False)
        tokens = count_tokens(rendered)
        if request.max_tokens is None or tokens <= request.max_tokens:
            tool_use = {
                "toolUseId": tool_use_id,
                "name": request.tool.name,
                "input": tool_input,
            }
            return [{"toolUse": tool_use}], "tool_use", tokens
        # A tool input cut short is no tool call: the client gets the partial JSON as text.
        text, _ = truncate_to_tokens(rendered, request.max_tokens)
        return [{"text": text}], "max_tokens", request.max_tokens
    if request.output_schema is not None:
        text = json.dumps(fill_schema(request.output_schema, reply), ensure_ascii=False)
    else:
        text = reply.as_text()
    stop_reason = "end_turn"
    cuts = [text.index(stop) for stop in request.stop_sequences if stop and stop in text]
    if cuts:
        text, stop_reason = text[: min(cuts)], "stop_sequence"
    if request.max_tokens is not None:
        text, truncated = truncate_to_tokens(text, request.max_tokens)
        if truncated:
            stop_reason = "max_tokens"
    return [{"text": text}], stop_reason, count_tokens(text)


def parse_converse(body: Mapping[str, Any]) -> ConverseRequest:
    messages = _messages(body.get("messages"))
    system = body.get("system")
    if system is not None and not isinstance(system, list):
        raise constraint_error("system", system, "Member must be a list of system content blocks")
    system_text = "\n".join(
        block["text"]
        for block in system or []
        if isinstance(block, dict) and isinstance(block.get("text"), str)
    )
    conversation = ((("system", system_text),) if system_text else ()) + tuple(messages)
    config = body.get("inferenceConfig") or {}
    if not isinstance(config, dict):
        raise constraint_error("inferenceConfig", config, "Member must be an object")
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise constraint_error(
            "inferenceConfig.maxTokens", max_tokens, "Member must have value greater than or equal to 1"
        )
    temperature = _unit_interval(config, "temperature")
    _unit_interval(config, "topP")
    stop_sequences = config.get("stopSequences") or []
    if not isinstance(stop_sequences, list) or not all(isinstance(stop, str) for stop in stop_sequences):
        raise constraint_error(
            "inferenceConfig.stopSequences", stop_sequences, "Member must be a list of strings"
        )
    return ConverseRequest(
        messages=conversation,
        conversation=Conversation.from_messages(conversation),
        max_tokens=max_tokens,
        temperature=temperature,
        stop_sequences=tuple(stop_sequences),
        tool=_tool(body.get("toolConfig")),
        output_schema=_output_schema(body.get("outputConfig")),
    )


def _messages(raw: object) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise validation_error("The messages field must be a non-empty list of messages.")
    messages: list[tuple[str, str]] = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            role = message.get("role") if isinstance(message, dict) else message
            raise constraint_error(
                f"messages.{index + 1}.member.role",
                role,
                "Member must satisfy enum value set: [user, assistant]",
            )
        role = message["role"]
        if index == 0 and role != "user":
            raise validation_error(
                "A conversation must start with a user message. "
                "Try again with a conversation that starts with a user message."
            )
        if index > 0 and role == messages[-1][0]:
            raise validation_error(
                "A conversation must alternate between user and assistant roles. "
                "Make sure the conversation alternates between user and assistant roles and try again."
            )
        content = message.get("content")
        if not isinstance(content, list):
            raise constraint_error(f"messages.{index + 1}.member.content", content, "Member must not be null")
        messages.append((role, _content_text(content)))
    return messages


def _content_text(blocks: list[Any]) -> str:
    """The text a simulated model reads: text blocks, and the text inside tool results."""
    texts = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        result = block.get("toolResult")
        if isinstance(result, dict) and isinstance(result.get("content"), list):
            texts.append(_content_text(result["content"]))
    return "\n".join(texts)


def _unit_interval(config: Mapping[str, Any], name: str) -> float | None:
    value = config.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise constraint_error(f"inferenceConfig.{name}", value, "Member must be a number")
    if value < 0:
        raise constraint_error(
            f"inferenceConfig.{name}", value, "Member must have value greater than or equal to 0"
        )
    if value > 1:
        raise constraint_error(
            f"inferenceConfig.{name}", value, "Member must have value less than or equal to 1"
        )
    return float(value)


def _tool(config: object) -> _Tool | None:
    """The tool the model calls: the one toolChoice names, else (auto or any) the first tool."""
    if config is None:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("tools"), list):
        raise constraint_error("toolConfig.tools", None, "Member must not be null")
    tools = []
    for index, entry in enumerate(config["tools"]):
        spec = entry.get("toolSpec") if isinstance(entry, dict) else None
        if spec is None:
            continue  # a cache point or a system tool: nothing the simulated model calls
        input_schema = spec.get("inputSchema") if isinstance(spec, dict) else None
        schema = input_schema.get("json") if isinstance(input_schema, dict) else None
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("name"), str)
            or not isinstance(schema, dict)
        ):
            raise validation_error(
                f"toolConfig.tools.{index + 1}.toolSpec needs a name and an inputSchema with a json schema."
            )
        _check_schema(schema, f"the inputSchema of the tool {spec['name']}")
        tools.append(_Tool(spec["name"], schema))
    if not tools:
        raise validation_error("toolConfig.tools must contain at least one toolSpec.")
    choice = config.get("toolChoice") or {"auto": {}}
    if not isinstance(choice, dict):
        raise constraint_error("toolConfig.toolChoice", choice, "Member must be one of auto, any, tool")
    named = choice.get("tool")
    if named is None:
        return tools[0]
    name = named.get("name") if isinstance(named, dict) else None
    chosen = next((tool for tool in tools if tool.name == name), None)
    if chosen is None:
        raise validation_error(f"The tool {name} named by toolChoice is not in toolConfig.tools.")
    return chosen


def _output_schema(config: object) -> Mapping[str, Any] | None:
    if config is None:
        return None
    text_format = config.get("textFormat") if isinstance(config, dict) else None
    if text_format is None:
        return None
    if not isinstance(text_format, dict) or text_format.get("type") != "json_schema":
        raise constraint_error(
            "outputConfig.textFormat.type",
            text_format.get("type") if isinstance(text_format, dict) else text_format,
            "Member must satisfy enum value set: [json_schema]",
        )
    structure = text_format.get("structure")
    definition = structure.get("jsonSchema") if isinstance(structure, dict) else None
    raw = definition.get("schema") if isinstance(definition, dict) else None
    try:
        schema = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        schema = None
    if not isinstance(schema, dict):
        raise validation_error(
            "outputConfig.textFormat.structure.jsonSchema.schema must be a JSON Schema object, as a string."
        )
    _check_schema(schema, "outputConfig.textFormat.structure.jsonSchema.schema")
    return schema


def _check_schema(schema: Mapping[str, Any], what: str) -> None:
    # Filled once with an empty reply, so a schema the emulator cannot fill is refused before the request
    # counts against the rate limits.
    try:
        fill_schema(schema, Reply((), ""))
    except SchemaError as error:
        raise validation_error(f"Invalid schema in {what}: {error}") from error
