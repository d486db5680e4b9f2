"""CancelFineTune: stop a job that outlasted max_wait_seconds."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import FineTuneCheck
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.finetune import cancel_fine_tune


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=FineTuneCheck)
def lambda_handler(event: FineTuneCheck, context: LambdaContext) -> dict[str, Any]:
    fine_tuning = adapters.providers().provider(event.finetune.backend).fine_tuning()
    job = cancel_fine_tune(event, fine_tuning=fine_tuning, runs=adapters.runs())
    metrics.add_metric(name="FineTuneJobsCancelled", unit=MetricUnit.Count, value=1)
    logger.warning(
        "fine-tuning job cancelled after the maximum wait", extra={"job_id": job.job_id, "status": job.status}
    )
    return job.model_dump(mode="json")
