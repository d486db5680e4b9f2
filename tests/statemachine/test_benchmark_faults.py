"""The benchmark under faults, through the real state machine: a 429 storm with 5xx, contestants killed
halfway, and the budget running out — each counted where it is billed, at the emulator.

The faults start when the Benchmark Map first invokes its function (`when_the_benchmark_starts`), so
generation and fine-tuning run as usual and everything the emulator bills from then on is a contestant's
answer, the base student's probe of the held-out problems (after its answers) or a judge's verdict. The
invariant: each contestant's model is billed exactly once per held-out problem, and the base student once
more per probe request its checkpoints hold — a retried contestant resumes from its checkpoints and pays
for no answer, and no probe request, twice.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from synthtune.contracts.config import RunConfig
from synthtune.contracts.problems import parse_problem_set
from synthtune.contracts.usage import Usage
from synthtune.engine.checkpoints import CheckpointStore
from synthtune.money.estimate import estimate_run_cost, worst_case_answer_usd
from synthtune.money.usage import inference_cost_usd
from synthtune.quality.knowledge import Probe
from synthtune.records.layout import RunLayout
from synthtune.split import HoldoutSplit, split_problems
from synthtune.stages.benchmark import BenchmarkAnswer, HoldoutKnowledge
from synthtune.stages.report import summarise_run
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.emulator.state import BilledRequest
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, OPENAI_MODELS, Execution, execute, jsonl, sample_rows

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 19 generated (3 shards of 8), 5 held out
CONTESTANTS = ("base", "fine_tuned", "teacher")
RUN = {**FAST_CONFIG, **OPENAI_MODELS}
"""OpenAI models, every one priced and billed under its own name: the teacher, the student (nano), its
fine-tune and the judge (mini) are four models, so the emulator's bill says who answered."""
BENCHMARK_FUNCTION = "BenchmarkFunction"
NO_HOLDOUT_PROBE = {"dataset": {"probe": {"enabled": False}, "knowledge_policy": "keep_all"}}
SMALL_PROBE = {"dataset": {"probe": {"greedy": 1, "samples": 0}}}
"""One greedy probe answer per problem: a probe that fits the retries of a slow benchmark."""


@contextmanager
def when_the_benchmark_starts(action: Callable[[], None]) -> Iterator[threading.Event]:
    """Run `action` once, just before the Benchmark Map's first invocation of its function (the
    offline stack's in-process Lambda, reached through moto's Lambda backend)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    invoke = LambdaSimpleBackend.invoke  # the offline stack's dispatch to the handlers
    started = threading.Event()
    lock = threading.Lock()

    def invoke_then(backend: object, function_name: str, *args: Any, **kwargs: Any) -> bytes:
        if function_name.rsplit(":function:", 1)[-1].split(":", maxsplit=1)[0] == BENCHMARK_FUNCTION:
            with lock:
                if not started.is_set():
                    action()
                    started.set()
        return bytes(invoke(backend, function_name, *args, **kwargs))

    with mock.patch.object(LambdaSimpleBackend, "invoke", invoke_then):
        yield started


def billed_since(emulator: OpenAIEmulator, start: int) -> list[BilledRequest]:
    return emulator.billed[start:]


def chat_completions(emulator: OpenAIEmulator, status: int, since: int = 0) -> int:
    return sum(
        1
        for request in emulator.requests[since:]
        if (request.method, request.path, request.status) == ("POST", "/v1/chat/completions", status)
    )


def contestant_models(execution: Execution) -> dict[str, str]:
    """Each contestant's model as its score names it (the fine-tune's full name included)."""
    return {
        item["contestant"]: str(item["model"])
        for sk, item in execution.records.items()
        if sk.startswith("SCORE#")
    }


def benchmark_answers(stack: OfflineStack, execution: Execution, contestant: str) -> list[BenchmarkAnswer]:
    body = stack.download(RunLayout(execution.run_id).benchmark_answers(contestant)) or b""
    return [BenchmarkAnswer.model_validate_json(line) for line in body.splitlines() if line.strip()]


def held_out(stack: OfflineStack, execution: Execution) -> int:
    body = stack.download(RunLayout(execution.run_id).holdout) or b""
    return sum(1 for line in body.splitlines() if line.strip())


def holdout_probes(stack: OfflineStack, execution: Execution) -> list[Probe]:
    """The base student's probe of each held-out problem, as its checkpoints hold it."""
    prefix = RunLayout(execution.run_id).holdout_probe_checkpoints_prefix
    return [Probe.model_validate_json(stack.download(key) or b"") for key in sorted(stack.keys(prefix))]


