import threading
from collections.abc import Callable, Iterator, Sequence

import pytest

from synthtune.contracts.errors import (
    BudgetExceeded,
    InvalidConfig,
    ModelRequestRejected,
    ModelUnavailable,
    RateLimited,
)
from synthtune.contracts.usage import Usage
from synthtune.engine.budgeted import BudgetedChat
from synthtune.money.estimate import (
    priced_worst_case,
    worst_case_answer_usage,
    worst_case_answer_usd,
    worst_case_judge_usage,
    worst_case_judge_usd,
    worst_case_probe_usage,
    worst_case_solve_usage,
    worst_case_solve_usd,
)
from synthtune.money.ledger import ChatPurpose, CostLedger, SpendRecord, spend_records
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Solution, Verdict
from synthtune.providers.ports import Replies, Reply, ReplyText, Sample, SolveResult
from synthtune.records.items import RUN_SK, shard_sk
from synthtune.records.runs import RunStore
from synthtune_cli.offline import atomic_data_stores

RUN = "run-ledger"
TEACHER = "gpt-4.1-2025-04-14"
JUDGE = "gpt-4.1-mini-2025-04-14"
QUESTION = "What is 6 times 7?"
EXEMPLARS = (Exemplar(question="What is 2 times 3?", reply="Answer: 6"),)


def money(runs: RunStore) -> tuple[float, float]:
    record = runs.get(RUN) or {}
    return float(record.get("committed_usd", 0.0)), float(record.get("spent_usd", 0.0))


def test_add_sums_in_the_table_and_starts_missing_attributes_at_zero(runs: RunStore) -> None:
    assert runs.add(RUN, {"spent_usd": 0.1, "requests": 2})
    assert runs.add(RUN, {"spent_usd": 0.2, "requests": 3})
    assert runs.add(RUN, {"spent_usd": -0.05})
    record = runs.get(RUN)
    assert record is not None
    # DynamoDB adds decimals: no float rounding creeps into a run's spending.
    assert record["spent_usd"] == 0.25
    assert record["requests"] == 5
    assert runs.get(RUN, shard_sk(0)) is None  # only the addressed item changes
    assert runs.add(RUN, {"cost_usd": 1.0}, sk=shard_sk(0))
    assert runs.get(RUN, shard_sk(0))["cost_usd"] == 1.0  # type: ignore[index]
    assert runs.get(RUN)["spent_usd"] == 0.25  # type: ignore[index]


def test_add_with_not_above_changes_nothing_when_the_limit_is_passed(runs: RunStore) -> None:
    runs.update(RUN, status="RUNNING")
    assert runs.add(RUN, {"committed_usd": 5.0}, not_above=("committed_usd", 4.0))  # missing counts as 0
    assert not runs.add(RUN, {"committed_usd": 1.0, "spent_usd": 1.0}, not_above=("committed_usd", 4.9))
    assert money(runs) == (5.0, 0.0)
    assert runs.add(RUN, {"committed_usd": 1.0}, not_above=("committed_usd", 5.0))  # at the limit: allowed
    assert money(runs) == (6.0, 0.0)
    # The condition may be on another attribute than the ones added to.
    assert not runs.add(RUN, {"spent_usd": 1.0}, not_above=("committed_usd", 5.99))
    assert runs.add(RUN, {"spent_usd": 1.0}, not_above=("committed_usd", 6.0))
    assert money(runs) == (6.0, 1.0)
    assert runs.get(RUN)["status"] == "RUNNING"  # type: ignore[index]


def test_without_a_budget_the_ledger_writes_nothing(runs: RunStore) -> None:
    ledger = CostLedger(runs, RUN, budget_usd=None)
    assert ledger.reserve(1_000_000.0, "a huge request") == 0.0
    ledger.settle(0.0, 3.5)
    assert runs.get(RUN) is None


