"""The knobs that turn the emulator from a perfect service into a slow, limited or failing one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EmulatorKnobs(BaseModel):
    """Service behaviour. The defaults are a perfect service: no latency, no limits, no faults.

    The fine-tuning timings default to plausible real-world values; under a `VirtualClock` they cost
    nothing, because jobs advance only when the clock does.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_seconds: float = Field(
        0.0,
        ge=0,
        description="Slept on the emulator's clock per answered API request (errors return at once).",
    )
    requests_per_minute: int | None = Field(
        None, ge=1, description="Chat requests (and, separately, Bedrock Converse requests) per minute."
    )
    tokens_per_minute: int | None = Field(
        None, ge=1, description="Chat tokens (and, separately, Bedrock Converse tokens) per minute."
    )
    rate_limit_window_seconds: float = Field(
        60.0,
        gt=0,
        le=60,
        description="The per-minute limits are enforced over a sliding window this long, scaled to it.",
    )
    error_rate: float = Field(
        0.0, ge=0, le=1, description="Share of API requests (OpenAI and Bedrock) that fail, seeded."
    )
    error_status: int = Field(500, ge=400, le=599, description="Status of the error_rate failures.")
    validation_seconds: float = Field(
        30.0, ge=0, description="Time a job spends in validating_files (Bedrock: validation)."
    )
    queue_seconds: float = Field(
        60.0, ge=0, description="Time a job spends queued (Bedrock: data processing)."
    )
    training_seconds_per_1k_tokens: float = Field(
        2.0, ge=0, description="Running time per 1k trained tokens."
    )
    min_training_seconds: float = Field(120.0, ge=0, description="Shortest running time.")
    fine_tune_failure: str | None = Field(
        None, description="When set, running jobs (OpenAI and Bedrock) fail with this message."
    )
    accept_unknown_models: bool = Field(False, description="Serve any model name as a generic base model.")
    batch_validation_seconds: float = Field(10.0, ge=0, description="Time a batch spends validating.")
    batch_seconds_per_request: float = Field(
        0.05, ge=0, description="Processing time per batch line; lines finish in order, evenly spaced."
    )
    batch_min_seconds: float = Field(60.0, ge=0, description="Shortest time a batch spends in_progress.")
    batch_finalizing_seconds: float = Field(10.0, ge=0, description="Time a batch spends finalizing.")
    batch_cancelling_seconds: float = Field(10.0, ge=0, description="Time a batch spends cancelling.")
    batch_expire_after_seconds: float = Field(
        86_400.0, gt=0, description="A batch with lines unfinished this long after creation expires."
    )
    batch_line_error_rate: float = Field(
        0.0, ge=0, le=1, description="Share of batch lines that fail with a 500, seeded."
    )
    customization_stopping_seconds: float = Field(
        10.0, ge=0, description="Time a stopped Bedrock customization job spends Stopping."
    )
    deployment_seconds: float = Field(
        300.0, ge=0, description="Time a Bedrock custom model deployment spends Creating."
    )
    deployment_failure: str | None = Field(
        None, description="When set, Bedrock deployments still Creating fail with this message."
    )
    provisioning_seconds: float = Field(
        600.0, ge=0, description="Time a Bedrock Provisioned Throughput spends Creating."
    )
    provisioning_failure: str | None = Field(
        None, description="When set, Provisioned Throughputs still Creating fail with this message."
    )
