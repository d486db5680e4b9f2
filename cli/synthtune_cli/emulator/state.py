"""Everything the emulator remembers, behind one lock."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from synthtune_cli.clock import Clock, VirtualClock
from synthtune_cli.emulator.batches import Batches
from synthtune_cli.emulator.catalogue import (
    BASE_MODELS,
    FINE_TUNABLE_SNAPSHOTS,
    OWNER,
    SimulatedModel,
    base_model,
)
from synthtune_cli.emulator.chat import batch_chat_completion
from synthtune_cli.emulator.draws import IdFactory
from synthtune_cli.emulator.errors import model_not_found
from synthtune_cli.emulator.files import FileStore
from synthtune_cli.emulator.finetuning import FineTuning
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import Knowledge, KnowledgeItem
from synthtune_cli.emulator.limits import FaultInjector, RateLimiter


class ServedRequest(NamedTuple):
    method: str
    path: str
    status: int


class EmulatorState:
    """The emulator's memory. Callers hold `lock` around every use: requests arrive on many threads."""

    def __init__(self, clock: Clock, knobs: EmulatorKnobs, seed: int) -> None:
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
        self.limiter = RateLimiter()
        self.faults = FaultInjector()
        self.served: list[ServedRequest] = []

    def configure(self, **changes: Any) -> EmulatorKnobs:
        with self.lock:
            # Batch lines due before the change are answered under the knobs they were due under.
            self.batches.refresh(self.clock.now())
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
            self.limiter.clear()
            self.faults.clear()
            self.served.clear()
            if knowledge:
                self.knowledge.clear()

    def refresh(self) -> float:
        """Bring every job and batch up to the clock's now, and return now."""
        with self.lock:
            now = self.clock.now()
            self.fine_tuning.refresh(now, self.knobs)
            self.batches.refresh(now)
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
        models = [
            {"id": name, "object": "model", "created": created, "owned_by": "system"}
            for name, created in BASE_MODELS.items()
        ]
        models += [
            {"id": model.name, "object": "model", "created": model.created_at, "owned_by": OWNER}
            for model in self.fine_tuning.models.values()
        ]
        return models

    def model_object(self, name: str) -> dict[str, Any]:
        for model in self.model_objects():
            if model["id"] == name:
                return model
        if self.knobs.accept_unknown_models:
            return {"id": name, "object": "model", "created": 0, "owned_by": "system"}
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
                    "requests": len(self.served),
                },
                "pending_errors": self.faults.pending(),
            }
