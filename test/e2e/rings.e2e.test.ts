/**
 * End to end on the local platform, the ring pointer of a building site (DESIGN.md invariant 2):
 * it moves only after the site's own deployment succeeded, so a failed deploy leaves the ring
 * where it was. The real Pulumi engine (Automation API), BuildKit, registry and API server;
 * every claim is read back from the registry or the API server. The pointer's compare-and-swap
 * is proven against the registry in test/integration/state-store.test.ts.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import type { OutputMap, Stack } from "@pulumi/pulumi/automation";
import { RegistryClient } from "../../lib/registry";
import type { StateStore } from "../../lib/state-store";
import { assertInvariantsHold } from "./helpers/check";
import { assertPlatformEnv, makeVersionRepo, type VersionRepo } from "./helpers/versionRepo";

const client = new RegistryClient();
const OVERLAY = "app/deploy/overlays/dev/kustomization.yaml";
/** A patch the API server refuses (a negative replica count) and kustomize renders. */
const REFUSED_PATCH = `patches:
  - target: { kind: Deployment, name: backend }
    patch: |-
      - op: replace
        path: /spec/replicas
        value: -1
`;

/**
 * Holds the frontend's rollout for a while after its pods are ready (the Deployment is available
 * only `minReadySeconds` later), so that another writer can act while the update deploys.
 */
const SLOW_ROLLOUT_PATCH = `patches:
  - target: { kind: Deployment, name: frontend }
    patch: |-
      - op: add
        path: /spec/minReadySeconds
        value: 15
`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("ring pointers on the local platform (end to end)", function () {
  let repo: VersionRepo;
  let store: StateStore;
  let developers: Stack;
  const repoOf = (image: string) => `${repo.registry}/${repo.project}/${image}`;
  const ringDigest = () => client.resolveDigest(`${store.releaseRepository}:ring-developers`);
  const frontendImage = () =>
    execFileSync(
      "kubectl",
      [
        ...["get", "deployment", "frontend", "-n", repo.namespace("dev", "developers")],
        ...["-o", "jsonpath={.spec.template.spec.containers[0].image}"],
      ],
      { encoding: "utf8" },
    );

  before(async function () {
    assertPlatformEnv();
    repo = makeVersionRepo();
    store = repo.stateStore(client);
    developers = await repo.stack("dev-developers");
  });

  afterEach(async function () {
    await assertInvariantsHold({
      dir: repo.dir,
      registry: repo.registry,
      project: repo.project,
      stacks: [developers],
    });
  });

  after(function () {
    try {
      execFileSync(
        "kubectl",
        ["delete", "namespace", repo.namespace("dev", "developers"), "--wait=false"],
        { stdio: "pipe" },
      );
    } catch {
      // already gone
    }
    repo?.remove();
  });

  it("GIVEN an empty registry WHEN the building site is updated THEN ring-developers points at release 0.1.0", async function () {
    const up = await developers.up({ onOutput: () => undefined });
    assert.equal(up.outputs.release.value, "0.1.0");
    assert.equal((await store.readRing("developers")).release?.version, "0.1.0");
  });

  it("GIVEN a changed service and an overlay the API server refuses WHEN the site is updated THEN the update fails, the new image and release are pushed, and ring-developers has not moved", async function () {
    const before = await ringDigest();
    const overlay = repo.read(OVERLAY);
    repo.write(
      "app/services/frontend/index.html",
      `${repo.read("app/services/frontend/index.html")}<!-- change -->\n`,
    );
    repo.write(OVERLAY, `${overlay}${REFUSED_PATCH}`);
    try {
      const failed = await developers.up({ onOutput: () => undefined }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(failed, "the update fails");
      assert.match(failed.message, /spec\.replicas: Invalid value: -1/);
    } finally {
      repo.write(OVERLAY, overlay);
    }
    // What was built is in the registry; the ring is where it was.
    assert.ok(await client.manifestExists(`${repoOf("frontend")}:0.1.1`), "frontend 0.1.1 pushed");
    assert.ok(await client.manifestExists(`${store.releaseRepository}:0.1.1`), "release pushed");
    assert.equal(await ringDigest(), before);
    assert.equal((await store.readRing("developers")).release?.version, "0.1.0");
  });

  it("GIVEN the overlay fixed WHEN the site is updated again THEN it deploys the pushed frontend and ring-developers moves to the release it deploys", async function () {
    const up = await developers.up({ onOutput: () => undefined });
    const frontend = (up.outputs as OutputMap).services.value.frontend as {
      version: string;
      ref: string;
    };
    assert.equal(frontend.version, "0.1.1");
    const ring = await store.readRing("developers");
    assert.equal(ring.release?.version, up.outputs.release.value);
    assert.notEqual(ring.release?.version, "0.1.0");
    assert.equal(ring.release?.services.frontend.version, "0.1.1");
    assert.equal(frontendImage(), frontend.ref);
  });

  it("GIVEN another writer moves ring developers while the site's update deploys WHEN the update reaches the ring pointer THEN it fails naming the ring, and the other writer's release stays; the next update moves the ring from there", async function () {
    const overlay = repo.read(OVERLAY);
    const versionsBefore = new Set(await store.listVersions());
    repo.write(
      "app/services/frontend/index.html",
      `${repo.read("app/services/frontend/index.html")}<!-- raced -->\n`,
    );
    repo.write(OVERLAY, `${overlay}${SLOW_ROLLOUT_PATCH}`);
    let failed: Error | undefined;
    try {
      let settled = false;
      const update = developers.up({ onOutput: () => undefined }).then(
        () => undefined,
        (e: Error) => e,
      );
      void update.finally(() => (settled = true));
      // The release is pushed before the deploy starts; the ring moves after the rollout.
      let fresh: string | undefined;
      while (!settled && fresh === undefined) {
        fresh = (await store.listVersions()).find((v) => !versionsBefore.has(v));
        if (fresh === undefined) await sleep(100);
      }
      assert.ok(fresh, "the update pushed a new release before it ended");
      // The other writer: someone rolls the ring back to 0.1.0 by hand, mid-update.
      await store.moveRing("developers", "0.1.0");
      failed = await update;
    } finally {
      repo.write(OVERLAY, overlay);
    }
    assert.ok(failed, "the update fails");
    assert.match(failed.message, /ring developers moved since the move was planned/);
    assert.equal((await store.readRing("developers")).release?.version, "0.1.0");

    // Level-triggered: the next update plans from where the ring is now and moves it on.
    const up = await developers.up({ onOutput: () => undefined });
    const ring = await store.readRing("developers");
    assert.equal(ring.release?.version, up.outputs.release.value);
    assert.notEqual(ring.release?.version, "0.1.0");
    assert.equal(
      frontendImage(),
      ((up.outputs as OutputMap).services.value.frontend as { ref: string }).ref,
    );
  });
});
