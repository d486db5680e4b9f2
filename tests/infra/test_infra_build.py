"""The locks: the layer, `make demo` and the tests install the same versions, every file checked by hash.

Offline: reads the lock files, the Makefiles and this environment's installed metadata. Building the layer
itself needs the package registry, so `make layer` / `make build` (CI) do that and .ci/check_layer.py checks
the result.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from synthtune_cli.template import PROJECT_ROOT

LAYER_LOCK = PROJECT_ROOT / "layers" / "core" / "requirements.lock"
DEMO_LOCK = PROJECT_ROOT / "requirements.lock"
DEV_LOCK = PROJECT_ROOT / "requirements-dev.lock"
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}


def _pins(lock: Path) -> list[Requirement]:
    """Each pin of a lock, with its environment marker; asserts it carries at least one hash."""
    pins = []
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    for entry in entries:
        if entry.startswith("#") or not entry.strip():
            continue
        first_line = entry.splitlines()[0].rstrip(" \\")
        assert "--hash=sha256:" in entry, f"{lock.name}: {first_line} has no hash"
        pins.append(Requirement(first_line))
    return pins


def _versions(lock: Path) -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for pin in _pins(lock):
        versions.setdefault(canonicalize_name(pin.name), set()).add(str(pin.specifier).removeprefix("=="))
    return versions


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


@pytest.mark.parametrize("lock", [LAYER_LOCK, DEMO_LOCK, DEV_LOCK], ids=lambda lock: lock.name)
def test_every_lock_pins_exact_versions_with_hashes(lock: Path) -> None:
    pins = _pins(lock)
    assert pins
    for pin in pins:
        assert str(pin.specifier).startswith("=="), pin


def test_the_layer_pins_what_the_demo_and_the_tests_install() -> None:
    layer, demo, dev = _versions(LAYER_LOCK), _versions(DEMO_LOCK), _versions(DEV_LOCK)
    assert {name: versions for name, versions in layer.items() if demo.get(name) != versions} == {}
    assert {name: versions for name, versions in demo.items() if dev.get(name) != versions} == {}


def test_the_layer_leaves_the_aws_sdk_to_the_lambda_runtime() -> None:
    assert RUNTIME_PROVIDED & _versions(LAYER_LOCK).keys() == set()
    assert _versions(DEMO_LOCK).keys() >= RUNTIME_PROVIDED


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [
        ("layers/core/requirements.txt", LAYER_LOCK),
        ("layers/core/requirements.txt", DEMO_LOCK),
        ("cli/requirements.txt", DEMO_LOCK),
    ],
)
def test_each_lock_satisfies_its_requirements(requirements: str, lock: Path) -> None:
    locked = _versions(lock)
    for requirement in _requirements(PROJECT_ROOT / requirements):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {lock.name}"
        assert all(requirement.specifier.contains(v, prereleases=True) for v in locked[name]), requirement


@pytest.mark.parametrize("requirements", ["layers/core/requirements.txt", "cli/requirements.txt"])
def test_every_extra_asked_for_exists(requirements: str) -> None:
    for requirement in _requirements(PROJECT_ROOT / requirements):
        extras = metadata.metadata(requirement.name).get_all("Provides-Extra") or []
        offered = {canonicalize_name(extra) for extra in extras}
        asked = {canonicalize_name(e) for e in requirement.extras}
        assert asked <= offered, f"{requirement.name} has no extra {sorted(asked - offered)}"


def test_the_tests_run_the_locked_versions() -> None:
    mismatched = {}
    for pin in _pins(DEV_LOCK):
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        installed = metadata.version(pin.name)
        if pin.specifier and not pin.specifier.contains(installed, prereleases=True):
            mismatched[pin.name] = (str(pin.specifier), installed)
    assert mismatched == {}


def test_make_installs_from_the_locks() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps" in makefile
    assert "-r requirements.lock" in makefile
    assert "-r requirements-dev.lock" in makefile
    assert "make build" in (PROJECT_ROOT / ".ci" / "run").read_text()
