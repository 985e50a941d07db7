/**
 * Verified promotion against a real Distribution 2.8 (its own instance): verification records
 * tagged `sha256-<hex>.verify.<site>` next to the release, and `rings promote` refusing an
 * unverified release, promoting a verified one and recording `--force`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RegistryClient } from "../../lib/registry";
import { StateStore } from "../../lib/state-store";
import type { ReleaseRecord } from "../../lib/types";
import {
  ANNOTATION,
  OVERRIDE_TYPE,
  overrideTag,
  readRecords,
  recordVerification,
  verificationTag,
} from "../../lib/verification";
import { pushServiceImage, recordOf } from "./helpers/images";
import { useRegistry } from "./helpers/registry";

const ROOT = path.resolve(__dirname, "../..");

describe("verified promotion (real registry)", function () {
  this.timeout(120_000);
  const registry = useRegistry();
  let client: RegistryClient;
  let store: StateStore;
  let dir: string;
  let r1: ReleaseRecord;
  let r2: ReleaseRecord;

  const rings = (...args: string[]) => {
    const r = spawnSync(
      path.join(ROOT, "node_modules/.bin/tsx"),
      [path.join(ROOT, "scripts/rings.ts"), ...args, "--registry", registry().host],
      { cwd: dir, encoding: "utf8", env: { ...process.env, GITOPS_RINGS_USER: "it-user" } },
    );
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  before(async () => {
    client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
    store = new StateStore({
      registry: registry().host,
      project: "example",
      rings: ["developers", "testers"],
      client,
    });
    const base = recordOf(
      await pushServiceImage(client, registry().host, { service: "base", version: "1.0.0" }),
    );
    r1 = await store.pushRelease({ version: "1.0.0", services: { base } });
    r2 = await store.pushRelease({ version: "2.0.0", services: { base } });
    await store.moveRing("developers", "1.0.0");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "it-verify-"));
    fs.writeFileSync(
      path.join(dir, "gitops-rings.yaml"),
      `project: example\nregistry: ${registry().host}\nrings: [developers, testers]\n` +
        `environments:\n  dev: { overlay: overlay, namespace: example-dev }\n` +
        `services:\n  base: { context: base }\n`,
    );
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("GIVEN no verification WHEN promote THEN it is refused with the ring and release named, and nothing moves", async () => {
    const r = rings("promote", "developers");
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(
      r.err,
      new RegExp(
        `rings: ring developers: release 1\\.0\\.0 \\(${r1.digest}\\) is not verified by any site of ring developers: .*--force`,
      ),
    );
    assert.equal((await store.readRing("testers")).release, undefined);
  });

  it("GIVEN a site of another ring verified it WHEN promote THEN still refused, naming that site", async () => {
    await recordVerification(client, store.releaseRepository, {
      site: "dev-testers",
      ring: "testers",
      release: "1.0.0",
      digest: r1.digest,
      time: "2026-01-01T00:00:00.000Z",
      jobs: [],
    });
    const r = rings("promote", "developers");
    assert.equal(r.code, 1);
    assert.match(r.err, /verified only by dev-testers \(ring testers\)/);
  });

  it("GIVEN a site of the ring verified it WHEN promote THEN the ring moves and status shows where it was verified", async () => {
    await recordVerification(client, store.releaseRepository, {
      site: "dev-developers",
      ring: "developers",
      release: "1.0.0",
      digest: r1.digest,
      time: "2026-01-01T00:00:01.000Z",
      jobs: [{ name: "smoke-1-0-0", status: "Complete" }],
    });
    const tag = verificationTag(r1.digest, "dev-developers");
    assert.equal(tag, `sha256-${r1.digest.slice(7)}.verify.dev-developers`);
    const manifest = JSON.parse(
      (await client.getManifest(`${store.releaseRepository}:${tag}`)).bytes.toString("utf8"),
    );
    assert.equal(manifest.annotations[ANNOTATION.site], "dev-developers");
    assert.equal(manifest.annotations[ANNOTATION.jobs], "smoke-1-0-0=Complete");
    assert.equal(manifest.subject.digest, r1.digest);

    const r = rings("promote", "developers");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /ring testers -> release 1\.0\.0/);
    assert.match(
      r.out,
      /^developers\s+1\.0\.0\s+1\.0\.0\s+yes: dev-developers \(1 post-deploy jobs\)$/m,
    );
    assert.match(r.out, /^testers\s+1\.0\.0\s+1\.0\.0\s+yes: dev-testers \(rollout\)$/m);
    assert.equal((await store.readRing("testers")).release?.digest, r1.digest);
  });

  it("GIVEN an unverified release WHEN promote --force THEN it moves and the override is recorded in the registry", async () => {
    await store.moveRing("developers", "2.0.0");
    const r = rings("promote", "developers", "--force", "--reason", "hotfix for incident 42");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /release 2\.0\.0 promoted unverified \(--force by it-user, recorded\)/);
    assert.match(r.out, /^testers\s+2\.0\.0\s+1\.0\.0\s+no; forced out of developers by it-user$/m);
    const records = await readRecords(client, store.releaseRepository, r2.digest);
    assert.equal(records.overrides.length, 1);
    assert.equal(records.overrides[0].reason, "hotfix for incident 42");
    assert.equal(records.overrides[0].by, "it-user");
    const m = await client.getManifest(
      `${store.releaseRepository}:${overrideTag(r2.digest, "developers")}`,
    );
    assert.equal(JSON.parse(m.bytes.toString("utf8")).artifactType, OVERRIDE_TYPE);
  });
});
