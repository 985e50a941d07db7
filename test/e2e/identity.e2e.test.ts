/**
 * A deploy identity per site (issue 11, part C), end to end on the local platform: `rings
 * bootstrap` with the caller's (admin) kubeconfig, then real `pulumi up`s through the Automation
 * API that deploy as the site's ServiceAccount with a token from the TokenRequest API. Every
 * claim is read back from the API server or the state.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import {
  assertPlatformEnv,
  kubectlJson,
  makeVersionRepo,
  tearDownSite,
  type VersionRepo,
} from "./helpers/versionRepo";

const ROOT = path.resolve(__dirname, "../..");

/** Whether `kubectl get <args>` finds the object. */
function exists(args: string[]): boolean {
  try {
    execFileSync("kubectl", ["get", ...args], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

describe("a deploy identity per site (end to end)", function () {
  let repo: VersionRepo;
  let stack: Stack;
  let namespace: string;
  let other: string;
  const user = () => `system:serviceaccount:${namespace}:gitops-rings-deploy`;

  before(async function () {
    this.timeout(120_000);
    assertPlatformEnv();
    repo = makeVersionRepo();
    stack = await repo.stack("dev-developers");
    namespace = repo.namespace("dev", "developers");
    other = `${repo.project}-other`;
    await stack.setConfig("gitops-rings:identity", { value: "true" });
  });

  after(async function () {
    this.timeout(300_000);
    await tearDownSite(
      stack,
      [
        ["namespace", namespace, "--wait=false"],
        ["clusterrole", other, "--ignore-not-found"],
      ],
      repo,
    );
  });

  it("GIVEN identity on and no bootstrap WHEN the site is updated THEN it fails naming the ServiceAccount and the bootstrap command", async function () {
    const failed = await stack.up({ onOutput: () => undefined }).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(failed, "the update should have failed");
    assert.ok(
      failed.message.includes(
        `namespace ${namespace} has no ServiceAccount gitops-rings-deploy; create it with: npm run rings -- bootstrap dev-developers`,
      ),
      failed.message,
    );
  });

  it("GIVEN a site WHEN bootstrapped THEN its namespace holds a ServiceAccount bound to a Role granting exactly its overlay's kinds and what a deploy reads", function () {
    execFileSync(
      "npx",
      ["tsx", path.join(ROOT, "scripts/rings.ts"), "bootstrap", "dev-developers"],
      {
        cwd: repo.dir,
        stdio: "pipe",
      },
    );
    assert.ok(exists(["serviceaccount", "gitops-rings-deploy", "-n", namespace]));
    const role = kubectlJson(["get", "role", "gitops-rings-deploy", "-n", namespace]) as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    const apply = ["get", "list", "watch", "create", "update", "patch", "delete"];
    const read = ["get", "list", "watch"];
    assert.deepEqual(role.rules, [
      { apiGroups: [""], resources: ["configmaps", "services"], verbs: apply },
      { apiGroups: ["apps"], resources: ["deployments"], verbs: apply },
      { apiGroups: ["apps"], resources: ["deployments", "replicasets"], verbs: read },
      { apiGroups: [""], resources: ["pods", "events"], verbs: read },
      { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
      { apiGroups: ["batch"], resources: ["jobs"], verbs: read },
    ]);
    const binding = kubectlJson(["get", "rolebinding", "gitops-rings-deploy", "-n", namespace]) as {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string; namespace: string }[];
    };
    assert.deepEqual(binding.roleRef, {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "gitops-rings-deploy",
    });
    assert.deepEqual(binding.subjects, [
      { kind: "ServiceAccount", name: "gitops-rings-deploy", namespace },
    ]);
  });

  it("GIVEN the identity WHEN the site is updated THEN it deploys as the identity, and the state holds no token in plain text", async function () {
    const result = await stack.up({ onOutput: () => undefined });
    assert.equal(result.summary.result, "succeeded");
    const deployments = kubectlJson(["get", "deployments", "-n", namespace]).items as {
      metadata: { name: string; managedFields: { manager: string }[] };
      status: { availableReplicas?: number };
    }[];
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ["backend", "frontend"]);
    for (const d of deployments) assert.equal(d.status.availableReplicas, 1);
    // What the token's user may do, as the API server answers it: its own namespace's kinds,
    // nothing cluster-wide (the next test shows the deploy runs as it).
    const can = (verb: string, resource: string, ns?: string) => {
      const args = ["auth", "can-i", verb, resource, `--as=${user()}`];
      try {
        return execFileSync("kubectl", ns ? [...args, "-n", ns] : args, {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
        }).trim();
      } catch (err) {
        return String((err as { stdout?: string }).stdout ?? "").trim();
      }
    };
    assert.equal(can("patch", "deployments.apps", namespace), "yes");
    assert.equal(can("patch", "deployments.apps", "default"), "no");
    assert.equal(can("create", "namespaces"), "no");
    assert.equal(can("create", "secrets", namespace), "no");
    const exported = execFileSync("pulumi", ["stack", "export", "--stack", "dev-developers"], {
      cwd: repo.dir,
      encoding: "utf8",
      env: { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(repo.dir, ".state")}` },
    });
    // A service account token is a JWT: three base64url parts joined by dots.
    assert.doesNotMatch(exported, /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./);
    const state = JSON.parse(exported) as {
      deployment: { resources: { type: string; inputs?: Record<string, unknown> }[] };
    };
    const apply = state.deployment.resources.find(
      (r) => r.type === "pulumi-nodejs:dynamic/site:KubectlApply",
    );
    assert.ok(JSON.stringify(apply?.inputs?.identity).includes('"ciphertext"'));
  });

  it("GIVEN an overlay with an object beyond the site's namespace WHEN the site is updated THEN the API server's Forbidden is in the error and nothing is written there", async function () {
    // The site overlay moves every namespaced object into the site's namespace (and a Namespace
    // of another name fails at plan time: kustomize's ID conflict), so what can reach beyond it
    // is a cluster-scoped object, here a ClusterRole.
    const overlay = "app/deploy/overlays/dev";
    const kustomization = repo.read(`${overlay}/kustomization.yaml`);
    repo.write(
      `${overlay}/other.yaml`,
      [
        "apiVersion: rbac.authorization.k8s.io/v1",
        "kind: ClusterRole",
        "metadata:",
        `  name: ${other}`,
        "rules: []",
        "",
      ].join("\n"),
    );
    repo.write(
      `${overlay}/kustomization.yaml`,
      kustomization.replace(/^resources:\n/m, "resources:\n  - other.yaml\n"),
    );
    assert.match(repo.read(`${overlay}/kustomization.yaml`), /other\.yaml/);
    const failed = await stack.up({ onOutput: () => undefined }).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(failed, "the update should have failed");
    assert.match(failed.message, /is forbidden: User "system:serviceaccount:[^"]+" cannot patch/);
    assert.ok(failed.message.includes(user()), failed.message);
    assert.ok(failed.message.includes(`clusterroles.rbac.authorization.k8s.io "${other}"`));
    assert.equal(exists(["clusterrole", other]), false);
  });
});
