"""`synthtune run`: one pipeline run on this machine, start to finish, and its artifacts on disk.

The run directory is written as the run happens (see `synthtune_cli.run_directory` and
`synthtune_cli.journal`), so a run stopped however it stops — Ctrl-C, kill -9, a crash, its budget — can
be resumed with `--resume RUN_DIR`: a new execution of the same run id, in a fresh moto given the run's
objects and items back, that pays for nothing already answered.

S3, DynamoDB, Secrets Manager and Step Functions are always emulated here (the offline runtime). Each model
provider is either the project's emulator — one server on loopback speaking OpenAI's API and Amazon
Bedrock's, with the problem set as its world knowledge — or the live service: OpenAI's API (or any
OpenAI-compatible server named by OPENAI_BASE_URL), Amazon Bedrock with boto3's usual credentials (or the
endpoints AWS_ENDPOINT_URL_BEDROCK and AWS_ENDPOINT_URL_BEDROCK_RUNTIME name).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shlex
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from synthtune.contracts.config import CONTESTANTS, load_run_config
from synthtune.contracts.errors import InvalidProblemSet
from synthtune.contracts.models import provider_of
from synthtune.contracts.problems import Problem, ProblemSetFile, read_problem_set
from synthtune.records.layout import PROBLEM_SET_PREFIX, RunLayout
from synthtune.stages.report import summarise_run
from synthtune_cli.clock import Clock, VirtualClock, WallClock
from synthtune_cli.journal import RunJournal
from synthtune_cli.offline import OfflineStack
from synthtune_cli.progress import Display, RunProgress, RunStatus, follow, open_display
from synthtune_cli.providers import local_run_providers, plan_local_run
from synthtune_cli.run_directory import (
    Attempt,
    ProviderMode,
    RunDirectory,
    RunDirectoryError,
    RunManifest,
    now_iso,
    resumed_config,
)
from synthtune_cli.run_reports import HOLDOUT_KNOWLEDGE, RunFiles, render_run_reports

if TYPE_CHECKING:
    from synthtune_cli.emulator import OpenAIEmulator

OpenAIMode = ProviderMode

EMULATOR_API_KEY = "sk-emulator"
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
# Offline, the poll loop costs nothing, so the whole run is bounded by real seconds, not the config.
EMULATED_RUN_TIMEOUT_SECONDS = 1800.0
STOP_SECONDS = 30.0
"""Longest Ctrl-C waits for a stopped execution to say so, once nothing of it is in flight."""


class RunSetupError(Exception):
    """The run could not start (missing file, missing key); nothing was executed."""


class RunInterrupted(Exception):
    """Ctrl-C stopped the run; its directory is consistent and `resume_command` goes on with it."""

    def __init__(self, run_dir: Path, answers: int, *, abandoned: bool) -> None:
        super().__init__(f"{run_dir}: interrupted")
        self.run_dir = run_dir
        self.answers = answers
        self.abandoned = abandoned
        """A second Ctrl-C: Lambda invocations still in flight were not waited for."""

    @property
    def resume_command(self) -> str:
        return resume_command(self.run_dir)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str
    error: str | None
    cause: str | None
    run_dir: Path
    summary: dict[str, Any]
    wall_seconds: float
    emulated_seconds: float | None
    answers: int = 0
    """Teacher answers paid for so far, in answers.jsonl (across every attempt)."""

    @property
    def resume_command(self) -> str:
        return resume_command(self.run_dir)


def resume_command(run_dir: Path) -> str:
    return f"synthtune run --resume {shlex.quote(str(run_dir))}"


def new_run_id(problem_set: Path) -> str:
    """Execution names allow letters, digits, '-' and '_', up to 80 characters."""
    stem = "".join(ch if ch.isalnum() else "-" for ch in problem_set.stem.lower()).strip("-")[:32] or "run"
    return f"{stem}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def read_problem_set_file(path: Path) -> list[Problem]:
    """A local problem set, validated exactly as Prepare validates one in S3."""
    return read_problem_set(ProblemSetFile.local(path))


def _knowledge(problem_set: Path) -> list[Any]:
    """The problem set as the emulator's world knowledge; none if it is unreadable (Prepare says why)."""
    from synthtune_cli.emulator import KnowledgeItem

    try:
        problems = read_problem_set_file(problem_set)
    except InvalidProblemSet:
        return []
    return [KnowledgeItem(question=p.question, answer=p.answer, category=p.category) for p in problems]


