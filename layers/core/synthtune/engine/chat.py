"""What the pipeline needs from a chat model, independent of who serves it.

The domain code (generation, grading, benchmark) depends on this protocol only; `openai_chat` is the
implementation for the OpenAI API and any OpenAI-compatible server. A Bedrock implementation would be
a second class with the same three methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from synthtune.engine.pacing import RateLimitHeaders
from synthtune.money.usage import Usage, UsageByModel, add_usage
from synthtune.prompts import Solution, Verdict
from synthtune.quality.grading import Grade, grade_answer

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


def with_requests_in_flight(
    ask: Callable[[ItemT], ResultT], items: Sequence[ItemT], in_flight: int, name: str
) -> list[ResultT]:
    """`ask` for every item, at most `in_flight` at a time, results in item order.

    On the first failure the requests not yet sent are cancelled (they would be paid for and thrown
    away) and that failure is raised.
    """
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix=name) as executor:
        futures = [executor.submit(ask, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    text: str | None
    finish_reason: str
    usage: Usage
    refusal: str | None = None
    rate_limits: RateLimitHeaders | None = None


class Sample(BaseModel):
    """One sampled solution: None (with the reason in finish_reason/refusal) when it is unusable."""

    model_config = ConfigDict(frozen=True)

    solution: Solution | None
    finish_reason: str
    refusal: str | None = None


class SolveResult(BaseModel):
    """The samples of one request (one per `samples` asked for), billed together."""

    model_config = ConfigDict(frozen=True)

    model: str
    samples: list[Sample]
    usage: Usage
    rate_limits: RateLimitHeaders | None = None


class ChatModel(Protocol):
    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        """Step-by-step solutions through structured outputs (the teacher), `samples` of them."""

    def answer(self, model: str, question: str, *, max_tokens: int) -> Reply:
        """A free-text reply in the training format (every benchmark contestant)."""

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        """Whether `candidate` means the same as `reference`."""


def grade_with_run_judge(
    chat: ChatModel,
    judge_model: str | None,
    question: str,
    reference: str,
    candidate: str | None,
    usage: UsageByModel,
) -> Grade:
    """`grade_answer` with the run's judge model (if any), its tokens added to `usage`."""
    judge = ModelJudge(chat, judge_model) if judge_model else None
    grade, judge_usage = grade_answer(question, reference, candidate, judge)
    if judge_model and judge_usage.requests:
        add_usage(usage, judge_model, judge_usage)
    return grade


class ModelJudge:
    """Binds a ChatModel and a judge model name into the `grading.Judge` protocol."""

    def __init__(self, chat: ChatModel, model: str) -> None:
        self.chat = chat
        self.model = model

    def judge(self, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        return self.chat.judge(self.model, question, reference, candidate)
