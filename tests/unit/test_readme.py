"""The README's configuration reference is the RunConfig model, field for field and default for default."""

import json
import re

from pydantic import BaseModel

from synthtune.contracts.config import RunConfig
from synthtune_cli.template import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def documented_defaults() -> dict[str, object]:
    rows = re.findall(r"^\| `([a-z_.]+)` \| `(.+?)` \| (.+) \|$", README, flags=re.MULTILINE)
    return {name: json.loads(default) for name, default, _ in rows}


def test_every_config_field_is_documented_with_its_default() -> None:
    expected: dict[str, object] = {}

    def flatten(prefix: str, model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                flatten(f"{prefix}{name}.", annotation)
            else:
                expected[f"{prefix}{name}"] = field.get_default(call_default_factory=True)

    flatten("", RunConfig)
    assert documented_defaults() == expected


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    assert "make demo" in README
    assert "make test" in README
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
