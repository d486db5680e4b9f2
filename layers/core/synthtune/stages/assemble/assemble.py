"""Assemble: the shards' answers become the fine-tuning files, keeping only what deserves training.

One pass over the shards' answer files, in shard order. Each answer goes through the gates in turn and
either becomes an example or is logged, once, under the first gate it fails:

1. per answer (`gates.answer_gate`): the teacher answered, the answer is verified (or, without a
   reference, allowed and agreed on), it neither refuses nor hedges, it was not cut off, it reasons;
1b. what the student knows (`knowledge`): `dataset.knowledge_policy` drops an `unknown` example or
   teaches an abstention in its place (held back to the end of the pass, then capped at
   `dataset.max_abstention_share` of its split);
2. length: the example fits the student's per-example token limit;
3. decontamination: the question shares no long word sequence with a held-out problem;
4. duplicates: the question is neither the same nor nearly the same as an earlier example's.

The examples are written to the run's own chat file (dataset/train.jsonl), to the student's provider's
fine-tuning file (OpenAI: that same file; Bedrock: dataset/bedrock/, bedrock-conversation-2024) and to the
configured exports, while every line of the fine-tuning file is run through its provider's format checks.
An example that breaks a rule its provider would fail the whole job for is dropped (`format_rule`).
Memory stays constant in the number of examples: S3 objects stream in and out (multipart), the duplicate
index lives in a SQLite file in /tmp, and only the held-out questions, the counts and one part buffer per
output file are held in memory.

A dataset that fails the checks, or keeps fewer (or more) examples than the student's provider takes,
fails the run before anything is uploaded for fine-tuning, but its files, card and drop log are still
written for inspection.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from synthtune.contracts.config import DatasetConfig, RunConfig
from synthtune.contracts.errors import BudgetExceeded, ErrorName, GenerationIncomplete, InvalidDataset
from synthtune.contracts.examples import ChatExample
from synthtune.contracts.problems import Problem
from synthtune.contracts.workflow import AssembleInput, DatasetSummary, ShardRef
from synthtune.money.catalog import CATALOG_AS_OF, training_example_limit
from synthtune.money.estimate import epochs_for, fine_tuning_usd
from synthtune.prompts import abstention_solution, solver_system_prompt
from synthtune.providers.ports import DatasetFormat, FormatValidator
from synthtune.quality.contamination import ContaminationIndex
from synthtune.quality.dedup import DuplicateIndex
from synthtune.quality.format_report import describe_issues
from synthtune.records.artifacts import ArtifactStore, JsonlWriter
from synthtune.records.items import DATASET_SK, ShardFailed
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.assemble.card import (
    CategoryCounts,
    DatasetCard,
    DatasetFiles,
    TrainingEstimate,
    drop_counts,
    render_card,
)
from synthtune.stages.assemble.examples import training_example
from synthtune.stages.assemble.exports import exporter
from synthtune.stages.assemble.gates import Drop, answer_gate
from synthtune.stages.assemble.knowledge import (
    KnowledgeTally,
    abstention_rank,
    abstentions_allowed,
    treatment,
)
from synthtune.stages.generate import GeneratedAnswer, failed_shards


def max_example_tokens(config: RunConfig) -> int:
    """The configured limit, never above the student's own."""
    limit = training_example_limit(config.student_model)
    configured = config.dataset.max_example_tokens
    return min(configured, limit) if configured is not None else limit


def _missing_shards(
    data: ArtifactStore, runs: RunStore, layout: RunLayout, manifest_key: str, config: RunConfig
) -> tuple[list[ShardRef], list[ShardRef]]:
    """The shards that wrote answers, and those that failed for good.

    Up to `generation.tolerated_failure_percent` of the shards may be missing (Step Functions'
    threshold on the Map, enforced here too so the rule holds wherever the Map ran); a shard stopped
    by the budget stops the run whatever the threshold.
    """
    shards = [ShardRef.model_validate(entry) for entry in data.read_json(manifest_key)]
    written = data.keys(layout.shards_prefix)
    missing = [shard for shard in shards if layout.shard_output(shard.index) not in written]
    if missing:
        failures = {item.index: item for item in runs.shards(layout.run_id) if isinstance(item, ShardFailed)}
        budget_stops = [
            failures[shard.index].message
            for shard in missing
            if shard.index in failures and failures[shard.index].error == ErrorName.BudgetExceeded
        ]
        if budget_stops:
            raise BudgetExceeded(budget_stops[0])
        tolerated = config.generation.tolerated_failure_percent
        if len(missing) * 100 > tolerated * len(shards):
            causes = failed_shards(runs, layout.run_id) or "no shard recorded an error"
            numbers = ", ".join(str(shard.index) for shard in missing)
            raise GenerationIncomplete(
                f"{len(missing)} of {len(shards)} shards have no answers (shards {numbers}), more than "
                f"generation.tolerated_failure_percent ({tolerated:g}%) allows:\n{causes}"
            )
    present = [shard for shard in shards if shard not in missing]
    return present, missing


