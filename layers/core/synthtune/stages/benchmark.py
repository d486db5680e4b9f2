"""Benchmark: one contestant answers every held-out problem, graded against the reference answers.

Each contestant (the base student, the fine-tuned student, the teacher) runs as one iteration of the
Benchmark Map, asked with the same system prompt and answer format the student was trained on, at
temperature 0. Every answer, its grade and its outcome is written to S3 for inspection; the score is small.

A contestant asks through the engine Generate uses (`engine.asking`): `request_concurrency` requests in
flight, each paced and retried at the invocation's rate-limit gate and paid for through the ledger, and
each reply checkpointed to S3 the moment it arrives, its judge's verdict too once paid for
(`runs/<id>/benchmark/checkpoints/<contestant>/<position>.json`). A contestant that cannot finish — out
of time (`BenchmarkIncomplete`), still rate limited when its time runs out (`RateLimited`), a provider
down for `max_attempts` tries (`ModelUnavailable`), the Lambda itself timing out — is retried by Step
Functions and starts from its checkpoints: no answer is paid for twice. Until it has a score, what its
checkpoints hold is on the run's ledger as `unfinished` spending, so a run that fails in the benchmark
still counts every answer it paid for.

Each answer's outcome: `correct` (grading alone decides), `abstained` (the model said it does not know:
`quality.abstention`), `no_answer` (an empty reply, a refusal, a reply cut off or without a final answer),
or `wrong`.

Every contestant is asked with the system prompt the student was trained with
(`prompts.solver_system_prompt`: asking for "I don't know" when unsure, in a run that teaches abstention).

What the base student knew of each held-out problem is probed after its own answers are written, in the
same iteration, when `dataset.probe.enabled` — for analysis only: the report shows, per SliCK category
(`quality.knowledge`), where fine-tuning helped and where it taught guessing. The probe asks as Generate's
does (`engine.probing.probe_problem`, other held-out problems as the exemplars), through the same engine
and budget, paid by `benchmark: base`, each problem checkpointed under
`runs/<id>/benchmark/checkpoints/probe/`, so a retried iteration pays for no probe request twice; its
verdict per problem is `benchmark/holdout_knowledge.jsonl`. Its spending is on the score (`probe_usage`),
and on the ledger as `unfinished` (purpose `probe`, its verdicts `judge`) while the iteration has none.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthtune.contracts.config import Contestant, RunConfig
from synthtune.contracts.errors import BenchmarkIncomplete, FineTuneFailed, RateLimited, ServingFailed
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import ChatPurpose, Usage, UsageByModel, merge_usage
from synthtune.contracts.workflow import BenchmarkOutcome, BenchmarkTask, ContestantScore, RunRef
from synthtune.engine.asking import Progress, RequestPolicy, Unfinished, ask_many
from synthtune.engine.chat import grade_with_run_judge
from synthtune.engine.checkpoints import CheckpointStore
from synthtune.engine.pacing import RateLimitGate
from synthtune.engine.probing import ExemplarSource, probe_problem
from synthtune.money.ledger import CostLedger, SpendRecord
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import parse_final_answer, solver_system_prompt
from synthtune.providers.ports import ChatPort, Reply
from synthtune.quality.abstention import reply_abstains
from synthtune.quality.grading import Grade, GradeMethod
from synthtune.quality.knowledge import KnowledgeCategory, Probe, evidence
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import score_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore

REFUSED = frozenset({"refusal", "content_filter"})
"""Neutral stop reasons (`providers.ports`) of a reply the model or a filter withheld."""


class BenchmarkCheckpoint(BaseModel):
    """One held-out problem's reply from a contestant, saved the moment it was paid for, and the
    grade of its final answer once that was paid for (a judge's verdict)."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    model: str = Field(
        description="The contestant's model that was asked (a checkpoint of another is not used)."
    )
    reply: Reply
    grade: Grade | None = None
    judge_usage: UsageByModel = Field(default_factory=dict)

    @property
    def usage(self) -> UsageByModel:
        return merge_usage([{self.model: self.reply.usage}, self.judge_usage])


