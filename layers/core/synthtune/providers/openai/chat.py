"""The chat port over OpenAI's chat completions API (or any server that speaks it: Azure OpenAI, vLLM...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from synthtune.contracts.models import parse_model
from synthtune.contracts.usage import Usage
from synthtune.money.catalog import accepts_temperature
from synthtune.prompts import (
    JUDGE_MAX_TOKENS,
    JUDGE_SYSTEM_PROMPT,
    SOLVER_SYSTEM_PROMPT,
    Exemplar,
    Solution,
    Verdict,
    judge_request,
)
from synthtune.providers.openai.client import provider_errors
from synthtune.providers.openai.headers import backpressure_from_headers
from synthtune.providers.ports import Backpressure, Replies, Reply, ReplyText, Sample, SolveResult

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.chat import ChatCompletion
    from openai.types.chat.chat_completion import Choice

ParsedT = TypeVar("ParsedT", bound=BaseModel)

MAX_SAMPLES_PER_REQUEST = 128
"""The largest `n` chat completions take."""


def _usage(completion: ChatCompletion) -> Usage:
    usage = completion.usage
    if usage is None:
        return Usage(requests=1)
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    return Usage(
        requests=1,
        input_tokens=usage.prompt_tokens,
        cached_input_tokens=cached,
        output_tokens=usage.completion_tokens,
    )


def _reply(completion: ChatCompletion, backpressure: Backpressure | None = None) -> Reply:
    choice = completion.choices[0]
    return Reply(
        model=completion.model,
        text=choice.message.content,
        finish_reason=choice.finish_reason,
        usage=_usage(completion),
        refusal=getattr(choice.message, "refusal", None),
        backpressure=backpressure,
    )


def _sample(choice: Choice) -> Sample:
    refusal = getattr(choice.message, "refusal", None)
    if choice.finish_reason != "stop" or refusal or not choice.message.content:
        return Sample(solution=None, finish_reason=choice.finish_reason, refusal=refusal)
    try:
        solution = Solution.model_validate_json(choice.message.content)
    except ValidationError:
        return Sample(solution=None, finish_reason="invalid_json")
    return Sample(solution=solution, finish_reason=choice.finish_reason)


def solve_result(completion: ChatCompletion, backpressure: Backpressure | None = None) -> SolveResult:
    """Every choice of a solve request (online or from a batch output line) as a sample."""
    return SolveResult(
        model=completion.model,
        samples=[_sample(choice) for choice in completion.choices],
        usage=_usage(completion),
        backpressure=backpressure,
    )


SOLUTION_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "Solution", "strict": True, "schema": Solution.model_json_schema()},
}


def solve_request(
    model: str, question: str, *, temperature: float, max_tokens: int, samples: int
) -> dict[str, Any]:
    """The body of a teacher request: the same online and as a Batch API line.

    Each choice is validated here rather than by the SDK's `parse`, which rejects the whole response
    when any one of `n` samples is cut off.
    """
    body: dict[str, Any] = {
        "model": parse_model(model).id,
        "messages": _solver_messages(question),
        "response_format": SOLUTION_FORMAT,
        "max_completion_tokens": max_tokens,
        **_sampling(model, temperature),
    }
    if samples > 1:
        body["n"] = samples
    return body


def _sampling(model: str, temperature: float) -> dict[str, Any]:
    """The temperature to send: none to reasoning models, which reject any but their default."""
    return {"temperature": temperature} if accepts_temperature(model) else {}


def _solver_messages(
    question: str, system: str = SOLVER_SYSTEM_PROMPT, exemplars: Sequence[Exemplar] = ()
) -> list[dict[str, str]]:
    """The system prompt, each exemplar as a user turn and the assistant's reply, then the question."""
    messages = [{"role": "system", "content": system}]
    for exemplar in exemplars:
        messages.append({"role": "user", "content": exemplar.question})
        messages.append({"role": "assistant", "content": exemplar.reply})
    messages.append({"role": "user", "content": question})
    return messages


class OpenAIChat:
    def __init__(self, client: OpenAI, secret_hint: str = "") -> None:
        self._client = client
        self._secret_hint = secret_hint

    def _parse(
        self, action: str, model: str, messages: Any, schema: type[ParsedT], **options: Any
    ) -> tuple[ParsedT | None, Reply]:
        """A structured reply, or None when it was cut off or filtered (its tokens are still billed)."""
        import openai

        with provider_errors(action, self._secret_hint):
            try:
                completion = self._client.chat.completions.parse(
                    model=parse_model(model).id, messages=messages, response_format=schema, **options
                )
            except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as stopped:
                if stopped.completion is None:
                    return None, Reply(
                        model=model, text=None, finish_reason="content_filter", usage=Usage(requests=1)
                    )
                return None, _reply(stopped.completion)
        return completion.choices[0].message.parsed, _reply(completion)

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        body = solve_request(model, question, temperature=temperature, max_tokens=max_tokens, samples=samples)
        with provider_errors(f"{model} solving a problem", self._secret_hint):
            raw = self._client.chat.completions.with_raw_response.create(**body)
        return solve_result(raw.parse(), backpressure_from_headers(raw.headers))

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        # OpenAI serves a fine-tuned model under its own name: there is never another endpoint to name.
        messages: Any = _solver_messages(question, system)
        with provider_errors(f"{model} answering a problem", self._secret_hint):
            raw = self._client.chat.completions.with_raw_response.create(
                model=endpoint or parse_model(model).id,
                messages=messages,
                max_completion_tokens=max_tokens,
                **_sampling(model, 0.0),
            )
        return _reply(raw.parse(), backpressure_from_headers(raw.headers))

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
        messages: Any = _solver_messages(question, system, exemplars)
        options: dict[str, Any] = {"n": samples} if samples > 1 else {}
        with provider_errors(f"{model} answering a probe", self._secret_hint):
            raw = self._client.chat.completions.with_raw_response.create(
                model=parse_model(model).id,
                messages=messages,
                max_completion_tokens=max_tokens,
                **_sampling(model, temperature),
                **options,
            )
        completion = raw.parse()
        return Replies(
            model=completion.model,
            replies=[
                ReplyText(
                    text=choice.message.content,
                    finish_reason=choice.finish_reason,
                    refusal=getattr(choice.message, "refusal", None),
                )
                for choice in completion.choices
            ],
            usage=_usage(completion),
            backpressure=backpressure_from_headers(raw.headers),
        )

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        messages: Any = [
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": judge_request(question, reference, candidate)},
        ]
        verdict, reply = self._parse(
            f"{model} judging an answer",
            model,
            messages,
            Verdict,
            max_completion_tokens=JUDGE_MAX_TOKENS,
            **_sampling(model, 0.0),
        )
        if verdict is None:
            # A judge that refuses or rambles counts as "not shown to be equal".
            return Verdict(correct=False, explanation="the judge gave no verdict"), reply.usage
        return verdict, reply.usage

    def samples_per_request(self, model: str) -> int:
        return MAX_SAMPLES_PER_REQUEST
