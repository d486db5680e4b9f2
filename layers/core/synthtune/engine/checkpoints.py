"""Each problem's paid-for progress, one S3 object per problem, saved the moment it is paid for.

A stage that asks a model many problems (Generate's shard, a Benchmark contestant) keeps one object per
problem under a prefix of its own, named by the problem's position in the stage's input:
`runs/<id>/answers/<shard>/<position>.json` for a shard, `runs/<id>/benchmark/checkpoints/<contestant>/
<position>.json` for a contestant (see `records.layout`). A retried invocation lists the prefix once and
reads what is there, so it asks only for what is missing and pays for nothing twice.

The position names the object rather than the problem's id: ids are the user's strings, which may hold
a `/` or be longer than a key may be; the stage's input is fixed for the run, and each checkpoint
carries its problem's id, which the stage checks before it trusts one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from pydantic import BaseModel

from synthtune.records.artifacts import ArtifactStore
from synthtune.records.layout import RunLayout

CheckpointT = TypeVar("CheckpointT", bound=BaseModel)


class CheckpointStore(Generic[CheckpointT]):
    """The checkpoints under `prefix`, each a `model` as JSON at `key_of(position)`."""

    def __init__(
        self,
        data: ArtifactStore,
        prefix: str,
        key_of: Callable[[int], str],
        model: type[CheckpointT],
    ) -> None:
        self._data = data
        self.prefix = prefix
        self._key_of = key_of
        self._model = model

    def _keys(self) -> dict[int, str]:
        """Each checkpoint's key by its position (one LIST)."""
        found: dict[int, str] = {}
        for key in sorted(self._data.keys(self.prefix)):
            position = RunLayout.checkpoint_position(key)
            if position is not None:
                found[position] = key
        return found

    def count(self) -> int:
        """How many problems have a checkpoint (one LIST)."""
        return len(self._keys())

    def load(self) -> dict[int, CheckpointT]:
        """Every checkpoint by position (one LIST, then one GET per checkpoint)."""
        return {
            position: self._model.model_validate(self._data.read_json(key))
            for position, key in self._keys().items()
        }

    def save(self, position: int, checkpoint: CheckpointT) -> None:
        self._data.write_json(self._key_of(position), checkpoint.model_dump(mode="json"))
