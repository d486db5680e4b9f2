"""Where a run keeps its data in S3. The one place object keys are spelled out."""

from __future__ import annotations

from dataclasses import dataclass

PROBLEM_SET_PREFIX = "problem-sets/"


@dataclass(frozen=True)
class RunLayout:
    run_id: str

    @property
    def prefix(self) -> str:
        return f"runs/{self.run_id}/"

    @property
    def config(self) -> str:
        return f"{self.prefix}config.json"

    @property
    def shards_prefix(self) -> str:
        return f"{self.prefix}shards/"

    @property
    def manifest(self) -> str:
        return f"{self.shards_prefix}manifest.json"

    def shard_input(self, index: int) -> str:
        return f"{self.shards_prefix}{index:05d}.problems.jsonl"

    def shard_output(self, index: int) -> str:
        return f"{self.shards_prefix}{index:05d}.answers.jsonl"

    def checkpoints_prefix(self, shard: int) -> str:
        return f"{self.prefix}answers/{shard:05d}/"

    def checkpoint(self, shard: int, position: int) -> str:
        """One problem's teacher reply, by its shard and its position in the shard's input."""
        return f"{self.checkpoints_prefix(shard)}{position:05d}.json"

    @staticmethod
    def checkpoint_position(key: str) -> int | None:
        name = key.rsplit("/", 1)[-1]
        stem = name.removesuffix(".json")
        return int(stem) if stem != name and stem.isdigit() else None

    @property
    def batches_prefix(self) -> str:
        return f"{self.prefix}batches/"

    def batch_requests(self, round_number: int, part: int) -> str:
        return f"{self.batches_prefix}round-{round_number:02d}/requests-{part:03d}.jsonl"

    @property
    def holdout(self) -> str:
        return f"{self.prefix}holdout.jsonl"

    @property
    def dataset_prefix(self) -> str:
        """Everything Assemble writes: the files, their card, the drop log and the exports."""
        return f"{self.prefix}dataset/"

    @property
    def train(self) -> str:
        return f"{self.dataset_prefix}train.jsonl"

    @property
    def validation(self) -> str:
        return f"{self.dataset_prefix}validation.jsonl"

    @property
    def dataset_card(self) -> str:
        return f"{self.dataset_prefix}dataset_card.json"

    @property
    def dataset_card_markdown(self) -> str:
        return f"{self.dataset_prefix}dataset_card.md"

    @property
    def dropped(self) -> str:
        """One line per dropped example: which, why, and the evidence."""
        return f"{self.dataset_prefix}dropped.jsonl"

    def export(self, export: str, split: str) -> str:
        return f"{self.dataset_prefix}{export}/{split}.jsonl"

    @property
    def finetune_prefix(self) -> str:
        return f"{self.prefix}finetune/"

    @property
    def finetune_output(self) -> str:
        """Where a provider that writes to S3 (Bedrock) puts what the job produces."""
        return f"{self.finetune_prefix}output/"

    @property
    def training_metrics(self) -> str:
        """The job's loss per step: step, epoch, training_loss, validation_loss."""
        return f"{self.finetune_prefix}training_metrics.csv"

    def benchmark_answers(self, contestant: str) -> str:
        return f"{self.prefix}benchmark/{contestant}.jsonl"

    def benchmark_checkpoints_prefix(self, contestant: str) -> str:
        return f"{self.prefix}benchmark/checkpoints/{contestant}/"

    def benchmark_checkpoint(self, contestant: str, position: int) -> str:
        """One held-out problem's reply and verdict from a contestant, by its position in holdout.jsonl."""
        return f"{self.benchmark_checkpoints_prefix(contestant)}{position:05d}.json"

    @property
    def holdout_probe_checkpoints_prefix(self) -> str:
        """The base student's probe of the held-out problems (after its benchmark, for analysis only)."""
        return f"{self.prefix}benchmark/checkpoints/probe/"

    def holdout_probe_checkpoint(self, position: int) -> str:
        """One held-out problem's probe answers and verdicts, by its position in holdout.jsonl."""
        return f"{self.holdout_probe_checkpoints_prefix}{position:05d}.json"

    @property
    def holdout_knowledge(self) -> str:
        """One line per held-out problem: what the base student knew of it (its SliCK category)."""
        return f"{self.prefix}benchmark/holdout_knowledge.jsonl"

    @property
    def benchmark(self) -> str:
        return f"{self.prefix}report/benchmark.json"

    @property
    def report(self) -> str:
        return f"{self.prefix}report/report.md"

    @property
    def report_html(self) -> str:
        """report.md's numbers with charts, the answers fine-tuning changed and the dataset's drops: one
        self-contained page (no network)."""
        return f"{self.prefix}report/report.html"

    @property
    def summary(self) -> str:
        return f"{self.prefix}report/summary.json"

    @property
    def failure_cause(self) -> str:
        """Why the run failed, whole: the run record and the execution keep only its first few KB."""
        return f"{self.prefix}failure/cause.txt"
