/**
 * lib/kubectl.ts against the real API server of the local platform (KUBECONFIG), whose
 * simulated kwok node runs Pods and turns them Ready, so rollouts complete. Every run uses its
 * own namespaces (`it-kubectl-<random>`), deleted afterwards.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import {
  FIELD_MANAGER,
  applyManifests,
  deleteObjects,
  objectKey,
  objectRefs,
  type ObjectRef,
} from "../../lib/kubectl";

const run = promisify(execFile);
const IMAGE_1 = `127.0.0.1:5001/it/app@sha256:${"1".repeat(64)}`;
const IMAGE_2 = `127.0.0.1:5001/it/app@sha256:${"2".repeat(64)}`;
/** Seconds a Ready Pod waits before it counts as available (Ready times have 1 s resolution). */
const MIN_READY = 3;

async function kubectl(...args: string[]): Promise<string> {
  return (await run("kubectl", args, { maxBuffer: 64 * 1024 * 1024 })).stdout;
}

/** An object as the API server returns it (JSON), read by these tests only. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Live = Record<string, any>;

/** The object as JSON (with managedFields), or undefined when the API server has none. */
async function get(kind: string, name: string, namespace?: string): Promise<Live | undefined> {
  const ns = namespace ? ["-n", namespace] : [];
  const flags = ["--ignore-not-found", "--show-managed-fields", "-o", "json"];
  const out = await kubectl("get", kind, name, ...ns, ...flags);
  return out.trim() ? JSON.parse(out) : undefined;
}

// Labelled as a site's Namespace is: an apply that sets no field leaves no managed fields.
const namespace = (name: string) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels: { "gitops-rings.io/site": "it-kubectl" } },
});

/** A Deployment of one replica; `extra` goes into the pod spec, `spec` into the Deployment's. */
const deployment = (
  ns: string | undefined,
  name: string,
  image: string,
  extra = {},
  spec = {},
) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, ...(ns ? { namespace: ns } : {}) },
  spec: {
    ...spec,
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: "app", image }], ...extra },
    },
  },
});

const service = (ns: string, name: string) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
});

const yaml = (...objects: object[]) => objects.map((o) => stringify(o)).join("---\n");

