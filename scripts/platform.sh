#!/usr/bin/env bash
# The local platform: the embedded default that gitops-rings deploys to when no
# other cluster, registry or builder is configured (../shared/DESIGN.md, "The
# local platform").
#
#   scripts/platform.sh up       prepare (build or install what is missing) and start every part; idempotent
#   scripts/platform.sh status   each part with its version, address, pid and log file
#   scripts/platform.sh down     stop every part (data is kept; `down --purge` deletes it)
#   scripts/platform.sh env      print the environment to `eval` in a shell (PATH, KUBECONFIG, PULUMI_*)
#   scripts/platform.sh tools    only build or install the binaries (what CI caches)
#   scripts/platform.sh restart-kwok  restart only the simulated node (after its stages changed)
#
# Binaries are built from Go modules or installed from Debian and cached outside
# the checkout in $GITOPS_RINGS_CACHE (default ~/.cache/gitops-rings), keyed by
# version (scripts/platform/versions.sh). Runtime state (data, logs, pids,
# certificates, the Pulumi state backend) lives in <checkout>/.platform/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/platform/versions.sh"
CACHE="${GITOPS_RINGS_CACHE:-$HOME/.cache/gitops-rings}"
STATE="${GITOPS_RINGS_PLATFORM_DIR:-$root/.platform}"
REGISTRY_PORT="${GITOPS_RINGS_REGISTRY_PORT:-5001}"
# Where the registry sends its webhook notifications: the watcher's default address and the
# development token the `env` command exports (README, "The watcher").
WATCH_URL="${GITOPS_RINGS_WATCH_URL:-http://127.0.0.1:8787/events}"
WATCH_TOKEN="${GITOPS_RINGS_WATCH_TOKEN:-gitops-rings-dev-watch}"
BUILDKIT_PORT="${GITOPS_RINGS_BUILDKIT_PORT:-1234}"
ETCD_PORT="${GITOPS_RINGS_ETCD_PORT:-2379}"
APISERVER_PORT="${GITOPS_RINGS_APISERVER_PORT:-6443}"
# The development passphrase of the local state backend's secrets provider.
# It protects nothing: use a real secrets provider for real sites.
DEV_PASSPHRASE="gitops-rings-dev"

tools="$CACHE/tools"
node_dir="$CACHE/node-$NODE_VERSION"
pulumi_bin="$tools/pulumi-$PULUMI_VERSION"
langhost_bin="$tools/pulumi-language-nodejs-$PULUMI_LANGUAGE_NODEJS_VERSION"
buildkit_bin="$tools/buildkit-$BUILDKIT_VERSION"
etcd_bin="$tools/etcd-$ETCD_VERSION"
kube_bin="$tools/kubernetes-$KUBERNETES_VERSION"
kwok_bin="$tools/kwok-$KWOK_VERSION"
actionlint_bin="$tools/actionlint-$ACTIONLINT_VERSION"
shellcheck_bin="$tools/shellcheck-$SHELLCHECK_DEBIAN_VERSION"

log() { printf '%s platform: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools

ensure_debian() {
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /bin/busybox ]] || missing+=(busybox-static)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v git >/dev/null || missing+=(git)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    log "installing from Debian: ${missing[*]}"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_node() {
  local have
  have="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || echo 0)"
  if [[ -x "$node_dir/node_modules/.bin/node" ]]; then return 0; fi
  if ((have >= NODE_VERSION)) && [[ -z "${GITOPS_RINGS_FORCE_NODE:-}" ]]; then return 0; fi
  log "installing Node.js $NODE_VERSION from the npm registry's node package into $node_dir"
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --no-save --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >/dev/null)
}

ensure_go_tool() {
  local name="$1" dir="$2"
  [[ -f "$dir/.complete" ]] && return 0
  log "building $name from Go modules (cached in $dir; this takes minutes the first time)"
  "$root/scripts/platform/build-go-tool.sh" "$name" >"$CACHE/build-$name.log" 2>&1 ||
    { tail -n 30 "$CACHE/build-$name.log" >&2; die "building $name failed (log: $CACHE/build-$name.log)"; }
}

# A Debian package unpacked into the cache (no root, nothing installed system-wide):
# `apt-get download` fetches the .deb at the pinned version, `dpkg-deb -x` unpacks it.
# ensure_debian_tool <package> <version> <dir>: the binaries end up in <dir>/bin.
ensure_debian_tool() {
  local pkg="$1" version="$2" dir="$3"
  [[ -f "$dir/.complete" ]] && return 0
  log "unpacking Debian's $pkg $version into $dir"
  local work
  work="$(mktemp -d)"
  if ! (cd "$work" && apt-get download -qq "$pkg=$version" >/dev/null 2>&1); then
    [[ $(id -u) == 0 ]] && apt-get update -qq
    (cd "$work" && apt-get download -qq "$pkg=$version" >/dev/null) ||
      { rm -rf "$work"; die "apt-get download $pkg=$version failed"; }
  fi
  rm -rf "$dir.partial"
  dpkg-deb -x "$work"/"${pkg}"_*.deb "$dir.partial"
  rm -rf "$work" "$dir"
  mkdir -p "$dir"
  mv "$dir.partial/usr/bin" "$dir/bin"
  rm -rf "$dir.partial"
  touch "$dir/.complete"
}

