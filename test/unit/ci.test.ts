/**
 * lib/ci.ts without I/O: the error of a failed preview, read from the Pulumi CLI's output as it
 * prints it, and the comment body.
 */
import assert from "node:assert/strict";
import { COMMENT_MARKER, commentBody, previewError } from "../../lib/ci";

/** `pulumi preview` (CLI 3.250) of a site with a bad ring, as printed. */
const FAILED = `Previewing update (dev-testers):

@ previewing update....
 +  pulumi:pulumi:Stack gitops-rings-dev-testers create error: stacks/Pulumi.dev-testers.yaml: gitops-rings:ring: "nope" is not a ring (ante, developers, testers, users, lts, post)
 +  pulumi:pulumi:Stack gitops-rings-dev-testers create 1 error
Diagnostics:
  pulumi:pulumi:Stack (gitops-rings-dev-testers):
    error: stacks/Pulumi.dev-testers.yaml: gitops-rings:ring: "nope" is not a ring (ante, developers, testers, users, lts, post)
    stacks/Pulumi.dev-testers.yaml: gitops-rings:environment: "nope" is not an environment

Resources:
    + 1 to create
    1 errored
`;

describe("pull-request CI (lib/ci.ts)", function () {
  it("GIVEN a failed preview's output THEN its error is the Diagnostics' error lines, continuation included", function () {
    assert.equal(
      previewError(FAILED),
      'stacks/Pulumi.dev-testers.yaml: gitops-rings:ring: "nope" is not a ring (ante, developers, testers, users, lts, post)\n' +
        'stacks/Pulumi.dev-testers.yaml: gitops-rings:environment: "nope" is not an environment',
    );
  });

  it("GIVEN output without Diagnostics THEN the error lines, else the last lines", function () {
    assert.equal(
      previewError("a\nerror: no stack named 'x' found\nb\n"),
      "no stack named 'x' found",
    );
    assert.equal(previewError("one\ntwo\n"), "one\ntwo");
  });

  it("GIVEN results THEN the body starts with the marker, sums up, and shows the failed site's error in a fence that its backticks cannot close", function () {
    const body = commentBody(
      [
        { site: "prod-users", ok: false, ring: "users", error: "bad ``` value" },
        {
          site: "dev-developers",
          ok: true,
          ring: "developers",
          plan: "Release plan for ring developers",
          notes: "#### Release notes: …",
          release: { current: "0.1.0", next: "0.2.0" },
          changed: 2,
        },
        { site: "prod-lts", ok: true, ring: "lts", notes: "#### lts", changed: 0 },
      ],
      { commit: "abc1234" },
    );
    assert.ok(body.startsWith(`${COMMENT_MARKER}\n## gitops-rings preview`));
    assert.match(body, /❌ 1 of 3 site previews failed\./);
    const rows = body.split("\n").filter((l) => l.startsWith("| dev-") || l.startsWith("| prod-"));
    assert.deepEqual(rows, [
      "| dev-developers | developers | ✅ passed | 0.1.0 → 0.2.0 |",
      "| prod-lts | lts | ✅ passed | – |",
      "| prod-users | users | ❌ failed | – |",
    ]);
    assert.match(body, /### ❌ prod-users: preview failed\n\n````text\nbad ``` value\n````/);
    assert.match(
      body,
      /<details open><summary>Release notes: 2 changed<\/summary>\n\n#### Release notes: …/,
    );
    assert.match(body, /<details><summary>Release notes: no change<\/summary>\n\n#### lts/);
    assert.match(body, /Previewed at abc1234\./);
  });
});
