"""GenerateShard: the teacher answers one shard of problems (one iteration of the Generate Map)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from synthtune import adapters
from synthtune.contracts.workflow import ShardTask
from synthtune.engine.pacing import RateLimitGate
from synthtune.observability import logger, metrics, safe_errors, tracer
from synthtune.stages.generate import generate_shard, shard_deadline


@logger.inject_lambda_context(correlation_id_path="run.run_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@safe_errors
@event_parser(model=ShardTask)
def lambda_handler(event: ShardTask, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(shard=event.shard.index)
    gate = RateLimitGate(deadline=shard_deadline(context.get_remaining_time_in_millis() / 1000))
    result = generate_shard(
        event,
        data=adapters.artifacts(),
        runs=adapters.runs(),
        chat=adapters.teacher_chat(event.run.config.generation.request_timeout_seconds),
        gate=gate,
    )
    metrics.add_metric(name="TeacherAnswersVerified", unit=MetricUnit.Count, value=result.verified)
    metrics.add_metric(name="TeacherAnswersRejected", unit=MetricUnit.Count, value=result.rejected)
    metrics.add_metric(name="TeacherAnswersFailed", unit=MetricUnit.Count, value=result.failed)
    metrics.add_metric(name="RateLimitHolds", unit=MetricUnit.Count, value=gate.holds)
    return result.model_dump(mode="json")
