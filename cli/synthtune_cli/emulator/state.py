"""Everything the emulator remembers, behind one lock."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from synthtune_cli.clock import Clock, VirtualClock
from synthtune_cli.emulator.batches import Batches
from synthtune_cli.emulator.bedrock.account import BedrockAccount
from synthtune_cli.emulator.bedrock.s3_objects import S3ClientFactory
from synthtune_cli.emulator.catalogue import (
    BASE_MODELS,
    FINE_TUNABLE_SNAPSHOTS,
    OWNER,
    SimulatedModel,
    base_model,
    shutdown_date,
)
from synthtune_cli.emulator.chat import batch_chat_completion
from synthtune_cli.emulator.draws import IdFactory
from synthtune_cli.emulator.errors import model_not_found
from synthtune_cli.emulator.files import FileStore
from synthtune_cli.emulator.finetuning import FineTuning
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import Knowledge, KnowledgeItem
from synthtune_cli.emulator.limits import FaultInjector, RateLimiter

# Bedrock's region when none is given: moto's default, and where Nova fine-tuning runs.
DEFAULT_REGION = "us-east-1"
# 2: fine-tuned models learn what their base knew (abstention, confidence); a format-1 snapshot's
# assessments and models lack those fields.
SNAPSHOT_FORMAT = 2
INFERENCE_PATHS = ("/v1/chat/completions",)
"""Requests that answer a question and leave the emulator's world as it was (with Converse's)."""


class ServedRequest(NamedTuple):
    method: str
    path: str
    status: int


class BilledRequest(NamedTuple):
    """A model request the service carried out, and so bills (OpenAI's chat completions and Bedrock's
    Converse, whatever became of the response): the model as billed, its tokens, and whether its
    response was lost on the way (`lose_responses`, `lose_fraction`)."""

    api: str
    model: str
    input_tokens: int
    output_tokens: int
    lost: bool = False


def mark_lost(billed: list[BilledRequest], since: int) -> None:
    """The requests billed from index `since` on had their response lost. Call under the state lock."""
    for index in range(since, len(billed)):
        billed[index] = billed[index]._replace(lost=True)


class EmulatorState:
    """The emulator's memory. Callers hold `lock` around every use: requests arrive on many threads."""

    def __init__(
        self,
        clock: Clock,
        knobs: EmulatorKnobs,
        seed: int,
        region: str = DEFAULT_REGION,
        s3_client: S3ClientFactory | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.lock = threading.RLock()
        self._initial_knobs = knobs
        self.knobs = knobs
        self.ids = IdFactory(seed)
        self.knowledge = Knowledge()
        self.files = FileStore()
        self.fine_tuning = FineTuning(self.files, self.knowledge, self.ids, seed)
        self.batches = self._new_batches()
        self.bedrock = BedrockAccount(region, self.ids, self.knowledge, seed, s3_client)
        self.limiter = RateLimiter()
        self.faults = FaultInjector()
        self.served: list[ServedRequest] = []
        self.billed: list[BilledRequest] = []
        self.on_change: Callable[[bytes], None] | None = None
        """Given a `snapshot()` after every request that changed the world (see `changed`)."""

    def _new_batches(self) -> Batches:
        return Batches(
            self.files,
            self.ids,
            self.seed,
            answer=lambda body, at, completion_id: batch_chat_completion(self, body, at, completion_id),
            resolve_model=lambda name: self.simulated_model(name)[1],
        )

    def configure(self, **changes: Any) -> EmulatorKnobs:
        with self.lock:
            # Batch lines, Bedrock jobs, deployments and throughputs due before the change settle under the
            # knobs they were due under.
            self.batches.refresh(self.clock.now())
            self.bedrock.refresh(self.clock.now(), self.knobs)
            self.knobs = EmulatorKnobs.model_validate({**self.knobs.model_dump(), **changes})
            return self.knobs

    def add_knowledge(self, items: Iterable[KnowledgeItem]) -> int:
        with self.lock:
            # Batch lines due before the new knowledge are answered without it.
            self.batches.refresh(self.clock.now())
            return self.knowledge.add(items)

    def reset(self, *, knowledge: bool = False) -> None:
        """Back to a fresh emulator with the knobs it was created with; the knowledge stays unless asked."""
        with self.lock:
            self.knobs = self._initial_knobs
            self.ids.clear()
            self.files.clear()
            self.fine_tuning.clear()
            self.batches.clear()
            self.bedrock.clear()
            self.limiter.clear()
            self.faults.clear()
            self.served.clear()
            self.billed.clear()
            if knowledge:
                self.knowledge.clear()

    def snapshot(self) -> bytes:
        """What the emulator knows of the world, as bytes `restore` takes back: the files, fine-tuning jobs
        and fine-tuned models, batches, Bedrock's jobs, custom models, deployments and throughputs, the id
        counters and the clock's time. Not the knobs, the request log, the rate-limit windows or pending
        faults: those belong to the process serving the requests.

        Pickled: these are the emulator's own objects, read back only by `restore`, from a file it wrote
        (like any pickle, not one from someone you do not trust).
        """
        with self.lock:
            return pickle.dumps(
                {
                    "format": SNAPSHOT_FORMAT,
                    "now": self.clock.now(),
                    "ids": self.ids,
                    "knowledge": self.knowledge,
                    "files": self.files,
                    "fine_tuning": self.fine_tuning,
                    "batches": self.batches.saved(),
                    "bedrock": self.bedrock,
                }
            )

    def restore(self, snapshot: bytes) -> None:
        """Remember what `snapshot` remembered. A virtual clock behind the snapshot's time moves up to it:
        a job created then must not find itself in the future."""
        saved = pickle.loads(snapshot)  # the emulator's own bytes: see snapshot()
        if not isinstance(saved, dict) or saved.get("format") != SNAPSHOT_FORMAT:
            raise ValueError("not a snapshot of this emulator's state (or of another version of it)")
        with self.lock:
            s3_client = self.bedrock.s3.factory
            self.ids = saved["ids"]
            self.knowledge = saved["knowledge"]
            self.files = saved["files"]
            self.fine_tuning = saved["fine_tuning"]
            self.batches = self._new_batches()
            self.batches.load(saved["batches"])
            self.bedrock = saved["bedrock"]
            self.bedrock.s3.use(s3_client)
            behind = float(saved["now"]) - self.clock.now()
            if behind > 0 and isinstance(self.clock, VirtualClock):
                self.clock.advance(behind)

    def changed(self, method: str, path: str) -> None:
        """After a request: hand a snapshot to `on_change` if the request may have changed the world —
        anything but a read or a model's answer. Under the lock, so snapshots arrive in order."""
        if self.on_change is None or method in {"GET", "HEAD"}:
            return
        if path in INFERENCE_PATHS or (path.startswith("/model/") and path.endswith("/converse")):
            return
        with self.lock:
            self.on_change(self.snapshot())

    def refresh(self) -> float:
        """Bring every job, batch, deployment and throughput up to the clock's now, and return now."""
        with self.lock:
            now = self.clock.now()
            self.fine_tuning.refresh(now, self.knobs)
            self.batches.refresh(now)
            self.bedrock.refresh(now, self.knobs)
            return now

    def simulated_model(self, name: str) -> tuple[SimulatedModel, str]:
        """The model serving requests for `name`, and the name responses report (an alias's snapshot)."""
        fine_tuned = self.fine_tuning.find_model(name)
        if fine_tuned is not None:
            return fine_tuned.simulated, name
        if name in BASE_MODELS or self.knobs.accept_unknown_models:
            return base_model(name), FINE_TUNABLE_SNAPSHOTS.get(name, name)
        raise model_not_found(name)

    def model_objects(self) -> list[dict[str, Any]]:
        models = [_model_object(name, created, "system") for name, created in BASE_MODELS.items()]
        models += [
            _model_object(model.name, model.created_at, OWNER) for model in self.fine_tuning.models.values()
        ]
        return models

    def model_object(self, name: str) -> dict[str, Any]:
        for model in self.model_objects():
            if model["id"] == name:
                return model
        if self.knobs.accept_unknown_models:
            return _model_object(name, 0, "system")
        raise model_not_found(name)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            now = self.refresh()
            return {
                "knobs": self.knobs.model_dump(mode="json"),
                "seed": self.seed,
                "clock": {
                    "now": now,
                    "type": type(self.clock).__name__,
                    "advanceable": isinstance(self.clock, VirtualClock),
                },
                "counts": {
                    "knowledge": len(self.knowledge),
                    "files": len(self.files),
                    "fine_tuning_jobs": self.fine_tuning.job_count,
                    "fine_tuned_models": len(self.fine_tuning.models),
                    "batches": self.batches.batch_count,
                    **self.bedrock.counts(),
                    "requests": len(self.served),
                    "billed_requests": len(self.billed),
                    "lost_billed_requests": sum(request.lost for request in self.billed),
                },
                "pending_errors": self.faults.pending(),
            }


def _model_object(name: str, created: int, owner: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": owner,
        "shutdown_date": shutdown_date(name),
    }