class _Ledger:
    """Counts per category and reason, and the drop log's lines."""

    def __init__(self, log: JsonlWriter) -> None:
        self._log = log
        self.categories: dict[str, CategoryCounts] = defaultdict(CategoryCounts)
        self.dropped: Counter[str] = Counter()

    def consider(self, category: str) -> None:
        self.categories[category].considered += 1

    def drop(self, problem_id: str, split: str, category: str, drop: Drop) -> None:
        self.dropped[drop.reason] += 1
        counts = self.categories[category].dropped
        counts[drop.reason] = counts.get(drop.reason, 0) + 1
        self._log.write(
            {
                "problem_id": problem_id,
                "split": split,
                "category": category,
                "reason": drop.reason,
                "detail": drop.detail,
            }
        )


class _Output:
    """One split's files: the run's own chat file, the student's fine-tuning file in its provider's format
    (checked line by line as it is written), and the exports."""

    def __init__(
        self,
        stack: ExitStack,
        data: ArtifactStore,
        layout: RunLayout,
        split: str,
        config: RunConfig,
        formats: Callable[[str], DatasetFormat],
    ):
        skip_empty = split != "train"
        student = formats(config.student_provider)
        self.own_key = layout.train if split == "train" else layout.validation
        self.file = stack.enter_context(data.jsonl_writer(self.own_key, skip_empty=skip_empty))
        # The student's provider reads either the run's own file or a copy in its own folder.
        folders = list(
            dict.fromkeys([*config.dataset.exports, *([student.folder] if student.folder else [])])
        )
        self.export_keys = {folder: layout.export(folder, split) for folder in folders}
        self.exports = {
            folder: (
                stack.enter_context(data.jsonl_writer(self.export_keys[folder], skip_empty=skip_empty)),
                exporter(folder, formats),  # type: ignore[arg-type]
            )
            for folder in folders
        }
        self.key = self.export_keys[student.folder] if student.folder else self.own_key
        self._record = student.record
        self._unfit = student.unfit
        self.check: FormatValidator = student.validator(
            self.key, config.student_model, max_example_tokens(config)
        )
        self.check.check_file_name(self.key)

    def unfit(self, example: ChatExample) -> str | None:
        return self._unfit(example)

    def write(self, example: ChatExample, counted: tuple[int, int]) -> None:
        # The format checks read back exactly the record the fine-tuning file gets (tokens counted once,
        # by the gate).
        record = self._record(example)
        self.check.check(self.file.count + 1, json.loads(json.dumps(record)), counted=counted)
        self.file.write_raw(example.model_dump_json().encode())
        for writer, to_record in self.exports.values():
            writer.write(to_record(example))


class _Gatekeeper:
    """Gates 2-4, after the per-answer ones; remembers each kept question for the duplicate gate."""

    def __init__(
        self,
        config: RunConfig,
        holdout: ContaminationIndex,
        duplicates: DuplicateIndex,
        output: _Output,
    ) -> None:
        self._config = config
        self._limit = max_example_tokens(config)
        self._holdout = holdout
        self._duplicates = duplicates
        self._output = output
        self._system = solver_system_prompt(config.dataset.abstains)

    def judge(self, answer: GeneratedAnswer) -> Judged | Drop:
        """The training example, or the first gate it fails."""
        drop = answer_gate(answer, self._config.dataset)
        if drop is not None:
            return drop
        treated = treatment(answer, self._config.dataset)
        if isinstance(treated, Drop):
            return treated
        abstains = treated == "abstain"
        example = training_example(
            answer, system=self._system, target=abstention_solution() if abstains else None
        )
        unfit = self._output.unfit(example)
        if unfit is not None:
            return Drop("format_rule", unfit)
        counted = self._output.check.count_tokens([message.model_dump() for message in example.messages])
        tokens = counted[0]
        if tokens > self._limit:
            return Drop("too_long", f"{tokens:,} tokens, limit {self._limit:,}")
        contamination = self._holdout.match(answer.question)
        if contamination is not None:
            return Drop(
                "contaminated",
                f"shares {contamination.ngram!r} with held-out problem {contamination.holdout_id}",
            )
        duplicate = self._duplicates.check_and_add(answer.problem_id, answer.question)
        if duplicate is not None:
            return Drop(duplicate.kind, f"of {duplicate.of} (similarity {duplicate.similarity:.2f})")
        return Judged(example, counted, abstains)


