"""Checks (or with --write, writes) the hash-pinned requirement files against uv.lock and pyproject.toml.

`make test` (so CI) runs it: it fails when pyproject.toml's requirements and uv.lock disagree (`uv lock
--check`, offline), or when a requirements/*.txt file is not what uv.lock exports. Nothing here needs the
network except `--write`'s resolution of the build requirements.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
UV = os.environ.get("UV") or str(ROOT / ".venv" / "bin" / "uv")
# Each file: the extras of pyproject.toml it holds, besides the base requirements.
SETS = {"base.txt": [], "local.txt": ["local"], "dev.txt": ["dev", "local"]}


def uv(*args: str) -> str:
    done = subprocess.run([UV, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"uv {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def exported(extras: list[str]) -> str:
    options = [option for extra in extras for option in ("--extra", extra)]
    return uv("export", "--frozen", "--format", "requirements-txt", "--no-emit-project", "--no-header", *options)


def build_inputs() -> str:
    """What installs the project: pip, uv (`make run`'s install of the site: seconds where pip takes minutes),
    and pyproject.toml's build requirements."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    return "\n".join(["pip", "uv", *requires]) + "\n"


def write() -> None:
    REQUIREMENTS.mkdir(exist_ok=True)
    for name, extras in SETS.items():
        (REQUIREMENTS / name).write_text(exported(extras))
    (REQUIREMENTS / "build.in").write_text(build_inputs())
    uv(
        "pip", "compile", "--quiet", "--generate-hashes", "--python-version", "3.11", "--no-header",
        "requirements/build.in", "-o", "requirements/build.txt",
    )  # fmt: skip


def check() -> list[str]:
    problems = []
    locked = subprocess.run([UV, "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True)
    if locked.returncode != 0:
        problems.append(f"uv.lock does not match pyproject.toml:\n{locked.stderr.strip()}")
        return problems
    for name, extras in SETS.items():
        path = REQUIREMENTS / name
        if not path.exists() or path.read_text() != exported(extras):
            problems.append(f"requirements/{name} is not what uv.lock exports")
    build_in = REQUIREMENTS / "build.in"
    if not build_in.exists() or build_in.read_text() != build_inputs():
        problems.append("requirements/build.in does not list pyproject.toml's build requirements")
    return problems


def _npm_lock(folder: Path, fix: str) -> tuple[dict[str, Any], list[str]]:
    """A package-lock.json's packages, and what is wrong with it: not package.json's, or an entry without integrity."""
    problems = []
    where = folder.relative_to(ROOT) / "package-lock.json"
    lock: dict[str, Any] = json.loads((folder / "package-lock.json").read_text())["packages"]
    wanted = json.loads((folder / "package.json").read_text()).get("dependencies", {})
    if lock[""].get("dependencies", {}) != wanted:
        problems.append(f"{where} does not match package.json's dependencies: {fix}")
    for name, entry in lock.items():
        if name and not str(entry.get("integrity", "")).startswith("sha512-"):
            problems.append(f"{where} has no sha512 integrity for {name}")
    return lock, problems


def check_npm() -> list[str]:
    """The vendored front-end libraries and the test clients: `npm ci` (scripts/vendor.sh, scripts/test-clients.sh)
    installs package-lock.json's versions and checks each tarball against its sha512 `integrity`, refusing a lock
    that disagrees with package.json."""
    lock, problems = _npm_lock(ROOT, "run `make vendor`")
    problems += _npm_lock(ROOT / "tests" / "clients", "run `npm install` in tests/clients")[1]
    vendored = (ROOT / "static" / "vendor" / "VERSIONS").read_text().split("\n")
    locked = [f"{name.removeprefix('node_modules/')} {entry['version']}" for name, entry in lock.items() if name]
    if [line for line in vendored if line] != locked:
        problems.append("static/vendor/VERSIONS is not what package-lock.json pins: run `make vendor`")
    return problems


def main() -> None:
    if "--write" in sys.argv[1:]:
        write()
    problems = check() + check_npm()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit("The lock is stale: run `make lock` and commit uv.lock and requirements/.")
    print("==> The locks match pyproject.toml and package.json (uv.lock, requirements/, package-lock.json)")


if __name__ == "__main__":
    main()
