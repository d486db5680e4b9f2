"""Checks a built layer against its lock: `python .ci/check_layer.py LAYER_DIR LOCK_FILE`.

The layer must hold exactly the packages the lock pins, at those versions, every wheel made for Lambda's
runtime (CPython 3.13 on arm64), every native library an arm64 one, the synthtune package, and none of the
AWS SDK the runtime provides. Run by `make layer` and `make build` (CI); standard library only, so it runs
on any host Python, which cannot import an arm64 layer.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}
PYTHON_TAGS = {"py3", "py2.py3", "py313", "cp313"}
ELF_MACHINE_AARCH64 = 183
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    return {canonical(m[1]): m[2] for line in lock.read_text().splitlines() if (m := PIN.match(line))}


def installed(site: Path) -> dict[str, Path]:
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[f"{canonical(name)}=={version}"] = info
    return found


def wheel_tag_problems(info: Path) -> list[str]:
    tags = [
        line.removeprefix("Tag:").strip()
        for line in (info / "WHEEL").read_text().splitlines()
        if line.startswith("Tag:")
    ]
    for tag in tags:
        python, abi, platform = tag.split("-")
        fits_python = python in PYTHON_TAGS or (abi == "abi3" and python.startswith("cp3"))
        fits_platform = platform == "any" or (
            platform.startswith("manylinux") and platform.endswith("aarch64")
        )
        if fits_python and fits_platform:
            return []
    return [f"{info.name}: no wheel tag of {tags} is for CPython 3.13 on arm64"]


def native_problems(site: Path) -> list[str]:
    problems = []
    for library in site.rglob("*.so*"):
        if not library.is_file():
            continue
        header = library.read_bytes()[:20]
        if header[:4] != b"\x7fELF":
            continue
        if int.from_bytes(header[18:20], "little") != ELF_MACHINE_AARCH64:
            problems.append(f"{library.relative_to(site)}: not an arm64 library")
        if "cpython-3" in library.name and "cpython-313" not in library.name:
            problems.append(f"{library.relative_to(site)}: built for another CPython than 3.13")
    return problems


def main(layer: Path, lock: Path) -> int:
    site = layer / "python"
    pins = locked(lock)
    dists = installed(site)
    wanted = {f"{name}=={version}" for name, version in pins.items()}
    problems = [f"locked but not in the layer: {dist}" for dist in sorted(wanted - dists.keys())]
    problems += [f"in the layer but not locked: {dist}" for dist in sorted(dists.keys() - wanted)]
    problems += [
        f"provided by the Lambda runtime, must not ship: {name}"
        for name in sorted(RUNTIME_PROVIDED & pins.keys())
    ]
    problems += [
        f"provided by the Lambda runtime, must not ship: {name}/"
        for name in sorted(RUNTIME_PROVIDED)
        if (site / name).exists()
    ]
    for info in dists.values():
        problems += wheel_tag_problems(info)
    problems += native_problems(site)
    if not (site / "synthtune" / "__init__.py").is_file():
        problems.append("the synthtune package is missing")
    for problem in problems:
        print(f"layer check: {problem}", file=sys.stderr)
    if problems:
        return 1
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(
        f"layer check: {layer} holds the {len(pins)} locked packages for CPython 3.13 on arm64 and synthtune "
        f"({size / 2**20:.0f} MiB unzipped)"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
