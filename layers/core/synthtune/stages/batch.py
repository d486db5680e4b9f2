"""Batch generation: the teacher's answers through the Batch API, at half price, within 24 hours.

SubmitBatch writes one request per problem that has no checkpoint yet (custom_id `<shard>-<position>`,
stable across rounds), in files of at most 50,000 requests, and creates one batch per file; each
submission is recorded before it is sent and its batch id once known, so a retried SubmitBatch never
submits a file twice: a part sent without its batch id recorded (the reply lost, the Lambda gone) is
first looked for at the provider by its metadata (run id, round, part), its file by its name.
CheckBatch polls; when every batch of the round is final it turns each successful output line into
the same per-problem checkpoint online generation writes, then:
- requests that expired or failed are resubmitted (a new round with only those), up to
  `generation.batch_max_rounds`;
- a round whose batches completed without a single success fails the run (`BatchFailed`): an empty
  dataset is an error, not a result;
- once collected, the Generate Map grades the checkpoints (judge calls go online) and records the
  problems still without a reply as failed.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synthtune.contracts.errors import BatchFailed
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import BatchState, BatchTask, ShardRef
from synthtune.engine.budgeted import outcome_unknown
from synthtune.money.estimate import worst_case_solve_usd
from synthtune.money.ledger import CostLedger
from synthtune.money.usage import inference_cost_usd
from synthtune.providers.ports import BatchInfo, BatchPort
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import BatchItem
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.generate import Checkpoint

CHECKPOINT_WRITERS = 32
"""Checkpoints written in parallel while collecting: 50,000 sequential PUTs would outlast a Lambda."""


def custom_id(shard: int, position: int) -> str:
    return f"{shard:05d}-{position:05d}"


def _parse_custom_id(value: str) -> tuple[int, int]:
    shard, position = value.split("-")
    return int(shard), int(position)


def _pending(data: ArtifactStore, layout: RunLayout, manifest_key: str) -> Iterator[tuple[int, int, Problem]]:
    """Every problem without a checkpoint, shard by shard (one LIST and one GET per shard)."""
    for entry in data.read_json(manifest_key):
        shard = ShardRef.model_validate(entry)
        answered = {
            position
            for key in data.keys(layout.checkpoints_prefix(shard.index))
            if (position := layout.checkpoint_position(key)) is not None
        }
        for position, problem in enumerate(data.read_jsonl(layout.shard_input(shard.index), Problem)):
            if position not in answered:
                yield shard.index, position, problem


def batch_metadata(run_id: str, round_number: int, part: int) -> dict[str, str]:
    """What a batch is created with and found by: the run, the round and the part."""
    return {"synthtune_run_id": run_id, "round": str(round_number), "part": str(part)}


def submit_batch(task: BatchTask, *, data: ArtifactStore, runs: RunStore, batches: BatchPort) -> BatchState:
    run, config = task.run, task.run.config
    layout = RunLayout(run.run_id)
    round_number = task.batch.round + 1 if task.batch else 1
    recorded = {item.part: item for item in runs.batches(run.run_id, round_number)}
    ledger = CostLedger(runs, run.run_id, config.budget_usd)
    batch_ids: list[str] = []
    requests = 0
    with tempfile.TemporaryDirectory(prefix="synthtune-batch-") as workdir:
        for part, (path, count, worst_case) in enumerate(
            _request_files(task, Path(workdir), layout, data, batches)
        ):
            requests += count
            item = recorded.get(part)
            if item is not None and item.batch_id:  # submitted by an earlier attempt of this state
                batch_ids.append(item.batch_id)
                continue
            metadata = batch_metadata(run.run_id, round_number, part)
            # An earlier attempt sent this part without learning whether the batch was created: find it.
            info = batches.find(metadata) if item is not None else None
            reserved = item.reserved_usd if item is not None else 0.0
            if info is None and not reserved and worst_case:
                reserved = ledger.reserve(worst_case, f"a batch of {count} teacher requests")
            # Recorded before sending, so that a retry knows to look for the batch before creating one.
            submission = BatchItem(round=round_number, part=part, requests=count, reserved_usd=reserved)
            sk = submission.sk
            runs.put(run.run_id, sk, submission)
            if info is None:
                data.upload(path, layout.batch_requests(round_number, part))
                try:
                    info = batches.submit(path, metadata)
                except BaseException as error:
                    if not outcome_unknown(error):  # no batch: nothing to pay
                        ledger.settle(reserved, 0.0)
                        runs.update(run.run_id, sk, reserved_usd=0.0)
                    raise
            runs.update(run.run_id, sk, batch_id=info.id)
            batch_ids.append(info.id)
    runs.update(run.run_id, stage="generate", batch_round=round_number)
    status = "in_progress" if batch_ids else "collected"
    return BatchState(round=round_number, batch_ids=batch_ids, status=status, requests=requests)


def _request_files(
    task: BatchTask, workdir: Path, layout: RunLayout, data: ArtifactStore, batches: BatchPort
) -> Iterator[tuple[Path, int, float]]:
    """Request files within the provider's limits (requests and bytes per batch), with their worst cost."""
    config = task.run.config
    batches_limit, bytes_limit = batches.max_requests_per_batch, batches.max_file_bytes
    budgeted = config.budget_usd is not None
    part, count, size, worst_case = 0, 0, 0, 0.0
    handle = None
    path = workdir / _file_name(task, 0)
    for shard, position, problem in _pending(data, layout, task.generation.manifest_key):
        line = batches.request_line(
            custom_id(shard, position),
            config.teacher_model,
            problem.question,
            temperature=config.teacher_temperature,
            max_tokens=config.max_output_tokens,
            samples=config.generation.samples,
        )
        if handle is not None and (count >= batches_limit or size + len(line) > bytes_limit):
            handle.close()
            yield path, count, worst_case
            part, count, size, worst_case = part + 1, 0, 0, 0.0
            handle = None
        if handle is None:
            path = workdir / _file_name(task, part)
            handle = path.open("wb")
        handle.write(line)
        count += 1
        size += len(line)
        if budgeted:
            worst_case += worst_case_solve_usd(
                config.teacher_model,
                problem.question,
                config.max_output_tokens,
                config.generation.samples,
                batch=True,
            )
    if handle is not None:
        handle.close()
        yield path, count, worst_case


