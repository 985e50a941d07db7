import * as assert from "node:assert/strict";
import { ConfigError, parseRepositoryConfig, parseSiteConfig } from "../../lib/config";
import { formatPlan, planRelease, type PlanServiceInput } from "../../lib/plan";
import { revisionOf } from "../../lib/revision";
import type { ImageRecord, ReleaseRecord, RingState } from "../../lib/types";

const repo = parseRepositoryConfig(
  [
    "project: example",
    "registry: 127.0.0.1:5001",
    "rings: [developers, testers, users, lts]",
    "environments: { dev: { overlay: o, namespace: dev } }",
    "services:",
    "  base: { context: base }",
    "  backend: { context: backend }",
    "  frontend: { context: frontend }",
    "  worker: { context: worker }",
  ].join("\n"),
  "gitops-rings.yaml",
);

const site = (extra: Record<string, unknown> = {}) =>
  parseSiteConfig(
    { ring: "developers", environment: "dev", ...extra },
    "stacks/Pulumi.dev-developers.yaml",
    repo,
  );

const digest = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;

/** Contents and dependencies as lib/dockerfile.ts and lib/revision.ts would give them. */
const SERVICES: Record<string, PlanServiceInput> = {
  base: { content: digest("1"), dependencies: [] },
  backend: {
    content: digest("2"),
    dependencies: [{ service: "base", file: "backend/Dockerfile", line: 2 }],
  },
  frontend: { content: digest("3"), dependencies: ["base"] },
  worker: { content: digest("4"), dependencies: ["backend"] },
};

/** A release holding each service at a version, with revisions consistent with SERVICES. */
function release(
  version: string,
  versions: Record<string, string>,
  services = SERVICES,
): ReleaseRecord {
  const records: Record<string, ImageRecord> = {};
  const digests: Record<string, string> = {};
  for (const name of ["base", "backend", "frontend", "worker"]) {
    if (versions[name] === undefined) continue;
    const deps: Record<string, string> = {};
    const depVersions: Record<string, string> = {};
    for (const d of services[name].dependencies) {
      const dep = typeof d === "string" ? d : d.service;
      deps[dep] = digests[dep];
      depVersions[dep] = versions[dep];
    }
    digests[name] = digest(`${name}${versions[name]}`.replace(/[^0-9a-f]/g, "") || "0");
    records[name] = {
      service: name,
      repository: `127.0.0.1:5001/example/${name}`,
      version: versions[name],
      digest: digests[name],
      revision: revisionOf(services[name], deps),
      dependencies: depVersions,
      sources: [],
    };
  }
  return { version, digest: digest("f"), services: records };
}

const ALL_IN_R = { base: "0.3.2", backend: "0.3.2", frontend: "0.2.0", worker: "0.1.0" };
const R: RingState = { ring: "developers", release: release("1.0.0", ALL_IN_R) };
const N: RingState = {
  ring: "testers",
  release: release("0.9.0", { base: "0.3.2", backend: "0.3.2", frontend: "0.1.4" }),
};

const changed = (name: string, c: string) => ({
  ...SERVICES,
  [name]: { ...SERVICES[name], content: digest(c) },
});

