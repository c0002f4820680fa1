#!/usr/bin/env bash
# Command-line clients the tests drive against a live server (Codex CLI, gemini-cli), from npm into
# tests/clients/node_modules.
# `npm ci` installs exactly package-lock.json's versions and checks each tarball against its sha512 integrity.
set -euo pipefail
cd "$(dirname "$0")/../tests/clients"
stamp=node_modules/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ -x node_modules/.bin/codex ] && [ -x node_modules/.bin/gemini ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js and npm (apt-get install npm) for the Codex CLI and gemini-cli tests" >&2
  exit 1
fi
echo "==> Installing the test clients (tests/clients/package-lock.json: Codex CLI, gemini-cli)"
npm ci --no-audit --no-fund --ignore-scripts >/dev/null
touch "$stamp"
