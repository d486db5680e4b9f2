"""A chat model whose every call is paid for through the run's `CostLedger` (see `money.ledger`).

Each call is one attempt at one request (the providers' chat ports never retry behind our back; the
retries are `engine.paced`'s, around this), so each attempt is reserved and settled on its own: at what
the reply says it cost; at 0 when the provider certainly did nothing; and at its worst case, recorded as
paid but lost, when the outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from synthtune.contracts.errors import ModelUnavailable, SynthtuneError
from synthtune.contracts.usage import ChatPurpose, Usage
from synthtune.money.estimate import (
    priced_worst_case,
    worst_case_answer_usage,
    worst_case_judge_usage,
    worst_case_probe_usage,
    worst_case_solve_usage,
)
from synthtune.money.ledger import CostLedger, SpendRecord
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.ports import ChatPort, Replies, Reply, SolveResult

ResultT = TypeVar("ResultT")


def outcome_unknown(error: BaseException) -> bool:
    """Whether a request that raised `error` may have been carried out, and billed, by the provider.

    A refusal the providers name (`RateLimited`, `ModelRequestRejected`) was not; `ModelUnavailable`
    says itself; any other failure (a reply we could not read, a bug) may have come after the provider
    answered, so it counts as unknown: the ledger may over-count, never under-count.
    """
    if isinstance(error, ModelUnavailable):
        return error.outcome_unknown
    return not isinstance(error, SynthtuneError)


class BudgetedChat:
    """A ChatPort whose every call reserves its worst case in the ledger first and settles after.

    `spender` names who pays in the run's records: `generation`, or `benchmark: <contestant>`.
    """

    def __init__(self, chat: ChatPort, ledger: CostLedger, spender: str = "generation") -> None:
        self._chat = chat
        self._ledger = ledger
        self._spender = spender

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        return self._paid(
            "solve",
            model,
            lambda: worst_case_solve_usage(model, question, max_tokens, samples),
            f"a {model} teacher request",
            lambda: self._chat.solve(
                model, question, temperature=temperature, max_tokens=max_tokens, samples=samples
            ),
            lambda result: result.usage,
        )

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        return self._paid(
            "answer",
            model,
            lambda: worst_case_answer_usage(model, question, max_tokens, system),
            f"a {model} benchmark request",
            lambda: self._chat.answer(
                model, question, max_tokens=max_tokens, endpoint=endpoint, system=system
            ),
            lambda reply: reply.usage,
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
        return self._paid(
            "probe",
            model,
            lambda: worst_case_probe_usage(model, question, system, exemplars, max_tokens, samples),
            f"a {model} probe request",
            lambda: self._chat.replies(
                model,
                question,
                system=system,
                exemplars=exemplars,
                temperature=temperature,
                max_tokens=max_tokens,
                samples=samples,
            ),
            lambda replies: replies.usage,
        )

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        return self._paid(
            "judge",
            model,
            lambda: worst_case_judge_usage(model, question, reference, candidate),
            f"a {model} judge request",
            lambda: self._chat.judge(model, question, reference, candidate),
            lambda verdict_and_usage: verdict_and_usage[1],
        )

    def _paid(
        self,
        purpose: ChatPurpose,
        model: str,
        worst_case: Callable[[], Usage],
        what: str,
        call: Callable[[], ResultT],
        usage_of: Callable[[ResultT], Usage],
    ) -> ResultT:
        """Reserve the call's worst case (only with a budget), make it, settle to its list-price cost."""
        budgeted = self._ledger.budget_usd is not None
        reserved = self._ledger.reserve(priced_worst_case(model, worst_case()), what) if budgeted else 0.0
        try:
            result = call()
        except BaseException as error:
            if outcome_unknown(error):
                usage = worst_case()
                lost = SpendRecord(
                    kind="paid_but_lost",
                    spender=self._spender,
                    purpose=purpose,
                    model=model,
                    usage=usage,
                    usd=inference_cost_usd(model, usage),
                )
                self._ledger.settle_lost(reserved, lost)
            else:
                self._ledger.settle(reserved, 0.0)
            raise
        usage = usage_of(result)
        self._ledger.settle(reserved, inference_cost_usd(model, usage) or 0.0, requests=usage.requests)
        return result

    def samples_per_request(self, model: str) -> int:
        return self._chat.samples_per_request(model)
