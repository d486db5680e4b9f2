"""PrepareServing, CheckServing and ReleaseServing: the fine-tuned model made to answer, then let go.

OpenAI serves a fine-tune under its own name; Bedrock answers for a custom model only through a
deployment (on demand, billed per token) or Provisioned Throughput (billed by the hour). PrepareServing
starts it (or finds what an earlier attempt started, by the name derived from the run id), the
Wait/CheckServing loop waits until it is active (bounded by `deployment_max_wait_seconds`), the benchmark
asks through it, and ReleaseServing deletes it — after the benchmark, and after any failure once it may
exist — unless `keep_deployment` says to leave it.

Provisioned Throughput's hours are reserved against the budget when it is created and settled, by the
started hour, when it is deleted.
"""

from __future__ import annotations

import datetime as dt
import math

from synthtune.contracts.errors import ServingFailed
from synthtune.contracts.workflow import ServingState, ServingTask
from synthtune.money.catalog import model_info
from synthtune.money.estimate import PROVISIONED_HOURS
from synthtune.money.ledger import CostLedger
from synthtune.providers.ports import ServingPort
from synthtune.records.items import SERVING_SK, now_iso
from synthtune.records.runs import RunStore

RESERVED_SERVING = "serving_reserved_usd"


def _record(runs: RunStore, run_id: str, state: ServingState, **extra: object) -> None:
    runs.put(run_id, SERVING_SK, {**state.model_dump(), **extra})
    runs.update(run_id, serving_status=state.status, serving_kind=state.kind)


def _raise_if_failed(state: ServingState) -> None:
    if state.status == "failed":
        raise ServingFailed(f"{state.kind} {state.name or ''} failed: {state.error or 'no reason given'}")


def _hourly_price(task: ServingTask) -> float | None:
    info = model_info(task.run.config.student_model)
    return info.price.provisioned_throughput_per_hour if info is not None and info.price else None


def prepare_serving(task: ServingTask, *, serving: ServingPort, runs: RunStore) -> ServingState:
    run = task.run
    runs.update(run.run_id, stage="serve")
    recorded = runs.get(run.run_id, SERVING_SK) or {}
    reserved = float(recorded.get("reserved_usd", 0.0))
    hourly = _hourly_price(task)
    if _needs_provisioned_throughput(task) and hourly is not None and not reserved:
        # Reserved before it exists: a budget that cannot hold an hour of it creates nothing.
        ledger = CostLedger(runs, run.run_id, run.config.budget_usd)
        reserved = ledger.reserve(
            hourly * PROVISIONED_HOURS, f"{PROVISIONED_HOURS} hour of Provisioned Throughput"
        )
        runs.put(run.run_id, SERVING_SK, {**recorded, "reserved_usd": reserved})
    state = serving.prepare(
        run.run_id, task.finetune, provisioned_throughput=run.config.allow_provisioned_throughput
    )
    _record(runs, run.run_id, state, reserved_usd=reserved)
    _raise_if_failed(state)
    return state


def _needs_provisioned_throughput(task: ServingTask) -> bool:
    info = model_info(task.run.config.student_model)
    return (
        info is not None
        and info.fine_tuning is not None
        and info.fine_tuning.serving == "provisioned_throughput"
    )


def check_serving(task: ServingTask, *, serving: ServingPort, runs: RunStore) -> ServingState:
    if task.serving is None:
        raise ValueError("CheckServing needs the state PrepareServing returned")
    state = serving.status(task.serving)
    recorded = runs.get(task.run.run_id, SERVING_SK) or {}
    _record(runs, task.run.run_id, state, reserved_usd=float(recorded.get("reserved_usd", 0.0)))
    _raise_if_failed(state)
    return state


def release_serving(task: ServingTask, *, serving: ServingPort, runs: RunStore) -> ServingState:
    """Delete what serves the model (found by the run's name if the state does not say), unless
    keep_deployment; a run that created nothing is released as it is."""
    run = task.run
    recorded = runs.get(run.run_id, SERVING_SK) or {}
    reserved = float(recorded.get("reserved_usd", 0.0))
    ledger = CostLedger(runs, run.run_id, run.config.budget_usd)
    current = task.serving or serving.find(run.run_id)
    if current is None:
        if reserved:  # reserved for Provisioned Throughput that was never created
            ledger.settle(reserved, 0.0)
            runs.put(run.run_id, SERVING_SK, {**recorded, "reserved_usd": 0.0})
        return ServingState(
            provider=task.finetune.backend,
            kind="none",
            status="released",
            model=task.finetune.fine_tuned_model or "",
        )
    if run.config.keep_deployment and current.kind != "none":
        kept = current.model_copy(update={"kept": True})
        _record(runs, run.run_id, kept, reserved_usd=reserved)
        return kept
    released = serving.release(current)
    extra: dict[str, object] = {"released_at": now_iso()}
    if released.kind == "provisioned_throughput":
        hours = _billed_hours(released.created_at)
        hourly = _hourly_price(task)
        cost = hours * hourly if hourly is not None else None
        extra.update(billed_hours=hours, cost_usd=cost)
        if reserved:
            ledger.settle(reserved, cost or 0.0)
            reserved = 0.0
    _record(runs, run.run_id, released, reserved_usd=reserved, **extra)
    return released


def _billed_hours(created_at: str | None) -> int:
    """Provisioned Throughput bills each started hour."""
    if created_at is None:
        return PROVISIONED_HOURS
    started = dt.datetime.fromisoformat(created_at)
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.UTC)
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    return max(1, math.ceil(elapsed / 3600))
