"""A chat model whose every call is paid for through the run's `CostLedger` (see `money.ledger`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from synthtune.contracts.usage import Usage
from synthtune.money.estimate import worst_case_answer_usd, worst_case_judge_usd, worst_case_solve_usd
from synthtune.money.ledger import CostLedger
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import Verdict
from synthtune.providers.ports import ChatPort, Reply, SolveResult

ResultT = TypeVar("ResultT")


class BudgetedChat:
    """A ChatPort whose every call reserves its worst case in the ledger first and settles after."""

    def __init__(self, chat: ChatPort, ledger: CostLedger) -> None:
        self._chat = chat
        self._ledger = ledger

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        return self._paid(
            lambda: worst_case_solve_usd(model, question, max_tokens, samples),
            f"a {model} teacher request",
            model,
            lambda: self._chat.solve(
                model, question, temperature=temperature, max_tokens=max_tokens, samples=samples
            ),
            lambda result: result.usage,
        )

    def answer(self, model: str, question: str, *, max_tokens: int, endpoint: str | None = None) -> Reply:
        return self._paid(
            lambda: worst_case_answer_usd(model, question, max_tokens),
            f"a {model} benchmark request",
            model,
            lambda: self._chat.answer(model, question, max_tokens=max_tokens, endpoint=endpoint),
            lambda reply: reply.usage,
        )

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        return self._paid(
            lambda: worst_case_judge_usd(model, question, reference, candidate),
            f"a {model} judge request",
            model,
            lambda: self._chat.judge(model, question, reference, candidate),
            lambda verdict_and_usage: verdict_and_usage[1],
        )

    def _paid(
        self,
        worst_case: Callable[[], float],
        what: str,
        model: str,
        call: Callable[[], ResultT],
        usage_of: Callable[[ResultT], Usage],
    ) -> ResultT:
        """Reserve the call's worst case (only with a budget), make it, settle to its list-price cost;
        a call that raises settles at 0."""
        reserved = 0.0 if self._ledger.budget_usd is None else self._ledger.reserve(worst_case(), what)
        try:
            result = call()
        except BaseException:
            self._ledger.settle(reserved, 0.0)
            raise
        self._ledger.settle(reserved, inference_cost_usd(model, usage_of(result)) or 0.0)
        return result

    def samples_per_request(self, model: str) -> int:
        return self._chat.samples_per_request(model)
