"""Generate: the teacher answers one shard of problems, and each answer is checked as it arrives.

A shard asks through the engine Benchmark shares (`synthtune.engine.asking`): its problems concurrently
(`request_concurrency` in flight), every request paced by one `RateLimitGate` (see `synthtune.engine.pacing`)
and cut off after `generation.request_timeout_seconds`.
Each teacher reply is checkpointed to S3 the moment it arrives, one object per problem, before
anything else happens to it. A shard that cannot finish — rate limited past its invocation's time,
the time itself running out, a provider down for `max_attempts` tries — raises, Step Functions
retries it, and the retry starts from the checkpoints: an answered problem is never paid for twice.

In batch mode the checkpoints come from the Batch API's output file (see `synthtune.stages.batch`) and the
shard only grades them; a problem the batch could not answer is recorded as failed, not sent online.

With `dataset.probe` on, each answer worth training (verified, or unverified with an answer) is then put
to the base student (`engine.probing`): greedy and sampled answers graded against the reference (else the
teacher's answer), saved on the same checkpoint as they are paid for, and the problem classified by what
the student knows (`quality.knowledge`) for Assemble's `dataset.knowledge_policy`. A problem whose
teacher answer is dropped anyway is not probed; held-out problems never are here (Benchmark probes them
after the benchmark, for analysis only).

With `generation.samples` > 1 the teacher writes N answers and the majority answer is kept, its
agreement recorded: in one request where the provider takes `n` (the prompt billed once), else one
request per sample, each checkpointed as it arrives so that a retry asks only for the samples missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.error_text import MAX_PROVIDER_MESSAGE_CHARS, safe_text
from synthtune.contracts.errors import RateLimited, ShardIncomplete
from synthtune.contracts.problems import Problem, Split
from synthtune.contracts.usage import CallCost, Usage, UsageByModel, merge_usage
from synthtune.contracts.workflow import RunRef, ShardResult, ShardTask
from synthtune.engine.asking import Progress, RequestPolicy, Unfinished, ask_many
from synthtune.engine.chat import grade_with_run_judge
from synthtune.engine.checkpoints import CheckpointStore
from synthtune.engine.pacing import RateLimitGate, invocation_deadline
from synthtune.engine.probing import ExemplarSource, probe_problem
from synthtune.money.ledger import CostLedger
from synthtune.money.usage import inference_cost_usd
from synthtune.providers.ports import ChatPort, Sample, SolveResult
from synthtune.quality.grading import Grade, GradeMethod, answers_match
from synthtune.quality.knowledge import KnowledgeEvidence, Probe, evidence
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import ShardDone, ShardFailed, shard_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore

AnswerStatus = Literal["verified", "rejected", "unverified", "failed"]
AnswerSource = Literal["online", "batch"]

RESERVED_SECONDS = 15.0
"""Kept back from the invocation's time to write the shard's outputs after its last request."""


def summarise_calls(parts: Iterable[Iterable[CallCost]]) -> list[CallCost]:
    """Calls summed by purpose, model and batch: the shard's and the run's cost lines."""
    totals: dict[tuple[str, str, bool], CallCost] = {}
    for part in parts:
        for call in part:
            key = (call.purpose, call.model, call.batch)
            known = totals.get(key)
            if known is None:
                totals[key] = call
            else:
                usd = None if known.usd is None or call.usd is None else known.usd + call.usd
                totals[key] = known.model_copy(update={"usage": known.usage + call.usage, "usd": usd})
    return [totals[key] for key in sorted(totals)]


def call_cost(
    purpose: Literal["solve", "judge", "probe"], model: str, usage: Usage, *, batch: bool = False
) -> CallCost:
    return CallCost(
        purpose=purpose,
        model=model,
        usage=usage,
        usd=inference_cost_usd(model, usage, batch=batch),
        batch=batch,
    )


class Checkpoint(BaseModel):
    """One problem's teacher reply, saved the moment it was paid for (and its grade, once judged)."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    source: AnswerSource
    result: SolveResult
    grade: Grade | None = None
    judge_calls: list[CallCost] = Field(default_factory=list)
    probe: Probe | None = Field(
        default=None, description="The base student's answers to the problem, as far as they were paid for."
    )


