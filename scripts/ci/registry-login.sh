#!/usr/bin/env bash
# Logs docker in to the registry of gitops-rings.yaml (its host, without a path prefix), so that
# the program (lib/registry.ts reads docker's config.json) and docker-build can push and read.
# Reads REGISTRY_USERNAME and REGISTRY_PASSWORD from the environment (repository secrets); does
# nothing when they are unset (a registry without authentication). Never prints the password.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ -z "${REGISTRY_USERNAME:-}" || -z "${REGISTRY_PASSWORD:-}" ]]; then
  echo "registry-login: REGISTRY_USERNAME or REGISTRY_PASSWORD not set; not logging in"
  exit 0
fi
registry="$(sed -nE 's/^registry:[[:space:]]*"?([^"#[:space:]]+)"?.*$/\1/p' gitops-rings.yaml | head -n 1)"
if [[ -z "$registry" ]]; then
  echo "registry-login: gitops-rings.yaml: registry: not found" >&2
  exit 1
fi
host="${registry%%/*}"
printf '%s' "$REGISTRY_PASSWORD" | docker login "$host" --username "$REGISTRY_USERNAME" --password-stdin
