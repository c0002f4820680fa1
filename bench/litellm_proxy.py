"""LiteLLM's proxy as the bench runs it: a pinned version in its own virtual environment under var/.

Never a dependency of the product: the bench installs it on first use (pip, from PyPI) into
var/bench/litellm-VERSION and runs it from there. Configured as its docs describe for one
worker without a database: a `model_list` entry pointing at the fake upstream (an OpenAI-compatible
`openai/` model with `api_base`), a `master_key` it checks on each request, no callbacks, and
uvicorn's access log off (as ours is), so each side pays only for its request path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# 1.102.4: the newest release whose requirements install from PyPI today (later ones pin a
# certifi that is not published yet); 1.107.0 was a compromised release and is gone from PyPI.
VERSION = "1.102.4"
MASTER_KEY = "sk-bench-litellm-master-key"


def venv_dir(root: Path) -> Path:
    return root / "var" / "bench" / f"litellm-{VERSION}"


def ensure_installed(root: Path) -> Path:
    """The `litellm` executable of the pinned version, installed first if needed."""
    venv = venv_dir(root)
    executable = venv / "bin" / "litellm"
    marker = venv / ".installed"
    if marker.exists() and executable.exists():
        return executable
    print(f"Installing LiteLLM {VERSION} into {venv} (first run only; a minute or two)...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    result = subprocess.run([*pip, "install", f"litellm[proxy]=={VERSION}"], capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: Location")]
        sys.exit("bench: installing LiteLLM failed:\n" + "\n".join(errors[-20:]))
    marker.touch()
    return executable


def write_config(directory: Path, model: str, upstream_base_url: str) -> tuple[Path, Path]:
    """The proxy's config.yaml (JSON is valid YAML) and a logging config without the access log."""
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {"model": "openai/fast-model", "api_base": upstream_base_url, "api_key": "unused"},
            }
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    logging_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING"},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "litellm-config.yaml"
    config_path.write_text(json.dumps(config, indent=2))
    log_path = directory / "litellm-logging.json"
    log_path.write_text(json.dumps(logging_config, indent=2))
    return config_path, log_path


def command(executable: Path, config: Path, logging_config: Path, port: int) -> list[str]:
    return [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1", "--log_config", str(logging_config)]  # fmt: skip


def environment() -> dict[str, str]:
    """Offline and quiet: the packaged model price map instead of fetching one, errors only."""
    return {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
