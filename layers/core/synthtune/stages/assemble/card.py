"""The dataset card: what went into the fine-tuning files, what was left out and why, what it will cost.

Written beside the files as `dataset_card.json` (for programs) and `dataset_card.md` (for people). It
accounts for every problem sent to the teacher: each one is a train or validation example or is counted
under exactly one drop reason, and `dropped.jsonl` names each dropped problem with its evidence.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.config import DatasetConfig
from synthtune.quality.format_report import FormatReport, TokenHistogram, describe_tokens
from synthtune.stages.assemble.gates import DROP_REASONS
from synthtune.stages.assemble.knowledge import KnowledgeSummary, render_knowledge


class CategoryCounts(BaseModel):
    considered: int = 0
    train: int = 0
    validation: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)


class DropCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    count: int
    meaning: str


class TrainingEstimate(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    examples: int
    epochs: int
    billed_tokens_per_epoch: int
    billed_tokens: int
    estimated_usd: float | None = Field(description="At the catalog's list price; None when unpriced.")
    prices_as_of: str


class DatasetFiles(BaseModel):
    model_config = ConfigDict(frozen=True)

    train: str
    validation: str | None
    dropped: str
    exports: dict[str, list[str]] = Field(default_factory=dict)
    fine_tuning_format: str = Field(default="openai-chat", description="The student's provider's format.")
    fine_tuning: list[str] = Field(
        default_factory=list, description="The files the fine-tuning job reads, in that format."
    )


class DatasetCard(BaseModel):
    run_id: str
    problem_set: str
    teacher_model: str
    student_model: str
    considered: int = Field(description="Problems sent to the teacher (train and validation splits).")
    train_examples: int
    validation_examples: int
    dropped: list[DropCount]
    categories: dict[str, CategoryCounts]
    knowledge: KnowledgeSummary | None = Field(
        default=None, description="What the base student knew, by category, split and knowledge category."
    )
    gates: DatasetConfig
    max_example_tokens: int
    holdout_problems: int = Field(description="Held-out problems the questions were decontaminated against.")
    format_checks: list[FormatReport]
    training: TrainingEstimate
    files: DatasetFiles

    @property
    def dropped_total(self) -> int:
        return sum(drop.count for drop in self.dropped)

    @property
    def accounted(self) -> bool:
        """Every problem considered is an example or a counted drop."""
        return self.considered == self.train_examples + self.validation_examples + self.dropped_total


def drop_counts(dropped: dict[str, int]) -> list[DropCount]:
    return [
        DropCount(reason=reason, count=count, meaning=DROP_REASONS.get(reason, ""))
        for reason, count in sorted(dropped.items(), key=lambda item: (-item[1], item[0]))
    ]


def _histogram_rows(histogram: TokenHistogram) -> list[str]:
    rows = ["| tokens up to | examples |", "|---:|---:|"]
    lower = 0
    for entry in histogram.bins:
        if entry.examples:
            upper = f"{entry.up_to:,}" if entry.up_to is not None else "more"
            rows.append(f"| {upper} (from {lower + 1:,}) | {entry.examples:,} |")
        lower = entry.up_to or lower
    return rows


def render_card(card: DatasetCard) -> str:
    """dataset_card.md."""
    lines = [
        f"# Dataset card: {card.run_id}",
        "",
        f"Distilled from **{card.teacher_model}** for **{card.student_model}**, from `{card.problem_set}`.",
        "",
        "| | examples |",
        "|---|---:|",
        f"| problems sent to the teacher | {card.considered:,} |",
        f"| training examples | {card.train_examples:,} |",
        f"| validation examples | {card.validation_examples:,} |",
        f"| dropped | {card.dropped_total:,} |",
        "",
        "Every problem sent to the teacher is an example or one drop below; "
        f"`{card.files.dropped.rsplit('/', 1)[-1]}` lists each dropped problem with its evidence.",
        "",
        "## Dropped, by reason",
        "",
    ]
    if card.dropped:
        lines += ["| reason | examples | meaning |", "|---|---:|---|"]
        lines += [f"| `{drop.reason}` | {drop.count:,} | {drop.meaning} |" for drop in card.dropped]
    else:
        lines.append("Nothing was dropped.")
    reasons = [drop.reason for drop in card.dropped]
    lines += [
        "",
        "## By category",
        "",
        "| category | considered | train | validation | dropped |" + "".join(f" `{r}` |" for r in reasons),
        "|---|---:|---:|---:|---:|" + "---:|" * len(reasons),
    ]
    for name, counts in sorted(card.categories.items()):
        dropped = sum(counts.dropped.values())
        by_reason = "".join(f" {counts.dropped.get(reason, 0):,} |" for reason in reasons)
        lines.append(
            f"| {name} | {counts.considered:,} | {counts.train:,} | {counts.validation:,} | {dropped:,} |"
            + by_reason
        )
    if card.knowledge is not None:
        lines += ["", *render_knowledge(card.knowledge)]
    training = card.training
    usd = (
        f"${training.estimated_usd:,.4f}"
        if training.estimated_usd is not None
        else "unknown (unpriced model)"
    )
    lines += [
        "",
        "## Training cost",
        "",
        f"{training.examples:,} examples, {training.billed_tokens_per_epoch:,} billed tokens per epoch × "
        f"{training.epochs} epochs = {training.billed_tokens:,} tokens: **{usd}** for {training.model} at "
        f"list prices as of {training.prices_as_of}.",
        "",
        f"## Format checks ({card.files.fine_tuning_format}: how {card.student_model} is fine-tuned)",
        "",
    ]
    for report in card.format_checks:
        name = report.file.rsplit("/", 1)[-1]
        verdict = "passed" if report.valid else f"**failed** ({sum(report.issue_counts.values()):,} problems)"
        tokens = report.tokens
        lines += [
            f"### {name}: {verdict}",
            "",
            f"{report.examples:,} examples; tokens per example: {describe_tokens(tokens)} "
            f"(limit {card.max_example_tokens:,}); {report.billed_tokens:,} billed tokens per epoch.",
            "",
            *_histogram_rows(tokens),
            "",
        ]
        lines += [f"- line {issue.line}: {issue.message}" for issue in report.issues]
        if report.issues:
            lines.append("")
    gates = card.gates
    lines += [
        "## Gates",
        "",
        f"- keep answers without a reference: {'yes' if gates.keep_unreferenced else 'no'}"
        + (f", when at least {gates.min_agreement:.0%} of samples agree" if gates.min_agreement else ""),
        "- near-duplicates: "
        + (
            f"dropped at estimated similarity ≥ {gates.near_duplicate_threshold:g}"
            if gates.near_duplicate_threshold is not None
            else "kept (exact duplicates dropped)"
        ),
        f"- decontamination: {gates.contamination_ngram}-word overlap with any of {card.holdout_problems:,} "
        "held-out problems",
        f"- refusals dropped; hedging {'dropped' if gates.drop_hedging else 'kept'}",
        f"- longest example: {card.max_example_tokens:,} tokens",
        "",
        "## Files",
        "",
        f"- `{card.files.train}`",
    ]
    if card.files.validation:
        lines.append(f"- `{card.files.validation}`")
    lines.append(f"- `{card.files.dropped}`")
    for export, keys in card.files.exports.items():
        lines += [f"- `{key}` ({export})" for key in keys]
    lines += [
        f"- `{key}` (read by the fine-tuning job)"
        for key in card.files.fine_tuning
        if key not in (card.files.train, card.files.validation)
    ]
    return "\n".join(lines) + "\n"