@dataclass(frozen=True)
class Judged:
    """An answer that passed every gate: its example, (tokens, assistant tokens), and whether the example
    is an abstention written in place of the teacher's answer."""

    example: ChatExample
    counted: tuple[int, int]
    abstention: bool


def _answers(data: ArtifactStore, layout: RunLayout, shards: list[ShardRef]) -> Iterator[GeneratedAnswer]:
    for shard in shards:
        yield from data.read_jsonl(layout.shard_output(shard.index), GeneratedAnswer)


def _write_examples(
    answers: Iterator[GeneratedAnswer],
    gatekeeper: _Gatekeeper,
    outputs: dict[str, _Output],
    ledger: _Ledger,
    gates: DatasetConfig,
) -> KnowledgeTally:
    """Every answer through the gates, in order, into its split's files or the drop log; the abstentions
    last, once each split's size, and so their cap, is known."""
    tally = KnowledgeTally(gates)
    abstentions: dict[str, list[tuple[bytes, GeneratedAnswer, Judged]]] = {"train": [], "validation": []}

    def keep(answer: GeneratedAnswer, split: str, judged: Judged) -> None:
        outputs[split].write(judged.example, judged.counted)
        counts = ledger.categories[answer.category]
        if split == "validation":
            counts.validation += 1
        else:
            counts.train += 1
        tally.record(answer, "abstained" if judged.abstention else "kept")

    for answer in answers:
        ledger.consider(answer.category)
        verdict = gatekeeper.judge(answer)
        if isinstance(verdict, Drop):
            ledger.drop(answer.problem_id, answer.split, answer.category, verdict)
            if answer.knowledge is not None:
                tally.record(answer, "dropped")
            continue
        split = "validation" if answer.split == "validation" else "train"
        if verdict.abstention:
            abstentions[split].append((abstention_rank(answer.problem_id), answer, verdict))
        else:
            keep(answer, split, verdict)

    for split, candidates in abstentions.items():
        candidates.sort(key=lambda candidate: candidate[0])
        taught = outputs[split].file.count
        allowed = abstentions_allowed(gates.max_abstention_share, taught, len(candidates))
        for _, answer, judged in candidates[:allowed]:
            keep(answer, split, judged)
        for _, answer, _ in candidates[allowed:]:
            assert answer.knowledge is not None
            detail = f"{answer.knowledge.describe()}; past dataset.max_abstention_share"
            ledger.drop(answer.problem_id, answer.split, answer.category, Drop("student_unknown", detail))
            tally.record(answer, "dropped")
    return tally