@dataclass(frozen=True)
class Endpoints:
    """Where the run's model providers are, and what the progress line says of them."""

    openai_base_url: str
    openai_api_key: str
    environment: dict[str, str]
    """Variables the functions get (the emulator's Bedrock endpoints)."""
    described: str
    emulator: OpenAIEmulator | None = None
    """The emulator serving the run, if a provider is emulated."""
    emulator_url: str | None = None
    """Its root URL (Bedrock's endpoint; OpenAI's is under /v1)."""


def _providers_used(config: dict[str, Any] | None) -> set[str]:
    """The providers of the models the run names (the configuration was validated already)."""
    from synthtune.contracts.config import load_run_config
    from synthtune.providers.registry import roles

    return {provider_of(model) for model in roles(load_run_config(config)).values()}


@contextmanager
def _endpoints(
    openai: ProviderMode,
    bedrock: ProviderMode,
    problem_set: Path,
    clock: Clock,
    config: dict[str, Any] | None,
) -> Iterator[Endpoints]:
    """The emulator on loopback for each provider that is emulated; the live settings for the others."""
    api_key, base_url = EMULATOR_API_KEY, ""
    if openai == "live":
        api_key = os.environ.get("OPENAI_API_KEY", "").strip()
        if not api_key and "openai" in _providers_used(config):
            raise RunSetupError("--openai live needs OPENAI_API_KEY in the environment")
        base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if bedrock == "live":
        import boto3

        if boto3.session.Session().get_credentials() is None:
            raise RunSetupError(
                "--bedrock live needs AWS credentials (boto3's usual chain: AWS_PROFILE, "
                "AWS_ACCESS_KEY_ID, ...)"
            )
    live_openai = f"OpenAI: {base_url or 'the OpenAI API'}"
    live_bedrock = "Bedrock: " + (
        os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "").strip() or "Amazon Bedrock"
    )
    if openai == "live" and bedrock == "live":
        yield Endpoints(base_url, api_key or "unused", {}, f"{live_openai} · {live_bedrock}")
        return
    from synthtune_cli.emulator import OpenAIEmulator

    emulator = OpenAIEmulator(clock=clock)
    emulator.add_knowledge(_knowledge(problem_set))
    with emulator.serve(host="127.0.0.1", port=0) as server:
        emulated = f"the emulator at {server.root_url} (simulated models)"
        yield Endpoints(
            openai_base_url=server.base_url if openai == "emulator" else base_url,
            openai_api_key=api_key or "unused",
            environment={
                **(server.bedrock_environment() if bedrock == "emulator" else {}),
                # Prepare records on the run which models these simulate: both reports say so at the top.
                "SIMULATED_PROVIDERS": ",".join(
                    name for name, mode in (("openai", openai), ("bedrock", bedrock)) if mode == "emulator"
                ),
            },
            described=" · ".join(
                [
                    f"OpenAI: {emulated}" if openai == "emulator" else live_openai,
                    f"Bedrock: {emulated}" if bedrock == "emulator" else live_bedrock,
                ]
            ),
            emulator=emulator,
            emulator_url=server.root_url,
        )


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")


