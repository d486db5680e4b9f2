"""The ledger against what the provider billed, counted at the emulator: lost replies and timeouts.

The providers' chat ports are built as the Lambdas build them, with the SDKs' retry settings at their
deployed defaults (`Settings`), against the emulator on a loopback port. Whatever the transport does, the
ledger (and, without a budget, the answers plus the run's paid-but-lost records) counts at least every
request the emulator carried out, and at least what they cost at list price.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synthtune.contracts.errors import EndpointUnreachable, ModelUnavailable
from synthtune.contracts.problems import Problem, parse_problem_set
from synthtune.contracts.usage import Usage
from synthtune.engine.budgeted import BudgetedChat
from synthtune.engine.paced import PacedChat
from synthtune.engine.pacing import RateLimitGate
from synthtune.money.estimate import worst_case_solve_usage
from synthtune.money.ledger import CostLedger, spend_records
from synthtune.money.usage import inference_cost_usd
from synthtune.providers.bedrock import BedrockProvider
from synthtune.providers.bedrock.client import bedrock_client
from synthtune.providers.openai import OpenAIProvider
from synthtune.providers.openai.client import openai_client
from synthtune.providers.ports import ChatPort
from synthtune.records.runs import RunStore
from synthtune.settings import Settings
from synthtune_cli.clock import WallClock
from synthtune_cli.emulator import EmulatorServer, KnowledgeItem, OpenAIEmulator
from synthtune_cli.emulator.state import BilledRequest
from tests.support import SAMPLE_PROBLEM_SET, FakeClock

RUN = "run-paid"
DEPLOYED = Settings(runs_table_name="t", data_bucket_name="b", openai_api_key_secret_arn="arn:secret")
MODELS = {
    "openai": ("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "/v1/chat/completions"),
    "bedrock": ("bedrock/us.amazon.nova-2-lite-v1:0", "bedrock/amazon.nova-lite-v1:0", "/model/"),
}
"""Per provider: the teacher, the judge, and the path prefix of its model requests."""


def problems() -> list[Problem]:
    return parse_problem_set(SAMPLE_PROBLEM_SET.read_bytes().splitlines(), "sample", "jsonl")


@pytest.fixture
def server(emulator: OpenAIEmulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as server:
        yield server


BuildChat = Callable[..., ChatPort]


@pytest.fixture
def provider_chat(runs: RunStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[BuildChat]:
    """Builds a provider's chat port for an emulator server, as adapters.chat() does in a Lambda."""
    openai_client.cache_clear()
    bedrock_client.cache_clear()

    def build(provider: str, server: EmulatorServer, timeout: float | None = None) -> ChatPort:
        if provider == "openai":
            return OpenAIProvider(
                api_key=lambda: "sk-test",
                base_url=server.base_url,
                max_retries=DEPLOYED.openai_max_retries,
                timeout_seconds=DEPLOYED.openai_timeout_seconds,
                download=lambda location, path: None,
            ).chat(request_timeout_seconds=timeout)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name, value in server.bedrock_environment().items():
            monkeypatch.setenv(name, value)
        return BedrockProvider(
            role_arn=None, read_text=lambda location: "", list_keys=lambda location: set()
        ).chat(request_timeout_seconds=timeout)

    yield build
    openai_client.cache_clear()
    bedrock_client.cache_clear()


def paced(chat: ChatPort, ledger: CostLedger, *, max_attempts: int = 5) -> PacedChat:
    clock = FakeClock()
    gate = RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5)
    return PacedChat(BudgetedChat(chat, ledger), gate, max_attempts=max_attempts, request_timeout=120)


