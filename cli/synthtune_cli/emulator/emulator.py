"""OpenAIEmulator: the public face of the emulator (OpenAI's API and Amazon Bedrock's), in process or on a
loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from synthtune_cli import durable
from synthtune_cli.clock import Clock, WallClock
from synthtune_cli.emulator.app import EmulatorApp
from synthtune_cli.emulator.files import StoredFile
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import KnowledgeItem
from synthtune_cli.emulator.server import EmulatorServer
from synthtune_cli.emulator.state import DEFAULT_REGION, BilledRequest, EmulatorState, ServedRequest

if TYPE_CHECKING:
    import httpx2
    import openai
    from mypy_boto3_s3 import S3Client

IN_PROCESS_BASE_URL = "http://openai-emulator.invalid/v1"
API_KEY = "emulator"


class OpenAIEmulator:
    """A stateful, deterministic service speaking OpenAI's API and Amazon Bedrock's, with simulated models.

    Use it in process (`openai_client()`, `http_client()`, `wsgi_app`) or on a loopback port (`serve()`;
    boto3 reaches Bedrock there through `server.bedrock_environment()`). Thread-safe.

    `region` appears in Bedrock's ARNs. Customisation jobs read their data from S3 and write their metrics
    there with `s3_client()`, by default `boto3.client("s3", region_name=region)` made on first use: under
    moto's `mock_aws` in the same process, that is moto's S3.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        knobs: EmulatorKnobs | None = None,
        seed: int = 0,
        *,
        region: str = DEFAULT_REGION,
        s3_client: Callable[[], S3Client] | None = None,
    ) -> None:
        self._state = EmulatorState(clock or WallClock(), knobs or EmulatorKnobs(), seed, region, s3_client)
        self._app = EmulatorApp(self._state)

    @property
    def clock(self) -> Clock:
        return self._state.clock

    @property
    def seed(self) -> int:
        return self._state.seed

    @property
    def region(self) -> str:
        return self._state.bedrock.region

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

    def lose_responses(
        self, count: int, status: int = 502, path_prefix: str = "/v1/", method: str = "POST"
    ) -> None:
        """Carry out the next `count` `method` requests whose path starts with `path_prefix`, then answer
        them with `status`: a response lost between the service and the client, the work done (a job
        created, a completion billed) and the caller told it failed."""
        with self._state.lock:
            self._state.faults.lose(count, status, path_prefix, method)

    def lose_fraction(
        self,
        fraction: float,
        *,
        seed: int = 0,
        status: int = 502,
        path_prefix: str = "/v1/",
        method: str = "POST",
    ) -> None:
        """From now on, carry out a share `fraction` of the `method` requests whose path starts with
        `path_prefix`, then answer them with `status` (as `lose_responses` does one by one): the k-th such
        request is lost iff hash(seed, path_prefix, k) < fraction, a fixed sequence per seed. Counted
        losses (`lose_responses`) come first; a later call for the same prefix replaces the fraction, 0
        ends it. Bedrock's model requests are under `path_prefix="/model/"`."""
        with self._state.lock:
            self._state.faults.lose_fraction(fraction, seed, status, path_prefix, method)

    def reset(self, *, knowledge: bool = False) -> None:
        """Forget files, jobs, batches, fine-tuned and custom models, deployments, throughputs, requests,
        limits and faults; restore the knobs."""
        self._state.reset(knowledge=knowledge)

    def save_state(self, path: Path) -> None:
        """Write what the emulator knows of the world to `path` (atomically, fsynced): files, jobs, batches,
        fine-tuned and custom models, deployments, throughputs, the id counters and the clock's time."""
        durable.write_atomically(path, self._state.snapshot(), fsync=True)

    def load_state(self, path: Path) -> None:
        """Know again what `save_state` wrote: a job created before goes on where it was (a virtual clock
        behind the saved time moves up to it). Knobs, the request log and rate-limit windows stay this
        emulator's own."""
        self._state.restore(path.read_bytes())

    def keep_state_in(self, path: Path | None) -> None:
        """Save the state to `path` after every request that may change it (every request but reads and
        model answers), before its response is sent: whoever learns a job's id can find the job again
        after this process is gone. None stops it."""
        if path is None:
            self._state.on_change = None
            return
        target = path

        def save(snapshot: bytes) -> None:
            durable.write_atomically(target, snapshot, fsync=True)

        self._state.on_change = save

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
    def billed(self) -> list[BilledRequest]:
        """Every model request carried out so far, and so billed — OpenAI's chat completions and Bedrock's
        Converse requests, answered or with their response lost — oldest first, as `BilledRequest(api,
        model, input_tokens, output_tokens, lost)`. Batch lines are not here: a batch reports its own
        usage in its output file."""
        with self._state.lock:
            return list(self._state.billed)

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

    @property
    def customization_jobs(self) -> Mapping[str, Mapping[str, Any]]:
        """Bedrock customisation jobs by ARN, each as GetModelCustomizationJob returns it now (the JSON,
        timestamps as ISO 8601 strings; a read-only snapshot)."""
        with self._state.lock:
            now = self._state.refresh()
            return MappingProxyType(self._state.bedrock.jobs.snapshot(now))

    @property
    def custom_models(self) -> Mapping[str, Mapping[str, Any]]:
        """Bedrock custom models by ARN, each as GetCustomModel returns it now (a read-only snapshot)."""
        with self._state.lock:
            self._state.refresh()
            models = self._state.bedrock.custom_models.all()
            return MappingProxyType({model.arn: model.to_api() for model in models})

    @property
    def custom_model_deployments(self) -> Mapping[str, Mapping[str, Any]]:
        """Custom model deployments by ARN, each as GetCustomModelDeployment returns it now."""
        with self._state.lock:
            self._state.refresh()
            return MappingProxyType(self._state.bedrock.deployments.snapshot())

    @property
    def provisioned_throughputs(self) -> Mapping[str, Mapping[str, Any]]:
        """Provisioned Throughputs by ARN, each as GetProvisionedModelThroughput returns it now."""
        with self._state.lock:
            self._state.refresh()
            return MappingProxyType(self._state.bedrock.provisioned.snapshot())
