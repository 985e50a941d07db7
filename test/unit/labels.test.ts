import assert from "node:assert/strict";
import fc from "fast-check";
import {
  imageLabels,
  imageRecordFromLabels,
  parseImageLabels,
  parseReleaseLabels,
  releaseLabels,
  releaseRevision,
  sourceCommitLabel,
} from "../../lib/labels";
import type { ImageRecord, ReleaseRecord } from "../../lib/types";

const C1 = "1".repeat(40);
const C2 = "2".repeat(40);
const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;
const REV = `v1:sha256:${"c".repeat(64)}`;

const backend: ImageRecord = {
  service: "backend",
  repository: "127.0.0.1:5000/example/backend",
  version: "0.3.2",
  digest: D1,
  revision: REV,
  dependencies: { base: "1.0.0" },
  sources: [
    { name: "api", url: "https://git.example/api.git", commit: C1 },
    { name: "lib", url: "file:///srv/lib", commit: C2 },
  ],
};
const base: ImageRecord = {
  service: "base",
  repository: "127.0.0.1:5000/example/base",
  version: "1.0.0",
  digest: D2,
  revision: REV,
  dependencies: {},
  sources: [],
};

describe("labels", () => {
  describe("imageLabels", () => {
    it("GIVEN a service image with two sources and a dependency WHEN labelled THEN the exact label set comes out, keys sorted", () => {
      const labels = imageLabels({
        project: "example",
        image: "backend",
        version: "0.3.2",
        revision: REV,
        dependencies: { base: "1.0.0" },
        sources: backend.sources,
        vendor: "ACME",
        extra: { "com.example.team": "core" },
      });
      assert.deepEqual(labels, {
        "com.example.team": "core",
        "dependency.base": "1.0.0",
        "io.gitops-rings.source.api.commit": C1,
        "io.gitops-rings.source.api.url": "https://git.example/api.git",
        "io.gitops-rings.source.lib.commit": C2,
        "io.gitops-rings.source.lib.url": "file:///srv/lib",
        "org.opencontainers.image.ref.name": "example/backend",
        "org.opencontainers.image.revision": REV,
        "org.opencontainers.image.vendor": "ACME",
        "org.opencontainers.image.version": "0.3.2",
      });
      assert.deepEqual(Object.keys(labels), Object.keys(labels).sort());
    });

    it("GIVEN exactly one source WHEN labelled THEN org.opencontainers.image.source is its URL", () => {
      const labels = imageLabels({
        project: "acme/shop",
        image: "web",
        version: "1.0.0",
        revision: REV,
        sources: [{ name: "web", url: "https://git.example/web.git", commit: C1 }],
      });
      assert.equal(labels["org.opencontainers.image.source"], "https://git.example/web.git");
      assert.equal(labels["org.opencontainers.image.ref.name"], "acme/shop/web");
    });

    it("GIVEN an extra label in a reserved namespace WHEN labelled THEN the error names the key", () => {
      assert.throws(
        () =>
          imageLabels({
            project: "example",
            image: "web",
            version: "1.0.0",
            revision: REV,
            extra: { "org.opencontainers.image.version": "9.9.9" },
          }),
        {
          message:
            'image example/web: label "org.opencontainers.image.version" is written by gitops-rings itself',
        },
      );
    });

    it("GIVEN a version that is not semver WHEN labelled THEN the error names it", () => {
      assert.throws(
        () => imageLabels({ project: "p", image: "web", version: "v1", revision: REV }),
        {
          message: 'image p/web: version: "v1" is not a semantic version',
        },
      );
    });

    it("GIVEN a source name with a dot WHEN labelled THEN it is refused, since it would split the key", () => {
      assert.throws(
        () => sourceCommitLabel("a.b"),
        /source name "a.b" cannot be a label key segment/,
      );
    });

    it("GIVEN a short commit WHEN labelled THEN the error names source and commit", () => {
      assert.throws(
        () =>
          imageLabels({
            project: "p",
            image: "web",
            version: "1.0.0",
            revision: REV,
            sources: [{ name: "web", url: "u", commit: "abc1234" }],
          }),
        { message: 'image p/web: source web: commit: "abc1234" is not a 40-hex git commit' },
      );
    });
  });

  describe("parseImageLabels", () => {
    it("GIVEN an image this program did not build WHEN parsed THEN version and revision are undefined and labels are extra", () => {
      const parsed = parseImageLabels({
        "org.opencontainers.image.version": "latest",
        maintainer: "x",
      });
      assert.equal(parsed.version, undefined);
      assert.equal(parsed.revision, undefined);
      assert.deepEqual(parsed.extra, { maintainer: "x" });
      assert.deepEqual(parsed.sources, []);
    });

    it("GIVEN a source commit label without its url WHEN parsed THEN the error names the missing label", () => {
      assert.throws(() => parseImageLabels({ "io.gitops-rings.source.api.commit": C1 }, "img"), {
        message: "img: label io.gitops-rings.source.api.url is missing",
      });
    });

    it("GIVEN labels without a version WHEN made a record THEN the error names the image and the label", () => {
      assert.throws(
        () => imageRecordFromLabels({}, { service: "web", repository: "r/web", digest: D1 }),
        {
          message: `service web: r/web@${D1}: label org.opencontainers.image.version is missing or not semver`,
        },
      );
    });
  });

  describe("round trips", () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/);
    const version = fc
      .tuple(
        fc.nat(20),
        fc.nat(20),
        fc.nat(20),
        fc.option(fc.constantFrom("rc.1", "alpha", "0"), { nil: undefined }),
      )
      .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre ? `-${pre}` : ""}`);
    const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
    const sources = fc
      .uniqueArray(
        fc.record({
          name,
          url: fc.stringMatching(/^https:\/\/[a-z]{1,8}\.example\/[a-z]{1,8}\.git$/),
          commit: hex(40),
        }),
        { selector: (s) => s.name, maxLength: 4 },
      )
      .map((s) => [...s].sort((a, b) => (a.name < b.name ? -1 : 1)));
    const deps = fc.dictionary(name, version, { maxKeys: 3 });

    it("GIVEN any image input WHEN labelled and parsed THEN every field comes back", () => {
      fc.assert(
        fc.property(
          name,
          name,
          version,
          hex(64),
          deps,
          sources,
          (project, image, v, rev, dependencies, srcs) => {
            const revision = `v1:sha256:${rev}`;
            const parsed = parseImageLabels(
              imageLabels({ project, image, version: v, revision, dependencies, sources: srcs }),
            );
            assert.equal(parsed.project, project);
            assert.equal(parsed.image, image);
            assert.equal(parsed.version, v);
            assert.equal(parsed.revision, revision);
            assert.deepEqual(parsed.dependencies, { ...dependencies });
            assert.deepEqual(
              parsed.sources,
              srcs.map((x) => ({ ...x })),
            );
            assert.deepEqual(parsed.extra, {});
          },
        ),
      );
    });

    it("GIVEN any release WHEN labelled and parsed with its digest THEN the same ReleaseRecord comes back", () => {
      const image = fc
        .record({
          service: name,
          version,
          digest: hex(64).map((h) => `sha256:${h}`),
          revision: hex(64).map((h) => `v1:sha256:${h}`),
          dependencies: deps,
          sources,
        })
        .map((i) => ({ ...i, repository: `127.0.0.1:5000/example/${i.service}` }));
      const release = fc.record({
        version,
        digest: hex(64).map((h) => `sha256:${h}`),
        services: fc
          .uniqueArray(image, { selector: (i) => i.service, maxLength: 5 })
          .map((images) => Object.fromEntries(images.map((i) => [i.service, i]))),
      });
      fc.assert(
        fc.property(release, (generated: ReleaseRecord) => {
          const r = JSON.parse(JSON.stringify(generated)) as ReleaseRecord; // plain prototypes
          assert.deepEqual(
            parseReleaseLabels(releaseLabels(r, { project: "example" }), r.digest),
            r,
          );
        }),
      );
    });
  });

  describe("releaseLabels", () => {
    it("GIVEN a release of two services WHEN labelled THEN the exact label set comes out", () => {
      const labels = releaseLabels(
        { version: "2.1.0", services: { backend, base } },
        { project: "example", vendor: "ACME" },
      );
      assert.deepEqual(labels, {
        "io.gitops-rings.release.version": "2.1.0",
        "io.gitops-rings.service.backend.dependency.base": "1.0.0",
        "io.gitops-rings.service.backend.digest": D1,
        "io.gitops-rings.service.backend.repository": "127.0.0.1:5000/example/backend",
        "io.gitops-rings.service.backend.revision": REV,
        "io.gitops-rings.service.backend.source.api.commit": C1,
        "io.gitops-rings.service.backend.source.api.url": "https://git.example/api.git",
        "io.gitops-rings.service.backend.source.lib.commit": C2,
        "io.gitops-rings.service.backend.source.lib.url": "file:///srv/lib",
        "io.gitops-rings.service.backend.version": "0.3.2",
        "io.gitops-rings.service.base.digest": D2,
        "io.gitops-rings.service.base.repository": "127.0.0.1:5000/example/base",
        "io.gitops-rings.service.base.revision": REV,
        "io.gitops-rings.service.base.version": "1.0.0",
        "org.opencontainers.image.ref.name": "example/release",
        "org.opencontainers.image.revision": releaseRevision({ backend, base }),
        "org.opencontainers.image.vendor": "ACME",
        "org.opencontainers.image.version": "2.1.0",
      });
    });

    it("GIVEN the same digests in another order WHEN the release revision is computed THEN it is the same", () => {
      assert.equal(releaseRevision({ base, backend }), releaseRevision({ backend, base }));
      assert.notEqual(releaseRevision({ backend }), releaseRevision({ backend, base }));
      assert.match(releaseRevision({ backend }), /^v1:sha256:[0-9a-f]{64}$/);
    });

    it("GIVEN a record filed under another service name WHEN labelled THEN it is refused", () => {
      assert.throws(() => releaseLabels({ version: "1.0.0", services: { web: backend } }), {
        message: 'release 1.0.0: service web: record names service "backend"',
      });
    });

    it("GIVEN labels that lack a service's digest WHEN parsed THEN the error names the label", () => {
      const labels = { ...releaseLabels({ version: "1.0.0", services: { base } }) };
      delete labels["io.gitops-rings.service.base.digest"];
      assert.throws(() => parseReleaseLabels(labels, D1), {
        message: `release image ${D1}: label io.gitops-rings.service.base.digest is missing`,
      });
    });

    it("GIVEN a service image's labels WHEN parsed as a release THEN it is refused as not a release", () => {
      assert.throws(() => parseReleaseLabels({ "org.opencontainers.image.version": "1.0.0" }, D1), {
        message: `release image ${D1}: label io.gitops-rings.release.version is missing`,
      });
    });
  });
});
