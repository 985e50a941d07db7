import assert from "node:assert/strict";
import fc from "fast-check";
import { releaseLabels } from "../../lib/labels";
import type { ImageReference, RegistryClient } from "../../lib/registry";
import {
  applyMoves,
  planShift,
  planUnshift,
  ringOrder,
  ringTag,
  StateStore,
} from "../../lib/state-store";
import type { ReleaseRecord, RingState } from "../../lib/types";

const release = (version: string): ReleaseRecord => ({
  version,
  digest: `sha256:${version.replace(/\./g, "").padStart(64, "0")}`,
  services: {},
});

const R1 = release("1.0.0");
const R2 = release("2.0.0");
const R3 = release("3.0.0");

const states = (...releases: (ReleaseRecord | undefined)[]): RingState[] =>
  ["ante", "developers", "testers", "users", "post"].map((ring, i) =>
    releases[i] ? { ring, release: releases[i] } : { ring },
  );

const summary = (s: readonly RingState[]) =>
  s.map((r) => `${r.ring}=${r.release?.version ?? "-"}`).join(" ");

describe("state store: ring order and train moves", () => {
  it("GIVEN configured rings WHEN ordered THEN ante comes first and post last", () => {
    assert.deepEqual(ringOrder(["developers", "users"]), ["ante", "developers", "users", "post"]);
    assert.equal(ringTag("users"), "ring-users");
  });

  it("GIVEN bad ring lists WHEN ordered THEN the error names the ring", () => {
    assert.throws(() => ringOrder(["post"]), {
      message: 'ring "post" is a pseudo-ring and is always added',
    });
    assert.throws(() => ringOrder(["a", "a"]), { message: 'ring "a" is listed twice' });
    assert.throws(() => ringOrder(["Users"]), {
      message: 'ring "Users": use lowercase letters, digits, ".", "_", "-"',
    });
  });

  it("GIVEN a full train WHEN shifted THEN each ring gets its predecessor's release, last ring first", () => {
    const before = states(R3, R3, R2, R1, undefined);
    const moves = planShift(before);
    assert.deepEqual(
      moves.map((m) => `${m.from}->${m.ring}:${m.release.version}`),
      ["users->post:1.0.0", "testers->users:2.0.0", "developers->testers:3.0.0"],
    );
    assert.equal(
      summary(applyMoves(before, moves)),
      "ante=3.0.0 developers=3.0.0 testers=3.0.0 users=2.0.0 post=1.0.0",
    );
  });

  it("GIVEN an empty ante WHEN shifted THEN the first ring keeps its release", () => {
    const before = states(undefined, R2, R1, undefined, undefined);
    assert.equal(
      summary(applyMoves(before, planShift(before))),
      "ante=- developers=2.0.0 testers=2.0.0 users=1.0.0 post=-",
    );
  });

  it("GIVEN a train WHEN shifted or unshifted THEN each move expects the release its ring has, none for an empty ring", () => {
    const before = states(R3, R2, R1, undefined, undefined);
    assert.deepEqual(
      planShift(before).map((m) => [m.ring, m.release.version, m.expected]),
      [
        ["users", "1.0.0", undefined],
        ["testers", "2.0.0", R1.digest],
        ["developers", "3.0.0", R2.digest],
      ],
    );
    assert.deepEqual(
      planUnshift(states(R3, R3, R2, R1, R1)).map((m) => [m.ring, m.release.version, m.expected]),
      [
        ["developers", "2.0.0", R3.digest],
        ["testers", "1.0.0", R2.digest],
      ],
    );
  });

  it("GIVEN ante holds a prepared release that differs from the first ring's WHEN unshifted THEN ante keeps it and the first ring gets the second's", () => {
    const before = states(R3, R2, R1, undefined, undefined);
    const moves = planUnshift(before);
    assert.deepEqual(
      moves.map((m) => `${m.from}->${m.ring}:${m.release.version}`),
      ["testers->developers:1.0.0"],
    );
    assert.equal(
      summary(applyMoves(before, moves)),
      "ante=3.0.0 developers=1.0.0 testers=1.0.0 users=- post=-",
    );
  });

  it("GIVEN a shifted train WHEN unshifted THEN it moves back, first ring first", () => {
    const shifted = states(R3, R3, R3, R2, R1);
    const moves = planUnshift(shifted);
    assert.deepEqual(
      moves.map((m) => `${m.from}->${m.ring}:${m.release.version}`),
      ["users->testers:2.0.0", "post->users:1.0.0"],
    );
    assert.equal(
      summary(applyMoves(shifted, moves)),
      "ante=3.0.0 developers=3.0.0 testers=2.0.0 users=1.0.0 post=1.0.0",
    );
  });

  it("GIVEN any train where every ring has a release WHEN shifted then unshifted THEN every ring but post is restored", () => {
    const rel = fc.constantFrom(R1, R2, R3);
    fc.assert(
      fc.property(fc.array(rel, { minLength: 5, maxLength: 5 }), (releases) => {
        const before = states(...releases);
        const shifted = applyMoves(before, planShift(before));
        const back = applyMoves(shifted, planUnshift(shifted));
        assert.deepEqual(back.slice(0, -1), before.slice(0, -1));
        assert.deepEqual(back[4], shifted[4]);
      }),
    );
  });

  it("GIVEN a store WHEN asked for an unknown ring THEN the error lists the rings", async () => {
    const store = new StateStore({
      registry: "127.0.0.1:1",
      project: "example",
      rings: ["developers"],
    });
    assert.equal(store.releaseRepository, "127.0.0.1:1/example/release");
    await assert.rejects(store.readRing("qa"), {
      message: 'unknown ring "qa" (rings: ante, developers, post)',
    });
    assert.equal(store.nextRing("developers"), "post");
    assert.equal(store.nextRing("post"), undefined);
  });
});

