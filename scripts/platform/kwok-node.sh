#!/usr/bin/env bash
# Registers the simulated node that kwok manages (annotation kwok.x-k8s.io/node=fake),
# so that the scheduler places Pods on it and kwok reports them Running and Ready.
# It takes 5000 Pods (a real node's default is 110), so that sites of hundreds of
# services fit (bench/site.ts); a node registered before gets the same capacity.
# Usage: kwok-node.sh <kubeconfig> <pki dir> <apiserver port>
set -euo pipefail
pki="$2" port="$3"
api="https://127.0.0.1:$port"
c=(curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")
for _ in $(seq 1 60); do "${c[@]}" "$api/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
if ! "${c[@]}" "$api/api/v1/nodes/kwok-node-0" >/dev/null 2>&1; then
  "${c[@]}" -X POST -H 'Content-Type: application/json' "$api/api/v1/nodes" -d '{
    "apiVersion": "v1", "kind": "Node",
    "metadata": {
      "name": "kwok-node-0",
      "annotations": { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      "labels": { "kubernetes.io/hostname": "kwok-node-0", "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "type": "kwok" }
    },
    "status": { "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "5000" },
                "capacity": { "cpu": "32", "memory": "256Gi", "pods": "5000" } }
  }' >/dev/null
fi
# A node from an older platform keeps its status: give it the same capacity.
"${c[@]}" -X PATCH -H 'Content-Type: application/merge-patch+json' \
  "$api/api/v1/nodes/kwok-node-0/status" \
  -d '{"status":{"allocatable":{"pods":"5000"},"capacity":{"pods":"5000"}}}' >/dev/null
