"""What Prepare (and `synthtune validate`) refuse about a run's configuration, offline, before anything is
spent: each with a message naming the field, the limit or the date, and what to do instead."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import FineTuneUnavailable, InvalidConfig, ModelRetired
from synthtune.contracts.problems import Problem
from synthtune.money.estimate import estimate_run_cost
from synthtune.providers.registry import ProviderRegistry
from synthtune.stages.plan import check_budget, check_run_config
from synthtune_cli.providers import local_providers
from tests.support import OPENAI_MODELS

TODAY = dt.date(2026, 12, 1)


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> ProviderRegistry:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)  # the official API, whose dates apply
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return local_providers()


def check(providers: ProviderRegistry, today: dt.date = TODAY, **config: Any) -> None:
    check_run_config(RunConfig.model_validate(config), providers, today)


def test_the_defaults_are_usable_today_and_after_openais_shutdowns(providers: ProviderRegistry) -> None:
    check(providers)
    check(providers, today=dt.date(2027, 2, 1))


def test_a_retired_openai_student_is_refused_naming_the_date_and_a_replacement(
    providers: ProviderRegistry,
) -> None:
    with pytest.raises(FineTuneUnavailable) as refused:
        check(providers, student_model="gpt-4.1-nano-2025-04-14")
    message = str(refused.value)
    assert "shut down on the OpenAI API on 2026-10-23" in message
    assert "'bedrock/amazon.nova-micro-v1:0'" in message


def test_openai_dates_do_not_apply_to_another_endpoint(
    providers: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://example.openai.azure.com/openai/v1/")
    check(local_providers(), **OPENAI_MODELS)


def test_no_openai_fine_tuning_after_the_wind_down(providers: ProviderRegistry) -> None:
    check(providers, student_model="gpt-4.1-mini-2025-04-14", today=dt.date(2027, 1, 6))
    with pytest.raises(FineTuneUnavailable, match="no new fine-tuning jobs after 2027-01-06"):
        check(providers, student_model="gpt-4.1-mini-2025-04-14", today=dt.date(2027, 1, 7))


def test_a_retired_teacher_is_refused(providers: ProviderRegistry) -> None:
    with pytest.raises(ModelRetired, match=r"shut down on Amazon Bedrock on 2026-09-14.*nova-2-lite"):
        check(providers, teacher_model="bedrock/us.amazon.nova-premier-v1:0")
    with pytest.raises(ModelRetired, match="2026-12-11"):
        check(providers, judge_model="gpt-5-mini", today=dt.date(2026, 12, 11))


def test_a_student_bedrock_does_not_fine_tune_is_refused_with_those_it_does(
    providers: ProviderRegistry,
) -> None:
    with pytest.raises(
        FineTuneUnavailable, match=r"Bedrock does not fine-tune it \(fine-tunable: bedrock/amazon"
    ):
        check(providers, student_model="bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0")


def test_a_student_fine_tuned_in_another_region_is_refused(
    providers: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(
        FineTuneUnavailable, match=r"fine-tunes it only in us-east-1, and this stack is in eu-west-1"
    ):
        check(local_providers())


@pytest.mark.parametrize(
    ("fine_tune", "message"),
    [
        (
            {"n_epochs": 6},
            r"fine_tune.n_epochs is 6; Bedrock fine-tunes amazon.nova-micro-v1:0 for 1 to 5 epochs",
        ),
        ({"batch_size": 8}, r"fine_tune.batch_size: Bedrock fine-tunes .* with no batch size"),
        ({"learning_rate": 0.001}, r"fine_tune.learning_rate is 0.001; Bedrock takes 1e-06 to 0.0001"),
        ({"learning_rate_warmup_steps": 101}, r"learning_rate_warmup_steps is 101; Bedrock takes 0 to 100"),
        ({"learning_rate_multiplier": 2}, r"learning_rate_multiplier is OpenAI's"),
    ],
)
def test_bedrock_hyperparameters_are_checked_against_novas_limits(
    providers: ProviderRegistry, fine_tune: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidConfig, match=message):
        check(providers, fine_tune=fine_tune)


def test_openai_takes_no_bedrock_hyperparameters(providers: ProviderRegistry) -> None:
    with pytest.raises(InvalidConfig, match="OpenAI fine-tuning takes no learning_rate"):
        check(
            providers,
            fine_tune={"learning_rate": 1e-5},
            **{**OPENAI_MODELS, "student_model": "gpt-4.1-mini-2025-04-14"},
        )


def test_a_temperature_the_teacher_does_not_take_is_refused(providers: ProviderRegistry) -> None:
    with pytest.raises(
        InvalidConfig, match=r"teacher_temperature is 1.5; bedrock/us.amazon.nova-2-lite-v1:0 takes 0 to 1"
    ):
        check(providers, teacher_temperature=1.5)
    with pytest.raises(InvalidConfig, match="every sample would be the same answer"):
        check(providers, generation={"samples": 3})
    check(providers, generation={"samples": 3}, teacher_temperature=0.7)


def test_batch_generation_needs_a_teacher_whose_provider_batches(providers: ProviderRegistry) -> None:
    with pytest.raises(InvalidConfig, match="uses batches only on openai"):
        check(providers, generation={"mode": "batch"})


def test_provisioned_throughput_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")  # where Bedrock fine-tunes Llama 3.1
    llama = {"student_model": "bedrock/meta.llama3-1-8b-instruct-v1:0"}
    with pytest.raises(InvalidConfig, match=r"Provisioned Throughput, billed at \$24.00 an hour"):
        check(local_providers(), **llama)
    check(local_providers(), allow_provisioned_throughput=True, **llama)


def test_fine_tune_backend_must_name_the_students_provider() -> None:
    assert RunConfig.model_validate({"fine_tune_backend": "bedrock"}).student_provider == "bedrock"
    with pytest.raises(ValueError, match="fine_tune_backend is 'openai' but student_model"):
        RunConfig.model_validate({"fine_tune_backend": "openai"})


def test_a_budget_is_refused_when_part_of_the_run_has_no_price() -> None:
    # Nova Lite's training price is not published: a budget could not be held, so it is refused up front.
    config = RunConfig.model_validate({"student_model": "bedrock/amazon.nova-lite-v1:0", "budget_usd": 100.0})
    train = [Problem(id=f"p{n}", question=f"What is {n} plus {n}?", answer=str(2 * n)) for n in range(20)]
    estimate = estimate_run_cost(config, train, train[:3])
    assert estimate is not None and estimate.unpriced == ["training bedrock/amazon.nova-lite-v1:0"]
    with pytest.raises(InvalidConfig, match=r"no price for training bedrock/amazon\.nova-lite-v1:0"):
        check_budget(config, estimate, "set")
    check_budget(config.model_copy(update={"budget_usd": None}), estimate, "set")  # no budget: fine