/**
 * An in-memory release repository with the client methods the state store's ring moves use,
 * and hooks where another writer can act: the logic of compare-and-swap and roll-back without
 * a registry (the integration tests run the same paths against Distribution).
 */
class MemoryRegistry {
  /** Release labels by digest. */
  readonly releases = new Map<string, Record<string, string>>();
  /** Ring and version tags of the release repository. */
  readonly tags = new Map<string, string>();
  /** The tags written, in order. */
  readonly puts: string[] = [];
  /** Runs before a tag is read; another writer acts here. */
  beforeHead?: (tag: string) => void;
  /** Runs after a tag is written. */
  afterPut?: (tag: string) => void;
  /** Tags whose write fails as a registry error would. */
  readonly failing = new Set<string>();

  add(release: ReleaseRecord): void {
    this.releases.set(release.digest, releaseLabels(release, { project: "example" }));
    this.tags.set(release.version, release.digest);
  }

  point(ring: string, release: ReleaseRecord): void {
    this.tags.set(ringTag(ring), release.digest);
  }

  ring(ring: string): string | undefined {
    const digest = this.tags.get(ringTag(ring));
    return digest === undefined
      ? undefined
      : this.releases.get(digest)?.["org.opencontainers.image.version"];
  }

  client(): RegistryClient {
    const head = async (ref: ImageReference) => {
      if (ref.tag !== undefined) this.beforeHead?.(ref.tag);
      const digest = ref.digest ?? this.tags.get(ref.tag as string);
      return digest !== undefined && this.releases.has(digest)
        ? { digest, mediaType: "application/vnd.oci.image.manifest.v1+json", size: 2 }
        : undefined;
    };
    const fake = {
      headManifest: head,
      manifestExists: async (ref: string) => this.releases.has(ref.slice(ref.indexOf("@") + 1)),
      getManifest: async (ref: ImageReference) => ({
        digest: ref.digest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        bytes: Buffer.from(ref.digest as string),
      }),
      putManifest: async (_repository: string, tag: string, bytes: Buffer) => {
        if (this.failing.has(tag)) throw new Error(`PUT manifest ${tag}: HTTP 500`);
        this.tags.set(tag, bytes.toString());
        this.puts.push(tag);
        this.afterPut?.(tag);
      },
      getImageConfig: async (ref: ImageReference) => ({
        digest: ref.digest,
        labels: this.releases.get(ref.digest as string) ?? {},
      }),
    };
    return fake as unknown as RegistryClient;
  }
}