class BenchmarkAnswer(BaseModel):
    """One line of benchmark/<contestant>.jsonl."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    category: str
    question: str
    reference: str
    reply: str | None
    final_answer: str | None
    correct: bool
    outcome: BenchmarkOutcome
    grade_method: GradeMethod
    finish_reason: str
    usage: UsageByModel = Field(
        description="Tokens by model: the contestant's reply and the judge's verdict."
    )
    judge_usage: UsageByModel = Field(
        default_factory=dict, description="The judge's part of `usage` (none where no judge was asked)."
    )

    @model_validator(mode="before")
    @classmethod
    def _outcome_of_older_runs(cls, data: Any) -> Any:
        """Runs written before outcomes were recorded: right, wrong, or no final answer at all."""
        if isinstance(data, dict) and "outcome" not in data:
            if data.get("correct"):
                outcome = "correct"
            else:
                outcome = "wrong" if data.get("final_answer") is not None else "no_answer"
            return {**data, "outcome": outcome}
        return data


def contestant_model(task: BenchmarkTask) -> tuple[str, str | None]:
    """The contestant's model, and the endpoint it answers through when that is not its name."""
    config = task.run.config
    if task.contestant == "teacher":
        return config.teacher_model, None
    if task.contestant == "base":
        return config.student_model, None
    if task.finetune.fine_tuned_model is None:
        raise FineTuneFailed(f"fine-tuning job {task.finetune.job_id} produced no model to benchmark")
    serving = task.serving
    if serving is not None and serving.status != "active":
        raise ServingFailed(f"the fine-tuned model's {serving.kind} is {serving.status}, not active")
    return task.finetune.fine_tuned_model, serving.endpoint if serving is not None else None


def answer_outcome(grade: Grade, reply: Reply, final_answer: str | None) -> BenchmarkOutcome:
    """What an answer was: right by its grade; else withheld, an abstention, no answer at all, or wrong."""
    if grade.correct:
        return "correct"
    if reply.refusal or reply.finish_reason in REFUSED:
        return "no_answer"
    if reply_abstains(reply.text, final_answer):
        return "abstained"
    return "wrong" if final_answer is not None else "no_answer"


def benchmark_answer(problem: Problem, checkpoint: BenchmarkCheckpoint) -> BenchmarkAnswer:
    """The answer line for a held-out problem from its graded checkpoint."""
    assert problem.answer is not None and checkpoint.grade is not None
    reply, grade = checkpoint.reply, checkpoint.grade
    final_answer = parse_final_answer(reply.text)
    return BenchmarkAnswer(
        problem_id=problem.id,
        category=problem.category,
        question=problem.question,
        reference=problem.answer,
        reply=reply.text,
        final_answer=final_answer,
        correct=grade.correct,
        outcome=answer_outcome(grade, reply, final_answer),
        grade_method=grade.method,
        finish_reason=reply.finish_reason,
        usage=checkpoint.usage,
        judge_usage=checkpoint.judge_usage,
    )


def answer_holdout_problem(
    problem: Problem,
    model: str,
    run: RunRef,
    chat: ChatPort,
    progress: Progress[BenchmarkCheckpoint],
    endpoint: str | None = None,
) -> BenchmarkAnswer:
    """Ask `model` one held-out problem and grade its answer, unless its checkpoint already holds either."""
    if problem.answer is None:  # Prepare holds out only problems with a reference
        raise ValueError(f"held-out problem {problem.id} has no reference answer")
    config = run.config
    checkpoint = progress.saved
    if checkpoint is None or (checkpoint.problem_id, checkpoint.model) != (problem.id, model):
        reply = chat.answer(
            model,
            problem.question,
            max_tokens=config.max_output_tokens,
            endpoint=endpoint,
            system=solver_system_prompt(config.dataset.abstains),
        )
        checkpoint = progress.save(
            BenchmarkCheckpoint(
                problem_id=problem.id, model=model, reply=reply.model_copy(update={"backpressure": None})
            )
        )
    if checkpoint.grade is None:
        judge_usage: UsageByModel = {}
        grade = grade_with_run_judge(
            chat,
            config.judge_model,
            problem.question,
            problem.answer,
            parse_final_answer(checkpoint.reply.text),
            judge_usage,
        )
        checkpoint = checkpoint.model_copy(update={"grade": grade, "judge_usage": judge_usage})
        if judge_usage:  # the verdict was paid for: keep it with the reply
            progress.save(checkpoint)
    return benchmark_answer(problem, checkpoint)


class HoldoutKnowledge(BaseModel):
    """One line of benchmark/holdout_knowledge.jsonl: what the base student knew of a held-out problem
    (`quality.knowledge.KnowledgeEvidence`, its category as `knowledge`), probed after its benchmark."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    category: str = Field(description="The problem's own category in the problem set.")
    knowledge: KnowledgeCategory
    greedy_correct: int
    greedy: int
    sampled_correct: int
    sampled: int
    agreement: float | None
    answers: list[str | None] = Field(default_factory=list)

    @classmethod
    def of(cls, problem: Problem, probe: Probe) -> HoldoutKnowledge:
        found = evidence(probe)
        return cls(
            problem_id=problem.id,
            category=problem.category,
            knowledge=found.category,
            **found.model_dump(exclude={"category"}),
        )


def probe_checkpoints(data: ArtifactStore, layout: RunLayout) -> CheckpointStore[Probe]:
    """The base student's probe of each held-out problem, by position in holdout.jsonl."""
    return CheckpointStore(
        data, layout.holdout_probe_checkpoints_prefix, layout.holdout_probe_checkpoint, Probe
    )


