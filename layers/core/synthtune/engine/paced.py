"""A chat model whose every call waits its turn at one `RateLimitGate` (see `engine.pacing`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from synthtune.contracts.usage import Usage
from synthtune.engine.pacing import RateLimitGate, call_paced
from synthtune.money.estimate import probe_prompt_tokens, solver_prompt_tokens
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.ports import Backpressure, ChatPort, Replies, Reply, SolveResult

ResultT = TypeVar("ResultT")


class PacedChat:
    """A ChatPort whose calls wait their turn at the gate and retry 429s, 5xx and timeouts."""

    def __init__(
        self, chat: ChatPort, gate: RateLimitGate, *, max_attempts: int, request_timeout: float
    ) -> None:
        self._chat = chat
        self._gate = gate
        self._max_attempts = max_attempts
        self._request_timeout = request_timeout

    def _paced(
        self,
        request: Callable[[], ResultT],
        backpressure_of: Callable[[ResultT], Backpressure | None],
        tokens_per_request: int,
    ) -> ResultT:
        return call_paced(
            self._gate,
            request,
            max_attempts=self._max_attempts,
            must_finish_within=self._request_timeout,
            backpressure_of=backpressure_of,
            tokens_per_request=tokens_per_request,
        )

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        return self._paced(
            lambda: self._chat.solve(
                model, question, temperature=temperature, max_tokens=max_tokens, samples=samples
            ),
            lambda result: result.backpressure,
            # Providers count a request's max_tokens against the tokens-per-minute window up front.
            solver_prompt_tokens(model, question) + max_tokens * samples,
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
        return self._paced(
            lambda: self._chat.answer(
                model, question, max_tokens=max_tokens, endpoint=endpoint, system=system
            ),
            lambda reply: reply.backpressure,
            solver_prompt_tokens(model, question, system) + max_tokens,
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
        return self._paced(
            lambda: self._chat.replies(
                model,
                question,
                system=system,
                exemplars=exemplars,
                temperature=temperature,
                max_tokens=max_tokens,
                samples=samples,
            ),
            lambda replies: replies.backpressure,
            probe_prompt_tokens(model, question, system, exemplars) + max_tokens * samples,
        )

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        return self._paced(lambda: self._chat.judge(model, question, reference, candidate), lambda _: None, 0)

    def samples_per_request(self, model: str) -> int:
        return self._chat.samples_per_request(model)
