"""OpenAIEmulator: the public face of the emulator, in process or on a loopback port."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from synthtune_cli.clock import Clock, WallClock
from synthtune_cli.emulator.app import EmulatorApp
from synthtune_cli.emulator.files import StoredFile
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import KnowledgeItem
from synthtune_cli.emulator.server import EmulatorServer
from synthtune_cli.emulator.state import EmulatorState, ServedRequest

if TYPE_CHECKING:
    import httpx2
    import openai

IN_PROCESS_BASE_URL = "http://openai-emulator.invalid/v1"
API_KEY = "emulator"


class OpenAIEmulator:
    """A stateful, deterministic, OpenAI-compatible service whose models are simulated.

    Use it in process (`openai_client()`, `http_client()`, `wsgi_app`) or on a loopback port (`serve()`).
    Thread-safe.
    """

    def __init__(self, clock: Clock | None = None, knobs: EmulatorKnobs | None = None, seed: int = 0) -> None:
        self._state = EmulatorState(clock or WallClock(), knobs or EmulatorKnobs(), seed)
        self._app = EmulatorApp(self._state)

    @property
    def clock(self) -> Clock:
        return self._state.clock

    @property
    def seed(self) -> int:
        return self._state.seed

    @property
    def knobs(self) -> EmulatorKnobs:
        return self._state.knobs

    def configure(self, **changes: Any) -> EmulatorKnobs:
        """Change some knobs; the result is validated and replaces the current knobs."""
        return self._state.configure(**changes)

    def add_knowledge(self, items: Iterable[KnowledgeItem]) -> int:
        """Teach the world some questions (a later item replaces an earlier one with the same question)."""
        return self._state.add_knowledge(items)

    def inject_errors(self, count: int, status: int = 500, path_prefix: str = "/v1/") -> None:
        """Make the next `count` requests whose path starts with `path_prefix` fail with `status`."""
        with self._state.lock:
            self._state.faults.inject(count, status, path_prefix)

    def reset(self, *, knowledge: bool = False) -> None:
        """Forget files, jobs, batches, fine-tuned models, requests, limits and faults; restore the knobs."""
        self._state.reset(knowledge=knowledge)

    @property
    def wsgi_app(self) -> EmulatorApp:
        return self._app

    def http_client(self) -> httpx2.Client:
        """An httpx2 client whose requests go straight into the emulator, with no socket."""
        import httpx2

        return httpx2.Client(transport=httpx2.WSGITransport(app=self._app))

    def openai_client(self, **kwargs: Any) -> openai.OpenAI:
        """An OpenAI SDK client on the in-process transport; `kwargs` (max_retries, timeout) pass through."""
        import openai

        options: dict[str, Any] = {
            "base_url": IN_PROCESS_BASE_URL,
            "api_key": API_KEY,
            "http_client": self.http_client(),
        }
        options.update(kwargs)
        return openai.OpenAI(**options)

    def serve(self, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False) -> EmulatorServer:
        """Serve on a loopback port (0 picks a free one) until the returned server is closed."""
        return EmulatorServer(self._app, host, port, log_requests=log_requests)

    @property
    def requests(self) -> list[ServedRequest]:
        """Every request served so far, oldest first: (method, path, status)."""
        with self._state.lock:
            return list(self._state.served)

    @property
    def files(self) -> Mapping[str, StoredFile]:
        """Files by id, uploads and job results alike, as they are now (a read-only snapshot)."""
        with self._state.lock:
            self._state.refresh()
            return MappingProxyType(self._state.files.snapshot())

    @property
    def fine_tuning_jobs(self) -> Mapping[str, Mapping[str, Any]]:
        """Jobs by id, each as GET /v1/fine_tuning/jobs/{id} returns it now (a read-only snapshot)."""
        with self._state.lock:
            self._state.refresh()
            return MappingProxyType(self._state.fine_tuning.jobs_snapshot())

    @property
    def batches(self) -> Mapping[str, Mapping[str, Any]]:
        """Batches by id, each as GET /v1/batches/{id} returns it now (a read-only snapshot)."""
        with self._state.lock:
            self._state.refresh()
            return MappingProxyType(self._state.batches.batches_snapshot())
