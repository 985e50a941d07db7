#!/usr/bin/env bash
# The whole test suite on the local platform, from a fresh clone:
# prepares and starts the platform (idempotent), installs the npm dependencies, runs `npm test`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/platform.sh up
eval "$(bash scripts/platform.sh env)"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
npm test
