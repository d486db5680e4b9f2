"""The run plan: everything a run decides and checks before its first paid call, in one place.

`plan_run` reads and validates the problem set, checks the configuration against the dated catalog and
the student's provider, splits the problems, sizes the shards, estimates the cost against the budget, and
last looks every model up at the endpoint the run will call (free lookups: nothing is generated, trained or
created). Three callers, one plan, so they accept and refuse alike, with the same message:

- Prepare, the first state of every run, in AWS and offline (`stages.prepare`);
- `synthtune validate`, which prints the plan;
- `synthtune run`, before it starts the offline stack or the execution.

The order is fixed, cheapest first: a refusal found offline never waits on a provider, and whatever is
refused, is refused before a token is paid for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import BudgetExceeded, InvalidConfig, InvalidProblemSet
from synthtune.contracts.problems import Problem, ProblemSetFile, read_problem_set
from synthtune.money.catalog import accepts_temperature, model_info, temperature_range
from synthtune.money.estimate import CostEstimate, estimate_run_cost
from synthtune.providers.ports import LiveModelStatus, ModelRole
from synthtune.providers.registry import ProviderRegistry, dataset_format
from synthtune.split import HoldoutSplit, split_problems

MAX_SHARDS = 10_000
"""Each Generate iteration returns `{"index": N}` (at most 16 bytes with its comma); 10,000 of them are
160 KB, inside Step Functions' 256 KB limit on the Map's result."""


@dataclass(frozen=True)
class RunPlan:
    """What a run will do, decided before anything is spent."""

    problem_set: str
    """The set as messages name it: the user's own path, or the object's s3:// URI."""
    config: RunConfig
    problems: list[Problem]
    split: HoldoutSplit
    estimate: CostEstimate | None
    models: dict[ModelRole, LiveModelStatus]
    """Each model as its endpoint described it."""

    @property
    def generated(self) -> list[Problem]:
        """The problems the teacher answers: training and validation."""
        return [*self.split.train, *self.split.validation]

    def shards(self) -> Iterator[list[Problem]]:
        """The generated problems in shards of `shard_size`, in order."""
        iterator = iter(self.generated)
        while chunk := list(islice(iterator, self.config.shard_size)):
            yield chunk

    @property
    def shard_count(self) -> int:
        return -(-len(self.generated) // self.config.shard_size)


def plan_run(
    problem_set: ProblemSetFile, config: RunConfig, *, providers: ProviderRegistry, today: dt.date
) -> RunPlan:
    """The run's plan, or the first reason to refuse it (InvalidProblemSet, InvalidConfig, BudgetExceeded,
    ModelRetired, FineTuneUnavailable), each naming what to change."""
    check_run_config(config, providers, today)
    problems = read_problem_set(problem_set)
    split = split_problems(problems, config.holdout_fraction, config.validation_fraction, config.split_seed)
    check_split(config, split, problem_set.name)
    estimate = estimate_run_cost(config, [*split.train, *split.validation], split.holdout)
    check_budget(config, estimate, problem_set.name)
    models = providers.confirm_models(config)
    return RunPlan(
        problem_set=problem_set.name,
        config=config,
        problems=problems,
        split=split,
        estimate=estimate,
        models=models,
    )


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
            f"${estimate.benchmark_usd:.2f}"
            + (f", probing the student ${estimate.probe_usd:.2f}" if estimate.probe_usd else "")
            + (f", serving ${estimate.serving_usd:.2f}" if estimate.serving_usd else "")
            + f"; assuming {estimate.assumptions}), more than budget_usd "
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