def assemble_dataset(
    task: AssembleInput,
    *,
    data: ArtifactStore,
    runs: RunStore,
    formats: Callable[[str], DatasetFormat],
    workdir: Path | None = None,
) -> DatasetSummary:
    """Build the dataset, its card and its drop log; InvalidDataset after writing them if it is unfit."""
    layout = RunLayout(task.run.run_id)
    config = task.run.config
    gates = config.dataset
    present, missing = _missing_shards(data, runs, layout, task.generation.manifest_key, config)
    holdout = ContaminationIndex(
        ((problem.id, problem.question) for problem in data.read_jsonl(layout.holdout, Problem)),
        n=gates.contamination_ngram,
    )

    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=workdir, prefix="assemble-")))
        duplicates = stack.enter_context(
            DuplicateIndex(directory, near_threshold=gates.near_duplicate_threshold)
        )
        ledger = _Ledger(stack.enter_context(data.jsonl_writer(layout.dropped)))
        outputs = {
            split: _Output(stack, data, layout, split, config, formats) for split in ("train", "validation")
        }

        for shard in missing:
            for problem in data.read_jsonl(layout.shard_input(shard.index), Problem):
                ledger.consider(problem.category)
                ledger.drop(problem.id, problem.split or "train", problem.category, Drop("shard_failed"))

        gatekeeper = _Gatekeeper(config, holdout, duplicates, outputs["train"])
        tally = _write_examples(_answers(data, layout, present), gatekeeper, outputs, ledger, gates)

    train, validation = outputs["train"], outputs["validation"]
    student_format = formats(config.student_provider)
    reports = [train.check.report()] + ([validation.check.report()] if validation.file.count else [])
    epochs = epochs_for(config.fine_tune, train.file.count, config.student_model)
    billed = reports[0].billed_tokens
    estimate = TrainingEstimate(
        model=config.student_model,
        examples=train.file.count,
        epochs=epochs,
        billed_tokens_per_epoch=billed,
        billed_tokens=billed * epochs,
        estimated_usd=fine_tuning_usd(config.student_model, billed, epochs),
        prices_as_of=CATALOG_AS_OF.isoformat(),
    )
    card = DatasetCard(
        run_id=layout.run_id,
        problem_set=data.uri(task.run.problem_set.key),
        teacher_model=config.teacher_model,
        student_model=config.student_model,
        considered=sum(counts.considered for counts in ledger.categories.values()),
        train_examples=train.file.count,
        validation_examples=validation.file.count,
        dropped=drop_counts(dict(ledger.dropped)),
        categories=dict(ledger.categories),
        knowledge=tally.summary({"train": train.file.count, "validation": validation.file.count}),
        gates=gates,
        max_example_tokens=max_example_tokens(config),
        holdout_problems=holdout.size,
        format_checks=reports,
        training=estimate,
        files=DatasetFiles(
            train=train.own_key,
            validation=validation.own_key if validation.file.count else None,
            dropped=layout.dropped,
            exports={
                export: [train.export_keys[export]]
                + ([validation.export_keys[export]] if validation.file.count else [])
                for export in gates.exports
            },
            fine_tuning_format=student_format.name,
            fine_tuning=[train.key] + ([validation.key] if validation.file.count else []),
        ),
    )
    data.write_json(layout.dataset_card, card.model_dump(mode="json"))
    data.write_text(layout.dataset_card_markdown, render_card(card), "text/markdown; charset=utf-8")

    summary = DatasetSummary(
        train_key=train.key,
        validation_key=validation.key if validation.file.count else None,
        format=student_format.name,
        train_examples=train.file.count,
        validation_examples=validation.file.count,
        train_tokens=billed,
        dropped=dict(sorted(ledger.dropped.items())),
        epochs=epochs,
        estimated_training_usd=estimate.estimated_usd,
        card_key=layout.dataset_card,
    )
    runs.put(task.run.run_id, DATASET_SK, summary)
    _refuse_unfit(card, student_format.example_bounds(config.student_model))
    runs.update(
        task.run.run_id,
        stage="fine_tune",
        train_examples=train.file.count,
        validation_examples=validation.file.count,
    )
    return summary


def _refuse_unfit(card: DatasetCard, bounds: tuple[int, int | None]) -> None:
    """InvalidDataset naming what is wrong, before any of it is uploaded for fine-tuning."""
    failed = [report for report in card.format_checks if not report.valid]
    if failed:
        raise InvalidDataset(
            f"the assembled dataset fails the {card.files.fine_tuning_format} format checks:\n"
            + "\n".join(describe_issues(report) for report in failed)
        )
    fewest, most = bounds
    if card.train_examples < fewest:
        reasons = ", ".join(f"{drop.count} {drop.reason}" for drop in card.dropped) or "none"
        raise InvalidDataset(
            f"only {card.train_examples} training examples survived (fine-tuning {card.student_model} needs "
            f"at least {fewest}); dropped: {reasons}; see {card.files.dropped}"
        )
    examples = card.train_examples + card.validation_examples
    if most is not None and examples > most:
        raise InvalidDataset(
            f"{examples:,} examples: fine-tuning {card.student_model} takes at most {most:,}; hold more "
            "problems out, or split the problem set into runs"
        )