def probes_held_out(task: BenchmarkTask) -> bool:
    """Whether this Benchmark iteration probes the held-out problems: the base contestant's, with
    `dataset.probe.enabled`."""
    return task.contestant == "base" and task.run.config.dataset.probe.enabled


def probe_holdout_problem(
    problem: Problem,
    config: RunConfig,
    exemplars: list[ExemplarSource],
    chat: ChatPort,
    progress: Progress[Probe],
) -> Probe:
    """The base student's graded probe of one held-out problem (its reference the target), asking only
    for what its checkpoint does not hold yet."""
    if problem.answer is None:  # Prepare holds out only problems with a reference
        raise ValueError(f"held-out problem {problem.id} has no reference answer")
    return probe_problem(
        problem.id,
        problem.question,
        problem.answer,
        config=config,
        candidates=exemplars,
        chat=chat,
        saved=progress.saved,
        save=progress.save,
    )


def contestant_score(
    contestant: Contestant, model: str, answers: list[BenchmarkAnswer], usage: UsageByModel
) -> ContestantScore:
    outcomes = Counter(answer.outcome for answer in answers)
    total, attempted = len(answers), outcomes["correct"] + outcomes["wrong"]
    return ContestantScore(
        contestant=contestant,
        model=model,
        total=total,
        correct=outcomes["correct"],
        accuracy=outcomes["correct"] / total if total else 0.0,
        answered=sum(answer.final_answer is not None for answer in answers),
        abstained=outcomes["abstained"],
        no_answer=outcomes["no_answer"],
        abstention_rate=outcomes["abstained"] / total if total else 0.0,
        hallucination_rate=outcomes["wrong"] / attempted if attempted else None,
        usage=usage,
        judge_usage=merge_usage(answer.judge_usage for answer in answers),
    )


def contestant_checkpoints(
    data: ArtifactStore, layout: RunLayout, contestant: str
) -> CheckpointStore[BenchmarkCheckpoint]:
    """The contestant's replies and verdicts, one per held-out problem, by position in holdout.jsonl."""
    return CheckpointStore(
        data,
        layout.benchmark_checkpoints_prefix(contestant),
        lambda position: layout.benchmark_checkpoint(contestant, position),
        BenchmarkCheckpoint,
    )


def checkpointed_spending(
    checkpoints: list[BenchmarkCheckpoint], probes: list[Probe] | None = None
) -> dict[tuple[ChatPurpose, str], Usage]:
    """What the checkpoints were paid: the contestant's answers, the held-out probe's requests and the
    judge's verdicts (of both), by model."""
    spending: dict[tuple[ChatPurpose, str], Usage] = {}

    def add(purpose: ChatPurpose, model: str, usage: Usage) -> None:
        spending[purpose, model] = spending.get((purpose, model), Usage()) + usage

    for checkpoint in checkpoints:
        add("answer", checkpoint.model, checkpoint.reply.usage)
        for model, usage in checkpoint.judge_usage.items():
            add("judge", model, usage)
    for probe in probes or []:
        add("probe", probe.model, probe.usage)
        for model, usage in probe.judge_usage.items():
            add("judge", model, usage)
    return spending


def probe_usage(probes: list[Probe]) -> UsageByModel:
    """What the held-out probe was paid, by model: the student's requests and the judge's verdicts."""
    return merge_usage([{probe.model: probe.usage} for probe in probes] + [p.judge_usage for p in probes])


