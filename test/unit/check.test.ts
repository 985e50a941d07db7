import assert from "node:assert/strict";
import {
  formatViolations,
  outputViolations,
  parseSiteOutputs,
  registryViolations,
  workloadViolations,
  type RegistrySnapshot,
  type SiteSnapshot,
  type Workload,
} from "../../lib/check";
import { imageLabels } from "../../lib/labels";
import type { ImageRecord, ReleaseRecord } from "../../lib/types";

const REG = "127.0.0.1:5001/example";
const RELEASES = `${REG}/release`;
const D = (c: string) => `sha256:${c.repeat(64)}`;
const REV = `v1:sha256:${"e".repeat(64)}`;
const C1 = "1".repeat(40);
const C2 = "2".repeat(40);

const image = (service: string, version: string, digest: string): ImageRecord => ({
  service,
  repository: `${REG}/${service}`,
  version,
  digest,
  revision: REV,
  dependencies: {},
  sources: [],
});
const release = (version: string, digest: string, ...images: ImageRecord[]): ReleaseRecord => ({
  version,
  digest,
  services: Object.fromEntries(images.map((i) => [i.service, i])),
});

const backend1 = image("backend", "0.1.0", D("a"));
const base1 = image("base", "0.1.0", D("b"));
const r1 = release("0.1.0", D("1"), backend1, base1);

/** A registry where release 0.1.0 is on ring developers and everything it names exists. */
function clean(): RegistrySnapshot {
  return {
    releaseRepository: RELEASES,
    releases: [{ tag: "0.1.0", digest: r1.digest, release: r1 }],
    rings: [{ ring: "ante" }, { ring: "developers", digest: r1.digest, release: r1 }],
    tags: { [`${REG}/backend:0.1.0`]: D("a"), [`${REG}/base:0.1.0`]: D("b") },
    manifests: { [`${REG}/backend@${D("a")}`]: true, [`${REG}/base@${D("b")}`]: true },
  };
}