def _file_name(task: BatchTask, part: int) -> str:
    """A request file's name, unique to the run, round and part: the provider's copy is found by it."""
    round_number = task.batch.round + 1 if task.batch else 1
    return f"synthtune-{task.run.run_id}-batch-{round_number:02d}-{part:03d}.jsonl"


def check_batch(task: BatchTask, *, data: ArtifactStore, runs: RunStore, batches: BatchPort) -> BatchState:
    state = task.batch
    if state is None:
        raise ValueError("CheckBatch needs the batch state SubmitBatch returned")
    infos = [batches.status(batch_id) for batch_id in state.batch_ids]
    if not all(info.final for info in infos):
        return state.model_copy(
            update={"status": "in_progress", "succeeded": sum(i.completed for i in infos)}
        )
    for info in infos:
        if info.status == "failed":
            errors = "; ".join(info.errors[:5]) or "no errors listed"
            raise BatchFailed(f"batch {info.id} failed validation: {errors}")

    run, config = task.run, task.run.config
    layout = RunLayout(run.run_id)
    succeeded, usage, error_codes = _collect(infos, data, layout, batches)
    records = runs.batches(run.run_id, state.round)
    reserved = sum(item.reserved_usd for item in records)
    actual = inference_cost_usd(config.teacher_model, usage, batch=True) or 0.0
    ledger = CostLedger(runs, run.run_id, config.budget_usd)
    if reserved:
        for item in records:
            runs.update(run.run_id, item.sk, reserved_usd=0.0)
        ledger.settle(reserved, actual)

    error_summary = ", ".join(f"{count} {code}" for code, count in error_codes.most_common()) or "none"
    if state.requests and succeeded == 0 and all(info.status == "completed" for info in infos):
        raise BatchFailed(
            f"round {state.round}: the batch completed but none of its {state.requests} requests succeeded "
            f"(errors: {error_summary}); nothing to train on"
        )
    missing = state.requests - succeeded
    runs.update(run.run_id, batch_round=state.round, batch_missing=missing, batch_errors=dict(error_codes))
    status = "resubmit" if missing and state.round < config.generation.batch_max_rounds else "collected"
    return state.model_copy(update={"status": status, "succeeded": succeeded, "missing": missing})


def _collect(
    infos: list[BatchInfo], data: ArtifactStore, layout: RunLayout, batches: BatchPort
) -> tuple[int, Usage, Counter[str]]:
    """Write a checkpoint for every answered request; the count, the tokens they billed, and the
    failed requests' error codes."""
    inputs: dict[int, list[Problem]] = {}

    def problem_at(shard: int, position: int) -> Problem:
        if shard not in inputs:
            inputs[shard] = list(data.read_jsonl(layout.shard_input(shard), Problem))
        return inputs[shard][position]

    succeeded = 0
    usage = Usage()
    errors: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=CHECKPOINT_WRITERS, thread_name_prefix="checkpoint") as writers:
        futures = []
        for info in infos:
            for outcome in batches.outcomes(info):
                if outcome.result is None:
                    errors[outcome.error or "error"] += 1
                    continue
                shard, position = _parse_custom_id(outcome.custom_id)
                checkpoint = Checkpoint(
                    problem_id=problem_at(shard, position).id, source="batch", result=outcome.result
                )
                key = layout.checkpoint(shard, position)
                futures.append(writers.submit(data.write_json, key, checkpoint.model_dump(mode="json")))
                succeeded += 1
                usage += outcome.result.usage
        for future in futures:
            future.result()
    return succeeded, usage, errors
