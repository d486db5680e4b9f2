"""Importing a handler creates no client and imports no openai: cold starts pay only for what they use."""

import json
import subprocess
import sys

from synthtune_cli.template import PROJECT_ROOT

PROBE = """
import importlib.util, json, sys
from unittest import mock
import boto3
created = []
with mock.patch.object(boto3, "client", side_effect=lambda *a, **k: created.append(a)), \\
     mock.patch.object(boto3.session.Session, "client", side_effect=lambda *a, **k: created.append(a)):
    for name in sys.argv[1:]:
        spec = importlib.util.spec_from_file_location(f"fn_{name}", f"functions/{name}/app.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps({"clients": len(created), "openai": "openai" in sys.modules}))
"""


def test_importing_every_handler_creates_no_client_and_skips_openai() -> None:
    functions = sorted(
        path.name for path in (PROJECT_ROOT / "functions").iterdir() if (path / "app.py").exists()
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *functions],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={
            "PATH": "",
            "PYTHONPATH": str(PROJECT_ROOT / "layers" / "core"),
            "POWERTOOLS_TRACE_DISABLED": "1",
        },
    )
    assert len(functions) == 14
    assert json.loads(result.stdout.splitlines()[-1]) == {"clients": 0, "openai": False}