def holdout_knowledge(stack: OfflineStack, execution: Execution) -> list[HoldoutKnowledge]:
    body = stack.download(RunLayout(execution.run_id).holdout_knowledge) or b""
    return [HoldoutKnowledge.model_validate_json(line) for line in body.splitlines() if line.strip()]


def assert_each_answer_billed_once(
    stack: OfflineStack, emulator: OpenAIEmulator, execution: Execution, since: int
) -> None:
    """Each contestant's model billed exactly once per held-out problem (the base student once more per
    probe request: a greedy answer each, and the sampled ones in one request with `n`), each judge verdict
    once per answer (or probe answer) the judge graded; every answer in its contestant's file once."""
    models = contestant_models(execution)
    assert sorted(models) == sorted(CONTESTANTS)
    billed = Counter(request.model for request in billed_since(emulator, since))
    judge = str(OPENAI_MODELS["judge_model"])
    problems = held_out(stack, execution)
    probe = RunConfig.model_validate(execution.records["RUN"]["config"]).dataset.probe
    probes = holdout_probes(stack, execution)
    assert len(probes) == len(holdout_knowledge(stack, execution)) == (problems if probe.enabled else 0)
    for probed in probes:
        asked = (len(probed.of_mode("greedy")), len(probed.of_mode("sampled")))
        assert asked == (probe.greedy, probe.samples)
        # What was asked for, and no more: each greedy answer, and the samples in one request.
        assert probed.usage.requests == probe.greedy + (1 if probe.samples else 0)
    judged = sum(probed.judge_usage[judge].requests for probed in probes if judge in probed.judge_usage)
    for contestant, model in models.items():
        answers = benchmark_answers(stack, execution, contestant)
        assert len({answer.problem_id for answer in answers}) == len(answers) == problems
        probe_requests = sum(probed.usage.requests for probed in probes) if contestant == "base" else 0
        assert billed[model] == problems + probe_requests, (
            f"{contestant} ({model}) billed {billed[model]} times"
        )
        judged += sum(judge in answer.usage for answer in answers)  # the answers a judge was asked about
    assert billed[judge] == judged
    assert set(billed) <= {*models.values(), judge}  # nothing else was billed during the benchmark


