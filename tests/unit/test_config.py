import pytest

from synthtune.contracts.config import (
    DatasetConfig,
    FineTuneHyperparameters,
    GenerationConfig,
    KnowledgePolicyConfig,
    ProbeConfig,
    RunConfig,
    load_run_config,
)
from synthtune.contracts.errors import InvalidConfig


def test_every_field_has_a_documented_default() -> None:
    config = load_run_config(None)
    assert config == RunConfig()
    for name, field in RunConfig.model_fields.items():
        if name not in {"fine_tune", "generation", "dataset"}:
            assert field.description, f"{name} has no description"
    for section in (
        FineTuneHyperparameters,
        GenerationConfig,
        DatasetConfig,
        ProbeConfig,
        KnowledgePolicyConfig,
    ):
        for name, field in section.model_fields.items():
            assert field.description, f"{section.__name__}.{name} has no description"


def test_errors_name_each_bad_field() -> None:
    with pytest.raises(InvalidConfig) as raised:
        load_run_config(
            {"shard_sise": 5, "holdout_fraction": 1.5, "fine_tune": {"n_epochs": 0}}, source="cfg.json"
        )
    message = str(raised.value)
    assert message.startswith("cfg.json: ")
    assert "shard_sise: not a field here; did you mean 'shard_size'?" in message
    assert "holdout_fraction: input should be less than 1" in message
    assert "fine_tune.n_epochs" in message
    with pytest.raises(InvalidConfig, match="expected a JSON object"):
        load_run_config(["not", "an", "object"])
    with pytest.raises(InvalidConfig, match="lists a contestant twice"):
        load_run_config({"benchmark_contestants": ["base", "base"]})


def test_self_consistency_needs_several_samples() -> None:
    with pytest.raises(InvalidConfig, match=r"dataset.min_agreement is 0.6 but generation.samples is 1"):
        load_run_config({"dataset": {"min_agreement": 0.6}})
    config = load_run_config(
        {"dataset": {"min_agreement": 0.6}, "generation": {"samples": 5}, "teacher_temperature": 0.7}
    )
    assert config.dataset.min_agreement == 0.6


def test_dataset_gates_reject_nonsense() -> None:
    with pytest.raises(InvalidConfig) as raised:
        load_run_config(
            {"dataset": {"near_duplicate_threshold": 1.5, "contamination_ngram": 2, "exports": ["csv"]}}
        )
    message = str(raised.value)
    assert "dataset.near_duplicate_threshold" in message
    assert "dataset.contamination_ngram" in message
    assert "dataset.exports" in message
    with pytest.raises(InvalidConfig, match="lists a format twice"):
        load_run_config({"dataset": {"exports": ["bedrock", "bedrock"]}})