def run_benchmark(
    task: BenchmarkTask,
    *,
    data: ArtifactStore,
    runs: RunStore,
    chat: ChatPort,
    gate: RateLimitGate | None = None,
) -> ContestantScore:
    """One contestant's answers and score; a contestant that fails puts what its checkpoints were paid on
    the ledger (as `unfinished` spending) before the error propagates, for its retry or a failed run's
    report to count.

    `gate`: the invocation's (with its deadline); a fresh one without a deadline when None.
    """
    run_id, spender = task.run.run_id, f"benchmark: {task.contestant}"
    ledger = CostLedger(runs, run_id, task.run.config.budget_usd)
    layout = RunLayout(run_id)
    checkpoints = contestant_checkpoints(data, layout, task.contestant)
    probes = probe_checkpoints(data, layout) if probes_held_out(task) else None
    try:
        answers, model, probed = _run_benchmark(
            task, data=data, chat=chat, ledger=ledger, checkpoints=checkpoints, probes=probes, gate=gate
        )
    except Exception:
        spending = checkpointed_spending(
            list(checkpoints.load().values()), list(probes.load().values()) if probes is not None else None
        )
        for (purpose, paid_model), usage in sorted(spending.items()):
            usd = inference_cost_usd(paid_model, usage)
            ledger.replace(
                SpendRecord(
                    kind="unfinished",
                    spender=spender,
                    purpose=purpose,
                    model=paid_model,
                    usage=usage,
                    usd=usd,
                )
            )
        raise
    score = contestant_score(task.contestant, model, answers, merge_usage(a.usage for a in answers))
    if probed:
        score = score.model_copy(update={"probe_usage": probe_usage(probed)})
    runs.put(run_id, score_sk(task.contestant), score.model_dump())
    # The score counts every answer now (and every probe request), those of the attempts that failed before
    # it included.
    ledger.remove("unfinished", spender, "answer", model)
    if probes is not None:
        ledger.remove("unfinished", spender, "probe", task.run.config.student_model)
    if task.run.config.judge_model:
        ledger.remove("unfinished", spender, "judge", task.run.config.judge_model)
    return score


def _run_benchmark(
    task: BenchmarkTask,
    *,
    data: ArtifactStore,
    chat: ChatPort,
    ledger: CostLedger,
    checkpoints: CheckpointStore[BenchmarkCheckpoint],
    probes: CheckpointStore[Probe] | None,
    gate: RateLimitGate | None,
) -> tuple[list[BenchmarkAnswer], str, list[Probe]]:
    layout = RunLayout(task.run.run_id)
    model, endpoint = contestant_model(task)
    problems = list(data.read_jsonl(layout.holdout, Problem))
    gate = gate or RateLimitGate()
    try:
        asked = ask_many(
            problems,
            lambda problem, progress, paid: answer_holdout_problem(
                problem, model, task.run, paid, progress, endpoint
            ),
            checkpoints=checkpoints,
            chat=chat,
            ledger=ledger,
            spender=f"benchmark: {task.contestant}",
            gate=gate,
            policy=RequestPolicy.of(task.run.config),
            name=task.contestant,
        )
    except Unfinished as stopped:
        _stop(
            stopped,
            f"benchmark of the {task.contestant} contestant: {stopped.checkpointed} of {stopped.total} "
            "held-out problems answered and checkpointed",
        )
    data.write_jsonl(layout.benchmark_answers(task.contestant), asked.results)
    if probes is None:
        return asked.results, model, []
    return asked.results, model, _probe_holdout(task, problems, data, chat, ledger, probes, gate)


def _probe_holdout(
    task: BenchmarkTask,
    problems: list[Problem],
    data: ArtifactStore,
    chat: ChatPort,
    ledger: CostLedger,
    probes: CheckpointStore[Probe],
    gate: RateLimitGate,
) -> list[Probe]:
    """The base student's probe of every held-out problem, and holdout_knowledge.jsonl from it."""
    config = task.run.config
    exemplars = [(p.id, p.question, p.answer) for p in problems if p.answer is not None]
    try:
        probed = ask_many(
            problems,
            lambda problem, progress, paid: probe_holdout_problem(problem, config, exemplars, paid, progress),
            checkpoints=probes,
            chat=chat,
            ledger=ledger,
            spender=f"benchmark: {task.contestant}",
            gate=gate,
            policy=RequestPolicy.of(config),
            name=f"{task.contestant}-probe",
        )
    except Unfinished as stopped:
        _stop(
            stopped,
            f"benchmark of the {task.contestant} contestant: its answers are written; the held-out probe has "
            f"{stopped.checkpointed} of {stopped.total} problems probed and checkpointed",
        )
    knowledge = [
        HoldoutKnowledge.of(problem, probe) for problem, probe in zip(problems, probed.results, strict=True)
    ]
    data.write_jsonl(RunLayout(task.run.run_id).holdout_knowledge, knowledge)
    return probed.results


def _stop(stopped: Unfinished, progress: str) -> NoReturn:
    """The error Step Functions retries, for an invocation whose time ran out."""
    if stopped.rate_limited:
        raise RateLimited(f"{progress}; still rate limited when the invocation's time ran out") from None
    raise BenchmarkIncomplete(f"{progress}; the invocation's time ran out (a retry resumes)") from None
