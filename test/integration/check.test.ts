/**
 * The invariant checker (lib/check.ts, `npm run rings -- check`) against a real Distribution
 * 2.8 and, for invariant 4, the local platform's API server (KUBECONFIG). Each scenario gets
 * a registry prefix of its own (`<host>/<scenario>/example/...`), so they break nothing of
 * each other's; the command runs as a user runs it, from a version repository directory. The
 * images are pushed by the test, not built, so they carry no provenance: the provenance rule is
 * off except where a test is about it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { checkInvariants, kubectlCluster, type Violation } from "../../lib/check";
import { RegistryClient } from "../../lib/registry";
import { StateStore } from "../../lib/state-store";
import type { ImageRecord, ReleaseRecord } from "../../lib/types";
import { assertInvariantsHold } from "../e2e/helpers/check";
import { pushServiceImage, recordOf } from "./helpers/images";
import { useRegistry } from "./helpers/registry";

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, "../..");
const RINGS = ["developers", "testers"];
const C1 = "1".repeat(40);
const C2 = "2".repeat(40);
const NAMESPACE = `it-check-${randomBytes(4).toString("hex")}`;
const ENVIRONMENTS = {
  dev: { name: "dev", overlay: "app/deploy/overlays/dev", namespace: NAMESPACE },
};

/** A version repository as the command sees it: gitops-rings.yaml, package.json, the program. */
function versionRepo(registry: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-check-"));
  fs.writeFileSync(
    path.join(dir, "gitops-rings.yaml"),
    stringify({
      project: "example",
      registry,
      rings: RINGS,
      environments: { dev: { overlay: "app/deploy/overlays/dev", namespace: NAMESPACE } },
      services: { base: { context: "base" }, backend: { context: "backend" } },
    }),
  );
  fs.copyFileSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
  for (const link of ["node_modules", "scripts", "lib"]) {
    fs.symlinkSync(path.join(ROOT, link), path.join(dir, link));
  }
  return dir;
}

/**
 * `npm run --silent rings -- check <args>` in `dir`: its exit code and output. The cluster is
 * read only where a test asks for it (KUBECONFIG is unset); `extra` adds to the environment.
 */
async function ringsCheck(dir: string, args: readonly string[], extra: NodeJS.ProcessEnv = {}) {
  const env = { ...process.env, ...extra };
  delete env.KUBECONFIG;
  const provenance = args.includes("--provenance") ? [] : ["--provenance", "off"];
  try {
    const { stdout } = await run(
      "npm",
      ["run", "--silent", "rings", "--", "check", ...args, ...provenance],
      {
        cwd: dir,
        env,
      },
    );
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code, stdout: err.stdout ?? "", stderr: err.stderr };
  }
}

/** The violations `--json` printed. */
const violationsOf = (stdout: string): Violation[] => JSON.parse(stdout).violations;

