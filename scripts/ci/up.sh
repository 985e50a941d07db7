#!/usr/bin/env bash
# `pulumi up` of one site (up.yml, promote.yml): selects the site's stack (created with the
# passphrase secrets provider when new) and updates it; in GitHub Actions the site's release
# plan and outputs go to the job summary.
# Usage: scripts/ci/up.sh <site>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
site="${1:?usage: up.sh <site>}"
pulumi stack select --create --stack "$site" --secrets-provider passphrase --non-interactive
pulumi up --yes --stack "$site" --non-interactive --color never
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    echo "## pulumi up: $site"
    echo
    echo '```text'
    pulumi stack output plan --stack "$site" 2>/dev/null || echo "(no plan output)"
    echo '```'
  } >>"$GITHUB_STEP_SUMMARY"
fi
