"""RecordFailure: every Catch ends here; the run record gets its status, failed state, error and cause."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import FailureInput
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.failure import record_failure


@logger.inject_lambda_context(correlation_id_path="run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=FailureInput)
def lambda_handler(event: FailureInput, context: LambdaContext) -> dict[str, Any]:
    failure = record_failure(event, runs=adapters.runs())
    metrics.add_dimension(name="Error", value=failure.error)
    metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
    logger.error("run failed", extra=failure.model_dump())
    return failure.model_dump(mode="json")
