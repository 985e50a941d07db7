import assert from "node:assert/strict";
import {
  formatVerification,
  overrideTag,
  requireVerified,
  verificationTag,
  type Verification,
} from "../../lib/verification";

const digest = `sha256:${"ab".repeat(32)}`;
const v = (site: string, ring: string, jobs = 0): Verification => ({
  site,
  ring,
  release: "0.1.2",
  digest,
  time: "2026-01-01T00:00:00.000Z",
  jobs: Array.from({ length: jobs }, (_, i) => ({ name: `smoke-${i}`, status: "Complete" })),
});

describe("lib/verification", () => {
  it("GIVEN a digest and a site THEN the tags follow cosign's scheme", () => {
    assert.equal(
      verificationTag(digest, "dev-testers"),
      `sha256-${"ab".repeat(32)}.verify.dev-testers`,
    );
    assert.equal(overrideTag(digest, "testers"), `sha256-${"ab".repeat(32)}.force.testers`);
  });

  it("GIVEN a site name too long for a tag THEN the error names it", () => {
    assert.throws(
      () => verificationTag(digest, "s".repeat(60)),
      /site "s+" cannot be part of a tag/,
    );
  });

  it("GIVEN only another ring's verification THEN promotion is refused naming where it was verified", () => {
    assert.throws(
      () =>
        requireVerified(
          "testers",
          { version: "0.1.2", digest },
          {
            verifications: [v("dev-developers", "developers")],
            overrides: [],
          },
        ),
      /^Error: ring testers: release 0\.1\.2 \(sha256:abab.*\) is not verified by any site of ring testers; verified only by dev-developers \(ring developers\): .*--force/,
    );
  });

  it("GIVEN a verification of the ring THEN it is returned and status says where", () => {
    const records = {
      verifications: [v("dev-testers", "testers", 2), v("eu-testers", "testers")],
      overrides: [],
    };
    assert.equal(requireVerified("testers", { version: "0.1.2", digest }, records).length, 2);
    assert.equal(
      formatVerification("testers", records),
      "yes: dev-testers (2 post-deploy jobs), eu-testers (rollout)",
    );
    assert.equal(formatVerification("users", { verifications: [], overrides: [] }), "no");
  });
});