describe("lib/plan", () => {
  it("GIVEN empty rings R and N THEN every service is new at 0.1.0, in dependency order, and so is the release", () => {
    const plan = planRelease({
      repository: repo,
      site: site(),
      current: { ring: "developers" },
      next: { ring: "testers" },
      services: SERVICES,
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.action, s.reason, s.currentVersion, s.nextVersion]),
      [
        ["base", "build", "new", undefined, "0.1.0"],
        ["backend", "build", "new", undefined, "0.1.0"],
        ["frontend", "build", "new", undefined, "0.1.0"],
        ["worker", "build", "new", undefined, "0.1.0"],
      ],
    );
    assert.equal(plan.services[0].revision, revisionOf(SERVICES.base, {}));
    assert.equal(plan.services[1].revision, undefined);
    assert.deepEqual(plan.release, { nextVersion: "0.1.0", changed: true });
    assert.equal(plan.ring, "developers");
    assert.equal(plan.nextRing, "testers");
  });

  it("GIVEN nothing changed THEN every image and the release are reused at their versions", () => {
    const plan = planRelease({
      repository: repo,
      site: site(),
      current: R,
      next: N,
      services: SERVICES,
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.action, s.reason, s.nextVersion, s.digest]),
      [
        ["base", "reuse", "unchanged", "0.3.2", R.release?.services.base.digest],
        ["backend", "reuse", "unchanged", "0.3.2", R.release?.services.backend.digest],
        ["frontend", "reuse", "unchanged", "0.2.0", R.release?.services.frontend.digest],
        ["worker", "reuse", "unchanged", "0.1.0", R.release?.services.worker.digest],
      ],
    );
    for (const s of plan.services)
      assert.equal(s.revision, R.release?.services[s.service].revision);
    assert.deepEqual(plan.release, {
      currentVersion: "1.0.0",
      nextVersion: "1.0.0",
      changed: false,
    });
  });

  it("GIVEN backend changed THEN it rebuilds, its dependent worker rebuilds for the dependency, the rest is reused", () => {
    const plan = planRelease({
      repository: repo,
      site: site(),
      current: R,
      next: N,
      services: changed("backend", "9"),
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.action, s.reason, s.currentVersion, s.nextVersion]),
      [
        ["base", "reuse", "unchanged", "0.3.2", "0.3.2"],
        // 0.3.2 in R and N: bump minor.
        ["backend", "build", "revision changed", "0.3.2", "0.4.0"],
        ["frontend", "reuse", "unchanged", "0.2.0", "0.2.0"],
        // none in N: bump patch.
        ["worker", "build", "dependency changed", "0.1.0", "0.1.1"],
      ],
    );
    const base = R.release?.services.base.digest as string;
    assert.equal(plan.services[1].revision, revisionOf({ content: digest("9") }, { base }));
    assert.equal(plan.services[3].revision, undefined);
    // 1.0.0 in R, 0.9.0 in N: bump patch.
    assert.deepEqual(plan.release, {
      currentVersion: "1.0.0",
      nextVersion: "1.0.1",
      changed: true,
    });
  });

  it("GIVEN base changed THEN everything rebuilds: base for its revision, the others for the dependency", () => {
    const plan = planRelease({
      repository: repo,
      site: site(),
      current: R,
      next: N,
      services: changed("base", "8"),
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.reason, s.nextVersion]),
      [
        ["base", "revision changed", "0.4.0"],
        ["backend", "dependency changed", "0.4.0"],
        // 0.2.0 in R, 0.1.4 in N: bump patch.
        ["frontend", "dependency changed", "0.2.1"],
        ["worker", "dependency changed", "0.1.1"],
      ],
    );
  });

  it("GIVEN base and frontend's own files changed THEN frontend's reason is its revision, not the dependency", () => {
    const plan = planRelease({
      repository: repo,
      site: site(),
      current: R,
      next: N,
      services: {
        ...changed("base", "8"),
        frontend: { ...SERVICES.frontend, content: digest("7") },
      },
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.reason]),
      [
        ["base", "revision changed"],
        ["backend", "dependency changed"],
        ["frontend", "revision changed"],
        ["worker", "dependency changed"],
      ],
    );
  });

  it("GIVEN a service not yet in R THEN it is new, and its dependents rebuild for the dependency", () => {
    const current: RingState = {
      ring: "developers",
      release: release("1.0.0", { base: "0.3.2", frontend: "0.2.0", worker: "0.1.0" }),
    };
    const plan = planRelease({
      repository: repo,
      site: site(),
      current,
      next: N,
      services: SERVICES,
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.action, s.reason, s.nextVersion]),
      [
        ["base", "reuse", "unchanged", "0.3.2"],
        // none in R, 0.3.2 in N: the build leaves 0.3 to N.
        ["backend", "build", "new", "0.4.0"],
        ["frontend", "reuse", "unchanged", "0.2.0"],
        ["worker", "build", "dependency changed", "0.1.1"],
      ],
    );
  });

  it("GIVEN a service removed from the config but in R's release THEN the release changes though no image does", () => {
    const current: RingState = {
      ring: "developers",
      release: {
        ...(R.release as ReleaseRecord),
        services: {
          ...R.release?.services,
          legacy: { ...(R.release?.services.base as ImageRecord), service: "legacy" },
        },
      },
    };
    const plan = planRelease({
      repository: repo,
      site: site(),
      current,
      next: N,
      services: SERVICES,
    });
    assert.ok(plan.services.every((s) => s.action === "reuse"));
    assert.deepEqual(plan.release, {
      currentVersion: "1.0.0",
      nextVersion: "1.0.1",
      changed: true,
    });
  });

  it("GIVEN majorBump 1 for services and 2 for the release THEN those that rebuild reach that major, once", () => {
    const bump = site({ majorBump: { backend: 1, frontend: 1, release: 2 } });
    const plan = planRelease({
      repository: repo,
      site: bump,
      current: R,
      next: N,
      services: changed("backend", "9"),
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.nextVersion]),
      [
        ["base", "0.3.2"],
        ["backend", "1.0.0"],
        // majorBump does not force a rebuild of an unchanged image.
        ["frontend", "0.2.0"],
        ["worker", "0.1.1"],
      ],
    );
    assert.equal(plan.release.nextVersion, "2.0.0");

    // The next build with the same stack config, after backend 1.0.0 and release 2.0.0 are
    // in R: the requested majors are reached, so the ring rule applies again.
    const built = release("2.0.0", { ...ALL_IN_R, backend: "1.0.0", worker: "0.1.1" });
    const again = planRelease({
      repository: repo,
      site: bump,
      current: { ring: "developers", release: built },
      next: N,
      services: changed("backend", "8"),
    });
    const backend = again.services.find((s) => s.service === "backend");
    assert.deepEqual([backend?.action, backend?.nextVersion], ["build", "1.0.1"]);
    assert.equal(again.release.nextVersion, "2.0.1");
  });

  it("GIVEN a configured initial version THEN new services and the first release start there", () => {
    const custom = { ...repo, initialVersion: "1.0.0" };
    const plan = planRelease({
      repository: custom,
      site: site(),
      current: { ring: "developers" },
      next: { ring: "testers" },
      services: SERVICES,
    });
    assert.ok(plan.services.every((s) => s.nextVersion === "1.0.0"));
    assert.equal(plan.release.nextVersion, "1.0.0");
  });

  it("GIVEN a site on post THEN there is no next ring and versions bump patch", () => {
    const plan = planRelease({
      repository: repo,
      site: site({ ring: "post" }),
      current: { ring: "post", release: R.release },
      services: changed("frontend", "5"),
    });
    assert.equal(plan.nextRing, undefined);
    assert.deepEqual(
      plan.services.filter((s) => s.action === "build").map((s) => [s.service, s.nextVersion]),
      [["frontend", "0.2.1"]],
    );
  });

  it("GIVEN a dependency cycle THEN a ConfigError names the cycle and the Dockerfile", () => {
    assert.throws(
      () =>
        planRelease({
          repository: repo,
          site: site(),
          current: R,
          next: N,
          services: {
            ...SERVICES,
            base: {
              content: digest("1"),
              dependencies: [{ service: "worker", file: "base/Dockerfile", line: 1 }],
            },
          },
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          "gitops-rings.yaml: services: dependency cycle backend -> base -> worker -> backend " +
            "(backend/Dockerfile:2 builds backend FROM base; base/Dockerfile:1 builds base FROM worker; builds worker FROM backend)",
        );
        return true;
      },
    );
  });

  it("GIVEN a service without revision input or ring states of other rings THEN it throws saying which", () => {
    const partial = Object.fromEntries(
      Object.entries(SERVICES).filter(([name]) => name !== "worker"),
    );
    assert.throws(
      () => planRelease({ repository: repo, site: site(), current: R, next: N, services: partial }),
      {
        message: "service worker has no revision input",
      },
    );
    assert.throws(
      () =>
        planRelease({
          repository: repo,
          site: site(),
          current: { ring: "testers" },
          services: SERVICES,
        }),
      { message: "the state of ring testers was given for ring developers" },
    );
    assert.throws(
      () =>
        planRelease({
          repository: repo,
          site: site(),
          current: R,
          next: { ring: "users" },
          services: SERVICES,
        }),
      { message: "the state of ring users was given as the ring after developers (testers)" },
    );
  });

  it("GIVEN a plan THEN formatPlan prints one aligned row per service and one for the release", () => {
    const plan = planRelease({
      repository: repo,
      site: site(),
      current: R,
      next: N,
      services: changed("backend", "9"),
    });
    const short = (s: string | undefined) => (s as string).slice(0, "v1:sha256:".length + 12);
    assert.equal(
      formatPlan(plan),
      [
        "Release plan for ring developers (next ring: testers)",
        "SERVICE    ACTION  REASON              CURRENT  NEXT   REVISION",
        `base       reuse   unchanged           0.3.2    0.3.2  ${short(plan.services[0].revision)}`,
        `backend    build   revision changed    0.3.2    0.4.0  ${short(plan.services[1].revision)}`,
        `frontend   reuse   unchanged           0.2.0    0.2.0  ${short(plan.services[2].revision)}`,
        "worker     build   dependency changed  0.1.0    0.1.1  (after backend is built)",
        "(release)  build   changed             1.0.0    1.0.1",
      ].join("\n"),
    );
  });

  describe("images already in the registry (invariant 3) and taken versions (invariant 1)", () => {
    it("GIVEN base reverted to the content of an older image THEN that image is reused at its version, its dependents rebuild against it, and the release changes", () => {
      const old: ImageRecord = {
        service: "base",
        repository: "127.0.0.1:5001/example/base",
        version: "0.3.1",
        digest: digest("b31"),
        revision: revisionOf({ content: digest("7") }, {}),
        dependencies: {},
        sources: [],
      };
      const plan = planRelease({
        repository: repo,
        site: site(),
        current: R,
        next: N,
        services: changed("base", "7"),
        known: { base: [old] },
      });
      assert.deepEqual(
        plan.services.map((s) => [s.service, s.action, s.reason, s.currentVersion, s.nextVersion]),
        [
          ["base", "reuse", "revision changed", "0.3.2", "0.3.1"],
          ["backend", "build", "dependency changed", "0.3.2", "0.4.0"],
          ["frontend", "build", "dependency changed", "0.2.0", "0.2.1"],
          ["worker", "build", "dependency changed", "0.1.0", "0.1.1"],
        ],
      );
      assert.equal(plan.services[0].digest, old.digest);
      // The dependents' revisions are exact: the reused base's digest is known.
      assert.equal(plan.services[1].revision, revisionOf(SERVICES.backend, { base: old.digest }));
      assert.deepEqual(plan.release, {
        currentVersion: "1.0.0",
        nextVersion: "1.0.1",
        changed: true,
      });
    });

    it("GIVEN a next version whose tag exists already THEN the next free patch is taken, for services and the release", () => {
      const plan = planRelease({
        repository: repo,
        site: site(),
        current: R,
        next: N,
        services: changed("frontend", "9"),
        taken: { frontend: ["0.2.0", "0.2.1", "0.2.2"], release: ["1.0.1"] },
      });
      const frontend = plan.services.find((s) => s.service === "frontend");
      assert.equal(frontend?.nextVersion, "0.2.3");
      assert.equal(plan.release.nextVersion, "1.0.2");
    });

    it("GIVEN rings R and N emptied and version tags in the registry THEN a re-added service and the release continue after their highest tag", () => {
      const plan = planRelease({
        repository: repo,
        site: site(),
        current: { ring: "developers" },
        next: { ring: "testers" },
        services: SERVICES,
        taken: {
          backend: ["0.1.0", "0.9.0", "0.10.1", "0.10.2-rc.1"],
          frontend: ["2.0.0-rc.1"],
          release: ["0.4.0", "0.7.3"],
        },
      });
      assert.deepEqual(
        plan.services.map((s) => [s.service, s.reason, s.nextVersion]),
        [
          ["base", "new", "0.1.0"],
          // The highest tag counts as the version in R; its prerelease part is dropped.
          ["backend", "new", "0.10.3"],
          ["frontend", "new", "2.0.1"],
          ["worker", "new", "0.1.0"],
        ],
      );
      assert.deepEqual(plan.release, { nextVersion: "0.7.4", changed: true });
    });

    it("GIVEN a version in N and higher tags in the registry THEN the rule reads N, not the registry", () => {
      const plan = planRelease({
        repository: repo,
        site: site(),
        current: { ring: "developers" },
        next: N,
        services: SERVICES,
        taken: { backend: ["0.3.2", "0.9.0"] },
      });
      assert.equal(plan.services.find((s) => s.service === "backend")?.nextVersion, "0.4.0");
    });
  });
});