describe("kubectl apply, rollout and prune against the API server", function () {
  this.timeout(120_000);
  const suffix = randomBytes(4).toString("hex");
  const ns = `it-kubectl-${suffix}`;
  const ctxNs = `it-kubectl-ctx-${suffix}`;
  let tmp: string;

  before(function () {
    if (!process.env.KUBECONFIG) {
      throw new Error('KUBECONFIG is not set: eval "$(bash scripts/platform.sh env)"');
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-kubectl-"));
  });

  after(async function () {
    this.timeout(60_000);
    await kubectl("delete", "namespace", ns, ctxNs, "--ignore-not-found", "--wait=false");
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("GIVEN a Namespace, a Deployment and a Service", () => {
    // A Pod counts as available MIN_READY seconds after it is Ready: a rollout takes that long.
    const web = (image: string) => deployment(ns, "web", image, {}, { minReadySeconds: MIN_READY });
    const all = yaml(namespace(ns), web(IMAGE_1), service(ns, "web"));
    let applied: ObjectRef[];
    let uid: string;

    it("WHEN applied THEN it returns their exact identities and resolves only once the Deployment rolled out", async () => {
      const started = Date.now();
      applied = await applyManifests(all, []);
      const elapsed = Date.now() - started;
      const d = await get("deployment", "web", ns);
      assert.deepEqual(applied, [
        { apiVersion: "v1", kind: "Namespace", name: ns },
        { apiVersion: "apps/v1", kind: "Deployment", namespace: ns, name: "web" },
        { apiVersion: "v1", kind: "Service", namespace: ns, name: "web" },
      ]);
      assert.ok(d, "the Deployment exists");
      uid = d.metadata.uid;
      assert.equal(d.status.observedGeneration, d.metadata.generation);
      assert.deepEqual(
        [
          d.status.replicas,
          d.status.updatedReplicas,
          d.status.readyReplicas,
          d.status.availableReplicas,
        ],
        [1, 1, 1, 1],
      );
      assert.ok(elapsed >= (MIN_READY - 1) * 1000, `resolved after ${elapsed} ms`);
      assert.equal(d.spec.template.spec.containers[0].image, IMAGE_1);
      assert.ok(await get("service", "web", ns), "the Service exists");
    });

    it("WHEN applied THEN the field manager of every object is gitops-rings, applying", async () => {
      for (const [kind, name, n] of [
        ["namespace", ns, undefined],
        ["deployment", "web", ns],
        ["service", "web", ns],
      ] as const) {
        const o = await get(kind, name, n);
        const managers = (o?.metadata.managedFields ?? [])
          .filter((f: { operation: string }) => f.operation === "Apply")
          .map((f: { manager: string }) => f.manager);
        assert.deepEqual(managers, [FIELD_MANAGER], `${kind} ${name}`);
      }
    });

    it("WHEN applied again with a new image THEN it resolves once the new ReplicaSet is the one ready", async () => {
      const again = await applyManifests(
        yaml(namespace(ns), web(IMAGE_2), service(ns, "web")),
        applied,
      );
      assert.deepEqual(again, applied);
      const d = await get("deployment", "web", ns);
      assert.equal(d?.metadata.uid, uid);
      assert.equal(d?.status.observedGeneration, d?.metadata.generation);
      assert.deepEqual(
        [
          d?.status.replicas,
          d?.status.updatedReplicas,
          d?.status.readyReplicas,
          d?.status.availableReplicas,
        ],
        [1, 1, 1, 1],
      );
      const pods = JSON.parse(
        await kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "json"),
      );
      const live = pods.items.filter((p: { metadata: { deletionTimestamp?: string } }) => {
        return !p.metadata.deletionTimestamp;
      });
      assert.deepEqual(
        live.map((p: { spec: { containers: { image: string }[] } }) => p.spec.containers[0].image),
        [IMAGE_2],
      );
    });

    it("WHEN applied with the Service dropped THEN the Service is deleted and the Deployment kept", async () => {
      const without = yaml(namespace(ns), web(IMAGE_2));
      const objects = await applyManifests(without, applied);
      assert.deepEqual(objects, [
        { apiVersion: "v1", kind: "Namespace", name: ns },
        { apiVersion: "apps/v1", kind: "Deployment", namespace: ns, name: "web" },
      ]);
      assert.equal(await get("service", "web", ns), undefined);
      const d = await get("deployment", "web", ns);
      assert.equal(d?.metadata.uid, uid);
      assert.equal(d?.metadata.deletionTimestamp, undefined);
      applied = objects;
    });

    it("WHEN an object moves to a newer apiVersion THEN it is not pruned as if it were gone", async () => {
      const hpa = (apiVersion: string) => ({
        apiVersion,
        kind: "HorizontalPodAutoscaler",
        metadata: { name: "web", namespace: ns },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
          minReplicas: 1,
          maxReplicas: 2,
        },
      });
      const v1 = await applyManifests(
        yaml(namespace(ns), web(IMAGE_2), hpa("autoscaling/v1")),
        applied,
      );
      const before = await get("hpa", "web", ns);
      const v2 = await applyManifests(yaml(namespace(ns), web(IMAGE_2), hpa("autoscaling/v2")), v1);
      assert.deepEqual(v2[2], {
        apiVersion: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        namespace: ns,
        name: "web",
      });
      const after = await get("hpa", "web", ns);
      assert.equal(after?.metadata.uid, before?.metadata.uid);
      assert.equal(after?.metadata.deletionTimestamp, undefined);
      applied = v2;
    });

    it("WHEN a Deployment has no selector THEN applying throws with the command and kubectl's message", async () => {
      const bad = deployment(ns, "bad", IMAGE_1) as { spec: Record<string, unknown> };
      delete bad.spec.selector;
      await assert.rejects(applyManifests(yaml(bad), applied), (err: Error) => {
        assert.ok(
          err.message.startsWith(
            "kubectl apply --server-side --force-conflicts --field-manager=gitops-rings -f -: ",
          ),
          err.message,
        );
        assert.match(
          err.message,
          /The Deployment "bad" is invalid: \n\* spec\.selector: Required value\n/,
        );
        return true;
      });
      assert.equal(await get("deployment", "bad", ns), undefined);
    });

    it("WHEN the YAML does not parse THEN applying throws with kubectl's parse error", async () => {
      await assert.rejects(
        applyManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: [\n", applied),
        (err: Error) => {
          assert.match(
            err.message,
            /^kubectl apply .* -f -: error: error parsing STDIN: error converting YAML to JSON: yaml: line 3: /,
          );
          return true;
        },
      );
    });

    it("WHEN a Deployment cannot roll out in time THEN applying throws naming it, why, its conditions and its Pods' scheduling events", async () => {
      const stuck = deployment(ns, "stuck", IMAGE_1, { nodeSelector: { "it.example/none": "x" } });
      const lines: string[] = [];
      await assert.rejects(
        applyManifests(yaml(web(IMAGE_2), stuck), applied, {
          timeoutSeconds: 4,
          onProgress: (l) => lines.push(l),
        }),
        (err: Error) => {
          assert.match(
            err.message,
            /^rollouts not complete after 4s: 1 of 2 Deployments not ready:\n/,
          );
          assert.match(
            err.message,
            new RegExp(`Deployment ${ns}/stuck: 0 of 1 updated replicas available`),
          );
          assert.match(err.message, /condition Available=False \(MinimumReplicasUnavailable\)/);
          assert.match(
            err.message,
            /event Pod\/stuck-[a-z0-9-]+: FailedScheduling: .*node\(s\) didn't match/,
          );
          assert.doesNotMatch(err.message, /Deployment [^ ]*\/web:/);
          return true;
        },
      );
      assert.equal(lines.at(-1), "rollouts: 1/2 ready");
      await deleteObjects([
        { apiVersion: "apps/v1", kind: "Deployment", namespace: ns, name: "stuck" },
      ]);
    });

    it("WHEN twelve Deployments are applied THEN it waits for all of them together, reporting progress up to 12/12", async () => {
      const many = Array.from({ length: 12 }, (_, i) =>
        deployment(ns, `many-${i}`, IMAGE_1, {}, { minReadySeconds: MIN_READY }),
      );
      const lines: string[] = [];
      const objects = await applyManifests(yaml(...many), [], { onProgress: (l) => lines.push(l) });
      assert.equal(lines[0], "rollouts: 0/12 ready");
      assert.equal(lines.at(-1), "rollouts: 12/12 ready");
      const counts = lines.map((l) => Number(/(\d+)\/12/.exec(l)?.[1]));
      assert.deepEqual(
        counts,
        [...counts].sort((a, b) => a - b),
        "progress never goes back",
      );
      const live = JSON.parse(await kubectl("get", "deployments", "-n", ns, "-o", "json"));
      for (const name of many.map((d) => d.metadata.name)) {
        const d = live.items.find((x: Live) => x.metadata.name === name);
        assert.equal(d?.status.availableReplicas, 1, `${name} available`);
      }
      await deleteObjects(objects);
    });

    it("WHEN deleteObjects is given the applied objects THEN the Deployment goes and the Namespace terminates", async () => {
      await deleteObjects(applied.filter((o) => o.kind !== "Namespace"));
      assert.equal(await get("deployment", "web", ns), undefined);
      assert.equal(await get("hpa", "web", ns), undefined);
      await deleteObjects(applied);
      const n = await get("namespace", ns);
      assert.ok(n === undefined || n.status.phase === "Terminating", JSON.stringify(n?.status));
    });
  });

  describe("GIVEN a kubeconfig whose context has a namespace", () => {
    it("WHEN a Deployment without a namespace is applied THEN it rolls out in the context's namespace", async () => {
      const kubeconfig = path.join(tmp, "kubeconfig");
      fs.writeFileSync(kubeconfig, await kubectl("config", "view", "--raw"));
      await kubectl(
        "--kubeconfig",
        kubeconfig,
        "config",
        "set-context",
        "--current",
        `--namespace=${ctxNs}`,
      );
      await kubectl("create", "namespace", ctxNs);
      const objects = await applyManifests(yaml(deployment(undefined, "ctx", IMAGE_1)), [], {
        kubeconfig,
      });
      assert.deepEqual(objects, [{ apiVersion: "apps/v1", kind: "Deployment", name: "ctx" }]);
      const d = await get("deployment", "ctx", ctxNs);
      assert.equal(d?.status.readyReplicas, 1);
      assert.equal(await get("deployment", "ctx", "default"), undefined);
    });
  });

  describe("GIVEN objects that do not exist", () => {
    it("WHEN deleted THEN deleteObjects resolves: missing object, missing namespace, missing type", async () => {
      await deleteObjects([
        { apiVersion: "v1", kind: "Namespace", name: `it-kubectl-none-${suffix}` },
        { apiVersion: "apps/v1", kind: "Deployment", namespace: "default", name: `none-${suffix}` },
        { apiVersion: "v1", kind: "Service", namespace: `it-kubectl-none-${suffix}`, name: "x" },
        { apiVersion: "example.com/v1", kind: "Widget", namespace: "default", name: "x" },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          name: `it-kubectl-none-${suffix}`,
        },
      ]);
    });

    it("WHEN the API server is unreachable THEN deleteObjects throws kubectl's message", async () => {
      const bad = path.join(tmp, "unreachable");
      fs.writeFileSync(
        bad,
        stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1" } }],
          contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
          users: [{ name: "u", user: { token: "t" } }],
          "current-context": "c",
        }),
      );
      await assert.rejects(
        deleteObjects([{ apiVersion: "v1", kind: "ConfigMap", namespace: "default", name: "x" }], {
          kubeconfig: bad,
        }),
        /^Error: kubectl delete ConfigMap x --ignore-not-found --wait=false -n default: .*connection refused/s,
      );
    });
  });
});

