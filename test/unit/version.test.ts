import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import * as semver from "semver";
import { allRings, nextRing, nextVersion, previousRing } from "../../lib/version";

const RINGS = ["developers", "testers", "users", "lts"];

describe("lib/version", () => {
  describe("nextVersion: the table of DESIGN.md, 'The version rule'", () => {
    const table: [string | undefined, string | undefined, string][] = [
      [undefined, undefined, "0.1.0"],
      ["0.3.2", undefined, "0.3.3"],
      ["0.3.2", "0.2.7", "0.3.3"],
      ["0.3.2", "0.3.2", "0.4.0"],
      ["0.4.0", "0.3.2", "0.4.1"],
    ];
    for (const [current, next, expected] of table) {
      it(`GIVEN ${current ?? "none"} in R and ${next ?? "none"} in N WHEN a rebuild happens THEN the version is ${expected}`, () => {
        assert.equal(nextVersion({ current, next }), expected);
      });
    }
  });

  describe("nextVersion: the other rules", () => {
    it("GIVEN major 1 requested WHEN rebuilding 0.3.2 THEN the version is 1.0.0", () => {
      assert.equal(nextVersion({ current: "0.3.2", next: "0.3.2", major: 1 }), "1.0.0");
    });
    it("GIVEN major 1 requested and reached (1.0.0 in R) WHEN rebuilding again THEN the ring rule applies: 1.0.1, not 2.0.0", () => {
      assert.equal(nextVersion({ current: "1.0.0", major: 1 }), "1.0.1");
      assert.equal(nextVersion({ current: "1.0.0", next: "1.0.0", major: 1 }), "1.1.0");
    });
    it("GIVEN major 3 requested WHEN rebuilding 0.3.2 THEN the version jumps to 3.0.0", () => {
      assert.equal(nextVersion({ current: "0.3.2", major: 3 }), "3.0.0");
    });
    it("GIVEN a requested major that is not a whole number THEN it throws naming it", () => {
      assert.throws(() => nextVersion({ current: "0.3.2", major: 1.5 }), {
        message: "requested major 1.5 is not a whole number",
      });
    });
    it("GIVEN no version anywhere and a configured initial version THEN that version is used", () => {
      assert.equal(nextVersion({ initial: "1.0.0" }), "1.0.0");
    });
    it("GIVEN no version anywhere and major 2 requested THEN 2.0.0, unless the initial version's major is 2 or more", () => {
      assert.equal(nextVersion({ major: 2 }), "2.0.0");
      assert.equal(nextVersion({ major: 2, initial: "3.1.0" }), "3.1.0");
    });
    it("GIVEN none in R nor N but 0.10.1 in the registry THEN the build continues after it: 0.10.2", () => {
      assert.equal(nextVersion({ registry: "0.10.1" }), "0.10.2");
      assert.equal(nextVersion({ registry: "0.10.1", major: 1 }), "1.0.0");
    });
    it("GIVEN a version in R or N THEN the registry's highest version is not read", () => {
      assert.equal(nextVersion({ current: "0.3.2", registry: "0.9.0" }), "0.3.3");
      assert.equal(nextVersion({ next: "0.3.2", registry: "0.9.0" }), "0.4.0");
    });
    it("GIVEN nothing in R, N or the registry THEN the initial version", () => {
      assert.equal(nextVersion({ registry: undefined }), "0.1.0");
    });
    it("GIVEN none in R but 0.3.2 in N THEN the build leaves the 0.3 line to N: 0.4.0", () => {
      assert.equal(nextVersion({ next: "0.3.2" }), "0.4.0");
    });
    it("GIVEN a prerelease in R THEN the bump drops the prerelease part", () => {
      assert.equal(nextVersion({ current: "0.3.2-rc.1" }), "0.3.3");
    });
    it("GIVEN a version that is not semver THEN it throws naming it", () => {
      assert.throws(() => nextVersion({ current: "1.x" }), {
        message: 'current version "1.x" is not a version',
      });
    });
  });

  describe("nextVersion: properties", () => {
    const version = fc
      .tuple(fc.nat(20), fc.nat(20), fc.nat(20))
      .map(([a, b, c]) => `${a}.${b}.${c}`);

    it("GIVEN any versions in R and N WHEN rebuilding THEN the version only grows within R", () => {
      fc.assert(
        fc.property(version, fc.option(version, { nil: undefined }), fc.nat(25), (r, n, major) => {
          assert.ok(semver.gt(nextVersion({ current: r, next: n, major }), r));
        }),
      );
    });

    it("GIVEN any versions in R and N THEN minor bumps exactly when N holds R's major.minor", () => {
      fc.assert(
        fc.property(version, fc.option(version, { nil: undefined }), (r, n) => {
          const v = semver.parse(nextVersion({ current: r, next: n })) as semver.SemVer;
          const cur = semver.parse(r) as semver.SemVer;
          const same =
            n !== undefined && semver.major(n) === cur.major && semver.minor(n) === cur.minor;
          assert.equal(v.major, cur.major);
          if (same) {
            assert.deepEqual([v.minor, v.patch], [cur.minor + 1, 0]);
          } else {
            assert.deepEqual([v.minor, v.patch], [cur.minor, cur.patch + 1]);
          }
        }),
      );
    });

    it("GIVEN a requested major above R's THEN the result is <major>.0.0", () => {
      fc.assert(
        fc.property(version, fc.option(version, { nil: undefined }), fc.nat(5), (r, n, more) => {
          const major = semver.major(r) + 1 + more;
          assert.equal(nextVersion({ current: r, next: n, major }), `${major}.0.0`);
        }),
      );
    });

    it("GIVEN a requested major kept in config WHEN building again and again THEN the major is bumped once", () => {
      fc.assert(
        fc.property(version, fc.nat(25), fc.integer({ min: 1, max: 6 }), (start, major, builds) => {
          let v = start;
          const seen: string[] = [];
          for (let i = 0; i < builds; i++) {
            v = nextVersion({ current: v, major });
            seen.push(v);
          }
          const target = Math.max(major, semver.major(start));
          assert.ok(seen.every((x) => semver.major(x) === target));
          assert.equal(seen.filter((x) => x.endsWith(".0.0")).length <= 1, true);
        }),
      );
    });
  });

  describe("rings", () => {
    it("GIVEN configured rings THEN allRings adds ante before and post after", () => {
      assert.deepEqual(allRings(RINGS), ["ante", "developers", "testers", "users", "lts", "post"]);
    });
    it("GIVEN each ring THEN nextRing is the one after it, none after post", () => {
      assert.deepEqual(
        allRings(RINGS).map((r) => nextRing(RINGS, r)),
        ["developers", "testers", "users", "lts", "post", undefined],
      );
    });
    it("GIVEN each ring THEN previousRing is the one before it, none before ante", () => {
      assert.deepEqual(
        allRings(RINGS).map((r) => previousRing(RINGS, r)),
        [undefined, "ante", "developers", "testers", "users", "lts"],
      );
    });
    it("GIVEN an unknown ring THEN nextRing throws naming it and the rings", () => {
      assert.throws(() => nextRing(RINGS, "qa"), {
        message: '"qa" is not a ring (ante, developers, testers, users, lts, post)',
      });
    });
  });
});
