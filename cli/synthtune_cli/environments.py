"""Lambda execution environments, in one process.

Lambda runs each concurrent invocation of a function in an execution environment of its own, created when
no idle one is free and reused warm afterwards, each serving one invocation at a time. The offline
runtime does the same for the handlers it hosts in this process: `Environments` hands each invocation an
idle environment of its function or makes a new one, so a Map's iterations run as concurrently as their
`MaxConcurrency` lets them, as they do in the cloud.

What an environment must keep to itself is the per-invocation state Powertools holds in process-wide
objects: the logger's keys (function_request_id, cold_start, correlation_id, a shard's index), the metrics
not yet flushed, and whether the environment is cold. While an invocation runs, those objects read and
write the state of its environment (a context variable names it; the threads a handler starts for its
requests inherit it, see `synthtune.engine.chat`), so two shards answering at once log under their own
request ids and each publishes its own metrics. Outside any invocation they keep their own state, as
before. This reaches into aws-lambda-powertools' objects by attribute name; the offline runtime's tests
hold it to the version installed.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

_current: contextvars.ContextVar[ExecutionEnvironment | None] = contextvars.ContextVar(
    "synthtune_execution_environment", default=None
)


@dataclass(eq=False)
class ExecutionEnvironment:
    """One execution environment of one function; serves one invocation at a time."""

    function: str
    number: int
    invocations: int = 0
    cold_start: bool = True
    """Whether the invocation being served is the environment's first."""
    _state: dict[tuple[int, str], Any] = field(default_factory=dict)

    def state(self, owner: object, name: str, initial: Callable[[], Any]) -> Any:
        key = (id(owner), name)
        if key not in self._state:
            self._state[key] = initial()
        return self._state[key]

    def set_state(self, owner: object, name: str, value: Any) -> None:
        self._state[id(owner), name] = value


def current_environment() -> ExecutionEnvironment | None:
    return _current.get()


class Environments:
    """Every function's execution environments: an invocation takes an idle one of its function, or a
    new one when all are busy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._created: dict[str, int] = {}

    @contextlib.contextmanager
    def serving(self, function: str) -> Iterator[ExecutionEnvironment]:
        """An environment of `function`, its own for the invocation run inside the block."""
        with self._lock:
            idle = self._idle.setdefault(function, [])
            if idle:
                environment = idle.pop()
            else:
                self._created[function] = self._created.get(function, 0) + 1
                environment = ExecutionEnvironment(function, self._created[function])
        environment.cold_start = environment.invocations == 0
        environment.invocations += 1
        token = _current.set(environment)
        try:
            yield environment
        finally:
            _current.reset(token)
            with self._lock:
                self._idle[function].append(environment)

    def created(self, function: str) -> int:
        """How many environments `function` has had: the most invocations it served at once."""
        with self._lock:
            return self._created.get(function, 0)


@contextlib.contextmanager
def powertools_per_environment() -> Iterator[None]:
    """Powertools' process-wide logger keys, unflushed metrics and cold start, per execution environment
    while the block runs (see the module's docstring)."""
    import aws_lambda_powertools.logging.logger as powertools_logger

    from synthtune.observability import logger, metrics

    original_cold_start = powertools_logger._is_cold_start

    def is_cold_start() -> bool:
        environment = _current.get()
        return environment.cold_start if environment is not None else original_cold_start()

    with contextlib.ExitStack() as stack:
        stack.enter_context(_per_environment(logger.registered_formatter, ("log_format",)))
        provider = metrics.provider
        names = ("metric_set", "dimension_set", "metadata_set", "dimension_sets", "timestamp")
        stack.enter_context(_per_environment(provider, names))
        stack.enter_context(mock.patch.object(powertools_logger, "_is_cold_start", is_cold_start))
        yield


@contextlib.contextmanager
def _per_environment(owner: Any, names: tuple[str, ...]) -> Iterator[None]:
    """`owner`'s attributes `names`, read and written per execution environment: each environment's start
    as a copy of what they held when this began; outside any environment, the owner's own."""
    initial = {name: copy.deepcopy(owner.__dict__[name]) for name in names}

    def attribute(name: str) -> property:
        def get(self: Any) -> Any:
            environment = _current.get()
            if environment is None:
                return self.__dict__[name]
            return environment.state(self, name, lambda: copy.deepcopy(initial[name]))

        def set_(self: Any, value: Any) -> None:
            environment = _current.get()
            if environment is None:
                self.__dict__[name] = value
            else:
                environment.set_state(self, name, value)

        return property(get, set_)

    original = type(owner)
    per_environment = type(
        f"PerEnvironment{original.__name__}", (original,), {name: attribute(name) for name in names}
    )
    owner.__class__ = per_environment
    try:
        yield
    finally:
        owner.__class__ = original