describe("objectRefs and objectKey", () => {
  it("GIVEN a YAML stream with comments, empty documents and a cluster-scoped object WHEN read THEN only objects, without an undefined namespace", () => {
    const refs = objectRefs(
      "# c\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\n" +
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: a\n",
    );
    assert.deepEqual(refs, [
      { apiVersion: "v1", kind: "Namespace", name: "a" },
      { apiVersion: "apps/v1", kind: "Deployment", namespace: "a", name: "d" },
    ]);
    assert.equal("namespace" in refs[0], false);
  });

  it("GIVEN two versions of one group WHEN keyed THEN they are one object; other groups, kinds or namespaces are not", () => {
    const ref = (apiVersion: string, kind = "X", namespace?: string): ObjectRef => ({
      apiVersion,
      kind,
      name: "n",
      ...(namespace ? { namespace } : {}),
    });
    assert.equal(objectKey(ref("autoscaling/v1")), objectKey(ref("autoscaling/v2")));
    assert.equal(objectKey(ref("autoscaling/v1")), "autoscaling/X//n");
    assert.equal(objectKey(ref("v1", "Service", "a")), "/Service/a/n");
    assert.notEqual(objectKey(ref("a/v1")), objectKey(ref("b/v1")));
    assert.notEqual(objectKey(ref("v1", "X")), objectKey(ref("v1", "Y")));
    assert.notEqual(objectKey(ref("v1", "X", "a")), objectKey(ref("v1", "X", "b")));
  });
});
