/**
 * lib/state-store.ts against a real Distribution 2.8: releases pushed as FROM-scratch images,
 * ring tags moved, checked and read back through their labels.
 */
import assert from "node:assert/strict";
import { ringPointerProvider, type RingPointerInputs } from "../../components/ring/ringPointer";
import { releaseLabels } from "../../lib/labels";
import {
  MediaType,
  RegistryClient,
  TagImmutableError,
  type ImageManifest,
  type ImageReference,
} from "../../lib/registry";
import { publishImage } from "../../lib/publish";
import { CHECK_AHEAD_MAX_AGE_MS, ringTag, StateStore } from "../../lib/state-store";
import type { ImageRecord, ReleaseRecord, RingState } from "../../lib/types";
import { pushServiceImage, recordOf } from "./helpers/images";
import { useRegistry } from "./helpers/registry";

const C = (n: number) => String(n).repeat(40).slice(0, 40);
const summary = (s: readonly RingState[]) =>
  s.map((r) => `${r.ring}=${r.release?.version ?? "-"}`).join(" ");

/**
 * A real client with two places where a test acts inside a ring move: before a ring tag is
 * read (another writer moves the ring for real, with its own client), and the write of chosen
 * tags, which fails as a refused PUT would (the one failure a real registry gives no way to
 * cause on demand).
 */
class HookedClient extends RegistryClient {
  /** Runs before each HEAD of a tag. */
  beforeHead?: (tag: string) => Promise<void>;
  /** Runs after each successful PUT of a tag. */
  afterPut?: (tag: string) => Promise<void>;
  /** Tags whose PUT fails. */
  readonly failing = new Set<string>();

  override async headManifest(ref: string | ImageReference) {
    const tag = typeof ref === "string" ? undefined : ref.tag;
    if (tag !== undefined) await this.beforeHead?.(tag);
    return super.headManifest(ref);
  }

  override async putManifest(repository: string, reference: string, bytes: Buffer, type: string) {
    if (this.failing.has(reference)) {
      throw new Error(`PUT manifest ${reference}: refused (injected write failure)`);
    }
    const digest = await super.putManifest(repository, reference, bytes, type);
    await this.afterPut?.(reference);
    return digest;
  }
}

