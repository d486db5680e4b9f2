"""Asking a chat model many things at once, and grading with the run's judge.

The stages talk to models through `providers.ports.ChatPort` only, whoever serves them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from synthtune.contracts.usage import Usage, UsageByModel, add_usage
from synthtune.prompts import Verdict
from synthtune.providers.ports import ChatPort
from synthtune.quality.grading import Grade, grade_answer

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


def with_requests_in_flight(
    ask: Callable[[ItemT], ResultT], items: Sequence[ItemT], in_flight: int, name: str
) -> list[ResultT]:
    """`ask` for every item, at most `in_flight` at a time, results in item order.

    On the first failure the requests not yet sent are cancelled (they would be paid for and thrown
    away) and that failure is raised. Each request runs in a copy of the caller's context, so what the
    invocation set in context variables (Powertools' thread-safe log keys; offline, the execution
    environment) holds for its requests too: a thread does not inherit them by itself.
    """
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix=name) as executor:
        futures = [executor.submit(contextvars.copy_context().run, ask, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]


def grade_with_run_judge(
    chat: ChatPort,
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
    """Binds a ChatPort and a judge model name into the `grading.Judge` protocol."""

    def __init__(self, chat: ChatPort, model: str) -> None:
        self.chat = chat
        self.model = model

    def judge(self, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        return self.chat.judge(self.model, question, reference, candidate)
