"""The chat port over Amazon Bedrock's Converse API: one request shape for every Bedrock model.

Structured answers (the teacher's solution, the judge's verdict) come through forced tool use: one tool
whose input schema is the pydantic model's, and `toolChoice` naming it, which Nova, Claude and Llama all
honour (Converse's `outputConfig` JSON-schema output is not offered for Nova). Converse has no `n`: one
request is one sample (`samples_per_request` is 1), so the teacher's self-consistency samples are separate
requests, each checkpointed by the Generate stage as it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from synthtune.contracts.models import parse_model
from synthtune.contracts.usage import Usage
from synthtune.prompts import (
    JUDGE_MAX_TOKENS,
    JUDGE_SYSTEM_PROMPT,
    SOLVER_SYSTEM_PROMPT,
    Exemplar,
    Solution,
    Verdict,
    judge_request,
)
from synthtune.providers.bedrock.client import bedrock_errors
from synthtune.providers.ports import Replies, Reply, ReplyText, Sample, SolveResult

ParsedT = TypeVar("ParsedT", bound=BaseModel)

# Converse's stopReason in the neutral words of `providers.ports`.
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "invalid_json",
    "malformed_tool_use": "invalid_json",
}
SOLUTION_TOOL = "submit_solution"
VERDICT_TOOL = "submit_verdict"


def _tool(name: str, description: str, schema: type[BaseModel]) -> dict[str, Any]:
    return {
        "tools": [
            {
                "toolSpec": {
                    "name": name,
                    "description": description,
                    "inputSchema": {"json": schema.model_json_schema()},
                }
            }
        ],
        "toolChoice": {"tool": {"name": name}},
    }


def _message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"text": text}]}


def converse_request(
    model_id: str,
    system: str,
    user: str,
    *,
    max_tokens: int,
    temperature: float,
    tool: dict[str, Any] | None = None,
    earlier: Sequence[Exemplar] = (),
) -> dict[str, Any]:
    """A Converse request for `user`, after the `earlier` turns (each a user question and the assistant's
    reply, alternating as Converse requires)."""
    turns = [
        message
        for exemplar in earlier
        for message in (_message("user", exemplar.question), _message("assistant", exemplar.reply))
    ]
    request: dict[str, Any] = {
        "modelId": model_id,
        "system": [{"text": system}],
        "messages": [*turns, _message("user", user)],
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
    }
    if tool is not None:
        request["toolConfig"] = tool
    return request


def _usage(response: dict[str, Any]) -> Usage:
    usage = response.get("usage") or {}
    cached = int(usage.get("cacheReadInputTokens") or 0)
    written = int(usage.get("cacheWriteInputTokens") or 0)
    return Usage(
        requests=1,
        input_tokens=int(usage.get("inputTokens") or 0) + cached + written,
        cached_input_tokens=cached,
        output_tokens=int(usage.get("outputTokens") or 0),
    )


def _blocks(response: dict[str, Any]) -> list[dict[str, Any]]:
    message = (response.get("output") or {}).get("message") or {}
    return list(message.get("content") or [])


def _text(response: dict[str, Any]) -> str | None:
    texts = [block["text"] for block in _blocks(response) if isinstance(block.get("text"), str)]
    return "\n".join(texts) if texts else None


def _finish_reason(response: dict[str, Any]) -> str:
    return _STOP_REASONS.get(str(response.get("stopReason")), "stop")


def _structured(
    response: dict[str, Any], tool_name: str, schema: type[ParsedT]
) -> tuple[ParsedT | None, str]:
    """The tool's input read as `schema`, and the neutral finish reason; None when it is unusable."""
    finish = _finish_reason(response)
    if finish != "stop":
        return None, finish
    for block in _blocks(response):
        tool_use = block.get("toolUse")
        if isinstance(tool_use, dict) and tool_use.get("name") == tool_name:
            try:
                return schema.model_validate(tool_use.get("input")), "stop"
            except ValidationError:
                return None, "invalid_json"
    # A model that answered in text despite the forced tool: its text may still be the JSON asked for.
    text = _text(response)
    if text:
        try:
            return schema.model_validate(json.loads(text)), "stop"
        except (ValueError, ValidationError):
            pass
    return None, "invalid_json"


class BedrockChat:
    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def _converse(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        with bedrock_errors(action, self._runtime):
            response: dict[str, Any] = self._runtime.converse(**request)
        return response

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        ref = parse_model(model)
        tool = _tool(SOLUTION_TOOL, "Submit the step-by-step solution and the final answer.", Solution)
        request = converse_request(
            ref.id, SOLVER_SYSTEM_PROMPT, question, max_tokens=max_tokens, temperature=temperature, tool=tool
        )
        result: SolveResult | None = None
        for _ in range(samples):  # no `n` in Converse: one request per sample
            response = self._converse(f"{ref.name} solving a problem", request)
            solution, finish = _structured(response, SOLUTION_TOOL, Solution)
            one = SolveResult(
                model=ref.name,
                samples=[Sample(solution=solution, finish_reason=finish)],
                usage=_usage(response),
            )
            result = one if result is None else result.merged(one)
        assert result is not None
        return result

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        ref = parse_model(model)
        request = converse_request(
            endpoint or ref.id, system, question, max_tokens=max_tokens, temperature=0.0
        )
        response = self._converse(f"{ref.name} answering a problem", request)
        return Reply(
            model=ref.name,
            text=_text(response),
            finish_reason=_finish_reason(response),
            usage=_usage(response),
        )

    def replies(
        self,
        model: str,
        question: str,
        *,
        system: str,
        exemplars: Sequence[Exemplar] = (),
        temperature: float,
        max_tokens: int,
        samples: int = 1,
    ) -> Replies:
        ref = parse_model(model)
        request = converse_request(
            ref.id, system, question, max_tokens=max_tokens, temperature=temperature, earlier=exemplars
        )
        texts: list[ReplyText] = []
        usage = Usage()
        for _ in range(samples):  # no `n` in Converse: one request per sample
            response = self._converse(f"{ref.name} answering a probe", request)
            texts.append(ReplyText(text=_text(response), finish_reason=_finish_reason(response)))
            usage += _usage(response)
        return Replies(model=ref.name, replies=texts, usage=usage)

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        ref = parse_model(model)
        tool = _tool(VERDICT_TOOL, "Submit whether the candidate answer is correct, and why.", Verdict)
        request = converse_request(
            ref.id,
            JUDGE_SYSTEM_PROMPT,
            judge_request(question, reference, candidate),
            max_tokens=JUDGE_MAX_TOKENS,
            temperature=0.0,
            tool=tool,
        )
        response = self._converse(f"{ref.name} judging an answer", request)
        verdict, _ = _structured(response, VERDICT_TOOL, Verdict)
        if verdict is None:
            # A judge that refuses or rambles counts as "not shown to be equal".
            return Verdict(correct=False, explanation="the judge gave no verdict"), _usage(response)
        return verdict, _usage(response)

    def samples_per_request(self, model: str) -> int:
        return 1
