"""The offline runtime: template.yaml and the real state machine on moto, the handlers in-process.

Everything comes from the two files that are deployed: resource properties, function handlers and
the shared environment from template.yaml; the workflow from statemachine/pipeline.asl.json with its
DefinitionSubstitutions resolved as CloudFormation would. moto's Step Functions interpreter executes
the definition; each Lambda task it reaches is dispatched to the handler named by the function's
CodeUri and Handler, in this process. There is no second copy of the workflow.

Each function gets as many execution environments as its concurrent invocations need, as in Lambda
(a Map's iterations up to its MaxConcurrency), each serving one invocation at a time, with Powertools'
per-invocation state its own (see `synthtune_cli.environments`); they run on moto's threads.

Time: with a `VirtualClock`, Wait states and retry intervals advance the clock instead of sleeping, so
the fine-tuning poll loop turns as often as it would in the cloud and finishes in milliseconds. With
the `WallClock` (runs against the real OpenAI API) they sleep for real.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import IO, TYPE_CHECKING, Any
from unittest import mock

import boto3

from synthtune.records.artifacts import ArtifactStore
from synthtune_cli.clock import Clock, WallClock
from synthtune_cli.environments import Environments, powertools_per_environment
from synthtune_cli.template import PROJECT_ROOT, TEMPLATE_PATH, load_template, resources_of_type

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
ASL_PATH = PROJECT_ROOT / "statemachine" / "pipeline.asl.json"
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})

# Offline stand-ins for the names CloudFormation would generate.
BUCKET_NAME = "synthtune-local-data"
TABLE_NAME = "synthtune-local-runs"
SECRET_NAME = "synthtune-local/openai-api-key"
STATE_MACHINE_NAME = "synthtune-local-pipeline"

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

_MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


class TemplateNotRunnable(RuntimeError):
    """template.yaml uses something the offline runtime cannot resolve."""


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "offline"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_path: Path
    handler_module: str
    handler_name: str
    timeout_seconds: int
    memory_mb: int


def _function_specs(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    defaults = template.get("Globals", {}).get("Function", {})
    specs = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = {**defaults, **resource.get("Properties", {})}
        module_name, _, handler_name = str(properties["Handler"]).rpartition(".")
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_path=PROJECT_ROOT / str(properties["CodeUri"]) / f"{module_name.replace('.', '/')}.py",
            handler_module=module_name,
            handler_name=handler_name,
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
        )
    return specs


class _Resolver:
    """Resolves the intrinsic functions template.yaml uses, against the offline resources."""

    def __init__(self, template: dict[str, Any], region: str, references: dict[str, str]) -> None:
        self.template = template
        self.region = region
        self.references = references

    def value(self, node: Any, where: str) -> str:
        if isinstance(node, str | int | float):
            return str(node)
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return self._ref(str(node["Ref"]), where)
        if isinstance(node, dict) and set(node) == {"Fn::GetAtt"}:
            logical_id, attribute = node["Fn::GetAtt"]
            resource = self.template["Resources"].get(logical_id, {})
            if resource.get("Type") == "AWS::Serverless::Function" and attribute == "Arn":
                return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{logical_id}"
            if resource.get("Type") == "AWS::IAM::Role" and attribute == "Arn":
                return f"arn:aws:iam::{ACCOUNT_ID}:role/synthtune-local-{logical_id}"
        raise TemplateNotRunnable(f"{where}: cannot resolve {node!r} offline")

    def _ref(self, name: str, where: str) -> str:
        if name in self.references:
            return self.references[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return str(parameter["Default"])
        raise TemplateNotRunnable(f"{where}: cannot resolve Ref {name} offline")


class OfflineStack:
    """The stack of template.yaml on moto, with the Lambda handlers running in this process.

    Use as a context manager. `parameters` overrides template parameters (e.g. OpenAIBaseUrl);
    `openai_api_key` is stored in the offline Secrets Manager secret the handlers read.
    """

    def __init__(
        self,
        *,
        openai_api_key: str,
        parameters: dict[str, str] | None = None,
        clock: Clock | None = None,
        region: str = DEFAULT_REGION,
        log_stream: IO[str] | None = None,
        extra_environment: dict[str, str] | None = None,
        template_path: Path = TEMPLATE_PATH,
        live_bedrock: bool = False,
    ) -> None:
        self.template = load_template(template_path)
        self.region = region
        self.clock = clock or WallClock()
        self._openai_api_key = openai_api_key
        self._parameters = parameters or {}
        self._log_stream = log_stream
        self._extra_environment = extra_environment or {}
        self._live_bedrock = live_bedrock
        self._functions = _function_specs(self.template)
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._import_lock = threading.Lock()
        self.environments = Environments()
        self._invocations = threading.Condition()
        self._watchers: dict[object, Callable[[dict[str, Any]], None]] = {}
        self._in_flight = 0
        self._draining = False
        self._exit_stack = contextlib.ExitStack()
        self.state_machine_arn = ""

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> OfflineStack:
        try:
            self._start()
        except BaseException:
            self._exit_stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._stop_running_executions()
        finally:
            self._exit_stack.close()

    def _start(self) -> None:
        from moto import mock_aws

        stack = self._exit_stack
        log_stream = _WholeLines(self._log_stream) if self._log_stream is not None else None
        stack.enter_context(_quiet_moto(log_stream))
        if log_stream is not None:
            # What Lambda sends to CloudWatch Logs — Powertools' JSON logs and EMF metrics, both printed
            # to stdout — goes to the run's log file instead of the user's terminal.
            stack.enter_context(contextlib.redirect_stdout(log_stream))
        stack.enter_context(mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": self.region}))
        stack.enter_context(mock_aws(config=self._moto_config()))
        stack.enter_context(atomic_data_stores())
        stack.enter_context(powertools_per_environment())
        self._patch_interpreter()

        secret_arn = self.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=self._openai_api_key
        )["ARN"]
        references = {
            "DataBucket": BUCKET_NAME,
            "RunsTable": TABLE_NAME,
            "OpenAIApiKeySecret": secret_arn,
            **self._parameters,
        }
        resolver = _Resolver(self.template, self.region, references)
        stack.enter_context(mock.patch.dict(os.environ, self._environment(resolver)))
        self._create_bucket()
        self._create_table()
        self.state_machine_arn = self._create_state_machine(resolver)

        from synthtune import adapters

        adapters.reset()
        stack.callback(adapters.reset)

    def _moto_config(self) -> DefaultConfig:
        """moto for AWS; with live Bedrock, Bedrock's requests pass through to the real service (signed
        with the user's own credentials) while everything else stays emulated."""
        if not self._live_bedrock:
            return _MOTO_CONFIG
        return {
            **_MOTO_CONFIG,
            "core": {
                "mock_credentials": False,
                "passthrough": {"services": ["bedrock", "bedrock-runtime"], "urls": []},
            },
        }

    def _environment(self, resolver: _Resolver) -> dict[str, str]:
        """The functions' shared environment (template Globals), plus the offline switches."""
        variables = (
            self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        for logical_id, resource in resources_of_type(self.template, "AWS::Serverless::Function").items():
            if resource.get("Properties", {}).get("Environment"):
                # One process hosts every handler, so they can share one environment only.
                raise TemplateNotRunnable(
                    f"{logical_id} sets its own Environment; offline needs Globals only"
                )
        environment = {
            name: resolver.value(value, f"Globals environment {name}") for name, value in variables.items()
        }
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon offline
        environment.update(self._extra_environment)
        return environment

    def _create_bucket(self) -> None:
        s3 = self.client("s3")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=BUCKET_NAME)
        else:
            s3.create_bucket(
                Bucket=BUCKET_NAME, CreateBucketConfiguration={"LocationConstraint": self.region}
            )

    def _create_table(self) -> None:
        properties = self.template["Resources"]["RunsTable"]["Properties"]
        self.client("dynamodb").create_table(
            TableName=TABLE_NAME,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        )

    def _create_state_machine(self, resolver: _Resolver) -> str:
        machines = resources_of_type(self.template, "AWS::Serverless::StateMachine")
        if len(machines) != 1:
            raise TemplateNotRunnable(f"expected one state machine in template.yaml, found {len(machines)}")
        ((logical_id, machine),) = machines.items()
        properties = machine["Properties"]
        definition = (PROJECT_ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
        for name, value in properties.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace(f"${{{name}}}", resolver.value(value, f"{logical_id} {name}"))
        arn: str = self.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/synthtune-local-pipeline",
            type=properties.get("Type", "STANDARD"),
        )["stateMachineArn"]
        return arn

    # -- moto's interpreter -----------------------------------------------------------------------

    def _patch_interpreter(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        stack = self._exit_stack
        dispatch = self._dispatch

        def invoke(
            backend: object,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            return dispatch(function_name, body, response_headers)

        stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", invoke))
        self._patch_history_events()
        if isinstance(self.clock, WallClock):
            return
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        clock = self.clock

        def wait_interval(function: object, env: object, wait_seconds: int) -> None:
            clock.sleep(wait_seconds)

        stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
        # The retrier calls time.sleep(interval) on its module's `time`; give it the clock's sleep.
        stack.enter_context(mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=clock.sleep)))
        # An invocation's rate-limit gate (and its deadline) runs on the same clock as the emulator's
        # rate-limit window.
        import synthtune.engine.pacing

        on_clock = SimpleNamespace(monotonic=clock.now, sleep=clock.sleep)
        stack.enter_context(mock.patch.object(synthtune.engine.pacing, "time", on_clock))

    def _patch_history_events(self) -> None:
        """Hand each history event of a watched execution to its watcher as the interpreter publishes it
        (see `watch`)."""
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

        publish = EventManager._publish_history_event
        watchers = self._watchers

        def published(manager: Any, *args: Any, **kwargs: Any) -> None:
            publish(manager, *args, **kwargs)
            watcher = watchers.get(manager)
            if watcher is not None:
                watcher(manager._history_event_list[-1])

        self._exit_stack.enter_context(mock.patch.object(EventManager, "_publish_history_event", published))

    def watch(self, execution_arn: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Call `on_event` with each history event of the execution: those it already has, then each one as
        moto's interpreter publishes it — on the interpreter's thread, holding its event lock, so
        `on_event` must only take note. The same events, in the same order, as GetExecutionHistory returns
        (which copies the whole history at every call; a Distributed Map's iterations are not in it)."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        execution: Any = stepfunctions_parser_backends[ACCOUNT_ID][self.region].describe_execution(
            execution_arn
        )
        deadline = time.monotonic() + 30
        # The execution's environment, which holds its event manager, is made on the interpreter's thread.
        while (worker := execution.exec_worker) is None or worker.env is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} did not start within 30 s")
            time.sleep(0.001)
        manager = worker.env.event_manager
        with manager._mutex:
            for event in manager._history_event_list:
                on_event(event)
            self._watchers[manager] = on_event

    def _handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        with self._import_lock:
            if logical_id not in self._handlers:
                spec = self._functions[logical_id]
                module = _load_module(f"synthtune_functions.{logical_id}", spec.code_path)
                self._handlers[logical_id] = getattr(module, spec.handler_name)
                _redirect_powertools_logs(sys.stdout)
            return self._handlers[logical_id]

    def _dispatch(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        # "arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]" or a bare name.
        logical_id = function_name.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        if logical_id not in self._functions:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(
                "ResourceNotFoundException", f"no function {logical_id} in template.yaml", []
            )
        with self._invocations:
            if self._draining:
                response_headers["x-amz-function-error"] = "Unhandled"
                return _error_payload("Interrupted", "the offline runtime is stopping", [])
            self._in_flight += 1
        try:
            return self._invoke(logical_id, body, response_headers)
        finally:
            with self._invocations:
                self._in_flight -= 1
                self._invocations.notify_all()

    def _invoke(self, logical_id: str, body: Any, response_headers: dict[str, str]) -> bytes:
        spec = self._functions[logical_id]
        event = json.loads(body) if body else {}
        context = LambdaContext(logical_id, spec.timeout_seconds, spec.memory_mb, self.region)
        try:
            handler = self._handler(logical_id)
            with self.environments.serving(logical_id):
                result = handler(event, context)
        except Exception as error:  # a real Lambda reports any exception as a function error
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(type(error).__name__, str(error), traceback.format_tb(error.__traceback__))
        return json.dumps(result).encode()

    def drain(self, on_wait: Callable[[int], None] | None = None) -> None:
        """Refuse every new Lambda invocation and wait until those in flight have returned (after
        `stop`, so that a stopped run's handlers finish writing what they paid for while moto still
        holds it). `on_wait` hears how many are in flight, once, if any are."""
        with self._invocations:
            self._draining = True
            if self._in_flight and on_wait is not None:
                on_wait(self._in_flight)
            while self._in_flight:
                # Woken when an invocation returns; the timeout keeps the wait interruptible (Ctrl-C).
                self._invocations.wait(timeout=0.1)

    # -- using the stack --------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client of this stack's region (the mock intercepts it)."""
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    @property
    def bucket(self) -> str:
        return BUCKET_NAME

    @property
    def table(self) -> str:
        return TABLE_NAME

    def upload(self, key: str, body: bytes) -> None:
        self.client("s3").put_object(Bucket=BUCKET_NAME, Key=key, Body=body)

    def keys(self, prefix: str) -> set[str]:
        """The emulated bucket's keys under a prefix."""
        return ArtifactStore(BUCKET_NAME, self.client("s3")).keys(prefix)

    def download(self, key: str) -> bytes | None:
        s3 = self.client("s3")
        try:
            return bytes(s3.get_object(Bucket=BUCKET_NAME, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def start_execution(self, name: str, execution_input: dict[str, Any]) -> str:
        arn: str = self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        return arn

    def describe(self, execution_arn: str) -> dict[str, Any]:
        description: dict[str, Any] = self.client("stepfunctions").describe_execution(
            executionArn=execution_arn
        )
        return description

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn
        )["events"]
        return events

    def wait(
        self,
        execution_arn: str,
        *,
        timeout_seconds: float = 600,
        poll_seconds: float = 0.05,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the execution leaves RUNNING; stop it and raise if it outlives the timeout."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            description = self.describe(execution_arn)
            if on_poll is not None:
                on_poll(description)
            if description["status"] in FINAL_STATUSES:
                return description
            if time.monotonic() > deadline:
                self.stop(execution_arn, "timed out waiting offline")
                raise TimeoutError(f"{execution_arn} still running after {timeout_seconds} s")
            time.sleep(poll_seconds)

    def stop(self, execution_arn: str, cause: str) -> None:
        with contextlib.suppress(Exception):
            self.client("stepfunctions").stop_execution(
                executionArn=execution_arn, error="Stopped", cause=cause
            )

    def records(self, run_id: str) -> list[dict[str, Any]]:
        from synthtune.records.runs import RunStore

        return RunStore(TABLE_NAME, self.client("dynamodb")).items(run_id)

    def _stop_running_executions(self) -> None:
        # An execution still running when mock_aws exits would call localhost:5000 and fail noisily.
        if not self.state_machine_arn:
            return
        sfn = self.client("stepfunctions")
        for execution in sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]:
            self.stop(execution["executionArn"], "the offline runtime is shutting down")
            with contextlib.suppress(TimeoutError):
                self.wait(execution["executionArn"], timeout_seconds=5)


@contextlib.contextmanager
def atomic_data_stores() -> Iterator[None]:
    """DynamoDB applies each request atomically, an UpdateItem's condition included; moto reads, checks
    and writes in separate steps, and copies the item it updates outside its backend, so two shards
    adding to the run's ledger at once could lose one addition, both pass a budget only one fits, or
    fail copying an item another thread is changing ("dictionary changed size during iteration").
    moto's S3 likewise lists a bucket by iterating the dictionary another thread's PutObject grows.
    Serialise each service's requests, as the real services make each one atomic. A request never
    waits on another service's: handling one calls nothing outside its own backend, except S3's event
    notifications, which only start executions on their own threads. (S3's lock is reentrant because
    its ambiguous path, bucket or key, hands over to the bucket or key handler.)"""
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.responses import S3Response

    s3_lock = threading.RLock()
    patches = [(DynamoHandler, "call_action", threading.Lock())] + [
        (S3Response, name, s3_lock) for name in ("ambiguous_response", "bucket_response", "key_response")
    ]
    with contextlib.ExitStack() as stack:
        for owner, name, lock in patches:
            stack.enter_context(mock.patch.object(owner, name, _holding(lock, getattr(owner, name))))
        yield


def _holding(lock: threading.Lock | threading.RLock, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def holding(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return holding


class _WholeLines(io.TextIOBase):
    """The run's log, written by every execution environment at once: each thread's text is held until it
    ends a line and then written whole (print writes a line and its newline separately, so two EMF blobs
    printed at once could otherwise share a line)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._pending = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines, newline, rest = (getattr(self._pending, "text", "") + text).rpartition("\n")
        if newline:
            with self._lock:
                self._stream.write(lines + newline)
        self._pending.text = rest
        return len(text)

    def flush(self) -> None:
        rest = getattr(self._pending, "text", "")
        self._pending.text = ""
        with self._lock:
            if rest:
                self._stream.write(rest)
            self._stream.flush()


def _error_payload(error_type: str, message: str, stack_trace: list[str]) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack_trace}).encode()


_modules: dict[Path, ModuleType] = {}


def _load_module(name: str, path: Path) -> ModuleType:
    """Import a handler file once per process, under a name of its own (every handler is app.py)."""
    if path in _modules:
        return _modules[path]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TemplateNotRunnable(f"cannot load a handler from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _modules[path] = module
    return module


def _redirect_powertools_logs(stream: IO[str]) -> None:
    """Point the shared Powertools logger at this stack's stdout (it keeps the stream it was born with)."""
    from synthtune.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        # Not setStream(): it flushes the old stream, which an earlier stack may have closed.
        with handler.lock or contextlib.nullcontext():
            handler.stream = stream


@contextlib.contextmanager
def _quiet_moto(stream: IO[str] | io.TextIOBase | None) -> Iterator[None]:
    """moto logs every failed state at ERROR: useful in a log file, noise on a user's terminal."""
    moto_logger = logging.getLogger("moto")
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else logging.NullHandler()
    previous = moto_logger.propagate
    moto_logger.addHandler(handler)
    moto_logger.propagate = False
    try:
        yield
    finally:
        moto_logger.removeHandler(handler)
        moto_logger.propagate = previous
