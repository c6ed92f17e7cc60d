#!/usr/bin/env bash
# Install the JavaScript SDKs the serve tests send from (pinned by package-lock.json).
# Called from .ci/run; the tests skip, saying why, when node/npm or this install is absent.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "tests/serve/js/install.sh: npm not found; the Node and browser SDK tests will skip" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
