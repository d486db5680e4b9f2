"""RecordFailure: every Catch ends here, and EventBridge sends every execution that ended without success;
the run record gets its status, failed state, error and cause, and what the run left running is stopped."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import FailureEvent
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.failure import record_failure


@logger.inject_lambda_context(correlation_id_path="run_id || detail.name")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=FailureEvent)
def lambda_handler(event: FailureEvent, context: LambdaContext) -> dict[str, Any]:
    failure = record_failure(
        event.root, runs=adapters.runs(), data=adapters.artifacts(), providers=adapters.providers()
    )
    if not failure.already_recorded:
        metrics.add_dimension(name="Error", value=failure.error)
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
        left = sum(step.outcome == "failed" for step in failure.cleanup)
        metrics.add_metric(name="CleanupFailures", unit=MetricUnit.Count, value=left)
    logger.error("run failed", extra=failure.model_dump())
    return failure.model_dump(mode="json")
