"""The Lambda environment, validated once.

template.yaml sets these variables (Globals.Function.Environment); the offline runtime sets the same
ones from the same template. The OpenAI key itself is never an environment variable: only the ARN of
the Secrets Manager secret that holds it. Bedrock needs no key: boto3 signs with the function's role
(and reads AWS_ENDPOINT_URL_BEDROCK / AWS_ENDPOINT_URL_BEDROCK_RUNTIME for other endpoints).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    runs_table_name: str = Field(min_length=1)
    data_bucket_name: str = Field(min_length=1)
    openai_api_key_secret_arn: str = Field(min_length=1)
    openai_base_url: str | None = Field(default=None, description="Empty or unset: the official API.")
    openai_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="The SDK's own retries of reads; model requests and creates are never retried by the "
        "SDK (each attempt may be billed, or make a second job): see providers/openai/__init__.py.",
    )
    openai_timeout_seconds: float = Field(default=120.0, gt=0)
    bedrock_role_arn: str | None = Field(
        default=None,
        description="The service role Bedrock assumes to read a run's dataset and write its output (the "
        "stack's BedrockCustomizationRole).",
    )
    simulated_providers: frozenset[str] = Field(
        default=frozenset(),
        description="The providers the project's emulator stands in for, comma-separated: set by "
        "`synthtune run` (never by template.yaml), so that Prepare records on the run which of its models "
        "were simulated and both reports say so.",
    )

    @field_validator("simulated_providers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip())
        return value

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Each field from the variable of the same name in upper case; empty counts as unset."""
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if env.get(name.upper())}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            bad = ", ".join(f"{str(issue['loc'][0]).upper()} ({issue['msg']})" for issue in error.errors())
            raise RuntimeError(f"Lambda environment is incomplete: {bad}") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings; `settings.cache_clear()` after changing the environment."""
    return Settings.from_environment()
