"""The run's journal: its S3 objects and DynamoDB items, copied into the run directory as moto stores them.

Offline, S3 and DynamoDB live in moto's memory, which dies with the process. Everything a run needs
to go on is there, though: the teacher's answers checkpointed one object per problem, the dataset, the
fine-tuning job's id, the ledger. So every write to the run's objects (`runs/<run id>/…` and its problem
set) and items (`RUN#<run id>`) is copied to `RUN_DIR/state/` inside the same call that stores it —
before the handler that wrote it goes on, so an answer is on disk before the next request is sent. On
`--resume` a fresh moto is given those files back, and a new execution of the same run id starts from
them: the stages are already built to resume (a shard skips the problems it has checkpoints for;
StartFineTune finds the run's job before creating one).

The copy hooks moto's S3 and DynamoDB backends, below every client (the handlers', the emulator's), as
the offline runtime hooks moto's Lambda backend. A lock orders each store with its copy, so the file
of an item written twice at once is never left holding the older version.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from synthtune.records.items import RUN_SK, run_pk
from synthtune.records.layout import RunLayout
from synthtune_cli import durable

FORGOTTEN_ON_RESUME = ("error", "cause", "failed_state", "finished_at")
"""What RecordFailure wrote on the run item: a resumed run is running again, not failed."""


@dataclass(frozen=True)
class Restored:
    objects: int
    items: int


class RunJournal:
    """RUN_DIR/state/s3/<key> for each object, RUN_DIR/state/dynamodb/<sort key>.json for each item
    (DynamoDB's own typed JSON, so numbers come back exactly)."""

    def __init__(
        self, state_dir: Path, run_id: str, *, bucket: str, table: str, problem_set_key: str
    ) -> None:
        self.state_dir = state_dir
        self.objects_dir = state_dir / "s3"
        self.items_dir = state_dir / "dynamodb"
        self.run_id = run_id
        self._bucket = bucket
        self._table = table
        self._prefix = RunLayout(run_id).prefix
        self._checkpoints = (f"{self._prefix}answers/", f"{self._prefix}benchmark/checkpoints/")
        self._problem_set_key = problem_set_key
        self._lock = threading.RLock()
        self._sequence = itertools.count()
        self._written: dict[Path, int] = {}
        self._path_locks: dict[Path, threading.Lock] = {}
        self._observers: list[Callable[[str, str, bytes | None], None]] = []

    # -- what is journalled -----------------------------------------------------------------------

    def _object_path(self, bucket: str, key: str) -> Path | None:
        if bucket != self._bucket or not (key.startswith(self._prefix) or key == self._problem_set_key):
            return None
        if any(part in {"", ".", ".."} for part in key.split("/")):
            return None  # never a key the run writes; and it must not name a file outside the journal
        return self.objects_dir / key

    def _item_path(self, table: str, key: dict[str, Any]) -> Path | None:
        pk, sk = key.get("pk", {}).get("S"), key.get("sk", {}).get("S")
        if table != self._table or pk != run_pk(self.run_id) or not isinstance(sk, str):
            return None
        return self.items_dir / f"{quote(sk, safe='#_-.')}.json"

    def _worth_fsync(self, key: str) -> bool:
        """What was paid for, or cannot be had again for free: the answers (the teacher's and the benchmark
        contestants') and batch submissions. The rest of the run's objects (shard inputs, the dataset,
        reports) a resumed run writes again at no cost. Every item is worth it: the ledger and the
        fine-tuning job are items."""
        return key.startswith((*self._checkpoints, f"{self._prefix}batches/"))

    # -- recording --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Copy every write to the run's objects and items into the journal while the block runs."""
        from moto.dynamodb.models import DynamoDBBackend
        from moto.s3.models import S3Backend

        with contextlib.ExitStack() as patches:
            # (backend, method, its argument naming the bucket or table, the one naming the key or item)
            for backend, method, container, key in (
                (S3Backend, "put_object", "bucket_name", "key_name"),
                (S3Backend, "copy_object", "dest_bucket_name", "dest_key_name"),
                (S3Backend, "delete_object", "bucket_name", "key_name"),
                (DynamoDBBackend, "put_item", "table_name", "item_attrs"),
                (DynamoDBBackend, "update_item", "table_name", "key"),
                (DynamoDBBackend, "delete_item", "table_name", "key"),
            ):
                patches.enter_context(self._hook(backend, method, container, key, s3=backend is S3Backend))
            yield

    def observe(self, observer: Callable[[str, str, bytes | None], None]) -> None:
        """Tell `observer` of each journalled write as it is stored: ("object", key, body) or ("item", sort
        key, the item in DynamoDB's JSON), None for a deletion — on the writer's thread, so it must only
        take note (the run's progress display counts answers and finished shards this way)."""
        self._observers.append(observer)

    def _hook(
        self, backend_class: type, method: str, container: str, key_argument: str, *, s3: bool
    ) -> contextlib.AbstractContextManager[Any]:
        from unittest import mock

        original = getattr(backend_class, method)
        signature = inspect.signature(original)
        journal = self

        def journalled(backend: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = signature.bind(backend, *args, **kwargs).arguments
            where, key = arguments[container], arguments[key_argument]
            path = journal._object_path(where, key) if s3 else journal._item_path(where, key)
            if path is None:
                return original(backend, *args, **kwargs)
            with journal._lock:
                result = original(backend, *args, **kwargs)
                content = _stored_object(backend, where, key) if s3 else _stored_item(backend, where, key)
                sequence = next(journal._sequence)
            journal._write(path, content, sequence, fsync=not s3 or journal._worth_fsync(key))
            for observer in journal._observers:
                observer("object" if s3 else "item", key if s3 else key["sk"]["S"], content)
            return result

        return mock.patch.object(backend_class, method, journalled)

    def _write(self, path: Path, content: bytes | None, sequence: int, *, fsync: bool) -> None:
        """Write (or, for None, remove) the file — unless a later store of the same thing got there first."""
        with self._lock:
            path_lock = self._path_locks.setdefault(path, threading.Lock())
        with path_lock:
            if self._written.get(path, -1) > sequence:
                return
            if content is None:
                durable.remove(path, fsync=fsync)
            else:
                durable.write_atomically(path, content, fsync=fsync)
            self._written[path] = sequence

    # -- reading ----------------------------------------------------------------------------------

    def objects(self, prefix: str = "") -> Iterator[tuple[str, Path]]:
        """(key, file) for each journalled object whose key starts with `prefix`, in key order. Only the
        folder the prefix names is walked: a run's answers are one file each, thousands of them."""
        folder = self.objects_dir.joinpath(*prefix.split("/")[:-1])
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not durable.is_temporary(path):
                key = path.relative_to(self.objects_dir).as_posix()
                if key.startswith(prefix):
                    yield key, path

    def object(self, key: str) -> Path | None:
        """The file of the journalled object `key`, if there is one."""
        path = self.objects_dir.joinpath(*key.split("/"))
        return path if path.is_file() else None

    def items(self) -> Iterator[dict[str, Any]]:
        """Each journalled item, in DynamoDB's typed JSON, in sort-key order."""
        if not self.items_dir.is_dir():
            return
        for path in sorted(self.items_dir.glob("*.json"), key=lambda p: unquote(p.stem)):
            if not durable.is_temporary(path):
                item: dict[str, Any] = json.loads(path.read_bytes())
                yield item

    # -- restoring --------------------------------------------------------------------------------

    def restore(self, s3: Any, dynamodb: Any) -> Restored:
        """Put every journalled object and item into a fresh moto (before `recording`, which would only
        copy them back). The run item forgets the failure of the attempt being resumed."""
        objects = items = 0
        for key, path in self.objects(""):
            s3.put_object(Bucket=self._bucket, Key=key, Body=path.read_bytes())
            objects += 1
        for stored in self.items():
            item = stored
            if item.get("sk", {}).get("S") == RUN_SK:
                item = {name: value for name, value in item.items() if name not in FORGOTTEN_ON_RESUME}
            dynamodb.put_item(TableName=self._table, Item=item)
            items += 1
        return Restored(objects=objects, items=items)


def _stored_object(backend: Any, bucket: str, key: str) -> bytes | None:
    stored = backend.get_object(bucket, key)
    return None if stored is None else bytes(stored.value)


def _stored_item(backend: Any, table: str, key: dict[str, Any]) -> bytes | None:
    keys = {"pk": key["pk"], "sk": key["sk"]}
    stored = backend.get_item(table, keys)
    if stored is None:
        return None
    return json.dumps(stored.to_json()["Attributes"], indent=1, sort_keys=True).encode()