class GeneratedAnswer(BaseModel):
    """One line of a shard's output: the teacher's answer to one problem and what we know of it."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    split: Split
    category: str
    question: str
    reference: str | None
    status: AnswerStatus = Field(
        description="verified: matches the reference; rejected: does not; unverified: no reference to "
        "check; failed: no usable answer (see failure)"
    )
    steps: list[str] = Field(default_factory=list)
    final_answer: str | None = None
    grade_method: GradeMethod | None = None
    failure: str | None = None
    finish_reason: str
    samples: int = 1
    agreement: float | None = Field(
        default=None, description="Share of the samples that gave the kept answer (None: no usable sample)."
    )
    sample_answers: list[str | None] = Field(default_factory=list)
    source: AnswerSource = "online"
    knowledge: KnowledgeEvidence | None = Field(
        default=None,
        description="What the base student knows of the problem (dataset.probe); None: not probed.",
    )
    calls: list[CallCost] = Field(default_factory=list)
    usage: UsageByModel

    @property
    def cost_usd(self) -> float:
        return sum(call.usd or 0.0 for call in self.calls)


def majority_vote(samples: list[Sample]) -> tuple[Sample | None, float | None]:
    """The earliest sample of the largest group of equal final answers, and that group's share."""
    groups: list[list[Sample]] = []
    for sample in samples:
        if sample.solution is None or not sample.solution.final_answer.strip():
            continue
        answer = sample.solution.final_answer
        for group in groups:
            assert group[0].solution is not None
            if answers_match(group[0].solution.final_answer, answer) != "mismatch":
                group.append(sample)
                break
        else:
            groups.append([sample])
    if not groups:
        return None, None
    best = max(groups, key=len)  # max keeps the first of equal groups: ties go to the earliest answer
    return best[0], len(best) / len(samples)


def _failure(sample: Sample | None) -> str:
    if sample is not None and sample.refusal:
        return "refused"
    if sample is not None and sample.finish_reason == "length":
        return "truncated"
    return "no_answer"


def checkpoint_calls(checkpoint: Checkpoint) -> list[CallCost]:
    """What the checkpoint was paid: the teacher's reply, its verdict, and the student's probe."""
    result = checkpoint.result
    solve = call_cost("solve", result.model, result.usage, batch=checkpoint.source == "batch")
    calls = [solve, *checkpoint.judge_calls]
    probe = checkpoint.probe
    if probe is not None:
        calls.append(call_cost("probe", probe.model, probe.usage))
        calls += [call_cost("judge", model, usage) for model, usage in probe.judge_usage.items()]
    return calls


def graded_answer(problem: Problem, checkpoint: Checkpoint) -> GeneratedAnswer:
    """The answer line for a problem from its checkpoint: the reply, its grade (None: unverified)."""
    result, grade = checkpoint.result, checkpoint.grade
    calls = checkpoint_calls(checkpoint)
    chosen, agreement = majority_vote(result.samples)
    base = {
        "problem_id": problem.id,
        "split": problem.split or "train",
        "category": problem.category,
        "question": problem.question,
        "reference": problem.answer,
        "samples": len(result.samples),
        "agreement": agreement,
        "sample_answers": [s.solution.final_answer if s.solution else None for s in result.samples],
        "source": checkpoint.source,
        "calls": calls,
        "usage": merge_usage({call.model: call.usage} for call in calls),
    }
    if chosen is None or chosen.solution is None:
        first = result.samples[0] if result.samples else None
        return GeneratedAnswer(
            **base,
            status="failed",
            failure=_failure(first),
            finish_reason=first.finish_reason if first else "none",
        )
    solution = chosen.solution
    if grade is None:
        status: AnswerStatus = "unverified"
    else:
        status = "verified" if grade.correct else "rejected"
    probe = checkpoint.probe
    return GeneratedAnswer(
        **base,
        status=status,
        steps=solution.steps,
        final_answer=solution.final_answer,
        grade_method=grade.method if grade else None,
        finish_reason=chosen.finish_reason,
        knowledge=evidence(probe) if probe is not None and probe.graded else None,
    )


def worth_probing(answer: GeneratedAnswer) -> bool:
    """Whether an answer may become a training example, and so is worth asking the student about."""
    return answer.status in ("verified", "unverified") and bool(answer.final_answer)


def failed_answer(problem: Problem, failure: str) -> GeneratedAnswer:
    """A problem without a teacher reply (its batch request failed or expired every round)."""
    return GeneratedAnswer(
        problem_id=problem.id,
        split=problem.split or "train",
        category=problem.category,
        question=problem.question,
        reference=problem.answer,
        status="failed",
        failure=failure,
        finish_reason="none",
        samples=0,
        source="batch",
        usage={},
    )


