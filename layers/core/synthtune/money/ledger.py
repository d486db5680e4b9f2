"""The run's spending, live, and the budget it may not pass.

Every paid call reserves its worst case first (its prompt's tokens plus the most it may write, at list
price) and settles to what it really cost once the reply is in. Reservations and spending are two
numbers on the run's DynamoDB item, changed by atomic conditional updates, so shards in many Lambda
invocations share one budget: a reservation that would take `committed_usd` past `budget_usd` is
refused and the caller raises `BudgetExceeded` before sending anything. Without a budget nothing is
reserved and calls are not written one by one (the shards' totals are enough).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from synthtune.contracts.errors import BudgetExceeded
from synthtune.engine.chat import ChatModel, Reply, SolveResult
from synthtune.money.estimate import worst_case_answer_usd, worst_case_judge_usd, worst_case_solve_usd
from synthtune.money.usage import Usage, inference_cost_usd
from synthtune.prompts import Verdict
from synthtune.records.runs import RunStore

ResultT = TypeVar("ResultT")

COMMITTED = "committed_usd"
SPENT = "spent_usd"


class CostLedger:
    def __init__(self, runs: RunStore, run_id: str, budget_usd: float | None) -> None:
        self._runs = runs
        self._run_id = run_id
        self.budget_usd = budget_usd

    def reserve(self, worst_case_usd: float, what: str) -> float:
        """Reserve `worst_case_usd` against the budget (returns the amount to settle later)."""
        if self.budget_usd is None:
            return 0.0
        room = self.budget_usd - worst_case_usd
        if room < 0 or not self._runs.add(
            self._run_id, {COMMITTED: worst_case_usd}, not_above=(COMMITTED, room)
        ):
            raise BudgetExceeded(self._refusal(worst_case_usd, what))
        return worst_case_usd

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost (0 for a request that failed)."""
        if self.budget_usd is None:
            return
        self._runs.add(self._run_id, {COMMITTED: actual_usd - reserved_usd, SPENT: actual_usd})

    def _refusal(self, worst_case_usd: float, what: str) -> str:
        record = self._runs.get(self._run_id) or {}
        spent = float(record.get(SPENT, 0.0))
        committed = float(record.get(COMMITTED, 0.0))
        return (
            f"{what} could cost up to ${worst_case_usd:.4f}, and the run has spent ${spent:.4f} with "
            f"${committed - spent:.4f} more reserved by requests in flight: that would pass budget_usd "
            f"${self.budget_usd:.2f}. Raise budget_usd to go on; everything answered so far is kept."
        )


class BudgetedChat:
    """A ChatModel whose every call reserves its worst case in the ledger first and settles after."""

    def __init__(self, chat: ChatModel, ledger: CostLedger) -> None:
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

    def answer(self, model: str, question: str, *, max_tokens: int) -> Reply:
        return self._paid(
            lambda: worst_case_answer_usd(model, question, max_tokens),
            f"a {model} benchmark request",
            model,
            lambda: self._chat.answer(model, question, max_tokens=max_tokens),
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
