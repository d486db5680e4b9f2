"""Report: how a run ended, what it produced and what it cost.

The run summary is computed from the run's DynamoDB items (see `synthtune.records.items`) by one pure
function, `summarise_run`, used for a finished run's report, by the CLI for a failed run, and by tests.
RecordFailure is `synthtune.stages.failure`.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.models import PROVIDER_TITLES
from synthtune.contracts.usage import CallCost, Usage
from synthtune.contracts.workflow import (
    FINAL_FINE_TUNE_STATUSES,
    ContestantScore,
    DatasetSummary,
    FineTuneState,
    ReportInput,
    ReportOutput,
    S3Location,
    ServingState,
)
from synthtune.money.catalog import CATALOG_AS_OF, base_model_of, model_info
from synthtune.money.estimate import CostEstimate
from synthtune.money.ledger import SpendRecord, spend_records
from synthtune.money.usage import (
    CostLine,
    CostReport,
    RequestTotals,
    inference_cost_usd,
    training_cost_usd,
)
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import (
    DATASET_SK,
    ENDED_JOB_PREFIX,
    FINETUNE_SK,
    RUN_SK,
    SCORE_PREFIX,
    SERVING_SK,
    SHARD_PREFIX,
    ShardDone,
    ShardFailed,
    now_iso,
    shard_item,
)
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.benchmark import BenchmarkAnswer
from synthtune.stages.generate import summarise_calls

CONTESTANT_LABELS = {"base": "Base student", "fine_tuned": "Fine-tuned student", "teacher": "Teacher"}


class GenerationTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    shards_done: int = 0
    shards_failed: int = 0
    problems: int = 0
    answered: int = 0
    verified: int = 0
    rejected: int = 0
    failed: int = 0


class CategoryScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


class ShardCost(BaseModel):
    """One Generate shard in the cost ledger."""

    model_config = ConfigDict(frozen=True)

    index: int
    status: Literal["done", "failed"]
    problems: int
    checkpointed_at_start: int = Field(
        default=0, description="Answers the shard found already paid for (a resumed shard, or batch mode)."
    )
    cost_usd: float


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    status: str
    stage: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    problem_set: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    splits: dict[str, int] | None = None
    shard_count: int | None = None
    generation: GenerationTotals
    dataset: DatasetSummary | None = None
    fine_tune: FineTuneState | None = None
    serving: ServingState | None = None
    serving_cost_usd: float | None = Field(
        default=None, description="Provisioned Throughput's billed hours at list price (on demand: none)."
    )
    scores: list[ContestantScore]
    costs: CostReport
    cost_usd: float
    answered: RequestTotals = Field(
        default=RequestTotals(requests=0, usd=0.0),
        description="Model requests whose reply arrived, at the usage the provider reported.",
    )
    paid_but_lost: RequestTotals = Field(
        default=RequestTotals(requests=0, usd=0.0),
        description="Model requests whose outcome is unknown (a timeout, a lost connection, a 5xx after the "
        "provider may have worked), at their worst case: the provider may have billed them in full, and "
        "reports no usage for a reply that never arrived. Included in cost_usd.",
    )
    estimate: CostEstimate | None = None
    budget_usd: float | None = None
    shards: list[ShardCost] = []
    prices_as_of: str = CATALOG_AS_OF.isoformat()
    failed_state: str | None = None
    error: str | None = None
    cause: str | None = None


_GENERATION_ITEMS = {
    ("solve", False): "generation: teacher",
    ("solve", True): "generation: teacher (Batch API)",
    ("judge", False): "generation: judge",
    ("judge", True): "generation: judge (Batch API)",
}


def _spend_item(spend: SpendRecord) -> str:
    """The cost table's item for requests no stage's results count: lost replies, discarded answers."""
    if spend.spender == "generation":
        item = _GENERATION_ITEMS["solve" if spend.purpose == "solve" else "judge", False]
    else:
        item = spend.spender
    if spend.kind == "paid_but_lost":
        return f"{item}, paid but lost (worst case)"
    return f"{item}, answers of an attempt that failed"


def _training_line(job: FineTuneState) -> CostLine | None:
    """What a job that has ended cost, as the ledger settled it: its billed tokens (the provider's count,
    else the dataset's tokens x epochs, the worst case for a cancelled job that reports none)."""
    billed = job.billed_tokens
    if not billed or job.status not in FINAL_FINE_TUNE_STATUSES:
        return None
    item = "fine-tuning" if job.trained_tokens else "fine-tuning (tokens x epochs)"
    if job.status != "succeeded":
        item = f"{item}, job {job.attempt + 1} {job.status}"
    return CostLine(
        item=item, model=job.base_model, trained_tokens=billed, usd=training_cost_usd(job.base_model, billed)
    )


def _cost_report(
    generation_calls: list[CallCost],
    fine_tune: FineTuneState | None,
    scores: list[ContestantScore],
    serving: dict[str, Any] | None = None,
    spends: list[SpendRecord] | None = None,
    ended_jobs: list[FineTuneState] | None = None,
) -> CostReport:
    lines = [
        CostLine(
            item=_GENERATION_ITEMS[call.purpose, call.batch], model=call.model, usage=call.usage, usd=call.usd
        )
        for call in generation_calls
    ]
    for job in [*(ended_jobs or []), *([fine_tune] if fine_tune is not None else [])]:
        line = _training_line(job)
        if line is not None:
            lines.append(line)
    if serving is not None and serving.get("billed_hours"):
        lines.append(
            CostLine(
                item=f"serving: {serving['billed_hours']} h of Provisioned Throughput",
                model=str(serving.get("model", "")),
                usd=serving.get("cost_usd"),
            )
        )
    for score in scores:
        for model, usage in sorted(score.usage.items()):
            lines.append(
                CostLine(
                    item=f"benchmark: {score.contestant}",
                    model=model,
                    usage=usage,
                    usd=inference_cost_usd(model, usage),
                )
            )
    for spend in spends or []:
        lines.append(
            CostLine(
                item=_spend_item(spend),
                model=spend.model,
                usage=spend.usage,
                usd=spend.usd,
                paid_but_lost=spend.kind == "paid_but_lost",
            )
        )
    return CostReport(lines=lines)


def summarise_run(run_id: str, items: list[dict[str, Any]]) -> RunSummary:
    """The run as its DynamoDB items describe it (any stage, finished or not)."""
    by_sk = {item["sk"]: item for item in items}
    record = by_sk.get(RUN_SK, {})
    totals: dict[str, int] = defaultdict(int)
    shard_items = [shard_item(item) for sk, item in by_sk.items() if sk.startswith(SHARD_PREFIX)]
    shards = [shard for shard in shard_items if isinstance(shard, ShardDone)]
    for shard in shards:
        for field in ("problems", "answered", "verified", "rejected", "failed"):
            totals[field] += getattr(shard, field)
    generation_calls = summarise_calls(shard.calls for shard in shard_items)
    dataset = (
        DatasetSummary.model_validate(_contract_fields(by_sk[DATASET_SK], DatasetSummary))
        if DATASET_SK in by_sk
        else None
    )
    fine_tune = (
        FineTuneState.model_validate(_contract_fields(by_sk[FINETUNE_SK], FineTuneState))
        if FINETUNE_SK in by_sk
        else None
    )
    scores = [
        ContestantScore.model_validate(_contract_fields(item, ContestantScore))
        for sk, item in sorted(by_sk.items())
        if sk.startswith(SCORE_PREFIX)
    ]
    serving_item = by_sk.get(SERVING_SK)
    serving = (
        ServingState.model_validate(_contract_fields(serving_item, ServingState)) if serving_item else None
    )
    ended_jobs = [
        FineTuneState.model_validate(_contract_fields(item, FineTuneState))
        for sk, item in sorted(by_sk.items())
        if sk.startswith(ENDED_JOB_PREFIX)
    ]
    costs = _cost_report(generation_calls, fine_tune, scores, serving_item, spend_records(items), ended_jobs)
    return RunSummary(
        run_id=run_id,
        status=str(record.get("status", "UNKNOWN")),
        stage=record.get("stage"),
        started_at=record.get("started_at"),
        finished_at=record.get("finished_at"),
        problem_set=record.get("problem_set"),
        config=record.get("config"),
        splits=record.get("splits"),
        shard_count=record.get("shard_count"),
        generation=GenerationTotals(
            shards_done=len(shards), shards_failed=len(shard_items) - len(shards), **totals
        ),
        dataset=dataset,
        fine_tune=fine_tune,
        serving=serving,
        serving_cost_usd=serving_item.get("cost_usd") if serving_item else None,
        scores=scores,
        costs=costs,
        cost_usd=round(costs.total_usd, 6),
        answered=costs.requests(paid_but_lost=False),
        paid_but_lost=costs.requests(paid_but_lost=True),
        estimate=CostEstimate.model_validate(record["estimate"]) if record.get("estimate") else None,
        budget_usd=(record.get("config") or {}).get("budget_usd"),
        shards=[
            ShardCost(
                index=shard.index,
                status=shard.status,
                problems=shard.problems if isinstance(shard, ShardDone) else 0,
                checkpointed_at_start=shard.checkpointed
                if isinstance(shard, ShardFailed)
                else shard.checkpointed_at_start,
                cost_usd=shard.cost_usd,
            )
            for shard in shard_items
        ],
        failed_state=record.get("failed_state"),
        error=record.get("error"),
        cause=record.get("cause"),
    )


def _contract_fields(item: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name in model.model_fields}


def _category_scores(answers: list[BenchmarkAnswer]) -> dict[str, CategoryScore]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for answer in answers:
        counts[answer.category][0] += answer.correct
        counts[answer.category][1] += 1
    return {category: CategoryScore(correct=c, total=t) for category, (c, t) in sorted(counts.items())}


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _usd(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.4f}"


def _failure_section(summary: RunSummary) -> list[str]:
    if summary.error is None:
        return []
    return [
        f"## Failed in {summary.failed_state or 'an unknown state'}: `{summary.error}`",
        "",
        "```",
        summary.cause or "(no cause recorded)",
        "```",
        "",
        "What the run produced before it failed stays in the bucket under its prefix.",
        "",
    ]


def _benchmark_section(summary: RunSummary, by_category: dict[str, dict[str, CategoryScore]]) -> list[str]:
    scores = {score.contestant: score for score in summary.scores}
    if not scores:
        return []
    total = next(iter(scores.values())).total
    lines = [
        f"## Benchmark: {total} held-out problems",
        "",
        "| contestant | model | accuracy | correct | gave an answer |",
        "|---|---|---:|---:|---:|",
    ]
    for score in summary.scores:
        lines.append(
            f"| {CONTESTANT_LABELS[score.contestant]} | `{score.model}` | {_percent(score.accuracy)} "
            f"| {score.correct}/{score.total} | {score.answered}/{score.total} |"
        )
    lines.append("")
    if "base" in scores and "fine_tuned" in scores:
        base, tuned = scores["base"], scores["fine_tuned"]
        delta = (tuned.accuracy - base.accuracy) * 100
        teacher = (
            f" The teacher scores {_percent(scores['teacher'].accuracy)}." if "teacher" in scores else ""
        )
        lines += [
            f"Fine-tuning changed the student's accuracy by **{delta:+.1f} points** "
            f"({_percent(base.accuracy)} → {_percent(tuned.accuracy)}).{teacher}",
            "",
        ]
    categories = sorted({category for per in by_category.values() for category in per})
    if not categories:
        return lines
    contestants = [score.contestant for score in summary.scores]
    lines += [
        "### By category",
        "",
        "| category | " + " | ".join(CONTESTANT_LABELS[c] for c in contestants) + " |",
        "|---|" + "---:|" * len(contestants),
    ]
    for category in categories:
        cells = []
        for contestant in contestants:
            cell = by_category.get(contestant, {}).get(category)
            cells.append(f"{_percent(cell.accuracy)} ({cell.correct}/{cell.total})" if cell else "–")
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _training_data_section(summary: RunSummary) -> list[str]:
    generation = summary.generation
    if not generation.shards_done:
        return []
    unreferenced = generation.problems - generation.verified - generation.rejected - generation.failed
    lines = [
        "## Training data",
        "",
        f"Teacher answers: {generation.verified} verified against the reference, {generation.rejected} wrong "
        f"(dropped), {unreferenced} without a reference, {generation.failed} without a usable answer.",
        "",
    ]
    if summary.dataset is not None:
        dataset = summary.dataset
        dropped = ", ".join(f"{reason} {count}" for reason, count in dataset.dropped.items()) or "none"
        training = ""
        if dataset.epochs is not None:
            usd = dataset.estimated_training_usd
            cost = f" ≈ ${usd:,.4f}" if usd is not None else ""
            training = f" × {dataset.epochs} epochs{cost}"
        lines += [
            f"- train: {dataset.train_examples} examples, {dataset.train_tokens:,} billed tokens{training}",
            f"- validation: {dataset.validation_examples} examples",
            f"- dropped: {dropped}",
        ]
        if dataset.card_key is not None:
            lines.append(
                f"- dataset card: `{dataset.card_key.rsplit('/', 1)[-1]}` (every drop, by reason and "
                "category; `dropped.jsonl` names each one)"
            )
        lines.append("")
    return lines


def _fine_tune_section(summary: RunSummary, curve: list[dict[str, str]]) -> list[str]:
    job = summary.fine_tune
    if job is None:
        return []
    tokens = job.billed_tokens or 0
    counted = "" if job.trained_tokens else " (the file's tokens x epochs: the provider reports none)"
    epochs = f" over {job.epochs} epochs" if job.epochs else ""
    lines = [
        "## Fine-tuning",
        "",
        f"- on {PROVIDER_TITLES.get(job.backend, job.backend)}: job `{job.job_id}`, status {job.status}",
        f"- base model `{job.base_model}` → `{job.fine_tuned_model or '–'}`",
        f"- billed tokens: {tokens:,}{epochs}{counted}",
    ]
    losses = [
        f"final training loss {job.training_loss:.3f}" if job.training_loss is not None else None,
        f"best {job.best_training_loss:.3f}" if job.best_training_loss is not None else None,
        f"final validation loss {job.validation_loss:.3f}" if job.validation_loss is not None else None,
    ]
    if any(losses):
        lines.append(f"- {', '.join(loss for loss in losses if loss)}")
    if job.metrics_key is not None:
        lines.append(f"- loss per step: `{job.metrics_key.rsplit('/', 1)[-1]}`")
    lines.append("")
    if curve:
        lines += ["| step | epoch | training loss | validation loss |", "|---:|---:|---:|---:|"]
        lines += [
            f"| {row['step']} | {row.get('epoch') or '–'} | {row.get('training_loss') or '–'} "
            f"| {row.get('validation_loss') or '–'} |"
            for row in _sampled(curve, CURVE_ROWS)
        ]
        lines.append("")
    return lines


CURVE_ROWS = 10
"""Rows of the loss curve the report shows: evenly spaced steps, always the first and the last."""


def _sampled(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    if len(rows) <= count:
        return rows
    picks = sorted({round(index * (len(rows) - 1) / (count - 1)) for index in range(count)})
    return [rows[index] for index in picks]


def _serving_section(summary: RunSummary) -> list[str]:
    serving = summary.serving
    if serving is None or serving.kind == "none":
        return []
    kind = {
        "on_demand_deployment": "an on-demand custom model deployment (billed per token, nothing while idle)",
        "provisioned_throughput": "Provisioned Throughput (billed by the hour while it exists)",
    }[serving.kind]
    if serving.kept:
        fate = "kept, because keep_deployment is set: delete it when you are done with it"
    elif serving.status == "released":
        fate = "deleted after the benchmark"
    else:
        fate = serving.status
    lines = ["## Serving", "", f"The fine-tuned model answered the benchmark through {kind}:", ""]
    lines.append(f"- `{serving.name or serving.resource}` ({serving.resource}): {fate}")
    if summary.serving_cost_usd is not None:
        lines.append(f"- cost: {_usd(summary.serving_cost_usd)}")
    return [*lines, ""]


def _cost_section(summary: RunSummary) -> list[str]:
    if not summary.costs.lines:
        return ["## Cost", "", "Nothing was spent: no model was called.", ""]
    lines = [
        f"## Cost at list prices (table of {summary.prices_as_of})",
        "",
        "| item | model | requests | input tokens | output tokens | trained tokens | USD |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for line in summary.costs.lines:
        usage = line.usage or Usage()
        lines.append(
            f"| {line.item} | `{line.model}` | {usage.requests:,} | {usage.input_tokens:,} | "
            f"{usage.output_tokens:,} | {line.trained_tokens or 0:,} | {_usd(line.usd)} |"
        )
    lines.append(f"| **total** | | | | | | **{_usd(summary.costs.total_usd)}** |")
    lines.append("")
    answered, lost = summary.answered, summary.paid_but_lost
    lines.append(f"Model requests answered: {answered.requests:,} ({_usd(answered.usd)}).")
    if lost.requests:
        lines.append(
            f"Paid but lost: {lost.requests:,} requests whose reply never arrived (timeouts, lost "
            f"connections, 5xx after the provider may have worked), counted at their worst case, "
            f"{_usd(lost.usd)}: the provider may have billed them in full and reports no usage for them, "
            "so the total is an upper bound."
        )
    lines.append("")
    if summary.estimate is not None:
        estimate = summary.estimate
        lines.append(
            f"Estimated before the run: {_usd(estimate.total_usd)} "
            f"(generation {_usd(estimate.generation_usd)}, "
            f"fine-tuning {_usd(estimate.fine_tuning_usd)}, benchmark {_usd(estimate.benchmark_usd)}; "
            f"assuming {estimate.assumptions})."
        )
    if summary.budget_usd is not None:
        lines.append(f"Budget: {_usd(summary.budget_usd)}.")
    storage = _storage_note(summary)
    if storage:
        lines += ["", storage]
    if summary.costs.unpriced:
        lines += ["", f"Not in the price table, so not in the total: {', '.join(summary.costs.unpriced)}."]
    return [*lines, ""]


def _storage_note(summary: RunSummary) -> str | None:
    """A kept custom model costs something every month: say how much, and how to stop it."""
    job = summary.fine_tune
    if job is None or job.fine_tuned_model is None:
        return None
    info = model_info(job.base_model)
    monthly = info.price.custom_model_storage_per_month if info is not None and info.price else None
    if monthly is None:
        return None
    arn = job.fine_tuned_model.split("/", 1)[-1]
    return (
        f"The fine-tuned model is kept: {PROVIDER_TITLES.get(job.backend, job.backend)} charges "
        f"{_usd(monthly)} a month to store it, until "
        f"you delete it (`aws bedrock delete-custom-model --model-identifier {arn}`)."
    )


def render_report(
    summary: RunSummary,
    by_category: dict[str, dict[str, CategoryScore]],
    curve: list[dict[str, str]] | None = None,
) -> str:
    """report.md: what a person reads first. Works for finished and failed runs alike."""
    header = [f"# synthtune run `{summary.run_id}`", ""]
    if summary.problem_set:
        header.append(f"Problem set: `s3://{summary.problem_set['bucket']}/{summary.problem_set['key']}`  ")
    header += [
        f"Started {summary.started_at} · finished {summary.finished_at} · status **{summary.status}**",
        "",
    ]
    sections = [
        header,
        _failure_section(summary),
        _benchmark_section(summary, by_category),
        _training_data_section(summary),
        _fine_tune_section(summary, curve or []),
        _serving_section(summary),
        _cost_section(summary),
    ]
    return "\n".join(line for section in sections for line in section)


def write_report(task: ReportInput, *, data: ArtifactStore, runs: RunStore) -> ReportOutput:
    run_id = task.run.run_id
    layout = RunLayout(run_id)
    finished_at = now_iso()
    runs.update(run_id, status="SUCCEEDED", stage="done", finished_at=finished_at)
    summary = summarise_run(run_id, runs.items(run_id))

    by_category: dict[str, dict[str, CategoryScore]] = {
        score.contestant: _category_scores(
            list(data.read_jsonl(layout.benchmark_answers(score.contestant), BenchmarkAnswer))
        )
        for score in task.scores
    }
    benchmark = {
        "run_id": run_id,
        "held_out_problems": task.benchmark.problem_count,
        "base_model": base_model_of(task.run.config.student_model),
        "scores": [
            {
                **score.model_dump(mode="json"),
                "by_category": {
                    category: {**cell.model_dump(), "accuracy": cell.accuracy}
                    for category, cell in by_category[score.contestant].items()
                },
                "answers_key": layout.benchmark_answers(score.contestant),
            }
            for score in task.scores
        ],
    }
    data.write_json(layout.benchmark, benchmark)
    curve = _training_curve(data, task.finetune)
    data.write_text(layout.report, render_report(summary, by_category, curve), "text/markdown; charset=utf-8")
    document = summary.model_dump(mode="json")
    document["artifacts"] = {
        "train": task.dataset.train_key,
        "validation": task.dataset.validation_key,
        "dataset_card": task.dataset.card_key,
        "training_metrics": task.finetune.metrics_key,
        "benchmark": layout.benchmark,
        "report": layout.report,
    }
    data.write_json(layout.summary, document)

    accuracy = {score.contestant: score.accuracy for score in task.scores}
    runs.update(run_id, accuracy=accuracy, cost_usd=summary.cost_usd)
    return ReportOutput(
        run_id=run_id,
        status="SUCCEEDED",
        summary=S3Location(bucket=data.bucket, key=layout.summary),
        report=S3Location(bucket=data.bucket, key=layout.report),
        accuracy=accuracy,
        cost_usd=summary.cost_usd,
    )


def _training_curve(data: ArtifactStore, job: FineTuneState) -> list[dict[str, str]]:
    if job.metrics_key is None:
        return []
    return list(csv.DictReader(io.StringIO(data.read_text(job.metrics_key))))
