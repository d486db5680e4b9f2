"""Prepare: validate everything a run needs before a single token is paid for.

Claims the problem set for this run, makes the run's plan (`stages.plan`: the problem set read and
validated, the configuration and every model checked — the models looked up at their endpoints, for
free —, the split, the shards and the estimate against the budget), and writes the shards and the
manifest the Generate Map reads. `synthtune validate` and `synthtune run` make the same plan first, so
they refuse what Prepare would, with the same message. Any failure here costs nothing and says exactly
what to fix.

One run per version of a problem set: before any work, Prepare claims the object's version (its ETag, and
version id in a versioned bucket, as S3 has it now) for this run with a conditional write in DynamoDB. A
second start for the same version — S3 delivering its event twice, an upload under problem-sets/ and a
start-execution for it — finds the claim taken and ends at once as a `DuplicateStart` naming the run that
handles it. A run that ended without success gives its claim up to the next start, and `rerun` takes it
on purpose. This is a claim, not Powertools' idempotency: that would hand the second execution the first
one's output, and it would go on to generate, fine-tune and benchmark a second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from pydantic import ValidationError

from synthtune.contracts.config import RunConfig, load_run_config
from synthtune.contracts.errors import InvalidConfig, InvalidProblemSet, describe_fields
from synthtune.contracts.models import provider_of
from synthtune.contracts.problems import ProblemSetFile, problem_set_format
from synthtune.contracts.workflow import (
    BenchmarkPlan,
    DuplicateStart,
    GenerationPlan,
    PrepareInput,
    PrepareOutput,
    RunRef,
    S3Location,
    ShardRef,
    StartRequest,
)
from synthtune.providers.registry import ProviderRegistry, roles
from synthtune.records.artifacts import ArtifactStore, StoredObject
from synthtune.records.items import (
    UNSUCCESSFUL_STATUSES,
    ProblemSetClaim,
    now_iso,
    problem_set_pk,
    problem_set_version_sk,
)
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.plan import plan_run


def _start_request(raw: dict[str, object]) -> StartRequest:
    try:
        return StartRequest.model_validate(raw)
    except ValidationError as error:
        expected = '{"key": ..., "bucket"?, "config"?}'
        raise InvalidConfig(f"execution input: {describe_fields(error)} (expected {expected})") from None


def _resolve_problem_set(store: ArtifactStore, key: str) -> tuple[str, StoredObject, ProblemSetFile]:
    """The key as given, or URL-decoded (S3 event payloads carry keys URL-encoded, spaces as '+'), the
    version of the object there now, and the object as the plan reads it; refused unless it can be a
    problem set."""
    try:
        found = store.stored(key)
        decoded = unquote_plus(key)
        if found is None and decoded != key:
            key, found = decoded, store.stored(decoded)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise InvalidProblemSet(
            f"cannot read {store.uri(key)} ({code}); the deployed functions read problem sets from the "
            "stack's data bucket only"
        ) from error
    if found is None:
        raise InvalidProblemSet(f"{store.uri(key)} does not exist")
    if key.endswith("/"):
        raise InvalidProblemSet(
            f"{store.uri(key)} is a folder, not a problem set; upload a .jsonl, .json or .csv file into it"
        )
    resolved = key
    problem_set = ProblemSetFile(
        name=store.uri(key), size=found.size, lines=lambda: store.iter_lines(resolved)
    )
    problem_set_format(problem_set)  # refuses a name that is no problem set's, and an empty object
    return key, found, problem_set


def _claim(
    runs: RunStore, run_id: str, location: S3Location, stored: StoredObject, rerun: bool
) -> str | None:
    """Make this run the one run of this version of the problem set: None if it is, else the run that is."""
    pk, sk = problem_set_pk(location.uri), problem_set_version_sk(stored.etag, stored.version_id)
    claim = ProblemSetClaim(run_id=run_id, etag=stored.etag, version_id=stored.version_id)
    holder = runs.claim(pk, sk, claim)
    if holder == run_id:
        return None
    ended = (runs.get(holder) or {}).get("status")
    if rerun or ended in UNSUCCESSFUL_STATUSES:
        holder = runs.claim(pk, sk, claim.model_copy(update={"claimed_at": now_iso()}), replacing=holder)
    return None if holder == run_id else holder


def _duplicate(
    runs: RunStore, run_id: str, holder: str, location: S3Location, stored: StoredObject
) -> DuplicateStart:
    status = (runs.get(holder) or {}).get("status", "RUNNING")
    message = (
        f"{location.uri} (ETag {stored.etag}) is already handled by run {holder} ({status}); this execution "
        'stops here and spends nothing. To run it again anyway, start an execution with "rerun": true.'
    )
    runs.update(
        run_id,
        status="DUPLICATE",
        stage="done",
        duplicate_of=holder,
        problem_set=location.model_dump(),
        problem_set_version={"etag": stored.etag, "version_id": stored.version_id},
        cause=message,
        finished_at=now_iso(),
    )
    return DuplicateStart(
        run_id=run_id,
        duplicate_of=holder,
        problem_set=location,
        etag=stored.etag,
        version_id=stored.version_id,
        message=message,
    )


def simulated_models(config: RunConfig, simulated_providers: frozenset[str]) -> list[str]:
    """The run's models whose provider the emulator stands in for (the fine-tuned model is the student's
    provider's too)."""
    return sorted({model for model in roles(config).values() if provider_of(model) in simulated_providers})