describe("state store against Distribution 2.8", function () {
  this.timeout(60_000);
  const registry = useRegistry();
  let client: RegistryClient;
  let store: StateStore;
  let base1: ImageRecord;
  let backend1: ImageRecord;
  let backend2: ImageRecord;

  before(async () => {
    client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
    store = new StateStore({
      registry: registry().host,
      project: "example",
      rings: ["developers", "testers", "users"],
      client,
    });
    base1 = recordOf(
      await pushServiceImage(client, registry().host, { service: "base", version: "1.0.0" }),
    );
    backend1 = recordOf(
      await pushServiceImage(client, registry().host, {
        service: "backend",
        version: "0.1.0",
        revision: `v1:sha256:${"1".repeat(64)}`,
        dependencies: { base: "1.0.0" },
        sources: [{ name: "api", url: "file:///srv/api", commit: C(1) }],
      }),
    );
    backend2 = recordOf(
      await pushServiceImage(client, registry().host, {
        service: "backend",
        version: "0.2.0",
        revision: `v1:sha256:${"2".repeat(64)}`,
        dependencies: { base: "1.0.0" },
        sources: [{ name: "api", url: "file:///srv/api", commit: C(2) }],
      }),
    );
  });

  it("GIVEN an empty registry WHEN every ring is read THEN all five rings point at nothing", async () => {
    assert.deepEqual(await store.readRings(), [
      { ring: "ante" },
      { ring: "developers" },
      { ring: "testers" },
      { ring: "users" },
      { ring: "post" },
    ]);
  });

  describe("GIVEN release 1.0.0 pushed with base 1.0.0 and backend 0.1.0", () => {
    let r1: ReleaseRecord;

    before(async () => {
      r1 = await store.pushRelease({
        version: "1.0.0",
        services: { base: base1, backend: backend1 },
      });
    });

    it("WHEN its manifest is read THEN it is an OCI image with zero layers whose config carries the release labels", async () => {
      const m = await client.getManifest(`${store.releaseRepository}:1.0.0`);
      assert.equal(m.digest, r1.digest);
      assert.equal(m.mediaType, MediaType.ociManifest);
      assert.deepEqual((m.manifest as ImageManifest).layers, []);
      const c = await client.getImageConfig(`${store.releaseRepository}:1.0.0`);
      assert.deepEqual(
        c.labels,
        releaseLabels(
          { version: "1.0.0", services: { base: base1, backend: backend1 } },
          { project: "example" },
        ),
      );
      assert.deepEqual(c.config.rootfs, { type: "layers", diff_ids: [] });
      assert.equal(c.config.created, undefined);
    });

    it("WHEN the release is read back THEN it equals what was pushed", async () => {
      assert.deepEqual(await store.readRelease("1.0.0"), r1);
      assert.deepEqual(r1.services.backend, backend1);
    });

    it("WHEN the same release is pushed again THEN the digest is the same and nothing moves", async () => {
      const again = await store.pushRelease({
        version: "1.0.0",
        services: { base: base1, backend: backend1 },
      });
      assert.equal(again.digest, r1.digest);
    });

    it("WHEN other content is pushed as 1.0.0 THEN the version tag is refused and keeps its digest", async () => {
      await assert.rejects(
        store.pushRelease({ version: "1.0.0", services: { base: base1, backend: backend2 } }),
        (e: TagImmutableError) => {
          assert.ok(e instanceof TagImmutableError);
          assert.equal(e.repository, "example/release");
          assert.equal(e.reference, "1.0.0");
          assert.equal(e.existingDigest, r1.digest);
          return true;
        },
      );
      assert.equal(await client.resolveDigest(`${store.releaseRepository}:1.0.0`), r1.digest);
    });

    it("WHEN a release naming an image the registry lacks is pushed THEN it is refused and no tag appears", async () => {
      const ghost = { ...backend2, digest: `sha256:${"9".repeat(64)}` };
      await assert.rejects(store.pushRelease({ version: "9.0.0", services: { backend: ghost } }), {
        message:
          `push release to ${store.releaseRepository}: release 9.0.0 names images the registry does not have: ` +
          `${registry().host}/example/backend@sha256:${"9".repeat(64)}`,
      });
      assert.equal(await client.headManifest(`${store.releaseRepository}:9.0.0`), undefined);
    });

    it("WHEN developers is moved to 1.0.0 THEN reading the ring gives the release, every service included", async () => {
      const moved = await store.moveRing("developers", "1.0.0");
      assert.deepEqual(moved, { ring: "developers", release: r1 });
      assert.deepEqual(await store.readRing("developers"), { ring: "developers", release: r1 });
      assert.equal(
        await client.resolveDigest(`${store.releaseRepository}:ring-developers`),
        r1.digest,
      );
    });

    it("WHEN a ring is moved to a release that does not exist THEN it is refused and stays", async () => {
      await assert.rejects(store.moveRing("developers", "7.7.7"), {
        message: `${store.releaseRepository}: release 7.7.7 does not exist`,
      });
      assert.equal((await store.readRing("developers")).release?.version, "1.0.0");
    });

    it("WHEN developers is promoted THEN testers gets the same release", async () => {
      assert.deepEqual(await store.promote("developers"), { ring: "testers", release: r1 });
      assert.deepEqual(await store.readRing("testers"), { ring: "testers", release: r1 });
    });

    it("WHEN an empty ring is promoted THEN the error says it has no release", async () => {
      await assert.rejects(store.promote("users"), {
        message: "promote users to post: ring users has no release",
      });
    });
  });

  describe("GIVEN releases 2.0.0 and 3.0.0 and the train ante=3 developers=2 testers=1", () => {
    let r1: ReleaseRecord;
    let r2: ReleaseRecord;
    let r3: ReleaseRecord;

    before(async () => {
      r1 = await store.readRelease("1.0.0");
      r2 = await store.pushRelease({
        version: "2.0.0",
        services: { base: base1, backend: backend2 },
      });
      r3 = await store.pushRelease({ version: "3.0.0", services: { base: base1 } });
      await store.moveRing("ante", "3.0.0");
      await store.moveRing("developers", "2.0.0");
      await store.moveRing("testers", "1.0.0");
    });

    it("WHEN the train is shifted THEN every ring gets its predecessor's release", async () => {
      const after = await store.shift();
      assert.equal(summary(after), "ante=3.0.0 developers=3.0.0 testers=2.0.0 users=1.0.0 post=-");
      assert.deepEqual(await store.readRings(), after);
      assert.deepEqual(after[3].release, r1);
    });

    it("WHEN it is unshifted THEN it moves back (users keeps 1.0.0, as post has none)", async () => {
      const after = await store.unshift();
      assert.equal(summary(after), "ante=3.0.0 developers=2.0.0 testers=1.0.0 users=1.0.0 post=-");
      assert.deepEqual(await store.readRings(), after);
      assert.deepEqual(after[1].release, r2);
      assert.deepEqual(after[0].release, r3);
    });

    it("WHEN an image of developers' release is gone THEN shift refuses, naming it, and no ring moves", async () => {
      const before = await store.readRings();
      assert.equal(await client.deleteManifest(backend2.repository, backend2.digest), true);
      await assert.rejects(store.shift(), {
        message:
          `shift: no ring moved: ring testers would get release 2.0.0 (from developers), which names missing images: ` +
          `${backend2.repository}@${backend2.digest}`,
      });
      assert.deepEqual(await store.readRings(), before);
      await assert.rejects(
        store.moveRing("users", "2.0.0"),
        /move ring users to 2.0.0: no ring moved/,
      );
      assert.equal((await store.readRing("users")).release?.version, "1.0.0");
    });
  });

  describe("GIVEN releases 1.0.0 to 4.0.0 of project cas, a hooked client, and another writer with its own client", () => {
    let hooked: HookedClient;
    let cas: StateStore;
    /** Another writer (a promote by hand, another site) with a client of its own. */
    let other: StateStore;
    const r: Record<string, ReleaseRecord> = {};
    const RINGS = ["ante", "developers", "testers", "users", "post"];
    /** Every ring's release version, read from the registry by a client without hooks. */
    const train = async () =>
      Promise.all(RINGS.map(async (ring) => (await other.readRing(ring)).release?.version ?? "-"));
    const put = async (...versions: string[]) => {
      for (const [i, v] of versions.entries()) await other.moveRing(RINGS[i], v);
    };

    before(async () => {
      hooked = new HookedClient({ dockerConfig: false, retryBaseMs: 10 });
      const options = {
        registry: registry().host,
        project: "cas",
        rings: ["developers", "testers", "users"],
      };
      cas = new StateStore({ ...options, client: hooked });
      other = new StateStore({
        ...options,
        client: new RegistryClient({ dockerConfig: false, retryBaseMs: 10 }),
      });
      for (const v of ["1.0.0", "2.0.0", "3.0.0", "4.0.0"]) {
        r[v] = await other.pushRelease({ version: v, services: { base: base1 } });
      }
    });

    afterEach(() => {
      hooked.beforeHead = undefined;
      hooked.afterPut = undefined;
      hooked.failing.clear();
    });

    it("WHEN another writer moves a ring between the plan's read and the move THEN the move fails naming the ring, the planned and the found release, and the other writer's release stays", async () => {
      await put("4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0");
      const planned = await cas.readRing("testers");
      await other.promote("developers");
      await assert.rejects(
        cas.moveRing("testers", "4.0.0", { expected: planned.release?.digest ?? null }),
        {
          message:
            "move ring testers to 4.0.0: no ring moved: ring testers moved since the move was planned: " +
            `planned from release 2.0.0 (${r["2.0.0"].digest}), found at release 3.0.0 (${r["3.0.0"].digest})`,
        },
      );
      assert.equal(
        await client.resolveDigest(`${cas.releaseRepository}:ring-testers`),
        r["3.0.0"].digest,
      );
      // A retry of the other writer's move is no conflict: the ring is where it wants it.
      assert.deepEqual(
        await cas.moveRing("testers", "3.0.0", { expected: planned.release?.digest ?? null }),
        { ring: "testers", release: r["3.0.0"] },
      );
    });

    it("WHEN another writer moves the target inside promote's window (after the check, before the compare) THEN promote fails and the other writer's release stays", async () => {
      await put("4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0");
      let reads = 0;
      hooked.beforeHead = async (tag) => {
        // Reads of ring-testers: promote's read, the check, then the compare.
        if (tag === ringTag("testers") && ++reads === 3) await other.moveRing("testers", "1.0.0");
      };
      await assert.rejects(cas.promote("developers"), {
        message:
          "promote developers to testers: ring testers moved since the move was planned: " +
          `planned from release 2.0.0 (${r["2.0.0"].digest}), found at release 1.0.0 (${r["1.0.0"].digest}); no ring moved`,
      });
      assert.deepEqual(await train(), ["4.0.0", "3.0.0", "1.0.0", "1.0.0", "1.0.0"]);
    });

    it("WHEN another writer moves the ring right after the move's write THEN the move reports that the other writer won", async () => {
      await put("4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0");
      hooked.afterPut = async (tag) => {
        if (tag === ringTag("testers")) await other.moveRing("testers", "1.0.0");
      };
      await assert.rejects(cas.promote("developers"), {
        message:
          `promote developers to testers: ring testers was moved to release 3.0.0 (${r["3.0.0"].digest}), ` +
          `but another writer moved it at the same time and won: it points at release 1.0.0 (${r["1.0.0"].digest})`,
      });
      assert.deepEqual(await train(), ["4.0.0", "3.0.0", "1.0.0", "1.0.0", "1.0.0"]);
    });

    it("WHEN the third move of a shift fails THEN the first two are rolled back and every ring is where it was", async () => {
      await put("4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0");
      // post already has users' release: the moves are users, testers, then developers.
      hooked.failing.add(ringTag("developers"));
      await assert.rejects(cas.shift(), {
        message:
          "shift: PUT manifest ring-developers: refused (injected write failure); rolled back: " +
          `ring testers back to release 2.0.0 (${r["2.0.0"].digest}), ring users back to release 1.0.0 (${r["1.0.0"].digest})`,
      });
      assert.deepEqual(await train(), ["4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0"]);
      hooked.failing.clear();
      await cas.shift();
      assert.deepEqual(await train(), ["4.0.0", "4.0.0", "3.0.0", "2.0.0", "1.0.0"]);
    });

    it("WHEN the train is unshifted THEN ante keeps the release prepared there and the first ring gets the second's", async () => {
      await put("4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0");
      const after = await cas.unshift();
      assert.equal(
        summary(after),
        "ante=4.0.0 developers=2.0.0 testers=1.0.0 users=1.0.0 post=1.0.0",
      );
      assert.deepEqual(await train(), ["4.0.0", "2.0.0", "1.0.0", "1.0.0", "1.0.0"]);
    });
  });

  describe("GIVEN the ring pointer's provider (components/ring/ringPointer.ts) and releases 1.0.0 to 3.0.0 of project pointer", () => {
    let other: StateStore;
    const r: Record<string, ReleaseRecord> = {};
    let inputs: (version: string, expected?: string) => RingPointerInputs;
    const ringAt = () => client.resolveDigest(`${other.releaseRepository}:ring-developers`);

    before(async () => {
      other = new StateStore({
        registry: registry().host,
        project: "pointer",
        rings: ["developers"],
        client,
      });
      for (const v of ["1.0.0", "2.0.0", "3.0.0"]) {
        r[v] = await other.pushRelease({ version: v, services: { base: base1 } });
      }
      inputs = (version, expected) => ({
        registry: registry().host,
        project: "pointer",
        rings: ["developers"],
        ring: "developers",
        version,
        digest: r[version].digest,
        ...(expected !== undefined ? { expected } : {}),
      });
    });

    it("WHEN created on an empty ring THEN the ring points at the release", async () => {
      await ringPointerProvider.create!(inputs("1.0.0"));
      assert.equal(await ringAt(), r["1.0.0"].digest);
    });

    it("WHEN only the expected release differs THEN the diff shows no change", async () => {
      const diff = await ringPointerProvider.diff!(
        "id",
        inputs("1.0.0"),
        inputs("1.0.0", r["1.0.0"].digest),
      );
      assert.equal(diff.changes, false);
    });

    it("WHEN the ring was moved by another writer since the plan THEN the update fails naming the ring and both releases and the ring keeps the other writer's release", async () => {
      await other.moveRing("developers", "3.0.0");
      await assert.rejects(
        ringPointerProvider.update!("id", inputs("1.0.0"), inputs("2.0.0", r["1.0.0"].digest)),
        {
          message:
            "move ring developers to 2.0.0: no ring moved: ring developers moved since the move was planned: " +
            `planned from release 1.0.0 (${r["1.0.0"].digest}), found at release 3.0.0 (${r["3.0.0"].digest})`,
        },
      );
      assert.equal(await ringAt(), r["3.0.0"].digest);
    });

    it("WHEN the update was planned against the ring's release THEN it moves, and a retry of it is no conflict", async () => {
      const planned = inputs("2.0.0", r["3.0.0"].digest);
      await ringPointerProvider.update!("id", inputs("1.0.0"), planned);
      assert.equal(await ringAt(), r["2.0.0"].digest);
      await ringPointerProvider.update!("id", inputs("1.0.0"), planned);
      assert.equal(await ringAt(), r["2.0.0"].digest);
    });

    it("WHEN the release's digest is not the one the update pushed THEN nothing moves", async () => {
      const wrong = { ...inputs("3.0.0", r["2.0.0"].digest), digest: r["1.0.0"].digest };
      await assert.rejects(ringPointerProvider.update!("id", inputs("2.0.0"), wrong), {
        message:
          `move ring developers to 3.0.0: release 3.0.0 is ${r["3.0.0"].digest} in the registry, ` +
          `not ${r["1.0.0"].digest} as this update pushed it; no ring moved`,
      });
      assert.equal(await ringAt(), r["2.0.0"].digest);
    });
  });

  describe("GIVEN worker images 0.1.0 (rev A), 0.2.0 (rev B), 0.10.0 (rev A) and a ring tag", () => {
    const A = `v1:sha256:${"a".repeat(64)}`;
    const B = `v1:sha256:${"b".repeat(64)}`;
    let repo: string;
    let newest: ImageRecord;

    before(async () => {
      const host = registry().host;
      await pushServiceImage(client, host, { service: "worker", version: "0.1.0", revision: A });
      await pushServiceImage(client, host, { service: "worker", version: "0.2.0", revision: B });
      newest = recordOf(
        await pushServiceImage(client, host, {
          service: "worker",
          version: "0.10.0",
          revision: A,
          files: { "app/worker.txt": "rebuilt" },
        }),
      );
      repo = `${host}/example/worker`;
      await client.moveTag(repo, "ring-users", newest.digest);
    });

    it("WHEN versions are listed THEN only semver tags come, in semver order", async () => {
      assert.deepEqual(await store.listVersions(repo), ["0.1.0", "0.2.0", "0.10.0"]);
      assert.deepEqual(await store.listVersions(), ["1.0.0", "2.0.0", "3.0.0"]);
    });

    it("WHEN revision A is looked up THEN the newest image with it is reused", async () => {
      assert.deepEqual(await store.findByRevision(repo, A), newest);
    });

    it("WHEN revision B is looked up with a scan of 1 THEN it is not found, since only 0.10.0 is read", async () => {
      assert.equal(await store.findByRevision(repo, B, { limit: 1 }), undefined);
      assert.equal((await store.findByRevision(repo, B, { limit: 2 }))?.version, "0.2.0");
    });

    it("WHEN an unknown revision is looked up THEN nothing is found", async () => {
      assert.equal(await store.findByRevision(repo, `v1:sha256:${"f".repeat(64)}`), undefined);
    });
  });

  describe("GIVEN releases published through lib/publish.ts (their labels record a release) and a client that records its existence checks", () => {
    /** Records every `manifestExists` (the HEAD of an existence check) it is asked. */
    class CheckCountingClient extends RegistryClient {
      readonly checked: string[] = [];
      override async manifestExists(ref: string | ImageReference) {
        this.checked.push(String(ref));
        return super.manifestExists(ref);
      }
    }
    let counting: CheckCountingClient;
    let ahead: StateStore;
    let a: ImageRecord;
    let b: ImageRecord;

    /** Pushes release `version` naming `services` by digest, then publishes it as a build would be. */
    async function publishRelease(version: string, services: Record<string, ImageRecord>) {
      const labels = releaseLabels({ version, services }, { project: "ahead" });
      const built = await counting.pushImage(ahead.releaseRepository, { labels, layers: [] });
      const published = await publishImage(
        {
          repository: ahead.releaseRepository,
          digest: built.descriptor.digest,
          tag: version,
          labels,
        },
        counting,
      );
      return published.digest;
    }

    before(async () => {
      counting = new CheckCountingClient({ dockerConfig: false, retryBaseMs: 10 });
      ahead = new StateStore({
        registry: registry().host,
        project: "ahead",
        rings: ["developers", "testers"],
        client: counting,
      });
      a = recordOf(
        await pushServiceImage(counting, registry().host, { service: "ahead-a", version: "1.0.0" }),
      );
      b = recordOf(
        await pushServiceImage(counting, registry().host, { service: "ahead-b", version: "1.0.0" }),
      );
    });

    it("WHEN a ring moves to the release right after its publish THEN the move takes the check the publish began and checks no image again", async () => {
      const digest = await publishRelease("1.0.0", { "ahead-a": a, "ahead-b": b });
      const checks = [a, b]
        .map((i) => `${i.repository}@${i.digest}`)
        .concat(`${ahead.releaseRepository}@${digest}`)
        .sort();
      // The publish began the check: each image and the release, once.
      assert.deepEqual(counting.checked.filter((ref) => checks.includes(ref)).sort(), checks);
      counting.checked.length = 0;
      await ahead.moveRing("developers", "1.0.0", { digest, expected: null });
      assert.deepEqual(
        counting.checked.filter((ref) => checks.includes(ref)),
        [],
      );
      assert.equal((await ahead.readRing("developers")).release?.digest, digest);

      // A second move to the same release checks again: a check begun ahead is taken once.
      counting.checked.length = 0;
      await ahead.moveRing("testers", "1.0.0", { digest, expected: null });
      assert.deepEqual(counting.checked.sort(), checks);
    });

    it("WHEN an image the release names was gone at its publish THEN the move fails naming it and the ring stays", async () => {
      const gone = recordOf(
        await pushServiceImage(counting, registry().host, { service: "ahead-b", version: "2.0.0" }),
      );
      assert.equal(await counting.deleteManifest(gone.repository, gone.digest), true);
      const digest = await publishRelease("2.0.0", { "ahead-a": a, "ahead-b": gone });
      const before = await ahead.readRing("developers");
      await assert.rejects(ahead.moveRing("developers", "2.0.0", { digest }), {
        message: new RegExp(
          `no ring moved: ring developers would get release 2\\.0\\.0 .*names missing images: ${gone.repository}@${gone.digest}$`,
        ),
      });
      assert.deepEqual(await ahead.readRing("developers"), before);
    });

    it(`WHEN the move comes more than CHECK_AHEAD_MAX_AGE_MS after the publish THEN it checks every image again`, async () => {
      const digest = await publishRelease("3.0.0", { "ahead-a": a, "ahead-b": b });
      const now = Date.now;
      // The clock the check is dated by, moved past the limit (waiting a minute is no test).
      Date.now = () => now() + CHECK_AHEAD_MAX_AGE_MS + 1;
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
        counting.checked.length = 0;
        await ahead.moveRing("developers", "3.0.0", { digest });
      } finally {
        Date.now = now;
      }
      assert.equal(counting.checked.filter((ref) => ref.includes("/example/ahead-")).length, 2);
      assert.equal((await ahead.readRing("developers")).release?.version, "3.0.0");
    });
  });
});