def _export(stack: OfflineStack, run_id: str, description: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Everything the run left behind, copied from the emulated S3 and DynamoDB into run_dir."""
    layout = RunLayout(run_id)
    records = stack.records(run_id)
    _write_json(run_dir / "records.json", records)
    _write_json(run_dir / "history.json", stack.history(description["executionArn"]))
    # The dataset's files, card, drop log and exports, as laid out under dataset/ (exports in folders).
    for key in sorted(stack.keys(layout.dataset_prefix)):
        body = stack.download(key)
        if body is not None:
            target = run_dir / key.removeprefix(layout.dataset_prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    files = RunFiles.local(run_dir)
    for key, path in (
        (layout.benchmark, run_dir / "benchmark.json"),
        (layout.report, files.report),
        (layout.report_html, files.report_html),
        (layout.training_metrics, files.training_metrics),
    ):
        body = stack.download(key)
        if body is not None:
            path.write_bytes(body)
    for contestant in CONTESTANTS:
        body = stack.download(layout.benchmark_answers(contestant))
        if body is not None:
            files.answers.mkdir(exist_ok=True)
            (files.answers / f"{contestant}.jsonl").write_bytes(body)
    knowledge = stack.download(layout.holdout_knowledge)
    if knowledge is not None:
        files.answers.mkdir(exist_ok=True)
        (files.answers / HOLDOUT_KNOWLEDGE).write_bytes(knowledge)

    stored = stack.download(layout.summary)
    if stored is not None:
        summary: dict[str, Any] = json.loads(stored)
    else:
        # A failed run has no report of its own: summarise what its records hold, and draw its reports
        # from them and from whatever else it left in the run directory.
        summary = summarise_run(run_id, records).model_dump(mode="json")
        if not files.report.exists():
            render_run_reports(run_dir)
    summary["execution"] = {
        "arn": description["executionArn"],
        "status": description["status"],
        "error": description.get("error"),
        "cause": description.get("cause"),
    }
    _write_json(run_dir / "summary.json", summary)
    return summary


def run_locally(
    problem_set: Path,
    *,
    config: dict[str, Any] | None,
    out_dir: Path,
    openai: ProviderMode = "emulator",
    bedrock: ProviderMode = "emulator",
    run_id: str | None = None,
    progress_stream: IO[str] | None = None,
) -> RunOutcome:
    """A new run of `problem_set`, in OUT_DIR/<run id>/."""
    if not problem_set.is_file():
        raise RunSetupError(f"{problem_set}: no such file")
    run_id = run_id or new_run_id(problem_set)
    if not _EXECUTION_NAME.fullmatch(run_id):
        raise RunSetupError(
            f"run id {run_id!r}: use 1 to 80 letters, digits, '-' or '_' (it names the execution)"
        )
    run_dir = out_dir / run_id
    if run_dir.exists():
        hint = "choose another --run-id or --out"
        if (run_dir / "run.json").is_file():
            hint += f", or go on with that run: {resume_command(run_dir)}"
        raise RunSetupError(f"{run_dir} already exists; {hint}")
    manifest = RunManifest(
        run_id=run_id,
        problem_set=str(problem_set),
        problem_set_key=f"{PROBLEM_SET_PREFIX}{problem_set.name}",
        config=config,
        openai=openai,
        bedrock=bedrock,
    )
    return _execute(
        RunDirectory(run_dir),
        manifest,
        new_problem_set=problem_set,
        progress_stream=progress_stream or sys.stderr,
    )


def resume_locally(
    run_dir: Path,
    *,
    config_changes: dict[str, Any] | None = None,
    config_source: str = "--config",
    openai: ProviderMode | None = None,
    bedrock: ProviderMode | None = None,
    progress_stream: IO[str] | None = None,
) -> RunOutcome:
    """Go on with the run in `run_dir`: a new execution of the same run id, from what the run kept.

    `config_changes` are RunConfig fields to change (a raised budget_usd, say), merged over the run's
    configuration; those the work already paid for depends on cannot change (FIXED_ON_RESUME). The
    providers are the run's: a run answered by the emulator is not finished by a live model.
    """
    directory = RunDirectory(run_dir)
    try:
        manifest = directory.read_manifest()
    except RunDirectoryError as error:
        raise RunSetupError(str(error)) from None
    if manifest.status == "SUCCEEDED":
        raise RunSetupError(f"{run_dir}: the run already SUCCEEDED; there is nothing to resume")
    for name, asked, used in (("openai", openai, manifest.openai), ("bedrock", bedrock, manifest.bedrock)):
        if asked is not None and asked != used:
            raise RunSetupError(
                f"--{name} {asked}: this run was started with --{name} {used}, and a resumed run keeps its "
                "providers (the answers already paid for are theirs); start a new run to change them"
            )
    problem_set_copy = directory.state / "s3" / manifest.problem_set_key
    if not problem_set_copy.is_file():
        raise RunSetupError(f"{run_dir}: the run's copy of its problem set is missing ({problem_set_copy})")
    config = resumed_config(manifest.config, config_changes, config_source)
    # An attempt still "running" ended without a word: killed (the lock, taken next, proves none is at it).
    attempts = [
        attempt if attempt.status != "running" else attempt.model_copy(update={"status": "killed"})
        for attempt in manifest.attempts
    ]
    return _execute(
        directory,
        manifest.model_copy(update={"config": config, "attempts": attempts}),
        new_problem_set=None,
        progress_stream=progress_stream or sys.stderr,
    )


def _execute(
    directory: RunDirectory,
    manifest: RunManifest,
    *,
    new_problem_set: Path | None,
    progress_stream: IO[str],
) -> RunOutcome:
    """One execution of the run: a new run when `new_problem_set` is given, else a resumed one."""
    run_id, run_dir, config = manifest.run_id, directory.path, manifest.config
    # Emulated time when every provider the run uses is emulated; a live service's jobs take real time.
    modes = {"openai": manifest.openai, "bedrock": manifest.bedrock}
    emulated = all(modes[provider] == "emulator" for provider in _providers_used(config))
    clock: Clock = VirtualClock() if emulated else WallClock()
    started = time.monotonic()
    problem_set_copy = directory.state / "s3" / manifest.problem_set_key
    knowledge = new_problem_set or problem_set_copy

    # On a terminal the panel shows at once: planning and starting moto and the emulator take seconds
    # before the execution's first event. The run's own lines start once the plan is accepted, so a
    # refused run says only what validate says.
    display = open_display(progress_stream, started)
    display.show(RunStatus(stage="planning: the problem set, the budget, the models at their endpoints"))
    with ExitStack() as stack_of_contexts, warnings.catch_warnings():
        stack_of_contexts.callback(display.close)
        # A handler that fails before adding a metric makes Powertools warn; the failure says more.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        endpoints = stack_of_contexts.enter_context(
            _endpoints(manifest.openai, manifest.bedrock, knowledge, clock, config)
        )
        if new_problem_set is not None:
            _plan(new_problem_set, manifest, endpoints)
        display.print(f"synthtune run {run_id}")
        display.show(RunStatus(stage="starting emulated AWS (moto) from template.yaml"))
        try:
            stack_of_contexts.enter_context(directory.locked())
        except RunDirectoryError as error:
            raise RunSetupError(str(error)) from None
        directory.write_manifest(manifest)
        log = stack_of_contexts.enter_context((run_dir / "lambda.log").open("a", encoding="utf-8"))
        stack = stack_of_contexts.enter_context(
            OfflineStack(
                openai_api_key=endpoints.openai_api_key,
                parameters={"OpenAIBaseUrl": endpoints.openai_base_url},
                clock=clock,
                log_stream=log,
                extra_environment=endpoints.environment,
                live_bedrock=manifest.bedrock == "live",
            )
        )
        journal = directory.journal(manifest, bucket=stack.bucket, table=stack.table)
        emulator = endpoints.emulator
        if new_problem_set is None:
            _restore(directory, journal, stack, emulator, display)
        progress = RunProgress(stack, run_id, display)
        journal.observe(progress.on_write)
        stack_of_contexts.enter_context(journal.recording())
        if emulator is not None:
            emulator.keep_state_in(directory.emulator_state)
            stack_of_contexts.callback(emulator.keep_state_in, None)
        display.print(f"  problem set {manifest.problem_set} · AWS emulated by moto · {endpoints.described}")
        if new_problem_set is not None:
            stack.upload(manifest.problem_set_key, new_problem_set.read_bytes())
        emulated_start = clock.now()
        execution_arn, manifest = _start_execution(stack, directory, manifest)
        try:
            description = follow(
                stack, execution_arn, progress, timeout_seconds=_run_timeout(emulated, config)
            )
        except KeyboardInterrupt:
            display.close()
            abandoned = _stop(stack, execution_arn, progress_stream)
            description = stack.describe(execution_arn)
            _, answers = _finish(directory, manifest, stack, journal, description, status="interrupted")
            raise RunInterrupted(run_dir, answers, abandoned=abandoned) from None
        display.close()
        summary, answers = _finish(directory, manifest, stack, journal, description, status=None)

    return RunOutcome(
        run_id=run_id,
        status=description["status"],
        error=description.get("error"),
        cause=description.get("cause"),
        run_dir=run_dir,
        summary=summary,
        wall_seconds=time.monotonic() - started,
        emulated_seconds=clock.now() - emulated_start if isinstance(clock, VirtualClock) else None,
        answers=answers,
    )


def _plan(problem_set: Path, manifest: RunManifest, endpoints: Endpoints) -> None:
    """What Prepare would refuse is refused now, with its message, before anything starts."""
    providers = local_run_providers(
        endpoints.openai_base_url,
        lambda: endpoints.openai_api_key,
        endpoints.emulator_url if manifest.bedrock == "emulator" else None,
    )
    plan_local_run(problem_set, load_run_config(manifest.config), providers, endpoints.emulator_url)


def _run_timeout(emulated: bool, config: dict[str, Any] | None) -> float:
    """Offline, the poll loop costs nothing, so an emulated run is bounded by real seconds, not its config."""
    if emulated:
        return EMULATED_RUN_TIMEOUT_SECONDS
    return float((config or {}).get("max_wait_seconds", 86_400)) + 6 * 3600


def _restore(
    directory: RunDirectory,
    journal: RunJournal,
    stack: OfflineStack,
    emulator: OpenAIEmulator | None,
    display: Display,
) -> None:
    """What the run kept, back into the fresh moto (and emulator) before a resumed execution starts."""
    restored = journal.restore(stack.client("s3"), stack.client("dynamodb"))
    if emulator is not None and directory.emulator_state.is_file():
        emulator.load_state(directory.emulator_state)
    paid = sum(1 for _ in journal.objects(f"{RunLayout(journal.run_id).prefix}answers/"))
    display.print(
        f"  resuming from {directory.path}: {restored.objects} objects and {restored.items} records kept, "
        f"{paid} teacher answers already paid for"
    )


def _start_execution(
    stack: OfflineStack, directory: RunDirectory, manifest: RunManifest
) -> tuple[str, RunManifest]:
    """A new execution named by the run id (Prepare takes the run id from it), recorded in run.json."""
    execution_input: dict[str, Any] = {"key": manifest.problem_set_key}
    if manifest.config is not None:
        execution_input["config"] = manifest.config
    execution_arn = stack.start_execution(manifest.run_id, execution_input)
    attempt = Attempt(execution_arn=execution_arn, started_at=now_iso())
    manifest = manifest.model_copy(update={"status": "running", "attempts": [*manifest.attempts, attempt]})
    directory.write_manifest(manifest)
    return execution_arn, manifest


def _stop(stack: OfflineStack, execution_arn: str, stream: IO[str]) -> bool:
    """Stop the execution after Ctrl-C and wait for the Lambda invocations in flight, whose answers are
    paid for and still to be checkpointed; True if a second Ctrl-C abandoned them."""
    stack.stop(execution_arn, "interrupted (Ctrl-C)")

    def waiting(in_flight: int) -> None:
        print(
            f"synthtune: stopping; waiting for {in_flight} Lambda invocation(s) in flight to finish, so "
            "that what they paid for is kept (Ctrl-C again to abandon them)",
            file=stream,
            flush=True,
        )

    try:
        stack.drain(on_wait=waiting)
        # moto's interpreter marks the execution ABORTED when it next looks up, which takes a moment.
        with suppress(TimeoutError):
            stack.wait(execution_arn, timeout_seconds=STOP_SECONDS, poll_seconds=0.02)
    except KeyboardInterrupt:
        return True
    return False


def _finish(
    directory: RunDirectory,
    manifest: RunManifest,
    stack: OfflineStack,
    journal: RunJournal,
    description: dict[str, Any],
    *,
    status: str | None,
) -> tuple[dict[str, Any], int]:
    """The run's artifacts, answers.jsonl and run.json as the execution left them."""
    summary = _export(stack, manifest.run_id, description, directory.path)
    answers = directory.write_answers(journal, manifest.run_id)
    final = status or description["status"]
    attempt = manifest.attempts[-1].model_copy(
        update={"status": final, "error": description.get("error"), "cause": description.get("cause")}
    )
    directory.write_manifest(
        manifest.model_copy(update={"status": final, "attempts": [*manifest.attempts[:-1], attempt]})
    )
    return summary, answers
