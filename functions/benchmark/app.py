"""Benchmark: one contestant answers the held-out problems (one iteration of the Benchmark Map)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import BenchmarkTask
from synthtune.engine.pacing import RateLimitGate, invocation_deadline
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.benchmark import run_benchmark


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=BenchmarkTask)
def lambda_handler(event: BenchmarkTask, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(contestant=event.contestant)
    gate = RateLimitGate(deadline=invocation_deadline(context.get_remaining_time_in_millis() / 1000))
    score = run_benchmark(
        event,
        data=adapters.artifacts(),
        runs=adapters.runs(),
        chat=adapters.chat(event.run.config.generation.request_timeout_seconds),
        gate=gate,
    )
    metrics.add_dimension(name="Contestant", value=event.contestant)
    metrics.add_metric(name="BenchmarkAccuracy", unit=MetricUnit.Percent, value=score.accuracy * 100)
    return score.model_dump(mode="json")