def billed_usd(billed: list[BilledRequest]) -> float:
    """What the emulator's requests cost at list price, priced as the run prices them."""
    total = 0.0
    for request in billed:
        model = request.model if request.api == "openai" else f"bedrock/{request.model}"
        usage = Usage(requests=1, input_tokens=request.input_tokens, output_tokens=request.output_tokens)
        cost = inference_cost_usd(model, usage)
        assert cost is not None, model
        total += cost
    return total


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
@pytest.mark.parametrize("budget", [None, 50.0])
def test_with_15_percent_of_replies_lost_the_ledger_counts_every_billed_request(
    emulator: OpenAIEmulator,
    server: EmulatorServer,
    runs: RunStore,
    provider_chat: BuildChat,
    provider: str,
    budget: float | None,
) -> None:
    teacher, judge, model_path = MODELS[provider]
    emulator.lose_fraction(0.15, seed=3, path_prefix=model_path)
    ledger = CostLedger(runs, RUN, budget)
    chat = paced(provider_chat(provider, server), ledger)

    answered = Usage()
    answered_usd = 0.0
    for problem in problems()[:48]:
        result = chat.solve(teacher, problem.question, temperature=0.0, max_tokens=400)
        answer = result.samples[0].solution.final_answer if result.samples[0].solution else ""
        _, judged = chat.judge(judge, problem.question, problem.answer or "", answer)
        answered += result.usage + judged
        answered_usd += (inference_cost_usd(teacher, result.usage) or 0.0) + (
            inference_cost_usd(judge, judged) or 0.0
        )

    billed = emulator.billed
    lost = [request for request in billed if request.lost]
    assert len(billed) == 96 + len(lost)  # every lost reply was asked again, and billed again
    assert 7 <= len(lost) <= 25
    spends = spend_records(runs.items(RUN))
    assert {spend.kind for spend in spends} == {"paid_but_lost"}
    lost_requests = sum(spend.usage.requests for spend in spends)
    lost_usd = sum(spend.usd or 0.0 for spend in spends)
    # Every billed request is counted: answered ones at their usage, lost ones at their worst case.
    assert answered.requests + lost_requests == len(billed)
    assert lost_requests == len(lost)
    assert answered_usd + lost_usd >= billed_usd(billed)
    assert answered_usd == pytest.approx(billed_usd([request for request in billed if not request.lost]))
    if budget is not None:
        record = runs.get(RUN) or {}
        assert record["spent_usd"] >= billed_usd(billed)
        assert record["spent_usd"] == pytest.approx(answered_usd + lost_usd)
        assert record["committed_usd"] == pytest.approx(record["spent_usd"])  # nothing left reserved
        assert record["paid_requests"] == len(billed)


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_requests_that_outlast_their_timeout_count_at_their_worst_case(
    runs: RunStore, provider_chat: BuildChat, provider: str
) -> None:
    # The emulator answers after a second of real time; the client gives up after a quarter of one.
    emulator = OpenAIEmulator(clock=WallClock())
    emulator.add_knowledge(
        KnowledgeItem(question=p.question, answer=p.answer, category=p.category) for p in problems()
    )
    emulator.configure(latency_seconds=1.0)
    teacher, _, _ = MODELS[provider]
    question = problems()[0].question
    with emulator.serve() as server:
        chat = paced(
            provider_chat(provider, server, timeout=0.25),
            CostLedger(runs, RUN, budget_usd=10.0),
            max_attempts=3,
        )
        with pytest.raises(ModelUnavailable) as raised:
            chat.solve(teacher, question, temperature=0.0, max_tokens=400)

    assert raised.value.outcome_unknown
    billed = emulator.billed
    assert len(billed) == 3  # each attempt was carried out, and billed, after the client gave up
    worst = worst_case_solve_usage(teacher, question, 400, 1)
    (lost,) = spend_records(runs.items(RUN))
    assert (lost.kind, lost.purpose, lost.model) == ("paid_but_lost", "solve", teacher)
    assert lost.usage == worst + worst + worst
    assert lost.usd == pytest.approx(3 * (inference_cost_usd(teacher, worst) or 0.0))
    assert lost.usd is not None and lost.usd >= billed_usd(billed)
    record = runs.get(RUN) or {}
    assert (record["paid_requests"], record["spent_usd"]) == (3, pytest.approx(lost.usd))


def test_a_connection_never_made_costs_nothing(runs: RunStore, tmp_path: Path) -> None:
    # Nothing listens on the port: the request cannot have reached a provider.
    chat = OpenAIProvider(
        api_key=lambda: "sk-test",
        base_url="http://127.0.0.1:9/v1",
        max_retries=DEPLOYED.openai_max_retries,
        timeout_seconds=5,
        download=lambda location, path: None,
    ).chat()
    with pytest.raises(EndpointUnreachable, match="connection refused"):
        paced(chat, CostLedger(runs, RUN, budget_usd=10.0), max_attempts=2).solve(
            MODELS["openai"][0], "What is 2 plus 2?", temperature=0.0, max_tokens=100
        )
    assert spend_records(runs.items(RUN)) == []
    record = runs.get(RUN) or {}
    assert (record["spent_usd"], record["committed_usd"]) == (0, 0)
