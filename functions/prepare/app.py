"""Prepare: validate the problem set and configuration, claim it for this run, split, write the shards."""

import datetime as dt
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import DuplicateStart, PrepareInput
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.settings import settings
from synthtune.stages.prepare import prepare_run


@logger.inject_lambda_context(correlation_id_path="run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=PrepareInput)
def lambda_handler(event: PrepareInput, context: LambdaContext) -> dict[str, Any]:
    prepared = prepare_run(
        event,
        data=adapters.artifacts(),
        bucket_store=adapters.artifacts,
        runs=adapters.runs(),
        providers=adapters.providers(),
        today=dt.datetime.now(dt.UTC).date(),
        simulated_providers=settings().simulated_providers,
    )
    if isinstance(prepared, DuplicateStart):
        metrics.add_metric(name="DuplicateStarts", unit=MetricUnit.Count, value=1)
        logger.info("already handled by another run", extra={"duplicate_of": prepared.duplicate_of})
        return prepared.model_dump(mode="json")
    metrics.add_metric(
        name="ProblemsPrepared", unit=MetricUnit.Count, value=prepared.generation.problem_count
    )
    metrics.add_metric(name="ShardsPlanned", unit=MetricUnit.Count, value=prepared.generation.shard_count)
    logger.info("run prepared", extra={"splits": prepared.generation.splits.model_dump()})
    return prepared.model_dump(mode="json")