# The dynamic-provider plugin of the Node.js SDK is a two-line launcher that the
# official CLI ships beside its binary; it is part of the nodejs SDK (sdk/nodejs/dist).
ensure_pulumi_layout() {
  local d="$pulumi_bin"
  ln -sf "$langhost_bin/pulumi-language-nodejs" "$d/pulumi-language-nodejs"
  cat >"$d/pulumi-resource-pulumi-nodejs" <<'EOF'
#!/bin/sh
exec node ./node_modules/@pulumi/pulumi/cmd/dynamic-provider "$@"
EOF
  chmod +x "$d/pulumi-resource-pulumi-nodejs"
}

# The example application's base image is Debian's busybox-static (nothing is pulled from
# the internet); stage it into the base service's build context.
stage_example_app() {
  local target="$root/app/services/base/rootfs/bin/busybox"
  if ! cmp -s /bin/busybox "$target" 2>/dev/null; then
    mkdir -p "$(dirname "$target")"
    cp /bin/busybox "$target"
  fi
}

cmd_tools() {
  mkdir -p "$tools"
  ensure_debian
  stage_example_app
  ensure_node
  ensure_go_tool buildkit "$buildkit_bin"
  ensure_go_tool etcd "$etcd_bin"
  ensure_go_tool kubernetes "$kube_bin"
  ensure_go_tool kwok "$kwok_bin"
  ensure_go_tool pulumi-language-nodejs "$langhost_bin"
  ensure_go_tool pulumi "$pulumi_bin"
  ensure_pulumi_layout
  # The CI checks of the test suite (.github/workflows, every shell script).
  ensure_go_tool actionlint "$actionlint_bin"
  ensure_debian_tool shellcheck "$SHELLCHECK_DEBIAN_VERSION" "$shellcheck_bin"
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$STATE/run/$1.pid"; }
logfile() { echo "$STATE/logs/$1.log"; }

running() {
  local p
  p="$(cat "$(pidfile "$1")" 2>/dev/null)" || return 1
  kill -0 "$p" 2>/dev/null
}

# start <name> <readiness command> <cmd...>
start() {
  local name="$1" ready="$2"; shift 2
  if running "$name"; then log "$name already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  mkdir -p "$STATE/run" "$STATE/logs"
  if eval "$ready" >/dev/null 2>&1; then
    die "$name: something else already answers its readiness check ($ready); stop it, or move this platform's ports (GITOPS_RINGS_*_PORT)"
  fi
  log "starting $name"
  setsid "$@" >>"$(logfile "$name")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  for _ in $(seq 1 120); do
    if eval "$ready" >/dev/null 2>&1 && running "$name"; then log "$name ready"; return 0; fi
    if ! running "$name"; then break; fi
    sleep 0.5
  done
  log "$name did not become ready; last lines of $(logfile "$name"):"
  tail -n 25 "$(logfile "$name")" >&2 || true
  exit 1
}

stop() {
  local name="$1" p
  p="$(cat "$(pidfile "$name")" 2>/dev/null)" || return 0
  if kill -0 "$p" 2>/dev/null; then
    log "stopping $name (pid $p)"
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$p" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$name")"
}

# ---------------------------------------------------------------- parts

start_registry() {
  mkdir -p "$STATE/registry/data"
  cat >"$STATE/registry/config.yml" <<EOF
version: 0.1
log: { level: info, formatter: text }
storage:
  filesystem: { rootdirectory: $STATE/registry/data }
  delete: { enabled: true }
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  headers: { X-Content-Type-Options: [nosniff] }
# Manifest pushes and deletes reach the watcher (gitops-rings watch). With no watcher listening,
# Distribution keeps the events and retries every backoff; the registry itself is unaffected.
# Distribution 2.8 drops blob events by media type; it sends pulls despite ignore.actions (the
# watcher drops them), newer versions honour it.
notifications:
  endpoints:
    - name: gitops-rings-watch
      url: $WATCH_URL
      headers: { Authorization: [Bearer $WATCH_TOKEN] }
      timeout: 2s
      threshold: 5
      backoff: 5s
      ignoredmediatypes: [application/octet-stream]
      ignore: { actions: [pull] }
EOF
  start registry "curl -fsS http://127.0.0.1:$REGISTRY_PORT/v2/" \
    docker-registry serve "$STATE/registry/config.yml"
}

