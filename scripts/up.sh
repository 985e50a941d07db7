#!/usr/bin/env bash
# The main job on the embedded default: start the local platform, then `pulumi up` one site.
# Usage: scripts/up.sh [site] [pulumi args...]   (site: a stack in stacks/, default dev-developers)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
site="${1:-dev-developers}"; shift || true
[[ -f "stacks/Pulumi.$site.yaml" ]] || { echo "no stack config stacks/Pulumi.$site.yaml" >&2; exit 2; }
bash scripts/platform.sh up
eval "$(bash scripts/platform.sh env)"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
pulumi stack select "$site" 2>/dev/null || pulumi stack init "$site"
pulumi up --yes --stack "$site" "$@"
