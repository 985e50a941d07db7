/**
 * lib/provenance.ts and the checker's provenance rule without a registry: the mode a predicate
 * records, what is wrong with one manifest's provenance, and the violations `rings check`
 * reports. The registry side (BuildKit's real attestations) is in
 * test/integration/provenance.test.ts and publish.test.ts.
 */
import assert from "node:assert/strict";
import { provenanceViolations } from "../../lib/check";
import {
  isAttestation,
  provenanceMode,
  provenanceProblem,
  type ManifestProvenance,
} from "../../lib/provenance";

const M = `sha256:${"1".repeat(64)}`;
const A = `sha256:${"2".repeat(64)}`;
const full: ManifestProvenance = {
  manifest: M,
  platform: "linux/amd64",
  attestation: A,
  predicateType: "https://slsa.dev/provenance/v0.2",
  mode: "max",
  subjectMatches: true,
};

describe("provenanceMode", () => {
  it("GIVEN BuildKit's v0.2 predicate with and without buildConfig THEN max and min", () => {
    assert.equal(provenanceMode({ buildType: "x", buildConfig: { llbDefinition: [] } }), "max");
    assert.equal(provenanceMode({ buildType: "x", invocation: {}, metadata: {} }), "min");
  });

  it("GIVEN a v1 predicate with internalParameters.buildConfig THEN max; without THEN min", () => {
    assert.equal(
      provenanceMode({ buildDefinition: { internalParameters: { buildConfig: {} } } }),
      "max",
    );
    assert.equal(provenanceMode({ buildDefinition: { externalParameters: {} } }), "min");
    assert.equal(provenanceMode(undefined), "min");
  });
});

describe("isAttestation", () => {
  it("GIVEN index descriptors THEN only BuildKit's attestation-manifest type counts", () => {
    const d = (annotations?: Record<string, string>) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: M,
      size: 1,
      annotations,
    });
    assert.equal(isAttestation(d({ "vnd.docker.reference.type": "attestation-manifest" })), true);
    assert.equal(isAttestation(d({ "vnd.docker.reference.type": "signature" })), false);
    assert.equal(isAttestation(d()), false);
  });
});

describe("provenanceProblem", () => {
  const cases: [string, Partial<ManifestProvenance>, "max" | "min" | "off", string | undefined][] =
    [
      ["complete, max required", {}, "max", undefined],
      [
        "no attestation",
        { attestation: undefined, mode: undefined },
        "max",
        "no attestation manifest",
      ],
      [
        "attestation without provenance",
        { mode: undefined, predicateType: undefined },
        "min",
        `attestation ${A} has no SLSA provenance statement`,
      ],
      [
        "subject elsewhere",
        { subjectMatches: false },
        "min",
        `provenance subject does not name ${M}`,
      ],
      ["min where max is required", { mode: "min" }, "max", "provenance mode=min"],
      ["min where min is required", { mode: "min" }, "min", undefined],
      ["nothing, but off", { attestation: undefined, mode: undefined }, "off", undefined],
    ];
  for (const [name, change, required, expected] of cases) {
    it(`GIVEN ${name} THEN ${expected ?? "no problem"}`, () => {
      assert.equal(provenanceProblem({ ...full, ...change }, required), expected);
    });
  }
});

describe("provenanceViolations", () => {
  it("GIVEN images with and without provenance THEN one row per manifest short of it, naming image and platform; images the registry lacks are left to invariants 2 and 5", () => {
    const image = "127.0.0.1:5001/example/backend@" + M;
    const violations = provenanceViolations({
      required: "max",
      images: {
        [image]: [full, { ...full, platform: "linux/arm64", mode: "min" }],
        "127.0.0.1:5001/example/bare@sha256:3": [
          { manifest: M, platform: "unknown", subjectMatches: false },
        ],
        "127.0.0.1:5001/example/gone@sha256:4": null,
      },
    });
    assert.deepEqual(
      violations.map((v) => [v.invariant, v.object, v.found]),
      [
        ["provenance", `${image} (linux/arm64)`, "provenance mode=min"],
        ["provenance", "127.0.0.1:5001/example/bare@sha256:3", "no attestation manifest"],
      ],
    );
    assert.match(violations[0].expected, /mode=max or more/);
  });
});
