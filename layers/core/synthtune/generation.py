"""Generate: the teacher answers one shard of problems, and each answer is checked as it arrives.

Requests run concurrently (RunConfig.request_concurrency) so one invocation spends its time waiting
on several answers at once. Each answer is graded against the problem's reference answer, when it has
one, with the same rules the benchmark uses; Assemble later keeps only what deserves training.
A provider failure that outlasts the client's retries (RateLimited, ModelUnavailable) fails the
shard, and Step Functions retries it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.artifacts import ArtifactStore
from synthtune.chat import ChatModel, grade_with_run_judge, with_requests_in_flight
from synthtune.grading import GradeMethod
from synthtune.layout import RunLayout
from synthtune.problems import Problem, Split
from synthtune.runs import RunStore, shard_sk
from synthtune.usage import UsageByModel, merge_usage
from synthtune.workflow import RunRef, ShardResult, ShardTask

AnswerStatus = Literal["verified", "rejected", "unverified", "failed"]


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
    usage: UsageByModel


def answer_problem(problem: Problem, run: RunRef, chat: ChatModel) -> GeneratedAnswer:
    config = run.config
    result = chat.solve(
        config.teacher_model,
        problem.question,
        temperature=config.teacher_temperature,
        max_tokens=config.max_output_tokens,
    )
    usage: UsageByModel = {config.teacher_model: result.reply.usage}
    base = {
        "problem_id": problem.id,
        "split": problem.split or "train",
        "category": problem.category,
        "question": problem.question,
        "reference": problem.answer,
        "finish_reason": result.reply.finish_reason,
    }
    solution = result.solution
    if solution is None or not solution.final_answer.strip():
        if result.reply.refusal:
            failure = "refused"
        elif result.reply.finish_reason == "length":
            failure = "truncated"
        else:
            failure = "no_answer"
        return GeneratedAnswer(**base, status="failed", failure=failure, usage=usage)
    if problem.answer is None:
        return GeneratedAnswer(
            **base, status="unverified", steps=solution.steps, final_answer=solution.final_answer, usage=usage
        )
    grade = grade_with_run_judge(
        chat, config.judge_model, problem.question, problem.answer, solution.final_answer, usage
    )
    return GeneratedAnswer(
        **base,
        status="verified" if grade.correct else "rejected",
        steps=solution.steps,
        final_answer=solution.final_answer,
        grade_method=grade.method,
        usage=usage,
    )


def generate_shard(task: ShardTask, *, data: ArtifactStore, runs: RunStore, chat: ChatModel) -> ShardResult:
    """Answer one shard; a shard that fails records why on its item before the error propagates.

    Step Functions reports a failed Distributed Map iteration only as a threshold exceeded, so the
    shard's own record is where a user (and RecordFailure) finds the root cause.
    """
    try:
        return _generate_shard(task, data=data, runs=runs, chat=chat)
    except Exception as error:
        runs.put(
            task.run.run_id,
            shard_sk(task.shard.index),
            {
                "index": task.shard.index,
                "status": "failed",
                "error": type(error).__name__,
                "message": str(error),
            },
        )
        raise


def failed_shards(runs: RunStore, run_id: str) -> str:
    """One line per shard whose last attempt failed, with its error: empty when none did."""
    failures = [item for item in runs.items(run_id, "SHARD#") if item.get("status") == "failed"]
    return "\n".join(f"shard {item['index']}: {item['error']}: {item['message']}" for item in failures)


def _generate_shard(task: ShardTask, *, data: ArtifactStore, runs: RunStore, chat: ChatModel) -> ShardResult:
    layout = RunLayout(task.run.run_id)
    problems = list(data.read_jsonl(layout.shard_input(task.shard.index), Problem))
    answers = with_requests_in_flight(
        lambda problem: answer_problem(problem, task.run, chat),
        problems,
        task.run.config.request_concurrency,
        "teacher",
    )
    data.write_jsonl(layout.shard_output(task.shard.index), answers)

    counts = dict.fromkeys(("verified", "rejected", "unverified", "failed"), 0)
    for answer in answers:
        counts[answer.status] += 1
    usage = merge_usage(answer.usage for answer in answers)
    result = ShardResult(
        index=task.shard.index,
        problems=len(problems),
        answered=len(problems) - counts["failed"],
        verified=counts["verified"],
        rejected=counts["rejected"],
        failed=counts["failed"],
    )
    runs.put(
        task.run.run_id,
        shard_sk(task.shard.index),
        {
            **result.model_dump(),
            "status": "done",
            "usage": {model: u.model_dump() for model, u in usage.items()},
        },
    )
    return result
