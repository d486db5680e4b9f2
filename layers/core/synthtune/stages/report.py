"""Report: how a run ended, what it produced, what it cost, and the benchmark's verdict.

The run summary is computed from the run's DynamoDB items (see `synthtune.records.items`) by one pure
function, `summarise_run`, used for a finished run's report, by the CLI for a failed run, and by tests. What
the reports say is gathered once, as `ReportContents` (`report_contents`), from the summary, the benchmark's
answers, the loss curve and the dataset card; report.md (`render_report`), report.html
(`synthtune.stages.report_page`) and benchmark.json are drawn from it, so they agree. `synthtune report`
draws them again from a run's files. RecordFailure is `synthtune.stages.failure`.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthtune.contracts.config import Contestant
from synthtune.contracts.models import PROVIDER_TITLES
from synthtune.contracts.usage import CallCost, Usage, merge_usage
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
from synthtune.quality.knowledge import KNOWLEDGE_CATEGORIES, KNOWLEDGE_MEANINGS, KnowledgeCategory
from synthtune.records.artifacts import ArtifactNotFound, ArtifactStore
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
from synthtune.stages.assemble.card import DropCount, drop_counts
from synthtune.stages.benchmark import BenchmarkAnswer, HoldoutKnowledge
from synthtune.stages.generate import summarise_calls
from synthtune.verdict.comparison import COMPARED, PairedComparison, compare, points
from synthtune.verdict.statistics import wilson_interval

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

    @property
    def ci95(self) -> tuple[float, float]:
        """The accuracy's Wilson 95 % interval."""
        return wilson_interval(self.correct, self.total)


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
    simulated_models: list[str] = Field(
        default_factory=list,
        description="The run's models the project's emulator answered for (`synthtune run`'s default): "
        "their numbers show the pipeline working, not how good the real models are.",
    )


_GENERATION_ITEMS = {
    ("solve", False): "generation: teacher",
    ("solve", True): "generation: teacher (Batch API)",
    ("judge", False): "generation: judge",
    ("judge", True): "generation: judge (Batch API)",
    ("probe", False): "generation: student probe",
    ("probe", True): "generation: student probe (Batch API)",
}
HOLDOUT_PROBE = "held-out probe"
"""The cost item of the base student's probe of the held-out problems: `benchmark: base, held-out probe`."""


def _generation_item(purpose: str, batch: bool) -> str:
    """Generate's cost item for calls of `purpose` (a purpose this version does not know: by its name)."""
    known = _GENERATION_ITEMS.get((purpose, batch))
    return known or f"generation: {purpose}{' (Batch API)' if batch else ''}"


