#!/usr/bin/env bash
# Promotes a ring (promote.yml): `rings promote <ring>`, with the release notes of what moved
# in the job summary (or on stdout), then prints `sites=<JSON array>`: the sites of the ring
# that received the release, which the workflow then updates with `pulumi up`.
# Usage: scripts/ci/promote.sh <ring> [--force --reason <text>]
#   (appends sites=... to $GITHUB_OUTPUT when set; --force promotes a release no site of <ring>
#   verified, and records who and why, as `rings promote --force` does)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ring="${1:?usage: promote.sh <ring> [--force --reason <text>]}"
shift
sites="$(npx tsx scripts/ci/sites.ts --after "$ring")"
summary="${GITHUB_STEP_SUMMARY:-/dev/stdout}"
{
  echo "## Promote $ring"
  echo
  npx tsx scripts/rings.ts promote "$ring" --markdown "$@"
  echo
  echo "Sites to update: \`$sites\`"
} >>"$summary"
echo "sites=$sites" >>"${GITHUB_OUTPUT:-/dev/stdout}"