def shard_deadline(remaining_seconds: float) -> float:
    """The monotonic time by which a shard stops sending, leaving RESERVED_SECONDS to write its outputs."""
    return invocation_deadline(remaining_seconds, RESERVED_SECONDS)


def generate_shard(
    task: ShardTask,
    *,
    data: ArtifactStore,
    runs: RunStore,
    chat: ChatPort,
    gate: RateLimitGate,
) -> ShardResult:
    """Answer one shard; a shard that fails records why on its item before the error propagates.

    Step Functions reports a failed Distributed Map iteration only as a threshold exceeded, so the
    shard's own record is where a user (and RecordFailure) finds the root cause.
    """
    try:
        return _generate_shard(task, data=data, runs=runs, chat=chat, gate=gate)
    except Exception as error:
        # What the shard paid for before it failed is in its checkpoints: count it, since a retry or
        # a later run resumes from them rather than paying again.
        checkpoints = load_checkpoints(data, RunLayout(task.run.run_id), task.shard.index)
        calls = summarise_calls(checkpoint_calls(checkpoint) for checkpoint in checkpoints.values())
        runs.put(
            task.run.run_id,
            shard_sk(task.shard.index),
            ShardFailed(
                index=task.shard.index,
                error=type(error).__name__,
                message=safe_text(str(error), MAX_PROVIDER_MESSAGE_CHARS),
                checkpointed=len(checkpoints),
                cost_usd=sum(call.usd or 0.0 for call in calls),
                calls=calls,
            ),
        )
        raise


MAX_LISTED_SHARD_FAILURES = 10
"""Failed shards a cause lists one by one (10,000 shards may fail alike; each item keeps its own error)."""


def failed_shards(runs: RunStore, run_id: str) -> str:
    """One line per shard whose last attempt failed, with its error (the first few): empty when none did."""
    failures = [shard for shard in runs.shards(run_id) if isinstance(shard, ShardFailed)]
    lines = [
        f"shard {shard.index}: {shard.error}: {shard.message}"
        for shard in failures[:MAX_LISTED_SHARD_FAILURES]
    ]
    if len(failures) > MAX_LISTED_SHARD_FAILURES:
        lines.append(
            f"... and {len(failures) - MAX_LISTED_SHARD_FAILURES:,} more failed shards (each SHARD# item "
            "on the run record has its error)"
        )
    return "\n".join(lines)


def shard_checkpoints(data: ArtifactStore, layout: RunLayout, shard: int) -> CheckpointStore[Checkpoint]:
    """The shard's teacher replies, one per problem, by position in the shard's input."""
    prefix = layout.checkpoints_prefix(shard)
    return CheckpointStore(data, prefix, lambda position: layout.checkpoint(shard, position), Checkpoint)


def load_checkpoints(data: ArtifactStore, layout: RunLayout, shard: int) -> dict[int, Checkpoint]:
    """The shard's checkpoints by position in the shard (one LIST, then one GET per checkpoint)."""
    return shard_checkpoints(data, layout, shard).load()


def _answer(
    problem: Problem,
    progress: Progress[Checkpoint],
    chat: ChatPort,
    *,
    run: RunRef,
    exemplars: list[ExemplarSource],
) -> GeneratedAnswer:
    config = run.config
    checkpoint = progress.saved
    if checkpoint is None and config.generation.mode == "batch":
        return failed_answer(problem, "batch_request_failed")
    if checkpoint is None or (
        checkpoint.source == "online" and len(checkpoint.result.samples) < config.generation.samples
    ):
        checkpoint = _ask_teacher(problem, progress, run=run, chat=chat)
    if problem.answer is not None and checkpoint.grade is None:
        chosen, _ = majority_vote(checkpoint.result.samples)
        candidate = chosen.solution.final_answer if chosen and chosen.solution else None
        judge_usage: UsageByModel = {}
        grade = grade_with_run_judge(
            chat, config.judge_model, problem.question, problem.answer, candidate, judge_usage
        )
        judge_calls = [call_cost("judge", model, usage) for model, usage in judge_usage.items()]
        checkpoint = checkpoint.model_copy(update={"grade": grade, "judge_calls": judge_calls})
        if judge_calls:  # the verdict was paid for: keep it with the reply
            progress.save(checkpoint)
    answer = graded_answer(problem, checkpoint)
    if not config.dataset.probe.enabled or not worth_probing(answer):
        return answer
    if checkpoint.probe is None or not checkpoint.probe.graded:
        checkpoint = _probe_student(
            problem, answer, checkpoint, progress, run=run, chat=chat, exemplars=exemplars
        )
    return graded_answer(problem, checkpoint)