def test_reservations_settle_to_what_calls_really_cost(runs: RunStore) -> None:
    ledger = CostLedger(runs, RUN, budget_usd=1.0)
    first = ledger.reserve(0.4, "a request")
    assert first == 0.4
    assert money(runs) == (0.4, 0.0)
    ledger.settle(first, 0.1)
    assert money(runs) == pytest.approx((0.1, 0.1))
    second = ledger.reserve(0.9, "a request")  # exactly up to the budget
    assert money(runs) == pytest.approx((1.0, 0.1))
    with pytest.raises(BudgetExceeded) as refused:
        ledger.reserve(0.01, "a gpt-4.1 teacher request")
    message = str(refused.value)
    assert message.startswith("a gpt-4.1 teacher request could cost up to $0.0100")
    assert "spent $0.1000" in message
    assert "$0.9000 more reserved" in message
    assert "budget_usd $1.00" in message
    assert money(runs) == pytest.approx((1.0, 0.1))  # a refusal reserves nothing
    ledger.settle(second, 0.0)  # the request failed: its reservation is released, nothing spent
    assert money(runs) == pytest.approx((0.1, 0.1))
    ledger.reserve(0.5, "a request")
    assert money(runs) == pytest.approx((0.6, 0.1))


def test_a_request_dearer_than_the_whole_budget_is_refused_before_writing(runs: RunStore) -> None:
    ledger = CostLedger(runs, RUN, budget_usd=0.5)
    with pytest.raises(BudgetExceeded, match=r"could cost up to \$0\.6000.*budget_usd \$0\.50"):
        ledger.reserve(0.6, "a request")
    assert runs.get(RUN) is None


@pytest.fixture
def atomic_updates() -> Iterator[None]:
    """DynamoDB applies each conditional update atomically; moto checks and writes in separate steps."""
    with atomic_data_stores():
        yield


@pytest.mark.usefixtures("atomic_updates")
def test_concurrent_reservations_never_pass_the_budget(runs: RunStore) -> None:
    ledger = CostLedger(runs, RUN, budget_usd=1.0)
    start = threading.Barrier(8)
    granted: list[float] = []
    refused: list[BudgetExceeded] = []
    lock = threading.Lock()

    def shard() -> None:
        start.wait(timeout=10)
        for _ in range(3):
            try:
                reserved = ledger.reserve(0.15, "a request")
            except BudgetExceeded as error:
                with lock:
                    refused.append(error)
            else:
                with lock:
                    granted.append(reserved)

    threads = [threading.Thread(target=shard) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(granted) == 6  # 6 x 0.15 fits in 1.00, a seventh would not
    assert len(refused) == 24 - 6
    assert money(runs) == pytest.approx((0.9, 0.0))


class ScriptedChat:
    """A ChatModel that records what the ledger held while each call was in flight."""

    def __init__(self, runs: RunStore, *, fail: Exception | None = None) -> None:
        self.runs = runs
        self.fail = fail
        self.committed_during_call: list[float] = []
        self.usage = Usage(requests=1, input_tokens=120, output_tokens=80)

    def _call(self) -> None:
        self.committed_during_call.append(money(self.runs)[0])
        if self.fail is not None:
            raise self.fail

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        self._call()
        sample = Sample(solution=Solution(steps=["6 x 7 = 42"], final_answer="42"), finish_reason="stop")
        return SolveResult(model=model, samples=[sample] * samples, usage=self.usage)

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        self._call()
        return Reply(model=model, text="Answer: 42", finish_reason="stop", usage=self.usage)

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
        self._call()
        text = ReplyText(text="Answer: 42", finish_reason="stop")
        return Replies(model=model, replies=[text] * samples, usage=self.usage)

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        self._call()
        return Verdict(correct=True, explanation="same"), self.usage

    def samples_per_request(self, model: str) -> int:
        return 128


CALLS: dict[str, tuple[Callable[[BudgetedChat], object], Callable[[], float]]] = {
    "solve": (
        lambda chat: chat.solve(TEACHER, QUESTION, temperature=0.7, max_tokens=500, samples=3),
        lambda: worst_case_solve_usd(TEACHER, QUESTION, 500, 3),
    ),
    "answer": (
        lambda chat: chat.answer(TEACHER, QUESTION, max_tokens=500),
        lambda: worst_case_answer_usd(TEACHER, QUESTION, 500),
    ),
    "judge": (
        lambda chat: chat.judge(JUDGE, QUESTION, "42", "forty-two"),
        lambda: worst_case_judge_usd(JUDGE, QUESTION, "42", "forty-two"),
    ),
    "probe": (
        lambda chat: chat.replies(
            TEACHER,
            QUESTION,
            system=SOLVER_SYSTEM_PROMPT,
            exemplars=EXEMPLARS,
            temperature=0.7,
            max_tokens=500,
            samples=4,
        ),
        lambda: priced_worst_case(
            TEACHER, worst_case_probe_usage(TEACHER, QUESTION, SOLVER_SYSTEM_PROMPT, EXEMPLARS, 500, 4)
        ),
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_budgeted_calls_reserve_their_worst_case_then_settle_the_real_cost(runs: RunStore, call: str) -> None:
    make, worst_case = CALLS[call]
    chat = ScriptedChat(runs)
    make(BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=5.0)))
    assert chat.committed_during_call == [pytest.approx(worst_case())]
    model = JUDGE if call == "judge" else TEACHER
    cost = inference_cost_usd(model, chat.usage)
    assert cost is not None and cost < worst_case()
    assert money(runs) == pytest.approx((cost, cost))


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(
    "failure",
    [
        ModelUnavailable("APIConnectionError: Connection refused.", outcome_unknown=False),
        ModelRequestRejected("HTTP 400 (invalid max_tokens)"),
        RateLimited("rate limited", 1.0),
    ],
    ids=["never-sent", "rejected", "rate-limited"],
)
def test_a_call_the_provider_certainly_did_not_carry_out_settles_to_nothing(
    runs: RunStore, call: str, failure: Exception
) -> None:
    make, worst_case = CALLS[call]
    chat = ScriptedChat(runs, fail=failure)
    with pytest.raises(type(failure)):
        make(BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=5.0)))
    assert chat.committed_during_call == [pytest.approx(worst_case())]
    assert money(runs) == pytest.approx((0.0, 0.0))
    assert runs.get(RUN, RUN_SK) is not None  # the reservation was really written, then released
    assert spend_records(runs.items(RUN)) == []


