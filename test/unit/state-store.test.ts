import assert from "node:assert/strict";
import fc from "fast-check";
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
