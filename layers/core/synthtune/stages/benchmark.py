"""Benchmark: one contestant answers every held-out problem, graded against the reference answers.

Each contestant (the base student, the fine-tuned student, the teacher) runs as one iteration of the
Benchmark Map, asked with the same system prompt and answer format the student was trained on, at
temperature 0. Every answer and its grade is written to S3 for inspection; the score is small.

Every request is paced and retried like the teacher's (`engine.paced`: the SDKs retry nothing, since
each attempt may be billed) and paid for through the ledger (`engine.budgeted`). A contestant keeps no
checkpoints: when an attempt fails, what it paid for is recorded as discarded, so the report still
counts it after the retry has asked again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from synthtune.contracts.config import Contestant
from synthtune.contracts.errors import FineTuneFailed, ModelUnavailable, RateLimited, ServingFailed
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import UsageByModel, merge_usage
from synthtune.contracts.workflow import BenchmarkOutcome, BenchmarkTask, ContestantScore, RunRef
from synthtune.engine.budgeted import BudgetedChat
from synthtune.engine.chat import grade_with_run_judge, with_requests_in_flight
from synthtune.engine.paced import PacedChat
from synthtune.engine.pacing import OutOfTime, RateLimitGate
from synthtune.money.ledger import CostLedger
from synthtune.prompts import parse_final_answer
from synthtune.providers.ports import ChatPort
from synthtune.quality.grading import GradeMethod
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import score_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore


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
    usage: UsageByModel

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


def answer_holdout_problem(
    problem: Problem, model: str, run: RunRef, chat: ChatPort, endpoint: str | None = None
) -> BenchmarkAnswer:
    if problem.answer is None:  # Prepare holds out only problems with a reference
        raise ValueError(f"held-out problem {problem.id} has no reference answer")
    config = run.config
    reply = chat.answer(model, problem.question, max_tokens=config.max_output_tokens, endpoint=endpoint)
    usage: UsageByModel = {model: reply.usage}
    final_answer = parse_final_answer(reply.text)
    grade = grade_with_run_judge(
        chat, config.judge_model, problem.question, problem.answer, final_answer, usage
    )
    return BenchmarkAnswer(
        problem_id=problem.id,
        category=problem.category,
        question=problem.question,
        reference=problem.answer,
        reply=reply.text,
        final_answer=final_answer,
        correct=grade.correct,
        outcome="correct" if grade.correct else ("wrong" if final_answer is not None else "no_answer"),
        grade_method=grade.method,
        finish_reason=reply.finish_reason,
        usage=usage,
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
    )


def run_benchmark(
    task: BenchmarkTask,
    *,
    data: ArtifactStore,
    runs: RunStore,
    chat: ChatPort,
    gate: RateLimitGate | None = None,
) -> ContestantScore:
    """`gate`: the invocation's (with its deadline); a fresh one without a deadline when None."""
    layout = RunLayout(task.run.run_id)
    config = task.run.config
    model, endpoint = contestant_model(task)
    problems = list(data.read_jsonl(layout.holdout, Problem))
    budgeted = BudgetedChat(
        chat, CostLedger(runs, task.run.run_id, config.budget_usd), spender=f"benchmark: {task.contestant}"
    )
    paced = PacedChat(
        budgeted,
        gate or RateLimitGate(),
        max_attempts=config.generation.max_attempts,
        request_timeout=config.generation.request_timeout_seconds,
    )
    try:
        answers = with_requests_in_flight(
            lambda problem: answer_holdout_problem(problem, model, task.run, paced, endpoint),
            problems,
            config.request_concurrency,
            task.contestant,
        )
    except BaseException as error:
        budgeted.record_discarded()
        if isinstance(error, OutOfTime):
            stopped = f"benchmark of the {task.contestant} contestant: the invocation's time ran out"
            if error.rate_limited:
                raise RateLimited(f"{stopped} while rate limited") from None
            raise ModelUnavailable(f"{stopped} (a retry asks again)", outcome_unknown=False) from None
        raise
    data.write_jsonl(layout.benchmark_answers(task.contestant), answers)

    usage = merge_usage(answer.usage for answer in answers)
    score = contestant_score(task.contestant, model, answers, usage)
    runs.put(task.run.run_id, score_sk(task.contestant), score)
    return score
