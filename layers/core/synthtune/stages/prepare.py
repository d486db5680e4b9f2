"""Prepare: validate everything a run needs before a single token is paid for.

Reads and validates the problem set and the configuration, checks that the student can be fine-tuned
at all, splits the problems, and writes the shard manifest the Generate Map reads. Any failure here
costs nothing and says exactly what to fix.

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
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from pydantic import ValidationError

from synthtune.contracts.config import RunConfig, load_run_config
from synthtune.contracts.errors import BudgetExceeded, InvalidConfig, InvalidProblemSet, describe_fields
from synthtune.contracts.problems import Problem, ProblemSetFile, detect_format, read_problem_set
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
from synthtune.money.catalog import accepts_temperature, model_info, temperature_range
from synthtune.money.estimate import CostEstimate, estimate_run_cost
from synthtune.providers.registry import ProviderRegistry, dataset_format
from synthtune.records.artifacts import ArtifactStore, StoredObject
from synthtune.records.layout import RunLayout
from synthtune.records.runs import (
    UNSUCCESSFUL_STATUSES,
    RunStore,
    now_iso,
    problem_set_pk,
    problem_set_version_sk,
)
from synthtune.split import HoldoutSplit, split_problems

MAX_SHARDS = 10_000
"""Each Generate iteration returns `{"index": N}` (at most 16 bytes with its comma); 10,000 of them are
160 KB, inside Step Functions' 256 KB limit on the Map's result."""


def _start_request(raw: dict[str, object]) -> StartRequest:
    try:
        return StartRequest.model_validate(raw)
    except ValidationError as error:
        expected = '{"key": ..., "bucket"?, "config"?}'
        raise InvalidConfig(f"execution input: {describe_fields(error)} (expected {expected})") from None


def _resolve_problem_set(store: ArtifactStore, key: str) -> tuple[str, StoredObject]:
    """The key as given, or URL-decoded (S3 event payloads carry keys URL-encoded, spaces as '+'), and the
    version of the object there now; refused unless it can be a problem set."""
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
    detect_format(key)  # refuses a name that is no problem set's
    if found.size == 0:
        raise InvalidProblemSet(f"{store.uri(key)} is empty (0 bytes)")
    return key, found


def _claim(
    runs: RunStore, run_id: str, location: S3Location, stored: StoredObject, rerun: bool
) -> str | None:
    """Make this run the one run of this version of the problem set: None if it is, else the run that is."""
    pk, sk = problem_set_pk(location.uri), problem_set_version_sk(stored.etag, stored.version_id)
    holder = runs.claim(pk, sk, run_id, etag=stored.etag, version_id=stored.version_id)
    if holder == run_id:
        return None
    ended = (runs.get(holder) or {}).get("status")
    if rerun or ended in UNSUCCESSFUL_STATUSES:
        holder = runs.claim(pk, sk, run_id, replacing=holder, etag=stored.etag, version_id=stored.version_id)
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


def _read_problems(store: ArtifactStore, key: str, size: int) -> list[Problem]:
    return read_problem_set(
        ProblemSetFile(name=store.uri(key), size=size, lines=lambda: store.iter_lines(key))
    )


def _chunks(problems: Sequence[Problem], size: int) -> Iterator[list[Problem]]:
    iterator = iter(problems)
    while chunk := list(islice(iterator, size)):
        yield chunk


def check_budget(config: RunConfig, estimate: CostEstimate | None, source: str) -> None:
    """Refuse a run whose expected cost is over budget, or whose budget cannot be enforced."""
    if config.budget_usd is None:
        return
    if estimate is None:
        raise InvalidConfig(
            "budget_usd is set but the teacher, student or judge model has no price in the catalog, "
            "so spending cannot be counted; add the prices or remove budget_usd"
        )
    if estimate.unpriced:
        raise InvalidConfig(
            f"budget_usd is set but the catalog has no price for {', '.join(estimate.unpriced)}, so that "
            "spending cannot be counted; choose priced models (see the README's table) or remove budget_usd"
        )
    if estimate.total_usd > config.budget_usd:
        raise BudgetExceeded(
            f"{source}: this run is expected to cost ${estimate.total_usd:.2f} (generation "
            f"${estimate.generation_usd:.2f}, fine-tuning ${estimate.fine_tuning_usd:.2f}, benchmark "
            f"${estimate.benchmark_usd:.2f}; assuming {estimate.assumptions}), more than budget_usd "
            f"${config.budget_usd:.2f}. Raise the budget, or use fewer problems or samples, or "
            'generation.mode "batch" (half price). Nothing has been spent.'
        )


def check_run_config(config: RunConfig, providers: ProviderRegistry, today: dt.date) -> None:
    """Everything about the configuration a provider would refuse later, refused now, offline: models
    retired or not fine-tunable (today, where the run would fine-tune), hyperparameters out of the
    student's provider's range, a temperature the teacher does not take, a generation mode its provider
    does not offer, a student that would need hourly Provisioned Throughput without leave to pay for it."""
    providers.check_models(config, today)
    student = providers.for_model(config.student_model)
    student.fine_tuning().check_hyperparameters(config.fine_tune, config.student_model)
    teacher = providers.for_model(config.teacher_model)
    # At temperature 0 every sample is the same answer: paying N times for one vote.
    if (
        config.generation.samples > 1
        and config.teacher_temperature == 0
        and accepts_temperature(config.teacher_model)
    ):
        raise InvalidConfig(
            f"generation.samples is {config.generation.samples} but teacher_temperature is 0, so every "
            "sample would be the same answer; set teacher_temperature (e.g. 0.7) or samples to 1"
        )
    allowed = temperature_range(config.teacher_model)
    if allowed is not None and not allowed[0] <= config.teacher_temperature <= allowed[1]:
        raise InvalidConfig(
            f"teacher_temperature is {config.teacher_temperature:g}; {config.teacher_model} takes "
            f"{allowed[0]:g} to {allowed[1]:g}"
        )
    if config.generation.mode == "batch" and not teacher.batch_generation:
        raise InvalidConfig(
            f"generation.mode is 'batch' but the teacher {config.teacher_model} is a {teacher.name} model, "
            f"and synthtune uses batches only on {', '.join(providers.batch_providers())}; set "
            "generation.mode 'online'"
        )
    info = model_info(config.student_model)
    tuning = info.fine_tuning if info is not None else None
    if (
        tuning is not None
        and tuning.serving == "provisioned_throughput"
        and not config.allow_provisioned_throughput
    ):
        price = info.price.provisioned_throughput_per_hour if info is not None and info.price else None
        cost = f"${price:,.2f} an hour" if price is not None else "an hourly price"
        raise InvalidConfig(
            f"student_model {config.student_model}: its fine-tunes answer only through Provisioned "
            f"Throughput, billed at {cost} for as long as it exists (not per token); set "
            "allow_provisioned_throughput to true to pay for it during the benchmark, or choose a student "
            "served on demand, e.g. 'bedrock/amazon.nova-micro-v1:0'"
        )


def check_split(config: RunConfig, split: HoldoutSplit, source: str) -> None:
    """Refuse a split the run could not fine-tune or benchmark on: nothing held out, fewer or more
    examples than the student's provider takes, more shards than the Generate Map can hold."""
    if not split.holdout:
        raise InvalidProblemSet(
            f"{source}: no problem can be held out for the benchmark; held-out problems need a "
            "reference 'answer' (give more problems answers, or mark some with split 'holdout')"
        )
    fewest, most = dataset_format(config.student_provider).example_bounds(config.student_model)
    if len(split.train) < fewest:
        raise InvalidProblemSet(
            f"{source}: {len(split.train)} problems left for training after holding out "
            f"{len(split.holdout)} and {len(split.validation)} for validation; fine-tuning "
            f"{config.student_model} needs at least {fewest}"
        )
    if most is not None and len(split.train) + len(split.validation) > most:
        raise InvalidProblemSet(
            f"{source}: {len(split.train) + len(split.validation):,} problems for training and "
            f"validation; fine-tuning {config.student_model} takes at most {most:,} examples; hold more out "
            "or split the problem set into runs"
        )

    generated = len(split.train) + len(split.validation)
    shard_count = -(-generated // config.shard_size)
    if shard_count > MAX_SHARDS:
        raise InvalidConfig(
            f"{generated:,} problems in shards of {config.shard_size} make {shard_count:,} shards; at most "
            f"{MAX_SHARDS:,} fit the Generate Map's result; set shard_size to at least "
            f"{-(-generated // MAX_SHARDS)}"
        )


def prepare_run(
    task: PrepareInput,
    *,
    data: ArtifactStore,
    bucket_store: Callable[[str], ArtifactStore],
    runs: RunStore,
    providers: ProviderRegistry,
    today: dt.date,
) -> PrepareOutput | DuplicateStart:
    run_id = task.run_id
    runs.update(run_id, status="RUNNING", stage="prepare", started_at=now_iso())

    request = _start_request(task.input)
    config = load_run_config(request.config, source="execution input config")
    problem_store = data if request.bucket in (None, data.bucket) else bucket_store(request.bucket)
    key, stored = _resolve_problem_set(problem_store, request.key)
    location = S3Location(bucket=problem_store.bucket, key=key)
    holder = _claim(runs, run_id, location, stored, request.rerun)
    if holder is not None:
        return _duplicate(runs, run_id, holder, location, stored)
    runs.update(
        run_id,
        problem_set=location.model_dump(),
        problem_set_version={"etag": stored.etag, "version_id": stored.version_id},
        config=config.model_dump(mode="json"),
    )

    check_run_config(config, providers, today)

    problems = _read_problems(problem_store, key, stored.size)
    split = split_problems(problems, config.holdout_fraction, config.validation_fraction, config.split_seed)
    check_split(config, split, location.uri)
    estimate = estimate_run_cost(config, [*split.train, *split.validation], split.holdout)
    check_budget(config, estimate, location.uri)

    layout = RunLayout(run_id)
    shards: list[ShardRef] = []
    for index, chunk in enumerate(_chunks([*split.train, *split.validation], config.shard_size)):
        data.write_jsonl(layout.shard_input(index), chunk)
        shards.append(ShardRef(index=index, problem_count=len(chunk)))
    data.write_json(layout.manifest, [shard.model_dump() for shard in shards])
    data.write_jsonl(layout.holdout, split.holdout)
    data.write_json(layout.config, config.model_dump(mode="json"))

    generation = GenerationPlan(
        manifest_key=layout.manifest,
        shard_count=len(shards),
        problem_count=len(split.train) + len(split.validation),
        splits=split.counts,
    )
    runs.update(
        run_id,
        stage="generate",
        splits=split.counts.model_dump(),
        shard_count=len(shards),
        problem_count=len(problems),
        estimate=estimate.model_dump() if estimate else None,
    )
    return PrepareOutput(
        run=RunRef(run_id=run_id, bucket=data.bucket, problem_set=location, config=config),
        generation=generation,
        benchmark=BenchmarkPlan(
            problem_count=len(split.holdout), contestants=list(config.benchmark_contestants)
        ),
    )
