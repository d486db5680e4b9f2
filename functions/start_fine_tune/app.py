"""StartFineTune: create the student's fine-tuning job on its provider, or pick up the one this run has."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import FineTuneInput
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.finetune import start_fine_tune


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=FineTuneInput)
def lambda_handler(event: FineTuneInput, context: LambdaContext) -> dict[str, Any]:
    fine_tuning = adapters.providers().for_model(event.run.config.student_model).fine_tuning()
    job = start_fine_tune(event, fine_tuning=fine_tuning, runs=adapters.runs())
    metrics.add_metric(name="FineTuneJobsStarted", unit=MetricUnit.Count, value=1)
    logger.info("fine-tuning job", extra={"job_id": job.job_id, "status": job.status})
    return job.model_dump(mode="json")