def test_a_429_storm_with_5xx_during_the_benchmark_succeeds_and_pays_each_answer_once(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    marks: dict[str, int] = {}

    def storm() -> None:
        marks["billed"], marks["requests"] = len(emulator.billed), len(emulator.requests)
        # One chat completion a minute, and a fifth of the requests refused with a 500 on top.
        emulator.configure(requests_per_minute=1, error_rate=0.2, error_status=500)

    # A third of the sample set held out: each contestant has some twenty problems to answer, more than
    # fit in an invocation's fifteen minutes at one a minute. The contestants answer one at a time: on the
    # virtual clock every sleeper advances time by its own wait, so three contestants held at once would
    # each see their invocation's time run out three times as fast, and run out of Step Functions' retries.
    # The base student's probe of the held-out problems is off: at one request a minute its own requests
    # would take the base iteration past its retries (its resumption is tested below).
    config = {**RUN, "holdout_fraction": 0.34, "max_concurrency": 1, **NO_HOLDOUT_PROBE}
    with when_the_benchmark_starts(storm) as started:
        execution = execute(stack, sample_rows(), config=config)

    assert started.is_set()
    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert held_out(stack, execution) > 15
    refused = chat_completions(emulator, 429, marks["requests"])
    failed = chat_completions(emulator, 500, marks["requests"])
    assert refused > 0 and failed > 0, (refused, failed)
    # The storm outlasted invocations: contestants stopped, still rate limited, and their retries resumed.
    assert "RateLimited" in execution.lambda_failures()
    assert_each_answer_billed_once(stack, emulator, execution, marks["billed"])
    assert not [sk for sk in execution.records if sk.startswith("SPEND#unfinished#")]


class SandboxTimedOut(Exception):
    """What Lambda reports when it stops an invocation at its timeout: `Sandbox.Timedout`."""


SandboxTimedOut.__name__ = SandboxTimedOut.__qualname__ = "Sandbox.Timedout"


@contextmanager
def killed_after_saving(count: int, under: Callable[[str], bool]) -> Iterator[threading.Event]:
    """The invocation saving the `count`-th checkpoint under a prefix `under` accepts is stopped right after
    it (as at its Lambda timeout), once; the event says it happened."""
    save = CheckpointStore.save
    saved: Counter[str] = Counter()
    killed = threading.Event()

    def save_then_die(store: CheckpointStore[Any], position: int, checkpoint: Any) -> None:
        save(store, position, checkpoint)
        if under(store.prefix):
            saved[store.prefix] += 1
            if saved[store.prefix] == count and not killed.is_set():
                killed.set()
                raise SandboxTimedOut("Task timed out after 900.00 seconds")

    with mock.patch.object(CheckpointStore, "save", save_then_die):
        yield killed


def test_a_contestant_killed_halfway_resumes_from_its_checkpoints(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The fine-tuned student's invocation is stopped (as at its Lambda timeout) right after its second
    # answer is checkpointed; Step Functions retries it.
    marks: dict[str, int] = {}
    with (
        when_the_benchmark_starts(lambda: marks.setdefault("billed", len(emulator.billed))),
        killed_after_saving(2, lambda prefix: "/benchmark/checkpoints/fine_tuned/" in prefix) as killed,
    ):
        execution = execute(stack, SMALL_SET, config={**RUN, "request_concurrency": 1})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert killed.is_set()
    assert execution.lambda_failures() == ["Sandbox.Timedout"]
    assert_each_answer_billed_once(stack, emulator, execution, marks["billed"])


def test_the_base_student_killed_mid_probe_resumes_and_pays_no_probe_request_twice(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The base student's invocation is stopped (as at its Lambda timeout) after its answers are written
    # and five of its probe requests are checkpointed (the second problem's second greedy answer); Step
    # Functions retries it.
    marks: dict[str, int] = {}
    with (
        when_the_benchmark_starts(lambda: marks.setdefault("billed", len(emulator.billed))),
        killed_after_saving(5, lambda prefix: prefix.endswith("/benchmark/checkpoints/probe/")) as killed,
    ):
        execution = execute(stack, SMALL_SET, config={**RUN, "request_concurrency": 1})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert killed.is_set()
    assert execution.lambda_failures() == ["Sandbox.Timedout"]
    assert_each_answer_billed_once(stack, emulator, execution, marks["billed"])
    # The probe is on the base student's score and in the report, nowhere else.
    scores = {item["contestant"]: item for sk, item in execution.records.items() if sk.startswith("SCORE#")}
    probes = holdout_probes(stack, execution)
    student = str(OPENAI_MODELS["student_model"])
    assert scores["base"]["probe_usage"][student]["requests"] == sum(p.usage.requests for p in probes)
    assert not scores["fine_tuned"].get("probe_usage") and not scores["teacher"].get("probe_usage")
    assert not [sk for sk in execution.records if sk.startswith("SPEND#unfinished#")]
    document = json.loads(stack.download(RunLayout(execution.run_id).benchmark) or b"{}")
    assert set(document["knowledge"]) == set(CONTESTANTS)
    for cells in document["knowledge"].values():
        assert sum(cell["n"] for cell in cells.values()) == held_out(stack, execution)
    report = (stack.download(RunLayout(execution.run_id).report) or b"").decode()
    assert "## Where fine-tuning helped, and where it taught guessing" in report
    assert "| benchmark: base, held-out probe |" in report


def test_a_contestant_out_of_time_stops_and_its_retries_resume(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # Five minutes a reply, one at a time: an invocation's fifteen minutes (less what it keeps to write its
    # answers) take three of a contestant's five answers (and the judge's verdicts, as long again); the
    # rest are left to its retries. The base student probes the held-out problems after its answers, with
    # one greedy answer each (the default probe, three requests a problem and their verdicts, would outlast
    # its retries).
    marks: dict[str, int] = {}

    def slow_replies() -> None:
        marks["billed"] = len(emulator.billed)
        emulator.configure(latency_seconds=300)

    with when_the_benchmark_starts(slow_replies):
        execution = execute(stack, SMALL_SET, config={**RUN, "request_concurrency": 1, **SMALL_PROBE})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    failures = execution.lambda_failures()
    assert set(failures) == {"BenchmarkIncomplete"}
    assert len(failures) >= len(CONTESTANTS)  # every contestant stopped at least once
    assert_each_answer_billed_once(stack, emulator, execution, marks["billed"])


def billed_usd(billed: list[BilledRequest]) -> float:
    total = 0.0
    for request in billed:
        usage = Usage(requests=1, input_tokens=request.input_tokens, output_tokens=request.output_tokens)
        cost = inference_cost_usd(request.model, usage)
        assert cost is not None, f"{request.model} has no price: the test cannot compare"
        total += cost
    return total


def test_the_budget_running_out_in_the_benchmark_fails_the_run_and_keeps_what_was_paid_for(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # One request at a time everywhere, only the teacher benchmarked, long allowed answers: each request
    # reserves a large worst case while it runs, and the spending grows one answer at a time. A first run
    # measures what everything before the benchmark costs; the second gets a budget that covers that, one
    # worst case, and half of what the benchmark's answers cost — so it stops halfway through them.
    config = {
        **RUN,
        "judge_model": None,
        "benchmark_contestants": ["teacher"],
        "request_concurrency": 1,
        "max_concurrency": 1,
        "max_output_tokens": 16_000,
    }
    measured = execute(stack, SMALL_SET, run_id="measured", config=config)
    assert measured.status == "SUCCEEDED", measured.description.get("cause")
    lines = summarise_run(measured.run_id, list(measured.records.values())).costs.lines
    before = sum(line.usd or 0.0 for line in lines if not line.item.startswith("benchmark:"))
    benchmark = sum(line.usd or 0.0 for line in lines if line.item.startswith("benchmark:"))
    settings = RunConfig.model_validate(config)
    split = split_of(settings)
    held_out = split.holdout
    worst = max(worst_case_answer_usd(settings.teacher_model, p.question, 16_000) for p in held_out)
    budget = round(before + worst + benchmark / 2, 6)
    estimate = estimate_run_cost(settings, [*split.train, *split.validation], held_out)
    assert estimate is not None and estimate.total_usd <= budget  # Prepare lets the run start

    marks = {"run": len(emulator.billed)}
    with when_the_benchmark_starts(lambda: marks.setdefault("benchmark", len(emulator.billed))):
        execution = execute(
            stack,
            SMALL_SET,
            run_id="budgeted",
            config={**config, "budget_usd": budget},
            key="problem-sets/budgeted.jsonl",  # the same upload again would be the first run's (a duplicate)
        )

    assert execution.status == "FAILED"
    assert execution.description["error"] == "BudgetExceeded"
    assert "benchmark request could cost up to" in execution.description["cause"]
    assert execution.records["RUN"]["failed_state"] == "Benchmark"
    # The answers paid for before the budget ran out are kept, each paid for once.
    answered = billed_since(emulator, marks["benchmark"])
    assert {request.model for request in answered} == {settings.teacher_model}
    kept = stack.keys(RunLayout("budgeted").benchmark_checkpoints_prefix("teacher"))
    assert 0 < len(kept) == len(answered) < len(held_out)
    assert stack.download(RunLayout("budgeted").benchmark_answers("teacher")) is None
    # The ledger counts at least what the provider billed the run, and no more than the budget allows;
    # the failed run's costs count the benchmark's answers too.
    billed = billed_since(emulator, marks["run"])
    run = execution.records["RUN"]
    assert billed_usd(billed) - 1e-9 <= run["spent_usd"] <= budget
    summary = summarise_run(execution.run_id, list(execution.records.values()))
    assert summary.cost_usd >= billed_usd(billed) - 1e-6
    (unfinished,) = [line for line in summary.costs.lines if line.item.startswith("benchmark: teacher")]
    assert unfinished.usage is not None and unfinished.usage.requests == len(answered)


def split_of(config: RunConfig) -> HoldoutSplit:
    problems = parse_problem_set(jsonl(SMALL_SET).splitlines(), "test", "jsonl")
    return split_problems(problems, config.holdout_fraction, config.validation_fraction, config.split_seed)
