"""CheckBatch: poll the round's batches; when they are final, checkpoint every answer they returned."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import BatchTask
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.batch import check_batch


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=BatchTask)
def lambda_handler(event: BatchTask, context: LambdaContext) -> dict[str, Any]:
    state = check_batch(
        event,
        data=adapters.artifacts(),
        runs=adapters.runs(),
        batches=adapters.providers().for_model(event.run.config.teacher_model).batches(),
    )
    metrics.add_metric(name="BatchPolls", unit=MetricUnit.Count, value=1)
    logger.info("batch round", extra={"round": state.round, "status": state.status, "missing": state.missing})
    return state.model_dump(mode="json")