describe("check", () => {
  describe("registryViolations (invariants 1 and 2)", () => {
    it("GIVEN a release on a ring whose tags and images are all where it recorded them THEN nothing is reported", () => {
      assert.deepEqual(registryViolations(clean()), []);
    });

    it("GIVEN a version tag moved to another digest WHEN checked THEN invariant 1 names the tag, the recorded digest and the one it points at", () => {
      const s = clean();
      const moved = { ...s, tags: { ...s.tags, [`${REG}/backend:0.1.0`]: D("c") } };
      assert.deepEqual(registryViolations(moved), [
        {
          invariant: 1,
          object: `${REG}/backend:0.1.0`,
          expected: `${D("a")} (release 0.1.0)`,
          found: D("c"),
        },
      ]);
    });

    it("GIVEN a version tag deleted THEN invariant 1 says there is no such tag", () => {
      const s = clean();
      const gone = { ...s, tags: { ...s.tags, [`${REG}/base:0.1.0`]: null } };
      assert.deepEqual(
        registryViolations(gone).map((v) => [v.invariant, v.object, v.found]),
        [[1, `${REG}/base:0.1.0`, "no such tag"]],
      );
    });

    it("GIVEN two releases recording different digests for backend 0.1.0 THEN invariant 1 reports the later release's record against the earlier one", () => {
      const s = clean();
      const r2 = release("0.2.0", D("2"), image("backend", "0.1.0", D("c")), base1);
      const both: RegistrySnapshot = {
        ...s,
        releases: [{ tag: "0.2.0", digest: r2.digest, release: r2 }, ...s.releases],
        manifests: { ...s.manifests, [`${REG}/backend@${D("c")}`]: true },
      };
      assert.deepEqual(registryViolations(both), [
        {
          invariant: 1,
          object: `${REG}/backend:0.1.0`,
          expected: `${D("a")} (release 0.1.0)`,
          found: `${D("c")} (release 0.2.0)`,
        },
      ]);
    });

    it("GIVEN a release version tag on an image that is not a release, or on another release THEN invariant 1 names the release tag", () => {
      const s = clean();
      const r3 = release("0.3.0", D("3"), backend1);
      const bad: RegistrySnapshot = {
        ...s,
        releases: [
          ...s.releases,
          {
            tag: "0.2.0",
            digest: D("9"),
            error: "label io.gitops-rings.release.version is missing",
          },
          { tag: "0.4.0", digest: r3.digest, release: r3 },
        ],
      };
      assert.deepEqual(registryViolations(bad), [
        {
          invariant: 1,
          object: `${RELEASES}:0.2.0`,
          expected: "release 0.2.0",
          found: `${D("9")}, not a release: label io.gitops-rings.release.version is missing`,
        },
        {
          invariant: 1,
          object: `${RELEASES}:0.4.0`,
          expected: "release 0.4.0",
          found: `${D("3")}, release 0.3.0`,
        },
      ]);
    });

    it("GIVEN a release naming an image the registry lacks, on a ring THEN invariant 2 names the release tag and the ring tag", () => {
      const s = clean();
      const missing = { ...s, manifests: { ...s.manifests, [`${REG}/base@${D("b")}`]: false } };
      const expected = `release 0.1.0 names base ${REG}/base@${D("b")}`;
      assert.deepEqual(registryViolations(missing), [
        { invariant: 2, object: `${RELEASES}:0.1.0`, expected, found: "not in the registry" },
        {
          invariant: 2,
          object: `${RELEASES}:ring-developers`,
          expected,
          found: "not in the registry",
        },
      ]);
    });

    it("GIVEN a ring on an image that is not a release THEN invariant 2 names the ring tag", () => {
      const s = clean();
      const bad = { ...s, rings: [{ ring: "testers", digest: D("9"), error: "not a release" }] };
      assert.deepEqual(registryViolations(bad), [
        {
          invariant: 2,
          object: `${RELEASES}:ring-testers`,
          expected: "a release",
          found: `${D("9")}, not a release: not a release`,
        },
      ]);
    });

    it("GIVEN a ring on a release whose version has no tag THEN invariant 2; on a release its version tag does not point at THEN invariant 1", () => {
      const s = clean();
      const r2 = release("0.2.0", D("2"), backend1, base1);
      const other = release("0.1.0", D("7"), backend1, base1);
      const bad: RegistrySnapshot = {
        ...s,
        rings: [
          { ring: "testers", digest: r2.digest, release: r2 },
          { ring: "users", digest: other.digest, release: other },
        ],
      };
      assert.deepEqual(registryViolations(bad), [
        {
          invariant: 2,
          object: `${RELEASES}:ring-testers`,
          expected: `release 0.2.0 (${RELEASES}:0.2.0)`,
          found: `${D("2")}, labelled 0.2.0, which has no version tag`,
        },
        {
          invariant: 1,
          object: `${RELEASES}:0.1.0`,
          expected: `${D("7")} (what ring-users points at)`,
          found: D("1"),
        },
      ]);
    });
  });

  describe("parseSiteOutputs", () => {
    const plain = {
      ring: "developers",
      environment: "dev",
      release: "0.1.0",
      services: { backend: { version: "0.1.0", digest: D("a"), ref: `${REG}/backend@${D("a")}` } },
    };

    it("GIVEN an Automation API OutputMap WHEN parsed THEN it equals the plain values' parse", () => {
      const map = Object.fromEntries(
        Object.entries(plain).map(([k, value]) => [k, { value, secret: false }]),
      );
      assert.deepEqual(parseSiteOutputs(map, "s"), parseSiteOutputs(plain, "s"));
      assert.equal(parseSiteOutputs(map, "s")?.services.backend.digest, D("a"));
    });

    it("GIVEN no outputs (a stack never deployed) THEN undefined", () => {
      assert.equal(parseSiteOutputs({}, "dev-testers"), undefined);
    });

    it("GIVEN a service without a digest THEN the error names the site, the key and the value", () => {
      const bad = { ...plain, services: { backend: { ref: "x", digest: 42 } } };
      assert.throws(
        () => parseSiteOutputs(bad, "out.json"),
        /^Error: out\.json: services\.backend\.digest: 42: Invalid input: expected string, received number$/,
      );
    });
  });

  describe("outputViolations (invariant 5)", () => {
    const labels = imageLabels({
      project: "example",
      image: "backend",
      version: "0.1.0",
      revision: REV,
      sources: [{ name: "api", url: "file:///srv/api", commit: C1 }],
    });
    const site = (service: Record<string, unknown>, found: unknown = labels): SiteSnapshot => ({
      site: "dev-developers",
      namespace: "example-dev-developers",
      outputs: parseSiteOutputs(
        {
          ring: "developers",
          environment: "dev",
          services: {
            backend: {
              version: "0.1.0",
              digest: D("a"),
              ref: `${REG}/backend@${D("a")}`,
              revision: REV,
              sources: [{ name: "api", url: "file:///srv/api", commit: C1 }],
              ...service,
            },
          },
        },
        "dev-developers",
      )!,
      labels: { backend: found as SiteSnapshot["labels"][string] },
    });

    it("GIVEN outputs that agree with the image's labels THEN nothing is reported", () => {
      assert.deepEqual(outputViolations(site({})), []);
    });

    it("GIVEN outputs whose version, revision and source commit differ from the labels THEN one row each, labels expected, outputs found", () => {
      const other = `v1:sha256:${"f".repeat(64)}`;
      const v = outputViolations(
        site({ version: "0.2.0", revision: other, sources: [{ name: "api", commit: C2 }] }),
      );
      assert.deepEqual(v, [
        {
          invariant: 5,
          object: "dev-developers: services.backend.version",
          expected: "0.1.0",
          found: "0.2.0",
        },
        {
          invariant: 5,
          object: "dev-developers: services.backend.revision",
          expected: REV,
          found: other,
        },
        {
          invariant: 5,
          object: "dev-developers: services.backend.sources",
          expected: `api=${C1}`,
          found: `api=${C2}`,
        },
      ]);
    });

    it("GIVEN outputs without revision and sources (a pin) for a labelled image THEN both are reported", () => {
      const v = outputViolations(site({ revision: undefined, sources: undefined }));
      assert.deepEqual(
        v.map((x) => [x.object, x.found]),
        [
          ["dev-developers: services.backend.revision", "(none)"],
          ["dev-developers: services.backend.sources", "(none)"],
        ],
      );
    });

    it("GIVEN an image the registry lacks, or a ref at another digest THEN invariant 5 names digest or ref", () => {
      assert.deepEqual(outputViolations(site({}, null)), [
        {
          invariant: 5,
          object: "dev-developers: services.backend.digest",
          expected: `${REG}/backend@${D("a")}`,
          found: "not in the registry",
        },
      ]);
      assert.deepEqual(
        outputViolations(site({ ref: `${REG}/backend@${D("c")}` })).map((x) => x.object),
        ["dev-developers: services.backend.ref"],
      );
    });
  });

  describe("workloadViolations (invariant 4)", () => {
    const outputs = parseSiteOutputs(
      {
        ring: "developers",
        environment: "dev",
        services: { backend: { digest: D("a"), ref: `${REG}/backend@${D("a")}` } },
      },
      "dev-developers",
    )!;
    const deployment = (kind: string, containers: object[], init: object[] = []): Workload => {
      const spec = { template: { spec: { containers, initContainers: init } } };
      return {
        kind,
        metadata: { name: "api", namespace: "ns" },
        spec: kind === "CronJob" ? { jobTemplate: { spec } } : spec,
      } as Workload;
    };
    const check = (...workloads: Workload[]) =>
      workloadViolations({
        site: "dev-developers",
        namespace: "ns",
        outputs,
        labels: {},
        workloads,
      });

    it("GIVEN containers by the outputs' digest, and another repository by digest THEN nothing is reported", () => {
      assert.deepEqual(
        check(
          deployment("Deployment", [
            { name: "app", image: `${REG}/backend@${D("a")}` },
            { name: "proxy", image: `docker.io/library/nginx@${D("d")}` },
          ]),
        ),
        [],
      );
    });

    it("GIVEN an image by tag, an init container at another digest, a CronJob by tag THEN one row each naming the container", () => {
      assert.deepEqual(
        check(
          deployment(
            "StatefulSet",
            [{ name: "app", image: `${REG}/backend:0.1.0` }],
            [{ name: "migrate", image: `${REG}/backend:0.1.0@${D("c")}` }],
          ),
          deployment("CronJob", [{ name: "job", image: "busybox" }]),
        ),
        [
          {
            invariant: 4,
            object: "StatefulSet/ns/api: container migrate",
            expected: `${D("a")} (dev-developers: services.backend.digest)`,
            found: `${REG}/backend:0.1.0@${D("c")}`,
          },
          {
            invariant: 4,
            object: "StatefulSet/ns/api: container app",
            expected: "an image by digest (…@sha256:…)",
            found: `${REG}/backend:0.1.0`,
          },
          {
            invariant: 4,
            object: "CronJob/ns/api: container job",
            expected: "an image by digest (…@sha256:…)",
            found: "busybox",
          },
        ],
      );
    });
    it("GIVEN an image ending in a digest that is no valid reference THEN it counts as not by digest", () => {
      const image = `Bad/Name@${D("a")}`;
      assert.deepEqual(check(deployment("DaemonSet", [{ name: "app", image }])), [
        {
          invariant: 4,
          object: "DaemonSet/ns/api: container app",
          expected: "an image by digest (…@sha256:…)",
          found: image,
        },
      ]);
    });
  });

  describe("formatViolations", () => {
    it("GIVEN two violations THEN a padded table with one row each", () => {
      assert.equal(
        formatViolations([
          {
            invariant: 1,
            object: "r/backend:0.1.0",
            expected: "sha256:a (release 0.1.0)",
            found: "sha256:c",
          },
          {
            invariant: 4,
            object: "Deployment/ns/api: container app",
            expected: "by digest",
            found: "x:1",
          },
        ]),
        [
          "INVARIANT  OBJECT                            EXPECTED                  FOUND",
          "1          r/backend:0.1.0                   sha256:a (release 0.1.0)  sha256:c",
          "4          Deployment/ns/api: container app  by digest                 x:1",
        ].join("\n"),
      );
    });
  });
});