def _spend_item(spend: SpendRecord) -> str:
    """The cost table's item for requests no stage's results count: lost replies, answers a contestant
    paid for and has no score for yet (unfinished; discarded in older runs)."""
    if spend.spender == "generation":
        item = _generation_item(spend.purpose, False)
    elif spend.purpose == "probe":
        item = f"{spend.spender}, {HOLDOUT_PROBE}"
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
    judge_model: str | None = None,
) -> CostReport:
    """Every priced line of the run. The benchmark's judge calls are one line of their own ("benchmark:
    judge"), not part of the contestants' they graded — also where the judge is a contestant's own model (in
    runs from before the benchmark kept the judge's usage apart, that model's two are one line, which says
    so)."""
    lines = [
        CostLine(
            item=_generation_item(call.purpose, call.batch), model=call.model, usage=call.usage, usd=call.usd
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
    judging = []
    for score in scores:
        for model, recorded in sorted(score.usage.items()):
            item, usage = f"benchmark: {score.contestant}", recorded
            judged = score.judge_usage.get(model)
            if judged is not None:  # the judge's calls, kept apart by the benchmark
                judging.append({model: judged})
                usage = recorded - judged
                if not usage.requests:
                    continue
            elif judge_model is not None and model == judge_model != score.model:  # older runs
                judging.append({model: usage})
                continue
            elif model == judge_model == score.model and not score.judge_usage:
                item += " (and the judge's calls: the same model)"
            lines.append(CostLine(item=item, model=model, usage=usage, usd=inference_cost_usd(model, usage)))
    for score in scores:  # the held-out probe, the student's requests and the judge's verdicts
        for model, usage in sorted(score.probe_usage.items()):
            verdicts = " (judge)" if model != score.model else ""  # the student is the contestant
            lines.append(
                CostLine(
                    item=f"benchmark: {score.contestant}, {HOLDOUT_PROBE}{verdicts}",
                    model=model,
                    usage=usage,
                    usd=inference_cost_usd(model, usage),
                )
            )
    for model, usage in sorted(merge_usage(judging).items()):
        lines.append(
            CostLine(item="benchmark: judge", model=model, usage=usage, usd=inference_cost_usd(model, usage))
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
    costs = _cost_report(
        generation_calls,
        fine_tune,
        scores,
        serving_item,
        spend_records(items),
        ended_jobs,
        judge_model=(record.get("config") or {}).get("judge_model"),
    )
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
        simulated_models=list(record.get("simulated_models") or []),
    )


def _contract_fields(item: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name in model.model_fields}


def _category_scores(answers: Sequence[BenchmarkAnswer]) -> dict[str, CategoryScore]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for answer in answers:
        counts[answer.category][0] += answer.outcome == "correct"
        counts[answer.category][1] += 1
    return {category: CategoryScore(correct=c, total=t) for category, (c, t) in sorted(counts.items())}


class ContestantResult(BaseModel):
    """A contestant's score with the intervals the reports show."""

    model_config = ConfigDict(frozen=True)

    score: ContestantScore
    ci95: tuple[float, float] = Field(description="The accuracy's Wilson 95 % interval.")
    by_category: dict[str, CategoryScore]

    @property
    def label(self) -> str:
        return CONTESTANT_LABELS[self.score.contestant]


class KnowledgeScore(BaseModel):
    """A contestant's outcomes on the held-out problems of one knowledge category (what the base student
    knew of them, probed after the benchmark)."""

    model_config = ConfigDict(frozen=True)

    n: int = 0
    correct: int = 0
    wrong: int = 0
    abstained: int = 0
    no_answer: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def hallucination_rate(self) -> float | None:
        """Wrong among attempted (None when nothing was attempted)."""
        attempted = self.correct + self.wrong
        return self.wrong / attempted if attempted else None

    @property
    def abstention_rate(self) -> float | None:
        return self.abstained / self.n if self.n else None

    def document(self) -> dict[str, Any]:
        """benchmark.json's cell: the counts and the three rates."""
        return {
            **self.model_dump(),
            "accuracy": self.accuracy,
            "hallucination_rate": self.hallucination_rate,
            "abstention_rate": self.abstention_rate,
        }


def knowledge_scores(
    answers: Mapping[Contestant, Sequence[BenchmarkAnswer]], knowledge: Sequence[HoldoutKnowledge]
) -> dict[Contestant, dict[KnowledgeCategory, KnowledgeScore]]:
    """Each contestant's outcomes by the held-out problems' knowledge category, every category listed
    (n 0 where the probe found none); answers to a problem the probe has no line for are left out."""
    category_of = {line.problem_id: line.knowledge for line in knowledge}
    scores: dict[Contestant, dict[KnowledgeCategory, KnowledgeScore]] = {}
    for contestant, given in answers.items():
        counts: dict[KnowledgeCategory, Counter[str]] = {
            category: Counter() for category in KNOWLEDGE_CATEGORIES
        }
        for answer in given:
            category = category_of.get(answer.problem_id)
            if category is not None:
                counts[category]["n"] += 1
                counts[category][answer.outcome] += 1
        scores[contestant] = {
            category: KnowledgeScore(
                n=count["n"],
                correct=count["correct"],
                wrong=count["wrong"],
                abstained=count["abstained"],
                no_answer=count["no_answer"],
            )
            for category, count in counts.items()
        }
    return scores


class AnswerChange(BaseModel):
    """A held-out problem fine-tuning fixed (the base model's answer wrong, the fine-tuned one's right) or
    broke (the other way round): the two answers side by side."""

    model_config = ConfigDict(frozen=True)

    change: Literal["fixed", "broke"]
    base: BenchmarkAnswer
    fine_tuned: BenchmarkAnswer


class DatasetDrops(BaseModel):
    """What the dataset card says was left out of the fine-tuning files, and why."""

    model_config = ConfigDict(frozen=True)

    considered: int | None = None
    train_examples: int | None = None
    validation_examples: int | None = None
    dropped: list[DropCount]
    by_category: dict[str, dict[str, int]] = Field(default_factory=dict)

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> DatasetDrops | None:
        """From dataset_card.json as any version of Assemble wrote it (None if it holds no drops)."""
        try:
            dropped = [DropCount.model_validate(drop) for drop in card.get("dropped") or []]
            categories = {
                str(name): {
                    str(reason): int(count) for reason, count in (counts.get("dropped") or {}).items()
                }
                for name, counts in (card.get("categories") or {}).items()
                if isinstance(counts, dict)
            }
            return cls(
                considered=card.get("considered"),
                train_examples=card.get("train_examples"),
                validation_examples=card.get("validation_examples"),
                dropped=dropped,
                by_category=categories,
            )
        except (ValidationError, TypeError, ValueError, AttributeError):
            return None

    @classmethod
    def from_summary(cls, dataset: DatasetSummary) -> DatasetDrops:
        """From the run's record, when the card itself cannot be read: counts by reason only."""
        return cls(
            train_examples=dataset.train_examples,
            validation_examples=dataset.validation_examples,
            dropped=drop_counts(dataset.dropped),
        )


CHANGES_SHOWN = 100
"""Problems fine-tuning fixed (and broke) that the reports list; the answers files hold every one."""


class ReportContents(BaseModel):
    """Everything report.md, report.html and benchmark.json say, gathered once so that they agree."""

    model_config = ConfigDict(frozen=True)

    summary: RunSummary
    results: list[ContestantResult] = Field(default_factory=list)
    comparisons: list[PairedComparison] = Field(default_factory=list)
    changes: list[AnswerChange] = Field(
        default_factory=list, description="Fixed and broke, at most CHANGES_SHOWN of each."
    )
    fixed: int = Field(
        default=0, description="Problems the base model got wrong and the fine-tuned one right."
    )
    broke: int = Field(
        default=0, description="Problems the base model got right and the fine-tuned one wrong."
    )
    curve: list[dict[str, str]] = Field(default_factory=list, description="training_metrics.csv's rows.")
    drops: DatasetDrops | None = None
    held_out_knowledge: dict[KnowledgeCategory, int] = Field(
        default_factory=dict,
        description="The held-out problems by what the base student knew of them (empty: not probed).",
    )
    knowledge: dict[Contestant, dict[KnowledgeCategory, KnowledgeScore]] = Field(
        default_factory=dict, description="Each contestant's outcomes by the held-out knowledge category."
    )


def report_contents(
    summary: RunSummary,
    answers: Mapping[Contestant, Sequence[BenchmarkAnswer]] | None = None,
    curve: list[dict[str, str]] | None = None,
    card: Mapping[str, Any] | None = None,
    knowledge: Sequence[HoldoutKnowledge] | None = None,
) -> ReportContents:
    """`answers`: each contestant's benchmark answers (benchmark/<contestant>.jsonl); `curve`: the rows of
    training_metrics.csv; `card`: dataset_card.json; `knowledge`: benchmark/holdout_knowledge.jsonl. Any
    may be missing (a failed run, an old run, a run that did not probe)."""
    answers = answers or {}
    knowledge = knowledge or []
    results = [
        ContestantResult(
            score=score,
            ci95=wilson_interval(score.correct, score.total),
            by_category=_category_scores(answers.get(score.contestant, [])),
        )
        for score in summary.scores
    ]
    right = {
        contestant: {answer.problem_id: answer.outcome == "correct" for answer in given}
        for contestant, given in answers.items()
        if given
    }
    comparisons = [compare(a, b, right[a], right[b]) for a, b in COMPARED if a in right and b in right]
    fixed, broke = _answer_changes(answers.get("base", []), answers.get("fine_tuned", []))
    drops = DatasetDrops.from_card(card) if card is not None else None
    if drops is None and summary.dataset is not None:
        drops = DatasetDrops.from_summary(summary.dataset)
    return ReportContents(
        summary=summary,
        results=results,
        comparisons=comparisons,
        changes=[*fixed[:CHANGES_SHOWN], *broke[:CHANGES_SHOWN]],
        fixed=len(fixed),
        broke=len(broke),
        curve=curve or [],
        drops=drops,
        held_out_knowledge={
            category: count
            for category in KNOWLEDGE_CATEGORIES
            if (count := sum(line.knowledge == category for line in knowledge))
        },
        knowledge=knowledge_scores({c: a for c, a in answers.items() if a}, knowledge) if knowledge else {},
    )


def _answer_changes(
    base: Sequence[BenchmarkAnswer], fine_tuned: Sequence[BenchmarkAnswer]
) -> tuple[list[AnswerChange], list[AnswerChange]]:
    """The problems the two students disagree on, right against not right, in problem id order."""
    tuned = {answer.problem_id: answer for answer in fine_tuned}
    fixed: list[AnswerChange] = []
    broke: list[AnswerChange] = []
    for before in sorted(base, key=lambda answer: answer.problem_id):
        after = tuned.get(before.problem_id)
        if after is None or (before.outcome == "correct") == (after.outcome == "correct"):
            continue
        change = AnswerChange(
            change="fixed" if after.outcome == "correct" else "broke", base=before, fine_tuned=after
        )
        (fixed if change.change == "fixed" else broke).append(change)
    return fixed, broke


def benchmark_document(
    contents: ReportContents, *, held_out: int, base_model: str, answers_keys: Mapping[Contestant, str]
) -> dict[str, Any]:
    """benchmark.json: each contestant's score with its Wilson interval (and per category), and the
    comparisons that matter (fine-tuned against base, fine-tuned against teacher) with their tests; and,
    where the held-out problems were probed, `knowledge`: each contestant's n, accuracy, hallucination rate
    (wrong among attempted) and abstention rate by what the base student knew of the problems."""
    return {
        "run_id": contents.summary.run_id,
        "held_out_problems": held_out,
        "base_model": base_model,
        "scores": [
            {
                **result.score.model_dump(mode="json"),
                "ci95": list(result.ci95),
                "by_category": {
                    category: {**cell.model_dump(), "accuracy": cell.accuracy, "ci95": list(cell.ci95)}
                    for category, cell in result.by_category.items()
                },
                "answers_key": answers_keys.get(result.score.contestant),
            }
            for result in contents.results
        ],
        "comparisons": [comparison.model_dump(mode="json") for comparison in contents.comparisons],
        **(
            {
                "knowledge": {
                    contestant: {category: cell.document() for category, cell in cells.items()}
                    for contestant, cells in contents.knowledge.items()
                }
            }
            if contents.knowledge
            else {}
        ),
    }


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


def interval_text(ci95: tuple[float, float]) -> str:
    """A 95 % interval of an accuracy, in percent: 19.3–68.0%."""
    return f"{ci95[0] * 100:.1f}–{ci95[1] * 100:.1f}%"


SIMULATED_HEADLINE = "Simulated models."
SIMULATED_TEXT = (
    "The project's emulator answered for this run's models, not the models themselves: these numbers show "
    "the pipeline working, not how good the real models are."
)
"""What both reports say at the top when any of the run's models was simulated."""


def _simulated_banner(summary: RunSummary) -> list[str]:
    if not summary.simulated_models:
        return []
    models = ", ".join(f"`{model}`" for model in summary.simulated_models)
    return [f"> **{SIMULATED_HEADLINE}** {SIMULATED_TEXT} Simulated: {models}.", ""]


def _verdict_section(contents: ReportContents) -> list[str]:
    if not contents.comparisons:
        return []
    lines = ["## Verdict", ""]
    for comparison in contents.comparisons:
        lines.append(f"- {comparison.verdict}")
        if comparison.warning:
            lines.append(f"  - **Caution:** {comparison.warning}")
    lines += [
        "",
        "| comparison | problems | right only for the first | right only for the second | difference "
        "| 95 % CI | p (exact McNemar) | smallest detectable (80 % power) |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for comparison in contents.comparisons:
        detectable = comparison.min_detectable_difference
        smallest = "none at this size" if detectable is None else f"{points(detectable, signed=False)} points"
        lines.append(
            f"| {CONTESTANT_LABELS[comparison.a]} vs {CONTESTANT_LABELS[comparison.b]} | {comparison.n} "
            f"| {comparison.a_only} | {comparison.b_only} | {points(comparison.difference)} points "
            f"| {points(comparison.ci95[0])} to {points(comparison.ci95[1])} | {comparison.p_value:.3g} "
            f"| {smallest} |"
        )
    return [*lines, "", HOW_TO_READ, ""]


HOW_TO_READ = (
    "Accuracies come with Wilson 95 % intervals. Each comparison pairs the two contestants' answers "
    "problem by problem: the difference has Newcombe's 95 % interval for paired proportions, the p-value "
    "is the exact McNemar test on the problems only one of the two got right, and the smallest detectable "
    "difference is the one this many problems would show with 80 % power (Connor's approximation). "
    "p < 0.05 calls one better; otherwise the two are not distinguishable at this holdout size."
)


def _benchmark_section(contents: ReportContents) -> list[str]:
    results = contents.results
    if not results:
        return []
    total = results[0].score.total
    lines = [
        f"## Benchmark: {total} held-out problems",
        "",
        "| contestant | model | accuracy | 95 % CI | correct | gave an answer | abstained | no answer "
        "| wrong among attempted |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        score = result.score
        hallucination = "–" if score.hallucination_rate is None else _percent(score.hallucination_rate)
        lines.append(
            f"| {result.label} | `{score.model}` | {_percent(score.accuracy)} | {interval_text(result.ci95)} "
            f"| {score.correct}/{score.total} | {score.answered}/{score.total} | {score.abstained} "
            f"| {score.no_answer} | {hallucination} |"
        )
    lines.append("")
    categories = sorted({category for result in results for category in result.by_category})
    if categories:
        lines += [
            "### By category",
            "",
            "| category | " + " | ".join(result.label for result in results) + " |",
            "|---|" + "---:|" * len(results),
        ]
        for category in categories:
            cells = []
            for result in results:
                cell = result.by_category.get(category)
                cells.append(
                    f"{_percent(cell.accuracy)} ({cell.correct}/{cell.total}; {interval_text(cell.ci95)})"
                    if cell
                    else "–"
                )
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


KNOWLEDGE_TITLE = "Where fine-tuning helped, and where it taught guessing"
KNOWLEDGE_INTRO = (
    "Each held-out problem is classified by what the base student knew of it, probed after the benchmark "
    "for this analysis only (Gekhman et al.'s SliCK categories). A student that learned from examples it "
    "could not know answers more of the problems it does not know, and more of them wrongly: a rising "
    "hallucination rate (wrong among attempted) on weakly_known and unknown problems is guessing it was "
    "taught; an abstention there is the honest answer."
)
"""What both reports say above the table of outcomes by knowledge category."""


def _rate(value: float | None) -> str:
    return "–" if value is None else _percent(value)


def knowledge_rows(
    contents: ReportContents,
) -> list[tuple[KnowledgeCategory, ContestantResult, KnowledgeScore]]:
    """The table's rows, by knowledge category then contestant (report.md's and report.html's)."""
    return [
        (category, result, cells[category])
        for category in KNOWLEDGE_CATEGORIES
        if contents.held_out_knowledge.get(category)
        for result in contents.results
        if (cells := contents.knowledge.get(result.score.contestant)) is not None and cells[category].n
    ]


def _knowledge_section(contents: ReportContents) -> list[str]:
    rows = knowledge_rows(contents)
    if not rows:
        return []
    counts = ", ".join(
        f"{category} {count}" for category, count in contents.held_out_knowledge.items() if count
    )
    lines = [
        f"## {KNOWLEDGE_TITLE}",
        "",
        KNOWLEDGE_INTRO,
        "",
        f"Held-out problems by what the base student knew: {counts}.",
        "",
        "| knowledge (base student) | contestant | problems | accuracy | wrong among attempted | abstained |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for category, result, cell in rows:
        lines.append(
            f"| {category} | {result.label} | {cell.n} | {_rate(cell.accuracy)} "
            f"| {_rate(cell.hallucination_rate)} | {_rate(cell.abstention_rate)} |"
        )
    lines.append("")
    lines += [f"- {category}: {KNOWLEDGE_MEANINGS[category]}" for category in contents.held_out_knowledge]
    return [*lines, ""]


def _changes_section(contents: ReportContents) -> list[str]:
    if not contents.fixed and not contents.broke:
        return []
    lines = ["## What fine-tuning changed", ""]
    for change, count in (("fixed", contents.fixed), ("broke", contents.broke)):
        ids = [f"`{item.base.problem_id}`" for item in contents.changes if item.change == change]
        more = f" and {count - len(ids)} more" if count > len(ids) else ""
        what = (
            "the base model got wrong and the fine-tuned student right"
            if change == "fixed"
            else "the base model got right and the fine-tuned student did not"
        )
        lines.append(f"- {change} {count} ({what}){': ' + ', '.join(ids) + more if ids else ''}")
    return [*lines, "", "report.html shows each one's answers side by side.", ""]


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
        f"best {job.best_validation_loss:.3f}" if job.best_validation_loss is not None else None,
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
            f"fine-tuning {_usd(estimate.fine_tuning_usd)}, benchmark {_usd(estimate.benchmark_usd)}"
            f"{f', probing the student {_usd(estimate.probe_usd)}' if estimate.probe_usd else ''}; "
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


def render_report(contents: ReportContents) -> str:
    """report.md: what a person reads first. Works for finished and failed runs alike."""
    summary = contents.summary
    header = [f"# synthtune run `{summary.run_id}`", ""]
    if summary.problem_set:
        header.append(f"Problem set: `s3://{summary.problem_set['bucket']}/{summary.problem_set['key']}`  ")
    header += [
        f"Started {summary.started_at} · finished {summary.finished_at} · status **{summary.status}**",
        "",
    ]
    sections = [
        header,
        _simulated_banner(summary),
        _failure_section(summary),
        _verdict_section(contents),
        _benchmark_section(contents),
        _knowledge_section(contents),
        _changes_section(contents),
        _training_data_section(summary),
        _fine_tune_section(summary, contents.curve),
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

    answers: dict[Contestant, list[BenchmarkAnswer]] = {
        score.contestant: list(data.read_jsonl(layout.benchmark_answers(score.contestant), BenchmarkAnswer))
        for score in task.scores
    }
    contents = report_contents(
        summary,
        answers,
        _training_curve(data, task.finetune),
        _dataset_card(data, task.dataset),
        _holdout_knowledge(data, layout),
    )
    benchmark = benchmark_document(
        contents,
        held_out=task.benchmark.problem_count,
        base_model=base_model_of(task.run.config.student_model),
        answers_keys={contestant: layout.benchmark_answers(contestant) for contestant in answers},
    )
    data.write_json(layout.benchmark, benchmark)
    data.write_text(layout.report, render_report(contents), "text/markdown; charset=utf-8")
    from synthtune.stages.report_page import render_report_html  # it draws on this module's contents

    data.write_text(layout.report_html, render_report_html(contents), "text/html; charset=utf-8")
    document = summary.model_dump(mode="json")
    document["artifacts"] = {
        "train": task.dataset.train_key,
        "validation": task.dataset.validation_key,
        "dataset_card": task.dataset.card_key,
        "training_metrics": task.finetune.metrics_key,
        "benchmark": layout.benchmark,
        "report": layout.report,
        "report_html": layout.report_html,
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
    return read_training_curve(data.read_text(job.metrics_key))


def read_training_curve(text: str) -> list[dict[str, str]]:
    """training_metrics.csv's rows: step, epoch, training_loss, validation_loss (empty where none)."""
    return list(csv.DictReader(io.StringIO(text)))


def _holdout_knowledge(data: ArtifactStore, layout: RunLayout) -> list[HoldoutKnowledge]:
    """holdout_knowledge.jsonl, if the base contestant probed the held-out problems."""
    if not data.exists(layout.holdout_knowledge):
        return []
    return list(data.read_jsonl(layout.holdout_knowledge, HoldoutKnowledge))


def _dataset_card(data: ArtifactStore, dataset: DatasetSummary) -> dict[str, Any] | None:
    """dataset_card.json, if Assemble wrote one (the report falls back on the run's counts)."""
    if dataset.card_key is None:
        return None
    try:
        card = json.loads(data.read_text(dataset.card_key))
    except (ArtifactNotFound, ValueError):
        return None
    return card if isinstance(card, dict) else None
