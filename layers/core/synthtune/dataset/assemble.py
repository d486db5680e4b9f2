"""Assemble: the shards' answers become the fine-tuning files, keeping only what deserves training.

An answer is kept when it was verified against the reference, or — with `keep_unreferenced` — when
its problem has no reference to check. Everything else is dropped and counted by reason. The files
use OpenAI's chat fine-tuning format, with exactly the system prompt and answer format the benchmark
asks the student in. Rows stream from the shard files to the output files; memory does not grow with
the dataset.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict

from synthtune.artifacts import ArtifactStore
from synthtune.config import RunConfig
from synthtune.errors import BudgetExceeded, GenerationIncomplete, InvalidDataset
from synthtune.generation import GeneratedAnswer, failed_shards
from synthtune.layout import RunLayout
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Solution, render_solution
from synthtune.runs import DATASET_SK, RunStore
from synthtune.tokens import count_chat_tokens
from synthtune.workflow import AssembleInput, DatasetSummary, ShardRef

MIN_TRAINING_EXAMPLES = 10
"""OpenAI rejects a training file with fewer examples."""


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class ChatExample(BaseModel):
    """One line of a chat fine-tuning file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[ChatMessage]


def training_example(answer: GeneratedAnswer) -> ChatExample:
    solution = Solution(steps=answer.steps, final_answer=answer.final_answer or "")
    return ChatExample(
        messages=[
            ChatMessage(role="system", content=SOLVER_SYSTEM_PROMPT),
            ChatMessage(role="user", content=answer.question),
            ChatMessage(role="assistant", content=render_solution(solution)),
        ]
    )


def drop_reason(answer: GeneratedAnswer, config: RunConfig) -> str | None:
    """Why an answer must not be trained on, or None to keep it."""
    if answer.status == "failed":
        return f"teacher_{answer.failure or 'failed'}"
    if answer.status == "rejected":
        return "wrong_answer"
    if answer.status == "unverified" and not config.keep_unreferenced:
        return "no_reference"
    if not any(step.strip() for step in answer.steps):
        return "empty_reasoning"
    return None


def _shard_outputs(
    data: ArtifactStore, runs: RunStore, layout: RunLayout, manifest_key: str, config: RunConfig
) -> tuple[list[str], int]:
    """The answers files of the shards that finished, and how many problems the others held.

    Up to `generation.tolerated_failure_percent` of the shards may be missing (Step Functions'
    threshold on the Map, enforced here too so the rule holds wherever the Map ran); a shard stopped
    by the budget stops the run whatever the threshold.
    """
    shards = [ShardRef.model_validate(entry) for entry in data.read_json(manifest_key)]
    written = data.keys(layout.shards_prefix)
    missing = [shard for shard in shards if layout.shard_output(shard.index) not in written]
    if missing:
        failures = {int(item["index"]): item for item in runs.items(layout.run_id, "SHARD#")}
        budget_stops = [
            failures[shard.index]
            for shard in missing
            if failures.get(shard.index, {}).get("error") == "BudgetExceeded"
        ]
        if budget_stops:
            raise BudgetExceeded(str(budget_stops[0]["message"]))
        tolerated = config.generation.tolerated_failure_percent
        if len(missing) * 100 > tolerated * len(shards):
            causes = failed_shards(runs, layout.run_id) or "no shard recorded an error"
            numbers = ", ".join(str(shard.index) for shard in missing)
            raise GenerationIncomplete(
                f"{len(missing)} of {len(shards)} shards have no answers (shards {numbers}), more than "
                f"generation.tolerated_failure_percent ({tolerated:g}%) allows:\n{causes}"
            )
    present = [layout.shard_output(shard.index) for shard in shards if shard not in missing]
    return present, sum(shard.problem_count for shard in missing)


def assemble_dataset(task: AssembleInput, *, data: ArtifactStore, runs: RunStore) -> DatasetSummary:
    layout = RunLayout(task.run.run_id)
    config = task.run.config
    dropped: Counter[str] = Counter()
    train_tokens = 0
    with (
        data.jsonl_writer(layout.train) as train,
        data.jsonl_writer(layout.validation, skip_empty=True) as validation,
    ):
        keys, lost = _shard_outputs(data, runs, layout, task.generation.manifest_key, config)
        if lost:
            dropped["shard_failed"] += lost
        for key in keys:
            for answer in data.read_jsonl(key, GeneratedAnswer):
                reason = drop_reason(answer, config)
                if reason is not None:
                    dropped[reason] += 1
                    continue
                example = training_example(answer)
                if answer.split == "validation":
                    validation.write(example)
                else:
                    train.write(example)
                    messages = [message.model_dump() for message in example.messages]
                    train_tokens += count_chat_tokens(messages, config.student_model)
        if train.count < MIN_TRAINING_EXAMPLES:
            reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.most_common()) or "none"
            raise InvalidDataset(
                f"only {train.count} training examples survived (fine-tuning needs at least "
                f"{MIN_TRAINING_EXAMPLES}); dropped: {reasons}"
            )

    summary = DatasetSummary(
        train_key=layout.train,
        validation_key=layout.validation if validation.count else None,
        train_examples=train.count,
        validation_examples=validation.count,
        train_tokens=train_tokens,
        dropped=dict(sorted(dropped.items())),
    )
    runs.put(task.run.run_id, DATASET_SK, summary.model_dump())
    runs.update(
        task.run.run_id, stage="fine_tune", train_examples=train.count, validation_examples=validation.count
    )
    return summary
