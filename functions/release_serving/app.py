"""ReleaseServing: delete the fine-tuned model's deployment, after the benchmark or after a failure."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import ServingTask
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.serve import release_serving


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=ServingTask)
def lambda_handler(event: ServingTask, context: LambdaContext) -> dict[str, Any]:
    serving = adapters.providers().provider(event.finetune.backend).serving()
    state = release_serving(event, serving=serving, runs=adapters.runs())
    metrics.add_metric(name="ServingReleased", unit=MetricUnit.Count, value=int(state.status == "released"))
    logger.info("serving", extra={"kind": state.kind, "status": state.status, "kept": state.kept})
    return state.model_dump(mode="json")
