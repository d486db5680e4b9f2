"""Everything the emulator remembers, behind one lock."""

from __future__ import annotations

import threading
from collections.abc import Iterable
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
        self.batches = Batches(
            self.files,
            self.ids,
            seed,
            answer=lambda body, at, completion_id: batch_chat_completion(self, body, at, completion_id),
            resolve_model=lambda name: self.simulated_model(name)[1],
        )
        self.bedrock = BedrockAccount(region, self.ids, self.knowledge, s3_client)
        self.limiter = RateLimiter()
        self.faults = FaultInjector()
        self.served: list[ServedRequest] = []
        self.billed: list[BilledRequest] = []

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
