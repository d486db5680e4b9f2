import pytest

from synthtune.settings import Settings


def test_settings_come_from_the_template_environment() -> None:
    settings = Settings.from_environment(
        {
            "RUNS_TABLE_NAME": "runs",
            "DATA_BUCKET_NAME": "bucket",
            "OPENAI_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x",
            "OPENAI_BASE_URL": "",
            "OPENAI_MAX_RETRIES": "0",
        }
    )
    assert settings.openai_base_url is None  # the template's empty default means the official API
    assert (settings.openai_max_retries, settings.openai_timeout_seconds) == (0, 120.0)
    assert settings.simulated_providers == frozenset()  # the cloud: real models


def test_the_offline_runner_names_the_simulated_providers() -> None:
    settings = Settings.from_environment(
        {
            "RUNS_TABLE_NAME": "runs",
            "DATA_BUCKET_NAME": "bucket",
            "OPENAI_API_KEY_SECRET_ARN": "arn",
            "SIMULATED_PROVIDERS": "openai, bedrock",
        }
    )
    assert settings.simulated_providers == {"openai", "bedrock"}


def test_missing_variables_are_named() -> None:
    with pytest.raises(RuntimeError, match=r"RUNS_TABLE_NAME .*DATA_BUCKET_NAME"):
        Settings.from_environment({"OPENAI_API_KEY_SECRET_ARN": "x"})
