"""Assemble: merge the shards' verified answers into train/validation JSONL."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import AssembleInput
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.providers.registry import dataset_format
from synthtune.stages.assemble.assemble import assemble_dataset


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=AssembleInput)
def lambda_handler(event: AssembleInput, context: LambdaContext) -> dict[str, Any]:
    dataset = assemble_dataset(event, data=adapters.artifacts(), runs=adapters.runs(), formats=dataset_format)
    metrics.add_metric(name="TrainingExamples", unit=MetricUnit.Count, value=dataset.train_examples)
    metrics.add_metric(name="ExamplesDropped", unit=MetricUnit.Count, value=sum(dataset.dropped.values()))
    logger.info("dataset assembled", extra={"dropped": dataset.dropped})
    return dataset.model_dump(mode="json")
