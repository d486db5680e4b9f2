"""Report: results to DynamoDB; benchmark.json, report.md, report.html and summary.json to S3."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import ReportInput
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.report import write_report


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=ReportInput)
def lambda_handler(event: ReportInput, context: LambdaContext) -> dict[str, Any]:
    report = write_report(event, data=adapters.artifacts(), runs=adapters.runs())
    metrics.add_metric(name="RunsSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RunCostUSD", unit=MetricUnit.NoUnit, value=report.cost_usd)
    logger.info("run finished", extra={"accuracy": report.accuracy, "cost_usd": report.cost_usd})
    return report.model_dump(mode="json")
