#!/usr/bin/env bash
# Builds one tool of the local platform from its Go module, through a wrapper
# module (a module whose go.mod has replace or exclude directives cannot be
# `go install`ed), and caches the binaries under $GITOPS_RINGS_CACHE/tools/<tool>-<version>/.
# Usage: build-go-tool.sh <tool>   (tool: pulumi | pulumi-language-nodejs | buildkit | etcd | kubernetes | kwok | actionlint)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/versions.sh"
CACHE="${GITOPS_RINGS_CACHE:-$HOME/.cache/gitops-rings}"
tool="$1"

# wrapper <dest-dir> <go.mod extra lines> <module@version>... -- <package>...
wrapper_build() {
  local dest="$1" extra="$2"; shift 2
  local mods=() pkgs=() seen=0
  for a in "$@"; do
    if [[ "$a" == "--" ]]; then seen=1; continue; fi
    if (( seen )); then pkgs+=("$a"); else mods+=("$a"); fi
  done
  if [[ -f "$dest/.complete" ]]; then echo "$tool: cached in $dest"; return 0; fi
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  ( cd "$work"
    printf 'module gitops-rings.local/wrapper\n\ngo 1.24\n\n%s\n' "$extra" > go.mod
    printf 'package wrapper\n' > wrapper.go
    for m in "${mods[@]}"; do go get "$m" >/dev/null; done
    mkdir -p "$dest.partial"
    for p in "${pkgs[@]}"; do
      echo "$tool: go build $p" >&2
      go build -mod=mod -trimpath -ldflags "-s -w ${LDFLAGS:-}" -o "$dest.partial/" "$p"
    done )
  rm -rf "$dest"; mv "$dest.partial" "$dest"; touch "$dest/.complete"
  echo "$tool: built into $dest"
}

case "$tool" in
  pulumi)
    LDFLAGS="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    wrapper_build "$CACHE/tools/pulumi-$PULUMI_VERSION" \
      "replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e" \
      "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" \
      -- github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ;;
  pulumi-language-nodejs)
    LDFLAGS="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_LANGUAGE_NODEJS_VERSION" \
    wrapper_build "$CACHE/tools/pulumi-language-nodejs-$PULUMI_LANGUAGE_NODEJS_VERSION" "" \
      "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_LANGUAGE_NODEJS_VERSION" \
      -- github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs ;;
  buildkit)
    wrapper_build "$CACHE/tools/buildkit-$BUILDKIT_VERSION" "" \
      "github.com/moby/buildkit@v$BUILDKIT_VERSION" \
      -- github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl ;;
  etcd)
    wrapper_build "$CACHE/tools/etcd-$ETCD_VERSION" "" \
      "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@v$ETCD_VERSION" \
      -- go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 ;;
  kubernetes)
    # k8s.io/kubernetes replaces its staging modules with ./staging/src/...;
    # the wrapper points each at its published v0.<minor>.<patch> instead.
    proxy="$(go env GOPROXY)"; proxy="${proxy%%,*}"
    staging="$(curl -fsS "$proxy/k8s.io/kubernetes/@v/v$KUBERNETES_VERSION.mod" \
      | sed -nE 's#^\s*(k8s.io/[a-z0-9-]+) => ./staging/src/.*#\1#p')"
    extra="$(for m in $staging; do echo "replace $m => $m v0.${KUBERNETES_VERSION#1.}"; done)"
    wrapper_build "$CACHE/tools/kubernetes-$KUBERNETES_VERSION" "$extra" \
      "k8s.io/kubernetes@v$KUBERNETES_VERSION" \
      -- k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
         k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ;;
  kwok)
    wrapper_build "$CACHE/tools/kwok-$KWOK_VERSION" "" \
      "sigs.k8s.io/kwok@v$KWOK_VERSION" -- sigs.k8s.io/kwok/cmd/kwok ;;
  actionlint)
    wrapper_build "$CACHE/tools/actionlint-$ACTIONLINT_VERSION" "" \
      "github.com/rhysd/actionlint@v$ACTIONLINT_VERSION" -- github.com/rhysd/actionlint/cmd/actionlint ;;
  *) echo "unknown tool: $tool" >&2; exit 2 ;;
esac