describe("rings check against Distribution 2.8", function () {
  this.timeout(120_000);
  const registry = useRegistry();
  const client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
  const dirs: string[] = [];

  /** A scenario: base and backend 0.1.0, release 0.1.0 on ring developers, under `<host>/<name>`. */
  async function seed(name: string) {
    const reg = `${registry().host}/${name}`;
    const base = recordOf(
      await pushServiceImage(client, reg, { service: "base", version: "0.1.0" }),
    );
    const backend = recordOf(
      await pushServiceImage(client, reg, {
        service: "backend",
        version: "0.1.0",
        dependencies: { base: "0.1.0" },
        sources: [{ name: "api", url: "file:///srv/api", commit: C1 }],
      }),
    );
    const store = new StateStore({ registry: reg, project: "example", rings: RINGS, client });
    const release = await store.pushRelease({ version: "0.1.0", services: { base, backend } });
    await store.moveRing("developers", "0.1.0");
    const dir = versionRepo(reg);
    dirs.push(dir);
    return { reg, base, backend, release, store, dir };
  }

  const check = (reg: string, extra: Partial<Parameters<typeof checkInvariants>[0]> = {}) =>
    checkInvariants({
      repository: { registry: reg, project: "example", rings: RINGS, environments: ENVIRONMENTS },
      client,
      provenance: "off",
      ...extra,
    });

  /** The outputs a site on ring developers records for `services`. */
  const outputsOf = (services: Record<string, ImageRecord>, release: ReleaseRecord) => ({
    ring: "developers",
    environment: "dev",
    release: release.version,
    services: Object.fromEntries(
      Object.entries(services).map(([name, s]) => [
        name,
        {
          version: s.version,
          digest: s.digest,
          ref: `${s.repository}@${s.digest}`,
          revision: s.revision,
          sources: s.sources,
          why: "ring developers",
        },
      ]),
    ),
  });

  after(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("GIVEN a release on a ring and a site's outputs that agree WHEN checked THEN every invariant holds and the command exits 0", async () => {
    const s = await seed("clean");
    const result = await check(s.reg);
    assert.deepEqual(result.violations, []);
    assert.deepEqual(
      [result.checked.releases, result.checked.rings, result.checked.versionTags],
      [1, 1, 2],
    );
    const file = path.join(s.dir, "dev-developers.json");
    fs.writeFileSync(
      file,
      JSON.stringify(outputsOf({ base: s.base, backend: s.backend }, s.release)),
    );
    const cli = await ringsCheck(s.dir, ["--outputs", file]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /^all invariants hold$/m);
    assert.match(
      cli.stdout,
      /checked: 1 releases, 1 ring pointers, 2 version tags; sites: .*dev-developers\.json/,
    );
  });

  it("GIVEN a release whose images carry no provenance WHEN checked as the command does by default THEN each image is reported under rule provenance and it exits 1; --provenance off exits 0", async () => {
    const s = await seed("provenance");
    const cli = await ringsCheck(s.dir, ["--json", "--provenance", "max"]);
    assert.equal(cli.code, 1, cli.stdout + cli.stderr);
    const rows = violationsOf(cli.stdout).map((v) => [v.invariant, v.object, v.found]);
    assert.deepEqual(
      rows.sort(),
      [
        `${s.reg}/example/backend@${s.backend.digest}`,
        `${s.reg}/example/base@${s.base.digest}`,
      ].map((image) => ["provenance", image, "no attestation manifest"]),
    );
    const table = await ringsCheck(s.dir, []);
    assert.equal(table.code, 0, table.stdout + table.stderr);
    assert.match(table.stdout, /provenance \(off\): 0 images/);
    const wrong = await ringsCheck(s.dir, ["--provenance", "some"]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr ?? "", /--provenance "some": expected one of max, min, off/);
  });

  it("GIVEN a version tag moved by hand to another image WHEN checked THEN invariant 1 names the tag and both digests, and the command exits 1", async () => {
    const s = await seed("moved");
    const repository = `${s.reg}/example/backend`;
    const other = await pushServiceImage(client, s.reg, {
      service: "backend",
      version: "0.1.0",
      files: { "app/backend.txt": "another build" },
      tag: "by-hand",
    });
    assert.notEqual(other.digest, s.backend.digest);
    assert.equal(await client.moveTag(repository, "0.1.0", other.digest), s.backend.digest);
    const expected: Violation[] = [
      {
        invariant: 1,
        object: `${repository}:0.1.0`,
        expected: `${s.backend.digest} (release 0.1.0)`,
        found: other.digest,
      },
    ];
    assert.deepEqual((await check(s.reg)).violations, expected);

    const json = await ringsCheck(s.dir, ["--json"]);
    assert.equal(json.code, 1, json.stderr);
    assert.deepEqual(violationsOf(json.stdout), expected);
    const table = await ringsCheck(s.dir, []);
    assert.equal(table.code, 1);
    const row = table.stdout.split("\n").find((l) => l.startsWith("1 "));
    assert.ok(row, table.stdout);
    assert.deepEqual(row.split(/\s{2,}/), [
      "1",
      `${repository}:0.1.0`,
      `${s.backend.digest} (release 0.1.0)`,
      other.digest,
    ]);
  });

  it("GIVEN a ring on a release that names a deleted image WHEN checked THEN invariant 2 names the ring and the release, and the command exits 1", async () => {
    const s = await seed("deleted");
    const releases = `${s.reg}/example/release`;
    assert.equal(await client.deleteManifest(s.base.repository, s.base.digest), true);
    const names = `release 0.1.0 names base ${s.base.repository}@${s.base.digest}`;
    const expected: Violation[] = [
      { invariant: 2, object: `${releases}:0.1.0`, expected: names, found: "not in the registry" },
      {
        invariant: 1,
        object: `${s.base.repository}:0.1.0`,
        expected: `${s.base.digest} (release 0.1.0)`,
        found: "no such tag",
      },
      {
        invariant: 2,
        object: `${releases}:ring-developers`,
        expected: names,
        found: "not in the registry",
      },
    ];
    assert.deepEqual((await check(s.reg)).violations, expected);
    const cli = await ringsCheck(s.dir, ["--json"]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.deepEqual(violationsOf(cli.stdout), expected);
  });

  it("GIVEN outputs whose version and source commit disagree with the image's labels WHEN checked THEN invariant 5 names each key, and the command exits 1", async () => {
    const s = await seed("outputs");
    const outputs = outputsOf({ base: s.base, backend: s.backend }, s.release);
    outputs.services.backend.version = "0.2.0";
    outputs.services.backend.sources = [{ name: "api", url: "file:///srv/api", commit: C2 }];
    const file = path.join(s.dir, "dev-developers.json");
    fs.writeFileSync(file, JSON.stringify(outputs));
    const expected: Violation[] = [
      {
        invariant: 5,
        object: `${file}: services.backend.version`,
        expected: "0.1.0",
        found: "0.2.0",
      },
      {
        invariant: 5,
        object: `${file}: services.backend.sources`,
        expected: `api=${C1}`,
        found: `api=${C2}`,
      },
    ];
    const result = await check(s.reg, { sites: [{ site: file, outputs }] });
    assert.deepEqual(result.violations, expected);
    const cli = await ringsCheck(s.dir, ["--outputs", file, "--json"]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.deepEqual(violationsOf(cli.stdout), expected);
  });

  it("GIVEN outputs that name an unknown environment WHEN the command runs THEN it fails naming the file, key and value", async () => {
    const s = await seed("badenv");
    const file = path.join(s.dir, "site.json");
    const outputs = { ...outputsOf({ base: s.base }, s.release), environment: "qa" };
    fs.writeFileSync(file, JSON.stringify(outputs));
    const cli = await ringsCheck(s.dir, ["--outputs", file]);
    assert.equal(cli.code, 1);
    assert.match(
      cli.stderr ?? "",
      new RegExp(
        `rings: ${file}: environment: "qa" is not an environment of gitops-rings.yaml \\(dev\\)`,
      ),
    );
  });

  it("GIVEN a stack whose outputs disagree with the labels WHEN the command reads it with --stack THEN invariant 5 names the stack's key, and the command exits 1", async () => {
    const s = await seed("stack");
    const outputs = outputsOf({ base: s.base, backend: s.backend }, s.release);
    outputs.services.base.version = "9.9.9";
    // A stack of this directory's project, in a file backend of its own, whose outputs are
    // what an inline program returned (no language host: the program runs in this process).
    const project = `it-check-${randomBytes(4).toString("hex")}`;
    fs.writeFileSync(path.join(s.dir, "Pulumi.yaml"), `name: ${project}\nruntime: nodejs\n`);
    const state = path.join(s.dir, ".state");
    fs.mkdirSync(state);
    const env = { PULUMI_BACKEND_URL: `file://${state}`, PULUMI_CONFIG_PASSPHRASE: "it-check" };
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: "dev-developers", projectName: project, program: async () => outputs },
      { workDir: s.dir, envVars: env },
    );
    await stack.up({ onOutput: () => undefined });
    const cli = await ringsCheck(s.dir, ["--stack", "dev-developers", "--json"], env);
    assert.equal(cli.code, 1, cli.stderr);
    assert.deepEqual(violationsOf(cli.stdout), [
      {
        invariant: 5,
        object: "dev-developers: services.base.version",
        expected: "0.1.0",
        found: "9.9.9",
      },
    ]);
    const missing = await ringsCheck(s.dir, ["--stack", "dev-nowhere"], env);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr ?? "",
      /^rings: --stack dev-nowhere: no stack named 'dev-nowhere' found\n$/,
    );
  });

  it("GIVEN a stack whose outputs agree WHEN the e2e helper runs THEN it returns; GIVEN one that disagrees THEN it fails with the table", async () => {
    const s = await seed("helper");
    const outputs = outputsOf({ base: s.base, backend: s.backend }, s.release);
    const stack = (name: string, values: object) => ({
      name,
      outputs: async () =>
        Object.fromEntries(
          Object.entries(values).map(([k, value]) => [k, { value, secret: false }]),
        ),
    });
    const args = { dir: s.dir, registry: s.reg, project: "example", provenance: "off" as const };
    const kubeconfig = process.env.KUBECONFIG;
    delete process.env.KUBECONFIG;
    try {
      const ok = await assertInvariantsHold({
        ...args,
        stacks: [stack("dev-developers", outputs), stack("dev-testers", {})],
      });
      assert.deepEqual(ok.checked.sites, ["dev-developers"]);
      assert.deepEqual(ok.checked.sitesWithoutOutputs, ["dev-testers"]);
      const wrong = structuredClone(outputs);
      wrong.services.base.revision = "v1:sha256:other";
      await assert.rejects(
        assertInvariantsHold({ ...args, stacks: [stack("dev-developers", wrong)] }),
        (e: Error) =>
          e.name === "AssertionError" &&
          /^INVARIANT +OBJECT +EXPECTED +FOUND$/m.test(e.message) &&
          e.message.includes(
            `5          dev-developers: services.base.revision  ${s.base.revision}  v1:sha256:other`,
          ),
      );
    } finally {
      if (kubeconfig !== undefined) process.env.KUBECONFIG = kubeconfig;
    }
  });

  describe("invariant 4, with the local platform's API server", () => {
    const ns = `${NAMESPACE}-developers`;
    const kubectl = (...args: string[]) => run("kubectl", args);

    before(function () {
      if (!process.env.KUBECONFIG) {
        throw new Error('KUBECONFIG is not set: eval "$(bash scripts/platform.sh env)"');
      }
    });

    after(async function () {
      this.timeout(60_000);
      if (process.env.KUBECONFIG)
        await kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false");
    });

    it("GIVEN Deployments in the site's namespace with an image by tag and one at another digest WHEN checked THEN invariant 4 names each container", async () => {
      const s = await seed("cluster");
      const other = await pushServiceImage(client, s.reg, {
        service: "backend",
        version: "0.0.9",
        files: { "app/backend.txt": "old" },
      });
      const deployment = (name: string, image: string) => ({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { containers: [{ name: "app", image }] },
          },
        },
      });
      const manifests = [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
        deployment("by-digest", `${s.backend.repository}@${s.backend.digest}`),
        deployment("by-tag", `${s.backend.repository}:0.1.0`),
        deployment("other-digest", `${s.backend.repository}@${other.digest}`),
      ];
      const file = path.join(s.dir, "manifests.yaml");
      fs.writeFileSync(file, manifests.map((m) => stringify(m)).join("---\n"));
      await kubectl("apply", "-f", file);
      const outputs = outputsOf({ base: s.base, backend: s.backend }, s.release);
      const result = await check(s.reg, {
        sites: [{ site: "dev-developers", outputs }],
        cluster: kubectlCluster({ kubeconfig: process.env.KUBECONFIG }),
      });
      assert.deepEqual(result.violations, [
        {
          invariant: 4,
          object: `Deployment/${ns}/by-tag: container app`,
          expected: "an image by digest (…@sha256:…)",
          found: `${s.backend.repository}:0.1.0`,
        },
        {
          invariant: 4,
          object: `Deployment/${ns}/other-digest: container app`,
          expected: `${s.backend.digest} (dev-developers: services.backend.digest)`,
          found: `${s.backend.repository}@${other.digest}`,
        },
      ]);
      assert.equal(result.checked.containers, 3);
    });
  });
});
