"""The README's configuration reference is the RunConfig model, field for field and default for default."""

import json
import re

from pydantic import BaseModel

from synthtune.contracts.config import DatasetConfig, FineTuneHyperparameters, GenerationConfig, RunConfig
from synthtune_cli.template import PROJECT_ROOT

NESTED: dict[str, type[BaseModel]] = {
    "fine_tune": FineTuneHyperparameters,
    "generation": GenerationConfig,
    "dataset": DatasetConfig,
}

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def documented_defaults() -> dict[str, object]:
    rows = re.findall(r"^\| `([a-z_.]+)` \| `(.+?)` \| (.+) \|$", README, flags=re.MULTILINE)
    return {name: json.loads(default) for name, default, _ in rows}


def test_every_config_field_is_documented_with_its_default() -> None:
    expected: dict[str, object] = {}
    for name, field in RunConfig.model_fields.items():
        section = NESTED.get(name)
        if section is not None:
            for sub_name, sub_field in section.model_fields.items():
                expected[f"{name}.{sub_name}"] = sub_field.get_default(call_default_factory=True)
        else:
            expected[name] = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    assert documented_defaults() == expected


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    assert "make demo" in README
    assert "make test" in README
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