WORST_USAGE: dict[str, Callable[[], Usage]] = {
    "solve": lambda: worst_case_solve_usage(TEACHER, QUESTION, 500, 3),
    "answer": lambda: worst_case_answer_usage(TEACHER, QUESTION, 500),
    "judge": lambda: worst_case_judge_usage(JUDGE, QUESTION, "42", "forty-two"),
    "probe": lambda: worst_case_probe_usage(TEACHER, QUESTION, SOLVER_SYSTEM_PROMPT, EXEMPLARS, 500, 4),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(
    "failure",
    [
        ModelUnavailable("APITimeoutError: Request timed out."),
        ModelUnavailable("HTTP 502 (Bad Gateway)"),
        ValueError("a reply we could not read"),
    ],
    ids=["timeout", "5xx", "unreadable"],
)
@pytest.mark.parametrize("budget", [5.0, None])
def test_a_call_whose_outcome_is_unknown_is_paid_but_lost_at_its_worst_case(
    runs: RunStore, call: str, failure: Exception, budget: float | None
) -> None:
    make, worst_case = CALLS[call]
    chat = ScriptedChat(runs, fail=failure)
    with pytest.raises(type(failure)):
        make(BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=budget), spender="benchmark: base"))
    (lost,) = spend_records(runs.items(RUN))
    model = JUDGE if call == "judge" else TEACHER
    assert (lost.kind, lost.spender, lost.purpose, lost.model) == (
        "paid_but_lost",
        "benchmark: base",
        call,
        model,
    )
    assert lost.usage == WORST_USAGE[call]()
    assert lost.usage.requests == 1
    assert lost.usd == pytest.approx(worst_case())
    if budget is None:
        assert runs.get(RUN) is None  # no budget: only the SPEND item is written
    else:
        # Settled at the worst case, not released: the provider may have billed it in full.
        assert money(runs) == pytest.approx((worst_case(), worst_case()))
        assert runs.get(RUN)["paid_requests"] == 1  # type: ignore[index]