def prepare_run(
    task: PrepareInput,
    *,
    data: ArtifactStore,
    bucket_store: Callable[[str], ArtifactStore],
    runs: RunStore,
    providers: ProviderRegistry,
    today: dt.date,
    simulated_providers: frozenset[str] = frozenset(),
) -> PrepareOutput | DuplicateStart:
    """`simulated_providers`: the providers the project's emulator answers for (`Settings`), recorded on
    the run as the models they simulate, so that its reports say the numbers are not the real models'."""
    run_id = task.run_id
    runs.update(run_id, status="RUNNING", stage="prepare", started_at=now_iso())

    request = _start_request(task.input)
    config = load_run_config(request.config, source="execution input config")
    problem_store = data if request.bucket in (None, data.bucket) else bucket_store(request.bucket)
    key, stored, problem_set = _resolve_problem_set(problem_store, request.key)
    location = S3Location(bucket=problem_store.bucket, key=key)
    holder = _claim(runs, run_id, location, stored, request.rerun)
    if holder is not None:
        return _duplicate(runs, run_id, holder, location, stored)
    runs.update(
        run_id,
        problem_set=location.model_dump(),
        problem_set_version={"etag": stored.etag, "version_id": stored.version_id},
        config=config.model_dump(mode="json"),
        simulated_models=simulated_models(config, simulated_providers),
    )

    plan = plan_run(problem_set, config, providers=providers, today=today)

    layout = RunLayout(run_id)
    shards: list[ShardRef] = []
    for index, chunk in enumerate(plan.shards()):
        data.write_jsonl(layout.shard_input(index), chunk)
        shards.append(ShardRef(index=index, problem_count=len(chunk)))
    data.write_json(layout.manifest, [shard.model_dump() for shard in shards])
    data.write_jsonl(layout.holdout, plan.split.holdout)
    data.write_json(layout.config, config.model_dump(mode="json"))

    generation = GenerationPlan(
        manifest_key=layout.manifest,
        shard_count=len(shards),
        problem_count=len(plan.generated),
        splits=plan.split.counts,
    )
    runs.update(
        run_id,
        stage="generate",
        splits=plan.split.counts.model_dump(),
        shard_count=len(shards),
        problem_count=len(plan.problems),
        estimate=plan.estimate.model_dump() if plan.estimate else None,
    )
    return PrepareOutput(
        run=RunRef(run_id=run_id, bucket=data.bucket, problem_set=location, config=config),
        generation=generation,
        benchmark=BenchmarkPlan(
            problem_count=len(plan.split.holdout), contestants=list(config.benchmark_contestants)
        ),
    )