describe("state store: ring moves are compare-and-swap", () => {
  let registry: MemoryRegistry;
  let store: StateStore;
  const R4 = release("4.0.0");

  beforeEach(() => {
    registry = new MemoryRegistry();
    for (const r of [R1, R2, R3, R4]) registry.add(r);
    store = new StateStore({
      registry: "127.0.0.1:1",
      project: "example",
      rings: ["developers", "testers", "users"],
      client: registry.client(),
    });
  });

  it("GIVEN a move planned from 1.0.0 WHEN another writer moved the ring to 2.0.0 THEN it fails naming the ring, the planned and the found release, and the ring keeps 2.0.0", async () => {
    registry.point("developers", R2);
    await assert.rejects(store.moveRing("developers", "3.0.0", { expected: R1.digest }), {
      message:
        `move ring developers to 3.0.0: no ring moved: ring developers moved since the move was planned: ` +
        `planned from release 1.0.0 (${R1.digest}), found at release 2.0.0 (${R2.digest})`,
    });
    assert.equal(registry.ring("developers"), "2.0.0");
    assert.deepEqual(registry.puts, []);
  });

  it("GIVEN a move planned from an empty ring WHEN the ring got a release meanwhile THEN it fails and the ring keeps it", async () => {
    registry.point("developers", R2);
    await assert.rejects(store.moveRing("developers", "3.0.0", { expected: null }), {
      message: new RegExp(`planned from no release, found at release 2\\.0\\.0`),
    });
    assert.equal(registry.ring("developers"), "2.0.0");
  });

  it("GIVEN the ring moves inside the window (after the check, before the compare) WHEN moved THEN the compare fails and the other writer's release stays", async () => {
    registry.point("developers", R1);
    let heads = 0;
    registry.beforeHead = (tag) => {
      // The first read is the check; the other writer acts before the compare's read.
      if (tag === ringTag("developers") && ++heads === 2) registry.point("developers", R2);
    };
    await assert.rejects(store.moveRing("developers", "3.0.0", { expected: R1.digest }), {
      message:
        `move ring developers to 3.0.0: ring developers moved since the move was planned: ` +
        `planned from release 1.0.0 (${R1.digest}), found at release 2.0.0 (${R2.digest}); no ring moved`,
    });
    assert.equal(registry.ring("developers"), "2.0.0");
    assert.deepEqual(registry.puts, []);
  });

  it("GIVEN a retry of a move that was made WHEN the ring is at the release already THEN nothing is written and it is no conflict", async () => {
    registry.point("developers", R3);
    assert.deepEqual(await store.moveRing("developers", "3.0.0", { expected: R1.digest }), {
      ring: "developers",
      release: R3,
    });
    assert.deepEqual(registry.puts, []);
  });

  it("GIVEN a release whose digest is not the one the update pushed WHEN moved THEN nothing moves", async () => {
    registry.point("developers", R1);
    await assert.rejects(
      store.moveRing("developers", "3.0.0", { expected: R1.digest, digest: R4.digest }),
      {
        message: `move ring developers to 3.0.0: release 3.0.0 is ${R3.digest} in the registry, not ${R4.digest} as this update pushed it; no ring moved`,
      },
    );
    assert.equal(registry.ring("developers"), "1.0.0");
  });

  it("GIVEN another writer that writes right after the move WHEN moved THEN the move reports that it lost", async () => {
    registry.point("developers", R1);
    registry.afterPut = () => registry.point("developers", R2);
    await assert.rejects(store.moveRing("developers", "3.0.0", { expected: R1.digest }), {
      message:
        `move ring developers to 3.0.0: ring developers was moved to release 3.0.0 (${R3.digest}), ` +
        `but another writer moved it at the same time and won: it points at release 2.0.0 (${R2.digest})`,
    });
  });

  it("GIVEN a shift whose third move fails WHEN shifted THEN the first two are rolled back, last first, and the error says so", async () => {
    registry.point("ante", R4);
    registry.point("developers", R3);
    registry.point("testers", R2);
    registry.point("users", R1);
    registry.point("post", R1);
    registry.failing.add(ringTag("developers"));
    await assert.rejects(store.shift(), {
      message:
        "shift: PUT manifest ring-developers: HTTP 500; rolled back: " +
        `ring testers back to release 2.0.0 (${R2.digest}), ring users back to release 1.0.0 (${R1.digest})`,
    });
    assert.deepEqual(
      ["ante", "developers", "testers", "users", "post"].map((r) => registry.ring(r)),
      ["4.0.0", "3.0.0", "2.0.0", "1.0.0", "1.0.0"],
    );
    assert.deepEqual(registry.puts, ["ring-users", "ring-testers", "ring-testers", "ring-users"]);
  });

  it("GIVEN a shift that filled an empty ring before failing WHEN rolled back THEN the error says that ring keeps its new release", async () => {
    registry.point("developers", R3);
    registry.point("testers", R2);
    registry.failing.add(ringTag("testers"));
    await assert.rejects(store.shift(), {
      message:
        "shift: PUT manifest ring-testers: HTTP 500; rolled back: nothing; NOT rolled back: " +
        "ring users keeps release 2.0.0: it had no release, and Distribution cannot delete a tag alone",
    });
  });

  it("GIVEN a ring that another writer moved during the roll-back WHEN rolled back THEN that ring is left to the other writer and reported", async () => {
    registry.point("developers", R3);
    registry.point("testers", R2);
    registry.point("users", R1);
    registry.point("post", R1);
    registry.failing.add(ringTag("testers"));
    let heads = 0;
    registry.beforeHead = (tag) => {
      // Reads of ring-users: the train, the check, the compare, the read after the write, the roll-back.
      if (tag === ringTag("users") && ++heads === 5) registry.point("users", R4);
    };
    await assert.rejects(store.shift(), {
      message:
        "shift: PUT manifest ring-testers: HTTP 500; rolled back: nothing; NOT rolled back: " +
        `ring users not rolled back: ring users moved since the move was planned: ` +
        `planned from release 2.0.0 (${R2.digest}), found at release 4.0.0 (${R4.digest})`,
    });
    assert.equal(registry.ring("users"), "4.0.0");
  });

  it("GIVEN a ring moved after shift read the train WHEN shifted THEN the check finds it and no ring moves", async () => {
    registry.point("developers", R3);
    registry.point("testers", R2);
    registry.point("users", R1);
    let reads = 0;
    registry.beforeHead = (tag) => {
      if (tag === ringTag("testers") && ++reads === 2) registry.point("testers", R4);
    };
    await assert.rejects(store.shift(), {
      message:
        `shift: no ring moved: ring testers moved since the move was planned: ` +
        `planned from release 2.0.0 (${R2.digest}), found at release 4.0.0 (${R4.digest})`,
    });
    assert.deepEqual(registry.puts, []);
    assert.equal(registry.ring("users"), "1.0.0");
  });

  it("GIVEN a promote WHEN the target ring moved after it was read THEN the promote fails and the target keeps the other writer's release", async () => {
    registry.point("developers", R3);
    registry.point("testers", R1);
    let reads = 0;
    registry.beforeHead = (tag) => {
      if (tag === ringTag("testers") && ++reads === 2) registry.point("testers", R2);
    };
    await assert.rejects(store.promote("developers"), {
      message:
        /^promote developers to testers: no ring moved: ring testers moved since the move was planned: planned from release 1\.0\.0/,
    });
    assert.equal(registry.ring("testers"), "2.0.0");
  });
});