def test_lost_calls_add_up_per_spender_purpose_and_model(runs: RunStore) -> None:
    chat = BudgetedChat(
        ScriptedChat(runs, fail=ModelUnavailable("timed out")), CostLedger(runs, RUN, budget_usd=None)
    )
    for _ in range(3):
        with pytest.raises(ModelUnavailable):
            chat.solve(TEACHER, QUESTION, temperature=0.0, max_tokens=500)
    with pytest.raises(ModelUnavailable):
        chat.judge(JUDGE, QUESTION, "42", "41")
    records = {record.purpose: record for record in spend_records(runs.items(RUN))}
    assert records["solve"].usage.requests == 3
    assert records["solve"].usd == pytest.approx(3 * worst_case_solve_usd(TEACHER, QUESTION, 500, 1))
    assert records["judge"].usage.requests == 1


def test_unfinished_spending_is_rewritten_whole_and_removed_once_counted(runs: RunStore) -> None:
    # A benchmark contestant without a score puts what its checkpoints hold after each failed attempt:
    # each time the whole tally, never added to the last one.
    ledger = CostLedger(runs, RUN, budget_usd=None)
    usage = Usage(requests=2, input_tokens=200, output_tokens=100)

    def unfinished(purpose: ChatPurpose, model: str, paid: Usage) -> SpendRecord:
        return SpendRecord(
            kind="unfinished",
            spender="benchmark: teacher",
            purpose=purpose,
            model=model,
            usage=paid,
            usd=inference_cost_usd(model, paid),
        )

    ledger.replace(unfinished("answer", TEACHER, usage))
    ledger.replace(unfinished("answer", TEACHER, usage + usage))  # the retry answered two more
    ledger.replace(unfinished("judge", JUDGE, usage))
    records = {record.purpose: record for record in spend_records(runs.items(RUN))}
    assert records["answer"] == unfinished("answer", TEACHER, usage + usage)
    assert records["judge"] == unfinished("judge", JUDGE, usage)

    ledger.remove("unfinished", "benchmark: teacher", "answer", TEACHER)
    ledger.remove("unfinished", "benchmark: teacher", "answer", TEACHER)  # nothing there: no error
    assert [record.purpose for record in spend_records(runs.items(RUN))] == ["judge"]


def test_a_call_the_budget_cannot_cover_is_never_sent(runs: RunStore) -> None:
    chat = ScriptedChat(runs)
    budget = worst_case_solve_usd(TEACHER, QUESTION, 500, 3) * 0.99
    with pytest.raises(BudgetExceeded, match=f"a {TEACHER} teacher request could cost up to"):
        BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=budget)).solve(
            TEACHER, QUESTION, temperature=0.7, max_tokens=500, samples=3
        )
    assert chat.committed_during_call == []


def test_unpriced_models_need_no_price_without_a_budget_and_are_refused_with_one(runs: RunStore) -> None:
    chat = ScriptedChat(runs)
    BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=None)).solve(
        "house-model", QUESTION, temperature=0.0, max_tokens=100
    )
    assert runs.get(RUN) is None
    with pytest.raises(InvalidConfig, match="house-model has no price"):
        BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=5.0)).solve(
            "house-model", QUESTION, temperature=0.0, max_tokens=100
        )
    assert len(chat.committed_during_call) == 1  # only the unbudgeted call was sent


def test_a_probe_the_budget_cannot_cover_is_never_sent_and_says_what_it_was(runs: RunStore) -> None:
    chat = ScriptedChat(runs)
    worst = priced_worst_case(
        TEACHER, worst_case_probe_usage(TEACHER, QUESTION, SOLVER_SYSTEM_PROMPT, EXEMPLARS, 500, 4)
    )
    with pytest.raises(BudgetExceeded, match=f"a {TEACHER} probe request could cost up to"):
        BudgetedChat(chat, CostLedger(runs, RUN, budget_usd=worst * 0.99)).replies(
            TEACHER,
            QUESTION,
            system=SOLVER_SYSTEM_PROMPT,
            exemplars=EXEMPLARS,
            temperature=0.7,
            max_tokens=500,
            samples=4,
        )
    assert chat.committed_during_call == []
