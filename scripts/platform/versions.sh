# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts that source it
# Versions of every tool the local platform builds or installs. Sourced by the
# platform scripts; the cache directory of each tool is keyed by its version, so
# changing a number here rebuilds that tool only.
#
# Pulumi: the Go proxy reachable here serves github.com/pulumi/pulumi/pkg/v3 only
# at some versions (3.250.0 is the newest whose module zip it serves), and the
# nodejs language host only inside github.com/pulumi/pulumi/sdk/v3 up to 3.68.0
# (later releases moved it into its own module, which the proxy refuses).
PULUMI_VERSION=3.250.0
PULUMI_LANGUAGE_NODEJS_VERSION=3.68.0
BUILDKIT_VERSION=0.26.0
ETCD_VERSION=3.6.5
KUBERNETES_VERSION=1.34.4
KWOK_VERSION=0.7.0
NODE_VERSION=22
# CI checks (test/integration/ci-lint.test.ts): actionlint from its Go module, shellcheck
# from Debian's package (unpacked into the cache, no root needed).
ACTIONLINT_VERSION=1.7.12
SHELLCHECK_DEBIAN_VERSION=0.9.0-1
