/**
 * lib/policies.ts over a real Distribution 2.8 and real git repositories: each policy selects
 * from images pushed with the labels the build writes.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseRepositoryConfig, parseSiteConfig } from "../../lib/config";
import { imageLabels } from "../../lib/labels";
import { selectImage, type Policy } from "../../lib/policies";
import { RegistryClient } from "../../lib/registry";
import { prepareSite, type DeployImage } from "../../lib/site";
import { StateStore } from "../../lib/state-store";
import type { ImageRecord } from "../../lib/types";
import { TestRepo } from "./helpers/git";
import { pushServiceImage, recordOf, tarOf } from "./helpers/images";
import { useRegistry } from "./helpers/registry";

describe("policies over Distribution 2.8 and git", function () {
  this.timeout(60_000);
  const registry = useRegistry();
  let client: RegistryClient;
  let repo: string;
  const images: Record<string, ImageRecord> = {};

  const select = (policy: Policy, extra: Partial<Parameters<typeof selectImage>[0]> = {}) =>
    selectImage({ service: "backend", repository: repo, policy, client, ...extra });

  before(async () => {
    client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
    repo = `${registry().host}/example/backend`;
    for (const version of ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0"]) {
      images[version] = recordOf(
        await pushServiceImage(client, registry().host, { service: "backend", version }),
      );
    }
    for (const [tag, version] of [
      ["main-1.3.0", "1.3.0"],
      ["dev-9.0.0", "9.0.0"],
      ["build-9", "0.0.9"],
      ["build-10", "0.0.10"],
    ]) {
      images[tag] = recordOf(
        await pushServiceImage(client, registry().host, { service: "backend", version, tag }),
      );
    }
  });

  describe("semver", () => {
    it("GIVEN ^1.0.0 WHEN selected THEN 1.1.0 by digest, the prerelease and 2.0.0 left out", async () => {
      const s = await select({ kind: "semver", range: "^1.0.0" });
      assert.deepEqual(s, {
        reference: `${repo}@${images["1.1.0"].digest}`,
        version: "1.1.0",
        digest: images["1.1.0"].digest,
        tag: "1.1.0",
        revision: images["1.1.0"].revision,
        sources: [],
        why: 'semver "^1.0.0": 1.1.0 is the highest of 8 candidate tags',
      });
    });

    it("GIVEN a range that names a prerelease WHEN selected THEN the prerelease can win", async () => {
      const s = await select({ kind: "semver", range: ">=1.2.0-0 <2.0.0" });
      assert.equal(s.tag, "1.2.0-rc.1");
      assert.equal(s.digest, images["1.2.0-rc.1"].digest);
    });

    it("GIVEN prerelease true WHEN selected with ^1.0.0 THEN the prerelease 1.2.0-rc.1 wins; false keeps it out of a range naming one", async () => {
      const s = await select({ kind: "semver", range: "^1.0.0", prerelease: true });
      assert.deepEqual([s.tag, s.digest], ["1.2.0-rc.1", images["1.2.0-rc.1"].digest]);
      const t = await select({ kind: "semver", range: ">=1.0.0-0 <2.0.0", prerelease: false });
      assert.equal(t.tag, "1.1.0");
    });

    it("GIVEN filterTags main-<version> WHEN selected THEN the extracted version orders and the tag is returned", async () => {
      const s = await select({
        kind: "semver",
        range: "*",
        filterTags: { pattern: "^main-(?P<version>.+)$", extract: "$version" },
      });
      assert.deepEqual(
        [s.tag, s.version, s.digest],
        ["main-1.3.0", "1.3.0", images["main-1.3.0"].digest],
      );
    });

    it("GIVEN a range no tag satisfies WHEN selected THEN the error names service, policy and repository", async () => {
      await assert.rejects(select({ kind: "semver", range: ">=5.0.0 <9.0.0" }), {
        message: `service backend: policy semver ">=5.0.0 <9.0.0": no tag of ${repo} is in range (8 of 8 tags passed the filter)`,
      });
    });
  });

  describe("alphabetical and numerical", () => {
    it("GIVEN build-N tags WHEN ordered numerically on N THEN build-10 wins and its version label is read", async () => {
      const s = await select({
        kind: "numerical",
        filterTags: { pattern: "^build-(\\d+)$", extract: "$1" },
      });
      assert.deepEqual(
        [s.tag, s.version, s.digest],
        ["build-10", "0.0.10", images["build-10"].digest],
      );
    });

    it("GIVEN the same tags WHEN ordered alphabetically THEN build-9 wins, and desc picks build-10", async () => {
      const filterTags = { pattern: "^build-" };
      assert.equal((await select({ kind: "alphabetical", filterTags })).tag, "build-9");
      assert.equal(
        (await select({ kind: "alphabetical", order: "desc", filterTags })).tag,
        "build-10",
      );
    });
  });

  describe("followed tag and exact digest", () => {
    it("GIVEN stable on 1.0.0 WHEN it moves to 1.1.0 THEN the selection's digest changes with it", async () => {
      await client.moveTag(repo, "stable", images["1.0.0"].digest);
      const first = await select({ kind: "tag", tag: "stable" });
      assert.deepEqual(first, {
        reference: `${repo}@${images["1.0.0"].digest}`,
        version: "1.0.0",
        digest: images["1.0.0"].digest,
        tag: "stable",
        revision: images["1.0.0"].revision,
        sources: [],
        why: `tag stable points at ${images["1.0.0"].digest}`,
      });
      await client.moveTag(repo, "stable", images["1.1.0"].digest);
      const second = await select({ kind: "tag", tag: "stable" });
      assert.equal(second.digest, images["1.1.0"].digest);
      assert.notEqual(second.digest, first.digest);
    });

    it("GIVEN a tag that does not exist WHEN followed THEN the error names service and tag", async () => {
      await assert.rejects(select({ kind: "tag", tag: "nightly" }), {
        message: `service backend: policy tag "nightly": ${repo}:nightly does not exist`,
      });
    });

    it("GIVEN the digest of 2.0.0 WHEN pinned THEN it is returned with its version", async () => {
      const s = await select({ kind: "digest", digest: images["2.0.0"].digest });
      assert.deepEqual(s, {
        reference: `${repo}@${images["2.0.0"].digest}`,
        version: "2.0.0",
        digest: images["2.0.0"].digest,
        revision: images["2.0.0"].revision,
        sources: [],
        why: `pinned digest ${images["2.0.0"].digest}`,
      });
    });

    it("GIVEN a digest the registry lacks WHEN pinned THEN the error names service and digest", async () => {
      const missing = `sha256:${"e".repeat(64)}`;
      await assert.rejects(select({ kind: "digest", digest: missing }), {
        message: `service backend: policy digest ${missing}: ${repo}@${missing} does not exist`,
      });
    });
  });

  describe("ring", () => {
    it("GIVEN developers on a release with backend 2.0.0 WHEN selected by ring THEN that image comes", async () => {
      const store = new StateStore({
        registry: registry().host,
        project: "example",
        rings: ["developers"],
        client,
      });
      await store.pushRelease({ version: "1.0.0", services: { backend: images["2.0.0"] } });
      const ring = await store.moveRing("developers", "1.0.0");
      assert.deepEqual(await select({ kind: "ring" }, { ring }), {
        reference: `${repo}@${images["2.0.0"].digest}`,
        version: "2.0.0",
        digest: images["2.0.0"].digest,
        revision: images["2.0.0"].revision,
        sources: [],
        why: "ring developers: release 1.0.0 has backend 2.0.0",
      });
      await assert.rejects(select({ kind: "ring" }, { service: "frontend", ring }), {
        message:
          "service frontend: policy ring: release 1.0.0 of ring developers has no service frontend (has: backend)",
      });
      await assert.rejects(select({ kind: "ring" }, { ring: { ring: "users" } }), {
        message: "service backend: policy ring: ring users has no release yet",
      });
    });
  });

  describe("gitRevision", () => {
    let cache: string;
    let saved: string | undefined;
    let src: TestRepo;
    let commits: string[];
    let worker: string;

    before(async () => {
      saved = process.env.GITOPS_RINGS_CACHE;
      cache = mkdtempSync(path.join(os.tmpdir(), "gitops-rings-cache-"));
      process.env.GITOPS_RINGS_CACHE = cache;
      src = TestRepo.create();
      commits = [1, 2, 3, 4].map((n) => src.commit(`c${n}`, { "main.go": `// ${n}\n` }));
      worker = `${registry().host}/example/worker`;
      const url = src.fileUrl;
      // c1 and c2 have images, recorded by the commit label; c3 by a tag only; c4 (head) none.
      for (const [i, version] of [
        [0, "0.1.0"],
        [1, "0.2.0"],
      ] as const) {
        await pushServiceImage(client, registry().host, {
          service: "worker",
          version,
          sources: [{ name: "worker", url, commit: commits[i] }],
        });
      }
      await pushServiceImage(client, registry().host, {
        service: "worker",
        version: "0.2.1",
        tag: `main-${commits[2].slice(0, 7)}`,
      });
    });

    after(() => {
      if (saved === undefined) delete process.env.GITOPS_RINGS_CACHE;
      else process.env.GITOPS_RINGS_CACHE = saved;
      rmSync(cache, { recursive: true, force: true });
      src.remove();
    });

    const policy = (extra: Partial<Extract<Policy, { kind: "gitRevision" }>> = {}): Policy => ({
      kind: "gitRevision",
      source: "worker",
      url: src.fileUrl,
      branch: "main",
      ...extra,
    });

    it("GIVEN images labelled with c1 and c2 and a head without one WHEN selected by label THEN c2's image, 2 below the head", async () => {
      const s = await selectImage({
        service: "worker",
        repository: worker,
        policy: policy(),
        client,
      });
      const digest = await client.resolveDigest(`${worker}:0.2.0`);
      assert.deepEqual(s, {
        reference: `${worker}@${digest}`,
        version: "0.2.0",
        digest,
        tag: "0.2.0",
        revision: `v1:sha256:${"worker".padEnd(64, "0")}`,
        sources: [{ name: "worker", url: src.fileUrl, commit: commits[1] }],
        why: `gitRevision: commit ${commits[1].slice(0, 12)} (2 commits below the head of main) has image 0.2.0 (label io.gitops-rings.source.worker.commit)`,
      });
    });

    it("GIVEN a tag main-<sha7> for c3 WHEN selected with that prefix THEN c3's image wins, nearer the head", async () => {
      const s = await selectImage({
        service: "worker",
        repository: worker,
        policy: policy({ tagPrefix: "main-" }),
        client,
      });
      const tag = `main-${commits[2].slice(0, 7)}`;
      assert.equal(s.tag, tag);
      assert.equal(s.version, "0.2.1");
      assert.equal(s.digest, await client.resolveDigest(`${worker}:${tag}`));
      assert.equal(
        s.why,
        `gitRevision: commit ${commits[2].slice(0, 12)} (1 commit below the head of main) has image tag ${tag}`,
      );
    });

    it("GIVEN a depth of 1 WHEN selected THEN only the head is tried and the error names service and policy", async () => {
      await assert.rejects(
        selectImage({
          service: "worker",
          repository: worker,
          policy: policy({ depth: 1 }),
          client,
        }),
        {
          message:
            `service worker: policy gitRevision main of ${src.fileUrl}: none of the 1 first-parent commits from ` +
            `${commits[3].slice(0, 12)} has an image in ${worker} (matched by label io.gitops-rings.source.worker.commit on the 2 newest version tags)`,
        },
      );
    });

    it("GIVEN a new image for the head WHEN selected again THEN the head's image wins", async () => {
      await pushServiceImage(client, registry().host, {
        service: "worker",
        version: "0.3.0",
        sources: [{ name: "worker", url: src.fileUrl, commit: commits[3] }],
      });
      const s = await selectImage({
        service: "worker",
        repository: worker,
        policy: policy(),
        client,
      });
      assert.equal(s.version, "0.3.0");
      assert.match(s.why, /\(the head of main\)/);
    });
  });

  describe("site plans (lib/site.ts prepareSite) over the registry", () => {
    let cache: string;
    let saved: string | undefined;
    let root: string;
    let src: TestRepo;
    let commits: string[];
    /** Digest of each pushed image, by its version (and `foreign`). */
    const digests: Record<string, string> = {};
    const revisionOf = (version: string) =>
      `v1:sha256:${version.replace(/\W/g, "").padEnd(64, "a")}`;

    const repoConfig = (project: string, service: string) =>
      parseRepositoryConfig(
        [
          `project: ${project}`,
          `registry: ${registry().host}`,
          "rings: [developers, testers]",
          "environments: { dev: { overlay: deploy/dev, namespace: sites-dev } }",
          "services:",
          project === "sites"
            ? `  ${service}: { context: services/${service}, sources: [{ name: api, url: "${src.fileUrl}", branch: main }] }`
            : `  ${service}: { context: services/${service} }`,
        ].join("\n"),
        "gitops-rings.yaml",
      );

    /** Pushes an image with `labels`, tagged `tag`. @returns its digest. */
    const push = async (repository: string, labels: Record<string, string>, tag: string) =>
      (await client.pushImage(repository, { labels, layers: [tarOf({ "f.txt": tag })], tag }))
        .descriptor.digest;

    before(async () => {
      saved = process.env.GITOPS_RINGS_CACHE;
      cache = mkdtempSync(path.join(os.tmpdir(), "gitops-rings-cache-"));
      process.env.GITOPS_RINGS_CACHE = cache;
      root = mkdtempSync(path.join(os.tmpdir(), "gitops-rings-site-"));
      mkdirSync(path.join(root, "services/web"), { recursive: true });
      writeFileSync(
        path.join(root, "services/web/Dockerfile"),
        "FROM scratch\nCOPY index.html /\n",
      );
      writeFileSync(path.join(root, "services/web/index.html"), "<p>web</p>\n");
      // The environment's overlay, which the planning step renders and checks; these tests
      // are about selection, so it carries no workload.
      mkdirSync(path.join(root, "deploy/dev"), { recursive: true });
      writeFileSync(
        path.join(root, "deploy/dev/kustomization.yaml"),
        "configMapGenerator:\n  - name: settings\n    literals: [MODE=test]\n",
      );
      src = TestRepo.create();
      commits = [1, 2, 3].map((n) => src.commit(`c${n}`, { "main.go": `// ${n}\n` }));
      const api = `${registry().host}/sites/api`;
      for (const [i, version] of ["0.1.0", "0.2.0", "0.3.0-rc.1"].entries()) {
        const labels = imageLabels({
          project: "sites",
          image: "api",
          version,
          revision: revisionOf(version),
          sources: [{ name: "api", url: src.fileUrl, commit: commits[i] }],
        });
        digests[version] = await push(api, labels, version);
      }
      await client.moveTag(api, "main-aaaaaaa-1700000000", digests["0.1.0"]);
      await client.moveTag(api, "main-bbbbbbb-1700000100", digests["0.2.0"]);
      // An image gitops-rings did not build: another revision label and a dependency label
      // that is not semver.
      digests.foreign = await push(
        api,
        { "org.opencontainers.image.revision": commits[0], "dependency.libc": "2.36" },
        "foreign",
      );
    });

    after(() => {
      if (saved === undefined) delete process.env.GITOPS_RINGS_CACHE;
      else process.env.GITOPS_RINGS_CACHE = saved;
      rmSync(cache, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
      src.remove();
    });

    /** The plan of site `dev-<ring>` of a repository with one service, from its stack config. */
    const planSite = (
      project: string,
      service: string,
      ring: string,
      values: Record<string, unknown> = {},
    ) => {
      const repo = repoConfig(project, service);
      const stack = `dev-${ring}`;
      const site = parseSiteConfig(
        { ring, environment: "dev", ...values },
        `stacks/Pulumi.${stack}.yaml`,
        repo,
      );
      return prepareSite({ root, stack, config: { repo, site }, client, env: {} });
    };

    const deployed = async (values: Record<string, unknown>): Promise<DeployImage> =>
      (await planSite("sites", "api", "testers", values)).deploy.images.api;

    const labelled = (version: string) => ({
      digest: digests[version],
      version,
      revision: revisionOf(version),
      sources: [
        {
          name: "api",
          url: src.fileUrl,
          commit: commits[["0.1.0", "0.2.0", "0.3.0-rc.1"].indexOf(version)],
        },
      ],
    });

    const cases: [string, Record<string, unknown>, string][] = [
      ["a version pin", { pins: { api: { version: "0.1.0" } } }, "0.1.0"],
      ["a tag pin", { pins: { api: { tag: "main-bbbbbbb-1700000100" } } }, "0.2.0"],
      ["a digest pin", { pins: { api: { digest: "<0.1.0>" } } }, "0.1.0"],
      ["a semver policy", { policies: { api: { semver: ">=0.1.0" } } }, "0.2.0"],
      [
        "a semver policy with prerelease: true (item 11)",
        { policies: { api: { semver: { range: ">=0.1.0", prerelease: true } } } },
        "0.3.0-rc.1",
      ],
      [
        "a gitRevision policy",
        { policies: { api: { gitRevision: { branch: "main" } } } },
        "0.3.0-rc.1",
      ],
      ["a tag policy", { policies: { api: { tag: "main-aaaaaaa-1700000000" } } }, "0.1.0"],
      ["a digest policy", { policies: { api: { digest: "<0.2.0>" } } }, "0.2.0"],
      [
        "an alphabetical policy",
        {
          policies: { api: { alphabetical: {}, filterTags: { pattern: "^\\d+\\.\\d+\\.\\d+$" } } },
        },
        "0.2.0",
      ],
      [
        "a numerical policy on the first match's extract (item 11)",
        {
          policies: {
            api: { numerical: {}, filterTags: { pattern: "-(?P<ts>\\d+)$", extract: "$ts" } },
          },
        },
        "0.2.0",
      ],
      [
        "a numerical desc policy (item 11)",
        {
          policies: {
            api: {
              numerical: { order: "desc" },
              filterTags: { pattern: "-(?P<ts>\\d+)$", extract: "$ts" },
            },
          },
        },
        "0.1.0",
      ],
    ];
    for (const [kind, values, version] of cases) {
      it(`GIVEN ${kind} WHEN a site plans its deploy THEN the image's version, revision and sources come from its labels (${version})`, async () => {
        const text = JSON.stringify(values).replace(/"<([^>]+)>"/g, (_, v) => `"${digests[v]}"`);
        const image = await deployed(JSON.parse(text) as Record<string, unknown>);
        assert.deepEqual(
          {
            digest: image.digest,
            version: image.version,
            revision: image.revision,
            sources: image.sources,
          },
          labelled(version),
        );
      });
    }

    it("GIVEN a pinned image gitops-rings did not build WHEN a site plans its deploy THEN it records the labels it has, without error", async () => {
      const image = await deployed({ pins: { api: { tag: "foreign" } } });
      assert.deepEqual(
        {
          digest: image.digest,
          version: image.version,
          revision: image.revision,
          sources: image.sources,
        },
        { digest: digests.foreign, version: undefined, revision: commits[0], sources: [] },
      );
    });

    it("GIVEN version tags in the registry and empty rings WHEN a building site plans THEN the re-added service and the release continue after the highest tag (item 10)", async () => {
      const web = `${registry().host}/fresh/web`;
      for (const version of ["0.1.0", "0.10.1", "0.4.2"]) {
        await push(
          web,
          imageLabels({ project: "fresh", image: "web", version, revision: revisionOf(version) }),
          version,
        );
      }
      await push(`${registry().host}/fresh/release`, {}, "0.3.0");
      const plan = await planSite("fresh", "web", "developers");
      assert.deepEqual(
        plan.services.map((s) => [s.service, s.action, s.reason, s.currentVersion, s.version]),
        [["web", "build", "new", undefined, "0.10.2"]],
      );
      assert.deepEqual([plan.release.action, plan.release.version], ["build", "0.3.1"]);
    });
  });
});
