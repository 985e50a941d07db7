#!/usr/bin/env bash
# The CI checks of this repository's own CI: actionlint on every workflow under
# .github/workflows (it also runs shellcheck on their `run:` scripts) and shellcheck on every
# shell script (`*.sh` and files with a sh/bash shebang). Exits non-zero when either finds
# anything, printing what and where.
# Usage: scripts/ci/lint.sh [root]   (default: this checkout; the test suite lints copies too)
# The tools come from PATH, else from the platform's cache (`scripts/platform.sh tools` builds
# actionlint from its Go module and unpacks Debian's shellcheck there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../platform/versions.sh
source "$here/../platform/versions.sh"
root="$(cd "${1:-$here/../..}" && pwd)"
cache="${GITOPS_RINGS_CACHE:-$HOME/.cache/gitops-rings}/tools"

tool() {
  local name="$1" cached="$2"
  if [[ -x "$cached/$name" ]]; then
    echo "$cached/$name"
  elif command -v "$name" >/dev/null; then
    command -v "$name"
  else
    echo "lint: $name not found in $cached or on PATH; run: bash scripts/platform.sh tools" >&2
    return 1
  fi
}
actionlint="$(tool actionlint "$cache/actionlint-$ACTIONLINT_VERSION")"
shellcheck="$(tool shellcheck "$cache/shellcheck-$SHELLCHECK_DEBIAN_VERSION/bin")"

cd "$root"
status=0
mapfile -t workflows < <(find .github/workflows -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) 2>/dev/null | sort)
if ((${#workflows[@]})); then
  echo "actionlint: ${#workflows[@]} workflows"
  "$actionlint" -shellcheck "$shellcheck" "${workflows[@]}" || status=1
else
  echo "actionlint: no workflows under $root/.github/workflows" >&2
  status=1
fi

mapfile -t scripts < <(
  find . \( -name node_modules -o -name .git -o -name .platform -o -name .gitops-rings \) -prune -o \
    -type f -print | sort | while read -r f; do
    if [[ "$f" == *.sh ]] || head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*(/|env )(ba)?sh( |$)'; then
      echo "$f"
    fi
  done
)
echo "shellcheck: ${#scripts[@]} scripts"
"$shellcheck" "${scripts[@]}" || status=1
exit "$status"