start_buildkit() {
  mkdir -p "$STATE/buildkit"
  cat >"$STATE/buildkit/buildkitd.toml" <<EOF
root = "$STATE/buildkit/root"
[grpc]
  address = ["tcp://127.0.0.1:$BUILDKIT_PORT", "unix://$STATE/buildkit/buildkitd.sock"]
[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  gc = true
  gckeepstorage = 10000
[worker.containerd]
  enabled = false
[registry."127.0.0.1:$REGISTRY_PORT"]
  http = true
  insecure = true
[registry."localhost:$REGISTRY_PORT"]
  http = true
  insecure = true
EOF
  start buildkitd "'$buildkit_bin/buildctl' --addr unix://$STATE/buildkit/buildkitd.sock debug workers" \
    "$buildkit_bin/buildkitd" --config "$STATE/buildkit/buildkitd.toml" --oci-worker-net host
  register_buildx_builder
}

# docker-build (and `docker buildx build`) reach BuildKit as a buildx "remote"
# builder. With the buildx CLI plugin we register it the documented way;
# without it we write the same instance record buildx's store reads.
register_buildx_builder() {
  local endpoint="tcp://127.0.0.1:$BUILDKIT_PORT"
  if docker buildx version >/dev/null 2>&1; then
    docker buildx rm gitops-rings >/dev/null 2>&1 || true
    docker buildx create --name gitops-rings --driver remote "$endpoint" >/dev/null
  else
    local dir="${DOCKER_CONFIG:-$HOME/.docker}/buildx/instances"
    mkdir -p "$dir"
    printf '{"Name":"gitops-rings","Driver":"remote","Nodes":[{"Name":"gitops-rings0","Endpoint":"%s","Platforms":null,"Flags":null,"DriverOpts":null,"Files":null}],"Dynamic":false}\n' \
      "$endpoint" >"$dir/gitops-rings"
  fi
}

make_pki() {
  local pki="$STATE/pki"
  [[ -f "$pki/admin.crt" ]] && return 0
  log "creating the cluster's certificates in $pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt -subj "/CN=gitops-rings-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=gitops-rings-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gitops-rings
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: gitops-rings
  context: { cluster: gitops-rings, user: admin }
current-context: gitops-rings
EOF
}

start_kubernetes() {
  make_pki
  local pki="$STATE/pki" kc="$STATE/kubeconfig"
  local curl_k="curl -fsS --cacert $pki/ca.crt --cert $pki/admin.crt --key $pki/admin.key"
  start etcd "curl -fsS http://127.0.0.1:$ETCD_PORT/health" \
    "$etcd_bin/server" --name gitops-rings --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "gitops-rings=http://127.0.0.1:$((ETCD_PORT + 1))" --quota-backend-bytes 4294967296
  start kube-apiserver "$curl_k https://127.0.0.1:$APISERVER_PORT/readyz" \
    "$kube_bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --enable-priority-and-fairness=false
  # Client rate limits sized for sites of hundreds of Deployments (issue 10): with the defaults
  # (20 requests/s for the controller manager, 50 for the scheduler) the controllers' own
  # requests, not the site, set the pace, and a deploy of 200 Deployments took 49 s; with these
  # it takes 10 s (bench:site, "first up: deploy step").
  start kube-controller-manager "$curl_k -k https://127.0.0.1:10257/healthz" \
    "$kube_bin/kube-controller-manager" --kubeconfig "$kc" --authentication-kubeconfig "$kc" \
    --authorization-kubeconfig "$kc" --leader-elect=false --bind-address 127.0.0.1 \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-route,-service,-persistentvolume-binder,-attachdetach' \
    --use-service-account-credentials=false --node-monitor-grace-period 10m \
    --kube-api-qps 1000 --kube-api-burst 2000 --concurrent-deployment-syncs 20 --concurrent-replicaset-syncs 20
  start kube-scheduler "$curl_k -k https://127.0.0.1:10259/healthz" \
    "$kube_bin/kube-scheduler" --kubeconfig "$kc" --authentication-kubeconfig "$kc" \
    --authorization-kubeconfig "$kc" --leader-elect=false --bind-address 127.0.0.1 \
    --kube-api-qps 1000 --kube-api-burst 2000
  start_kwok
}

# The simulated node. Its Pod stages (scripts/platform/kwok-stages.yaml) run Pods, complete the
# Pods of Jobs, and fail the Pods labelled with kwok's chaos label (how tests fail a Job).
start_kwok() {
  local pki="$STATE/pki" kc="$STATE/kubeconfig"
  mkdir -p "$STATE/kwok"
  cp "$root/scripts/platform/kwok-stages.yaml" "$STATE/kwok/stages.yaml"
  start kwok "curl -fsS http://127.0.0.1:10247/healthz" \
    bash -c "'$root/scripts/platform/kwok-node.sh' '$kc' '$pki' $APISERVER_PORT && exec '$kwok_bin/kwok' --kubeconfig '$kc' \
      --config '$STATE/kwok/stages.yaml' \
      --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
      --node-lease-duration-seconds 40 --cidr 10.0.1.0/24 --node-ip 10.0.1.1 --node-port 10247 --server-address 127.0.0.1:10247"
}

cmd_up() {
  local t0=$SECONDS
  cmd_tools
  start_registry
  start_buildkit
  start_kubernetes
  mkdir -p "$STATE/pulumi-state"
  cmd_env >"$STATE/env"
  log "platform up in $((SECONDS - t0))s; run: eval \"\$(scripts/platform.sh env)\""
}

cmd_down() {
  for p in kwok kube-scheduler kube-controller-manager kube-apiserver etcd buildkitd registry; do stop "$p"; done
  if [[ "${1:-}" == "--purge" ]]; then
    log "deleting $STATE"
    rm -rf "$STATE"
  fi
}

cmd_env() {
  local path="$pulumi_bin:$buildkit_bin:$kube_bin:$actionlint_bin:$shellcheck_bin/bin"
  [[ -x "$node_dir/node_modules/.bin/node" ]] && path="$node_dir/node_modules/.bin:$path"
  cat <<EOF
export PATH="$path:\$PATH"
export KUBECONFIG="$STATE/kubeconfig"
export BUILDKIT_HOST="tcp://127.0.0.1:$BUILDKIT_PORT"
export PULUMI_HOME="$CACHE/pulumi-home"
export PULUMI_BACKEND_URL="file://$STATE/pulumi-state"
export PULUMI_CONFIG_PASSPHRASE="$DEV_PASSPHRASE"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export GITOPS_RINGS_REGISTRY="127.0.0.1:$REGISTRY_PORT"
# The watcher's API token, which the platform's registry sends with its notifications.
export GITOPS_RINGS_WATCH_TOKEN="$WATCH_TOKEN"
# The local platform builds with buildctl and deploys with kubectl (README, "The local platform").
export GITOPS_RINGS_PLATFORM=local
# Pulumi.yaml's runtime option tsconfig (tsconfig.pulumi.json, whose noCheck makes ts-node
# transpile only) is newer than this language host, which ignores it; this has the same effect.
export PULUMI_NODEJS_TRANSPILE_ONLY=true
EOF
}

cmd_status() {
  local rows=(
    "registry|docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null)|http://127.0.0.1:$REGISTRY_PORT"
    "buildkitd|buildkit v$BUILDKIT_VERSION (runc $(runc --version 2>/dev/null | sed -n 's/^runc version //p'))|tcp://127.0.0.1:$BUILDKIT_PORT"
    "etcd|etcd v$ETCD_VERSION|http://127.0.0.1:$ETCD_PORT"
    "kube-apiserver|kubernetes v$KUBERNETES_VERSION|https://127.0.0.1:$APISERVER_PORT"
    "kube-controller-manager|kubernetes v$KUBERNETES_VERSION|https://127.0.0.1:10257"
    "kube-scheduler|kubernetes v$KUBERNETES_VERSION|https://127.0.0.1:10259"
    "kwok|kwok v$KWOK_VERSION (node kwok-node-0)|-"
  )
  printf '%-24s %-8s %-8s %-44s %-30s %s\n' PART STATE PID VERSION ADDRESS LOG
  local r name ver addr st pid
  for r in "${rows[@]}"; do
    IFS='|' read -r name ver addr <<<"$r"
    if running "$name"; then st=up; pid="$(cat "$(pidfile "$name")")"; else st=down; pid=-; fi
    printf '%-24s %-8s %-8s %-44s %-30s %s\n' "$name" "$st" "$pid" "$ver" "$addr" "$(logfile "$name")"
  done
  local pv="not built"; [[ -x "$pulumi_bin/pulumi" ]] && pv="$("$pulumi_bin/pulumi" version 2>/dev/null)"
  printf '%-24s %-8s %-8s %-44s %-30s %s\n' pulumi cli - "$pv (language host v$PULUMI_LANGUAGE_NODEJS_VERSION)" "file://$STATE/pulumi-state" -
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  tools) cmd_tools ;;
  start-registry) start_registry ;;
  start-buildkit) start_buildkit ;;
  start-kubernetes) start_kubernetes ;;
  # Only the simulated node, e.g. after its stages changed; the API server and the rest keep running.
  restart-kwok) stop kwok; start_kwok ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
