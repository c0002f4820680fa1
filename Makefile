# The two commands a newcomer needs: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test check lint format bench clean-db vendor local-model screenshots lock check-lock

# Every install is pinned and hash-checked: requirements/*.txt, exported from uv.lock by `make lock`.
# pip refuses any file whose hash is not in them, sdists included (llama-cpp-python is built from its
# sdist, whose hash is checked before the build).
$(BIN)/python:
	@echo "==> Creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --require-hashes -r requirements/build.txt

# uv (hash-pinned in requirements/build.txt) installs the site in seconds where pip took minutes, so a
# newcomer's first `make run` serves sooner; the dev set stays on pip, whose cache keeps llama-cpp-python built.
$(VENV)/.base: pyproject.toml requirements/base.txt | $(BIN)/python
	@echo "==> Installing the project (requirements/base.txt, hash-checked)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements/base.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.dev: pyproject.toml requirements/dev.txt | $(BIN)/python
	@echo "==> Installing the project with its dev and local-model dependencies (requirements/dev.txt, hash-checked)"
	@echo "    (a machine's first install compiles llama-cpp-python: about 8 minutes; pip says 'still running...')"
	$(PIP) install --progress-bar on --require-hashes -r requirements/dev.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $@

# Serves as soon as the site is ready; the launcher installs and starts the local model in the background.
run: $(VENV)/.base
	@$(BIN)/python -m chatsite.launcher

# Retries the local model's install after it failed (make run does not retry it until the lock changes).
local-model: $(VENV)/.base
	@./scripts/install-local.sh --force

# Resolves pyproject.toml's requirements again into uv.lock and requirements/*.txt (ARGS=--upgrade: newest).
lock: $(VENV)/.dev
	@./scripts/lock.sh

# Fails when pyproject.toml, uv.lock and requirements/*.txt disagree (offline).
check-lock: $(VENV)/.dev
	@$(BIN)/python scripts/check_lock.py

# First the locks (scripts/check_lock.py) and the app graph (scripts/app_graph.py: no cycle, nothing imports
# upward), then the suite on two workers
# (one per core of the machines we target); a file's tests stay on one worker, so its module-scoped servers
# start once.
test: $(VENV)/.dev
	@$(BIN)/python scripts/check_lock.py
	@./scripts/system-deps.sh
	@./scripts/test-clients.sh
	$(BIN)/python scripts/app_graph.py
	# A test process holds more threads with connections than a served worker (each test's own, the db
	# threads, asgiref's): 20 pooled connections ran out in full runs, so the suite's processes get 40.
	DB_POOL_MAX=40 $(BIN)/python -m pytest -n 2 --dist loadfile

# The README's screenshots of the chat page (docs/screenshots.py), in headless Chromium.
screenshots: $(VENV)/.dev
	@./scripts/system-deps.sh
	$(BIN)/python -m pytest docs/screenshots.py -q -p no:cacheprovider

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

check: lint test

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.dev
	$(BIN)/python bench/side_by_side.py $(BENCH_ARGS)

# Refresh the chat page's front-end libraries in static/vendor/ from the versions in package.json (needs npm).
vendor:
	@./scripts/vendor.sh