def _probe_student(
    problem: Problem,
    answer: GeneratedAnswer,
    checkpoint: Checkpoint,
    progress: Progress[Checkpoint],
    *,
    run: RunRef,
    chat: ChatPort,
    exemplars: list[ExemplarSource],
) -> Checkpoint:
    """The checkpoint with the base student's graded probe, each request saved as it is paid for."""
    target = problem.answer if problem.answer is not None else answer.final_answer
    assert target is not None  # worth_probing: an unverified answer has a final answer

    def save(probe: Probe) -> None:
        nonlocal checkpoint
        checkpoint = progress.save(checkpoint.model_copy(update={"probe": probe}))

    probe = probe_problem(
        problem.id,
        problem.question,
        target,
        config=run.config,
        candidates=exemplars,
        chat=chat,
        saved=checkpoint.probe,
        save=save,
    )
    return checkpoint.model_copy(update={"probe": probe})


def _ask_teacher(
    problem: Problem, progress: Progress[Checkpoint], *, run: RunRef, chat: ChatPort
) -> Checkpoint:
    """The samples still missing from the problem's checkpoint, as few requests as the provider allows,
    each one checkpointed the moment it is paid for."""
    config = run.config
    wanted = config.generation.samples
    per_request = max(1, chat.samples_per_request(config.teacher_model))
    checkpoint = progress.saved
    result = checkpoint.result if checkpoint is not None else None
    while (have := len(result.samples) if result is not None else 0) < wanted:
        asked = chat.solve(
            config.teacher_model,
            problem.question,
            temperature=config.teacher_temperature,
            max_tokens=config.max_output_tokens,
            samples=min(per_request, wanted - have),
        ).model_copy(update={"backpressure": None})
        result = asked if result is None else result.merged(asked)
        checkpoint = progress.save(Checkpoint(problem_id=problem.id, source="online", result=result))
    assert checkpoint is not None
    return checkpoint


def _generate_shard(
    task: ShardTask, *, data: ArtifactStore, runs: RunStore, chat: ChatPort, gate: RateLimitGate
) -> ShardResult:
    run, index = task.run, task.shard.index
    config = run.config
    layout = RunLayout(run.run_id)
    problems = list(data.read_jsonl(layout.shard_input(index), Problem))
    # The worked examples a probe may show the student: the shard's other problems with a reference.
    exemplars = [(p.id, p.question, p.answer) for p in problems if p.answer is not None]
    try:
        asked = ask_many(
            problems,
            lambda problem, progress, paid: _answer(problem, progress, paid, run=run, exemplars=exemplars),
            checkpoints=shard_checkpoints(data, layout, index),
            chat=chat,
            ledger=CostLedger(runs, run.run_id, config.budget_usd),
            spender="generation",
            gate=gate,
            policy=RequestPolicy.of(config),
            name=f"shard-{index}",
        )
    except Unfinished as stopped:
        progress = (
            f"shard {index}: {stopped.checkpointed} of {stopped.total} problems answered and checkpointed"
        )
        if stopped.rate_limited:
            raise RateLimited(f"{progress}; still rate limited when the invocation's time ran out") from None
        raise ShardIncomplete(f"{progress}; the invocation's time ran out (a retry resumes)") from None
    answers = asked.results
    data.write_jsonl(layout.shard_output(index), answers)

    counts = dict.fromkeys(("verified", "rejected", "unverified", "failed"), 0)
    for answer in answers:
        counts[answer.status] += 1
    usage = merge_usage(answer.usage for answer in answers)
    result = ShardResult(
        index=index,
        problems=len(problems),
        answered=len(problems) - counts["failed"],
        verified=counts["verified"],
        rejected=counts["rejected"],
        failed=counts["failed"],
    )
    runs.put(
        run.run_id,
        shard_sk(index),
        ShardDone(
            **result.model_dump(),
            checkpointed_at_start=asked.resumed,
            cost_usd=sum(answer.cost_usd for answer in answers),
            usage=usage,
            calls=summarise_calls(answer.calls for answer in answers),
        ),
    )
    return result
