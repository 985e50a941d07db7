/**
 * Registry credentials as secrets (issue 11, part D), end to end on the local platform: a
 * Distribution instance of its own behind htpasswd basic auth, a copy of the version repository
 * whose registry it is, and real `pulumi up`s through the Automation API. Every claim is read
 * back from the registry, the API server, `pulumi stack export` or the update's own output.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { parse, stringify } from "yaml";
import { RegistryClient } from "../../lib/registry";
import { StateStore } from "../../lib/state-store";
import { startRegistry, type TestRegistry } from "../integration/helpers/registry";
import {
  assertPlatformEnv,
  kubectlJson,
  makeVersionRepo,
  tearDownSite,
  type VersionRepo,
} from "./helpers/versionRepo";

/** The user the helper's htpasswd knows without `htpasswd` installed. */
const USER = "ci";
const PASSWORD = "s3cret pass";

/** Every form in which the password could leak: itself, `user:password` in base64, and its JSON. */
function leaks(text: string): string[] {
  const forms = [
    PASSWORD,
    Buffer.from(`${USER}:${PASSWORD}`).toString("base64"),
    JSON.stringify(PASSWORD).slice(1, -1),
  ];
  return forms.filter((f) => text.includes(f));
}

describe("registry credentials as secrets (end to end)", function () {
  let registry: TestRegistry;
  let repo: VersionRepo;
  let stack: Stack;
  let namespace: string;
  const output: string[] = [];
  const key = (field: string) => `gitops-rings:registryAuth["${registry.host}"].${field}`;

  before(async function () {
    this.timeout(120_000);
    assertPlatformEnv();
    registry = await startRegistry({ basicAuth: { username: USER, password: PASSWORD } });
    repo = makeVersionRepo();
    const config = parse(repo.read("gitops-rings.yaml"));
    config.registry = registry.host;
    repo.write("gitops-rings.yaml", stringify(config));
    stack = await repo.stack("dev-developers");
    namespace = repo.namespace("dev", "developers");
  });

  after(async function () {
    this.timeout(300_000);
    await tearDownSite(stack, [["namespace", namespace, "--wait=false"]], repo);
    await registry?.stop();
  });

  it("GIVEN a registry that requires credentials and none configured WHEN the site is updated THEN it fails before creating anything, naming the registry and the config keys to set", async function () {
    const failed = await stack.up({ onOutput: (o) => void output.push(o) }).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(failed, "the update should have failed");
    const message = failed.message;
    assert.match(message, new RegExp(`registry ${registry.host} requires credentials`));
    assert.ok(message.includes(`gitops-rings:registryAuth["${registry.host}"]`), message);
    assert.ok(message.includes(`pulumi config set --secret --path '${key("password")}'`), message);
    // Nothing was created: no resource in the state, no namespace in the cluster.
    const state = await stack.exportStack();
    const resources = (state.deployment as { resources?: unknown[] }).resources ?? [];
    assert.deepEqual(
      resources.filter((r) => (r as { type: string }).type.startsWith("pulumi-nodejs:dynamic")),
      [],
    );
    assert.throws(() =>
      execFileSync("kubectl", ["get", "namespace", namespace], { stdio: "pipe" }),
    );
  });

  it("GIVEN a password set in plain text WHEN a site is updated THEN the key is refused with the command that sets it as a secret, without showing it", async function () {
    // Another site: the stack history records the config of every update, so this one's
    // history holds the plain-text password the user wrote.
    const careless = await repo.stack("dev-testers");
    await careless.setConfig(key("username"), { value: USER }, true);
    await careless.setConfig(key("password"), { value: PASSWORD }, true);
    const failed = await careless.up({ onOutput: () => undefined }).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(failed, "the update should have failed");
    assert.ok(
      failed.message.includes(
        `stacks/Pulumi.dev-testers.yaml: ${key("password")}: is stored in plain text`,
      ),
      failed.message,
    );
    assert.deepEqual(leaks(failed.message), []);
    await careless.removeConfig(key("password"), true);
  });

  it("GIVEN the password as a secret WHEN the site is updated THEN BuildKit pushes, the ring moves, the pull secret is in the namespace, and neither the state nor the output holds the password", async function () {
    await stack.setConfig(key("username"), { value: USER }, true);
    await stack.setConfig(key("password"), { value: PASSWORD, secret: true }, true);
    const stackFile = fs.readFileSync(
      path.join(repo.dir, "stacks", "Pulumi.dev-developers.yaml"),
      "utf8",
    );
    assert.match(stackFile, /secure: /);
    assert.deepEqual(leaks(stackFile), []);

    const result = await stack.up({ onOutput: (o) => void output.push(o) });
    assert.equal(result.summary.result, "succeeded");
    assert.equal(result.outputs.release.value, "0.1.0");

    // The registry holds what was built, read back with the credentials.
    const client = new RegistryClient({ credentials: { [registry.host]: registry.credentials! } });
    const store = new StateStore({
      registry: registry.host,
      project: repo.project,
      rings: ["developers", "testers", "users", "lts"],
      client,
    });
    const ring = await store.readRing("developers");
    assert.equal(ring.release?.version, "0.1.0");
    for (const name of ["base", "backend", "frontend"]) {
      const out = (result.outputs.services.value as Record<string, { digest: string }>)[name];
      assert.equal(
        await client.resolveDigest(`${registry.host}/${repo.project}/${name}:0.1.0`),
        out.digest,
      );
    }
    // The site recorded its verification with the credentials too.
    const tags = await client.listTags(`${registry.host}/${repo.project}/release`);
    assert.ok(
      tags.some((t) => t.endsWith(".verify.dev-developers")),
      tags.join(", "),
    );

    // The image pull secret, and the ServiceAccount that makes Pods use it.
    const secret = kubectlJson(["get", "secret", "gitops-rings-registry", "-n", namespace]) as {
      type: string;
      data: Record<string, string>;
    };
    assert.equal(secret.type, "kubernetes.io/dockerconfigjson");
    const docker = JSON.parse(Buffer.from(secret.data[".dockerconfigjson"], "base64").toString());
    assert.equal(
      Buffer.from(docker.auths[registry.host].auth, "base64").toString(),
      `${USER}:${PASSWORD}`,
    );
    const account = kubectlJson(["get", "serviceaccount", "default", "-n", namespace]) as {
      imagePullSecrets?: { name: string }[];
    };
    assert.deepEqual(account.imagePullSecrets, [{ name: "gitops-rings-registry" }]);
    const pods = kubectlJson(["get", "pods", "-n", namespace]).items as {
      spec: { imagePullSecrets?: { name: string }[]; containers: { image: string }[] };
    }[];
    assert.ok(pods.length >= 2, `pods: ${pods.length}`);
    for (const pod of pods) {
      assert.ok(pod.spec.containers[0].image.startsWith(`${registry.host}/${repo.project}/`));
      assert.deepEqual(pod.spec.imagePullSecrets, [{ name: "gitops-rings-registry" }]);
    }

    // No plaintext password in the state: `pulumi stack export` as a user runs it (the
    // Automation API's exportStack shows secrets decrypted), and every file of the backend,
    // history and backups included.
    const exported = execFileSync("pulumi", ["stack", "export", "--stack", "dev-developers"], {
      cwd: repo.dir,
      encoding: "utf8",
      env: { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(repo.dir, ".state")}` },
    });
    assert.deepEqual(leaks(exported), []);
    const state = JSON.parse(exported) as {
      deployment: { resources: { type: string; inputs?: Record<string, unknown> }[] };
    };
    const pullSecret = state.deployment.resources.find(
      (r) => r.type === "pulumi-nodejs:dynamic/site:PullSecret",
    );
    assert.ok(
      JSON.stringify(pullSecret?.inputs?.dockerConfigJson).includes('"ciphertext"'),
      "the pull secret's dockerconfigjson is encrypted in the state",
    );
    const files = fs.readdirSync(path.join(repo.dir, ".state"), {
      recursive: true,
      withFileTypes: true,
    });
    const stateFiles = files
      .filter((f) => f.isFile())
      .map((f) => path.join(f.parentPath, f.name))
      .filter((f) => f.includes("dev-developers"));
    assert.ok(stateFiles.length > 0);
    for (const file of stateFiles) {
      assert.deepEqual(leaks(fs.readFileSync(file, "utf8")), [], file);
    }
    assert.deepEqual(leaks(output.join("") + result.stdout + result.stderr), []);
  });

  it("GIVEN the site WHEN it is destroyed THEN the pull secret leaves the cluster and the update succeeds", async function () {
    const result = await stack.destroy({ onOutput: (o) => void output.push(o) });
    assert.equal(result.summary.result, "succeeded");
    const secret = execFileSync(
      "kubectl",
      [
        "get",
        "secret",
        "gitops-rings-registry",
        "-n",
        namespace,
        "--ignore-not-found",
        "-o",
        "name",
      ],
      { encoding: "utf8" },
    );
    assert.equal(secret.trim(), "");
    assert.deepEqual(leaks(output.join("")), []);
  });
});
