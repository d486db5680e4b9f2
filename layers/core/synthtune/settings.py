"""The Lambda environment, validated once.

template.yaml sets these variables (Globals.Function.Environment); the offline runtime sets the same
ones from the same template. The OpenAI key itself is never an environment variable: only the ARN of
the Secrets Manager secret that holds it.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    runs_table_name: str = Field(min_length=1)
    data_bucket_name: str = Field(min_length=1)
    openai_api_key_secret_arn: str = Field(min_length=1)
    openai_base_url: str | None = None
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    openai_timeout_seconds: float = Field(default=120.0, gt=0)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {
            "runs_table_name": env.get("RUNS_TABLE_NAME", ""),
            "data_bucket_name": env.get("DATA_BUCKET_NAME", ""),
            "openai_api_key_secret_arn": env.get("OPENAI_API_KEY_SECRET_ARN", ""),
            # An empty OpenAIBaseUrl parameter means the official endpoint.
            "openai_base_url": env.get("OPENAI_BASE_URL") or None,
            "openai_max_retries": env.get("OPENAI_MAX_RETRIES", "2"),
            "openai_timeout_seconds": env.get("OPENAI_TIMEOUT_SECONDS", "120"),
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            names = {
                "runs_table_name": "RUNS_TABLE_NAME",
                "data_bucket_name": "DATA_BUCKET_NAME",
                "openai_api_key_secret_arn": "OPENAI_API_KEY_SECRET_ARN",
                "openai_max_retries": "OPENAI_MAX_RETRIES",
                "openai_timeout_seconds": "OPENAI_TIMEOUT_SECONDS",
            }
            bad = ", ".join(
                f"{names.get(str(issue['loc'][0]), issue['loc'][0])} ({issue['msg']})"
                for issue in error.errors()
            )
            raise RuntimeError(f"Lambda environment is incomplete: {bad}") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings; `settings.cache_clear()` after changing the environment."""
    return Settings.from_environment()
