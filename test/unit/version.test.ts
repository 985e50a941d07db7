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
    it("GIVEN a major request WHEN rebuilding 0.3.2 THEN the version is 1.0.0", () => {
      assert.equal(nextVersion({ current: "0.3.2", next: "0.3.2", major: true }), "1.0.0");
    });
    it("GIVEN no version anywhere and a configured initial version THEN that version is used", () => {
      assert.equal(nextVersion({ initial: "1.0.0" }), "1.0.0");
    });
    it("GIVEN no version anywhere and a major request THEN the initial version is used", () => {
      assert.equal(nextVersion({ major: true }), "0.1.0");
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
        fc.property(
          version,
          fc.option(version, { nil: undefined }),
          fc.boolean(),
          (r, n, major) => {
            assert.ok(semver.gt(nextVersion({ current: r, next: n, major }), r));
          },
        ),
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

    it("GIVEN a major request THEN the result is (x+1).0.0", () => {
      fc.assert(
        fc.property(version, fc.option(version, { nil: undefined }), (r, n) => {
          assert.equal(
            nextVersion({ current: r, next: n, major: true }),
            `${semver.major(r) + 1}.0.0`,
          );
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
