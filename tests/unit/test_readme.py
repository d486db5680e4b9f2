"""The README's configuration reference is the RunConfig model, field for field and default for default."""

import json
import re

from synthtune.config import FineTuneHyperparameters, RunConfig
from synthtune_cli.template import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def documented_defaults() -> dict[str, object]:
    rows = re.findall(r"^\| `([a-z_.]+)` \| `(.+?)` \| (.+) \|$", README, flags=re.MULTILINE)
    return {name: json.loads(default) for name, default, _ in rows}


def test_every_config_field_is_documented_with_its_default() -> None:
    expected: dict[str, object] = {}
    for name, field in RunConfig.model_fields.items():
        if name == "fine_tune":
            for sub_name, sub_field in FineTuneHyperparameters.model_fields.items():
                expected[f"fine_tune.{sub_name}"] = sub_field.default
        else:
            expected[name] = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    assert documented_defaults() == expected


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    assert "make demo" in README
    assert "make test" in README
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
