import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ConfigError,
  loadRepositoryConfig,
  parseRepositoryConfig,
  parseSiteConfig,
  servicePaths,
  siteValuesFromConfigMap,
  type RepositoryConfig,
} from "../../lib/config";

const FILE = "gitops-rings.yaml";
const SITE = "stacks/Pulumi.eu-testers.yaml";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const DIGEST = `sha256:${"a".repeat(64)}`;

const REPO_YAML = `
project: acme/example
registry: 127.0.0.1:5001
vendor: Acme
rings: [developers, testers, users, lts]
environments:
  eu:
    overlay: app/deploy/overlays/eu
    namespace: example-eu
services:
  base:
    context: app/services/base
  backend:
    image: api
    context: .
    source: backend
    buildArgs: { MODE: release }
    target: runtime
    platforms: [linux/amd64, linux/arm64]
    sources:
      - { name: backend, url: "https://example.com/backend.git", branch: main }
      - { name: docs, url: "https://example.com/docs.git", commit: ${COMMIT}, path: vendor/docs }
    labels: { com.acme.team: core }
`;

/** Asserts that `fn` throws a ConfigError whose message is exactly `lines`. */
function throwsConfig(fn: () => unknown, lines: readonly string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.message, lines.join("\n"));
    assert.equal(err.problems.length, lines.length);
    return true;
  });
}

describe("lib/config", () => {
  describe("parseRepositoryConfig", () => {
    it("GIVEN a full file THEN every field is read and defaults are filled in", () => {
      const repo = parseRepositoryConfig(REPO_YAML, FILE);
      assert.deepEqual(repo, {
        file: FILE,
        project: "acme/example",
        registry: "127.0.0.1:5001",
        vendor: "Acme",
        initialVersion: "0.1.0",
        rings: ["developers", "testers", "users", "lts"],
        environments: {
          eu: { name: "eu", overlay: "app/deploy/overlays/eu", namespace: "example-eu" },
        },
        services: {
          backend: {
            name: "backend",
            image: "api",
            context: ".",
            source: "backend",
            buildArgs: { MODE: "release" },
            target: "runtime",
            platforms: ["linux/amd64", "linux/arm64"],
            sources: [
              {
                name: "backend",
                url: "https://example.com/backend.git",
                branch: "main",
                path: "backend",
              },
              {
                name: "docs",
                url: "https://example.com/docs.git",
                commit: COMMIT,
                path: "vendor/docs",
              },
            ],
            labels: { "com.acme.team": "core" },
          },
          base: {
            name: "base",
            image: "base",
            context: "app/services/base",
            buildArgs: {},
            platforms: ["linux/amd64"],
            sources: [],
            labels: {},
          },
        },
      });
    });

    it("GIVEN the example repository's file THEN it loads", () => {
      const repo = loadRepositoryConfig(path.join(__dirname, "../../gitops-rings.yaml"));
      assert.deepEqual(Object.keys(repo.services), ["backend", "base", "frontend"]);
      assert.deepEqual(repo.rings, ["developers", "testers", "users", "lts"]);
    });

    it("GIVEN a file that does not exist THEN the error names it", () => {
      const missing = path.join(os.tmpdir(), "gitops-rings-missing", "gitops-rings.yaml");
      assert.throws(
        () => loadRepositoryConfig(missing),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(
            err.message,
            new RegExp(`^${missing.replace(/[.]/g, "\\.")}: cannot read: ENOENT`),
          );
          return true;
        },
      );
    });

    it("GIVEN invalid YAML THEN the error names the file and line", () => {
      throwsConfig(
        () => parseRepositoryConfig("project: [\n", FILE),
        [
          "gitops-rings.yaml:2: Flow sequence in block collection must be sufficiently indented and end with a ]",
        ],
      );
    });

    it("GIVEN several bad values THEN every problem is reported with file, line, key and value", () => {
      const text = [
        "project: Example",
        "registry: 'a b'",
        "initialVersion: 1.x",
        "rings: [ante, dev, dev]",
        "environments:",
        "  dev: { overlay: /abs, namespace: dev }",
        "services:",
        "  api:",
        "    context: ../outside",
        "    platforms: [linux]",
        "    dependsOn: [base]",
        "    sources:",
        "      - { name: src, url: u }",
        "  release: { context: ., image: api }",
        "colour: blue",
      ].join("\n");
      throwsConfig(
        () => parseRepositoryConfig(text, FILE),
        [
          `gitops-rings.yaml:1: project: "Example" is not a repository path (lowercase letters, digits, '.', '_', '-', separated by '/')`,
          `gitops-rings.yaml:2: registry: "a b" is not a registry (host[:port][/prefix])`,
          `gitops-rings.yaml:3: initialVersion: "1.x" is not a version (semver, e.g. 1.2.3)`,
          `gitops-rings.yaml:6: environments.dev.overlay: "/abs" is not a relative path inside the repository`,
          `gitops-rings.yaml:9: services.api.context: "../outside" is not a relative path inside the repository`,
          `gitops-rings.yaml:10: services.api.platforms[0]: "linux" is not a platform (os/arch[/variant])`,
          `gitops-rings.yaml:13: services.api.sources[0]: {"name":"src","url":"u"} has none: a source needs exactly one of branch, commit`,
          "gitops-rings.yaml:11: services.api.dependsOn: is not given by hand: dependencies are discovered from FROM lines",
          "gitops-rings.yaml:15: colour: unknown key (known keys: project, registry, vendor, initialVersion, rings, environments, services)",
          `gitops-rings.yaml:4: rings[0]: "ante" is a pseudo-ring that is always added; remove it`,
          `gitops-rings.yaml:4: rings[2]: "dev" is listed twice`,
          `gitops-rings.yaml:14: services.release: "release" is reserved for the release`,
          `gitops-rings.yaml:14: services.release.image: "api" is already the image of api`,
        ],
      );
    });

    it("GIVEN missing keys THEN each is reported as required", () => {
      throwsConfig(
        () => parseRepositoryConfig("project: x\n", FILE),
        [
          "gitops-rings.yaml:1: registry: is required",
          "gitops-rings.yaml:1: rings: is required",
          "gitops-rings.yaml:1: environments: is required",
          "gitops-rings.yaml:1: services: is required",
        ],
      );
    });

    it("GIVEN a value of the wrong type THEN the error names the expected type", () => {
      const text = "project: x\nregistry: r\nrings: developers\nenvironments: []\nservices: {}\n";
      throwsConfig(
        () => parseRepositoryConfig(text, FILE),
        [
          'gitops-rings.yaml:3: rings: "developers" is not a list',
          "gitops-rings.yaml:4: environments: [] is not a map",
          "gitops-rings.yaml:5: services: {} must not be empty",
        ],
      );
    });

    it("GIVEN a bad name, a bad source reference, a reserved label and clashing paths THEN each is reported", () => {
      const text = [
        "project: x",
        "registry: r:5000/prefix",
        "rings: [dev]",
        "environments: { Dev: { overlay: o, namespace: n } }",
        "services:",
        "  a:",
        "    context: a",
        "    source: nope",
        "    labels: { org.opencontainers.image.version: '1', dependency.b: '2' }",
        "    buildArgs: { PORT: 8080 }",
        "    sources:",
        "      - { name: s, url: u, branch: main, path: src }",
        "      - { name: t, url: u, branch: 'bad..branch', path: src }",
        "      - { name: s, url: u, commit: abc }",
      ].join("\n");
      throwsConfig(
        () => parseRepositoryConfig(text, FILE),
        [
          `gitops-rings.yaml:4: environments.Dev: "Dev" is not a name (lowercase letters, digits and '-')`,
          "gitops-rings.yaml:10: services.a.buildArgs.PORT: 8080 is not a string",
          `gitops-rings.yaml:13: services.a.sources[1].branch: "bad..branch" is not a branch name`,
          `gitops-rings.yaml:14: services.a.sources[2].commit: "abc" is not a full commit id (40 or 64 hex)`,
          `gitops-rings.yaml:13: services.a.sources[1].path: "src" is already the path of source s`,
          `gitops-rings.yaml:14: services.a.sources[2].name: "s" is listed twice`,
          `gitops-rings.yaml:8: services.a.source: "nope" is not one of the service's sources (s, t, s)`,
          `gitops-rings.yaml:9: services.a.labels["org.opencontainers.image.version"]: is set by gitops-rings and cannot be given`,
          `gitops-rings.yaml:9: services.a.labels["dependency.b"]: is set by gitops-rings and cannot be given`,
        ],
      );
    });

    it("GIVEN a path for the source that holds the context THEN it is refused", () => {
      const text = [
        "project: x",
        "registry: r",
        "rings: [dev]",
        "environments: { dev: { overlay: o, namespace: n } }",
        "services:",
        "  a:",
        "    context: .",
        "    source: s",
        "    sources: [{ name: s, url: u, branch: main, path: here }]",
      ].join("\n");
      throwsConfig(
        () => parseRepositoryConfig(text, FILE),
        [
          `gitops-rings.yaml:9: services.a.sources[0].path: "here" is not allowed: this source's checkout is the context`,
        ],
      );
    });
  });

  describe("parseSiteConfig", () => {
    const repo: RepositoryConfig = parseRepositoryConfig(REPO_YAML, FILE);

    it("GIVEN ring and environment of the first ring THEN build defaults to true and the rest to empty", () => {
      assert.deepEqual(parseSiteConfig({ ring: "developers", environment: "eu" }, SITE, repo), {
        file: SITE,
        ring: "developers",
        environment: "eu",
        build: true,
        pins: {},
        policies: {},
        majorBump: {},
        autoDeploy: false,
        sourceCommits: {},
        images: { requireDigest: false, fields: [] },
      });
    });

    it("GIVEN a site on a later ring THEN build defaults to false", () => {
      assert.equal(
        parseSiteConfig({ ring: "testers", environment: "eu" }, SITE, repo).build,
        false,
      );
    });

    it("GIVEN every key THEN each is read, booleans also from the strings pulumi config set stores", () => {
      const site = parseSiteConfig(
        {
          ring: "ante",
          environment: "eu",
          build: "false",
          release: "1.2.3",
          pins: { base: { digest: DIGEST } },
          policies: {
            backend: { semver: { range: "^1.2.0", prerelease: "false" } },
          },
          majorBump: { release: 1, backend: "2" },
          registry: "registry.example.com:443/mirror",
          autoDeploy: true,
          rolloutTimeout: "900",
          buildConcurrency: "4",
          sourceCommits: { "backend/docs": COMMIT },
          images: { allowedRegistries: ["docker.io"], requireDigest: "false" },
        },
        SITE,
        repo,
      );
      assert.deepEqual(site, {
        file: SITE,
        ring: "ante",
        environment: "eu",
        build: false,
        release: "1.2.3",
        pins: { base: { digest: DIGEST } },
        policies: { backend: { semver: { range: "^1.2.0", prerelease: false } } },
        majorBump: { backend: 2, release: 1 },
        registry: "registry.example.com:443/mirror",
        autoDeploy: true,
        rolloutTimeout: 900,
        buildConcurrency: 4,
        sourceCommits: { "backend/docs": COMMIT },
        images: { allowedRegistries: ["docker.io"], requireDigest: false, fields: [] },
      });
    });

    it("GIVEN a building site WHEN it has a release pin, pins or policies THEN each is refused naming the file, key and why", () => {
      for (const build of [{ build: "true" }, {}]) {
        assert.throws(
          () =>
            parseSiteConfig(
              {
                ring: "developers",
                environment: "eu",
                ...build,
                release: "1.2.3",
                pins: { base: { version: "1.0.0" } },
                policies: { backend: { tag: "stable" } },
              },
              SITE,
              repo,
            ),
          (err: unknown) => {
            const lines = (err as Error).message.split("\n");
            for (const key of ["release", "pins", "policies"]) {
              assert.ok(
                lines.some(
                  (l) =>
                    l.startsWith(`${SITE}: gitops-rings:${key}: this site builds`) &&
                    l.includes("a building site deploys the release it builds"),
                ),
                `${key} refused in:\n${(err as Error).message}`,
              );
            }
            return true;
          },
        );
      }
      // The same keys on a site that does not build are accepted.
      const site = parseSiteConfig(
        {
          ring: "developers",
          environment: "eu",
          build: false,
          pins: { base: { version: "1.0.0" } },
        },
        SITE,
        repo,
      );
      assert.deepEqual(site.pins, { base: { version: "1.0.0" } });
    });

    it("GIVEN each kind of pin and policy THEN each keeps its shape", () => {
      const site = parseSiteConfig(
        {
          ring: "users",
          environment: "eu",
          pins: { base: { tag: "stable" } },
          policies: { backend: { gitRevision: { branch: "main", tagPrefix: "main-" } } },
        },
        SITE,
        repo,
      );
      assert.deepEqual(site.pins, { base: { tag: "stable" } });
      assert.deepEqual(site.policies, {
        backend: { gitRevision: { branch: "main", tagPrefix: "main-" } },
      });
      const other = parseSiteConfig(
        {
          ring: "users",
          environment: "eu",
          pins: { backend: { version: "0.3.2" } },
          policies: { base: { tag: "edge" } },
        },
        SITE,
        repo,
      );
      assert.deepEqual(other.pins, { backend: { version: "0.3.2" } });
      assert.deepEqual(other.policies, { base: { tag: "edge" } });
      const digest = parseSiteConfig(
        { ring: "users", environment: "eu", policies: { base: { digest: DIGEST } } },
        SITE,
        repo,
      );
      assert.deepEqual(digest.policies, { base: { digest: DIGEST } });
    });

    it("GIVEN a pin that is not a version THEN the error names file, key and value", () => {
      throwsConfig(
        () =>
          parseSiteConfig(
            { ring: "testers", environment: "eu", pins: { backend: { version: "1.x" } } },
            SITE,
            repo,
          ),
        [
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:pins.backend.version: "1.x" is not a version (semver, e.g. 1.2.3)',
        ],
      );
    });

    it("GIVEN unknown rings, environments, services and sources and bad values THEN every problem is reported", () => {
      throwsConfig(
        () =>
          parseSiteConfig(
            {
              ring: "qa",
              environment: "us",
              build: "yes",
              release: "v1.2.3",
              pins: { frontend: { version: "1.2.3" }, base: { tag: "a", digest: "sha256:1" } },
              policies: {
                backend: { semver: "not a range" },
                base: { prerelease: true },
                frontend: { semver: "^1.0.0", prerelease: true },
              },
              majorBump: { frontend: 1 },
              registry: "https://r",
              rolloutTimeout: "5m",
              buildConcurrency: 0,
              sourceCommits: { "backend/nope": COMMIT, "ghost/x": COMMIT, nokey: COMMIT },
              colour: "blue",
            },
            SITE,
            repo,
          ),
        [
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:build: "yes" is not true or false',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:release: "v1.2.3" is not a version (semver, e.g. 1.2.3)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:pins.base.digest: "sha256:1" is not a digest (sha256:<64 hex>)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:pins.base: {"tag":"a","digest":"sha256:1"} has tag and digest: a pin needs exactly one of version, tag, digest',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.backend.semver.range: "not a range" is not a semver range (e.g. ^1.2.0)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.base: {"prerelease":true} has none: a policy needs exactly one of semver, alphabetical, numerical, gitRevision, tag, digest',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.base.prerelease: true belongs in semver: write semver: { range: "<range>", prerelease: true }',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.frontend.prerelease: true belongs in semver: write semver: { range: "^1.0.0", prerelease: true }',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:registry: "https://r" is not a registry (host[:port][/prefix])',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:rolloutTimeout: "5m" is not a duration in seconds (a whole number of at least 1, e.g. 600)',
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:buildConcurrency: 0 is not a count (a whole number of at least 1, e.g. 4)",
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:sourceCommits.nokey: "nokey" is not a <service>/<source> key',
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:colour: unknown key (known keys: ring, environment, build, release, pins, policies, majorBump, registry, autoDeploy, rolloutTimeout, buildConcurrency, sourceCommits, images, registryAuth, identity)",
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:ring: "qa" is not a ring (ante, developers, testers, users, lts, post)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:environment: "us" is not an environment (eu)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:pins.frontend: "frontend" is not a service (backend, base)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.frontend: "frontend" is not a service (backend, base)',
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.base: a service has a pin or a policy, not both (see pins)",
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:majorBump.frontend: "frontend" is not a service (backend, base) or "release"',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:sourceCommits["backend/nope"]: "nope" is not a source of backend (backend, docs)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:sourceCommits["ghost/x"]: "ghost" is not a service (backend, base)',
        ],
      );
    });

    it("GIVEN majorBump in the old list form THEN it is refused, naming file, key and value and what to write instead", () => {
      throwsConfig(
        () =>
          parseSiteConfig(
            { ring: "developers", environment: "eu", majorBump: ["backend", "release"] },
            SITE,
            repo,
          ),
        [
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:majorBump: ["backend","release"] is the old list form, which bumped the major version again on every build; write the major version each should reach once instead: { backend: <major>, release: <major> } (pulumi config set --path gitops-rings:majorBump.backend <major>)',
        ],
      );
    });

    it("GIVEN a requested major that is not a whole number of at least 1 THEN the error names file, key and value", () => {
      throwsConfig(
        () =>
          parseSiteConfig(
            {
              ring: "developers",
              environment: "eu",
              majorBump: { backend: "two", base: 0, release: 1.5 },
            },
            SITE,
            repo,
          ),
        [
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:majorBump.backend: "two" is not a major version (a whole number of at least 1, e.g. 2)',
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:majorBump.base: 0 is not a major version (a whole number of at least 1, e.g. 2)",
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:majorBump.release: 1.5 is not a major version (a whole number of at least 1, e.g. 2)",
        ],
      );
    });

    it("GIVEN Flux-shaped policies THEN semver (with prerelease), alphabetical, numerical and filterTags are read, orders defaulting to asc", () => {
      const filter = { pattern: "^main-(?P<ts>\\d+)$", extract: "$ts" };
      const site = parseSiteConfig(
        {
          ring: "users",
          environment: "eu",
          policies: {
            backend: { semver: { range: ">=1.0.0", prerelease: true }, filterTags: filter },
            base: { numerical: {}, filterTags: filter },
          },
        },
        SITE,
        repo,
      );
      assert.deepEqual(site.policies, {
        backend: { semver: { range: ">=1.0.0", prerelease: true }, filterTags: filter },
        base: { numerical: { order: "asc" }, filterTags: filter },
      });
      const other = parseSiteConfig(
        {
          ring: "users",
          environment: "eu",
          policies: {
            backend: { semver: "^1.2.0" },
            base: { alphabetical: { order: "desc" }, filterTags: { pattern: "^rc-" } },
          },
        },
        SITE,
        repo,
      );
      assert.deepEqual(other.policies, {
        backend: { semver: { range: "^1.2.0" } },
        base: { alphabetical: { order: "desc" }, filterTags: { pattern: "^rc-" } },
      });
    });

    it("GIVEN filterTags whose pattern does not compile, whose extract names a missing group, or beside a tag policy THEN each error names file, key and value", () => {
      throwsConfig(
        () =>
          parseSiteConfig(
            {
              ring: "users",
              environment: "eu",
              policies: {
                backend: {
                  numerical: { order: "up" },
                  filterTags: { pattern: "^b-(?P<n>\\d+)$", extract: "$2-${n}-${num}-$$" },
                },
                base: { tag: "edge", filterTags: { pattern: "^(" } },
              },
            },
            SITE,
            repo,
          ),
        [
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.backend.numerical.order: "up" is not "asc" or "desc"',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.backend.filterTags.extract: "$2-${n}-${num}-$$" names group "2", which the pattern does not have (groups: 0, 1, n)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.backend.filterTags.extract: "$2-${n}-${num}-$$" names group "num", which the pattern does not have (groups: 0, 1, n)',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.base.filterTags.pattern: "^(" is not a regular expression: Invalid regular expression: /^(/: Unterminated group',
          'stacks/Pulumi.eu-testers.yaml: gitops-rings:policies.base.filterTags: {"pattern":"^("} is only allowed with semver, alphabetical, numerical',
        ],
      );
    });

    it("GIVEN no ring and no environment THEN both are reported as required", () => {
      throwsConfig(
        () => parseSiteConfig({}, SITE, repo),
        [
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:ring: is required",
          "stacks/Pulumi.eu-testers.yaml: gitops-rings:environment: is required",
        ],
      );
    });

    it("GIVEN a flat Pulumi config map THEN the namespace's keys are picked and JSON values parsed", () => {
      const values = siteValuesFromConfigMap({
        "gitops-rings:ring": "testers",
        "gitops-rings:environment": "eu",
        "gitops-rings:pins": '{"backend":{"version":"1.2.3"}}',
        "gitops-rings:build": "false",
        "kubernetes:context": "kind",
      });
      assert.deepEqual(values, {
        ring: "testers",
        environment: "eu",
        pins: { backend: { version: "1.2.3" } },
        build: "false",
      });
      assert.equal(parseSiteConfig(values, SITE, repo).build, false);
    });
  });

  describe("servicePaths", () => {
    const repo = parseRepositoryConfig(REPO_YAML, FILE);
    it("GIVEN a service in the repository THEN the Dockerfile defaults to the context's", () => {
      assert.deepEqual(servicePaths("/repo", repo.services.base), {
        context: "/repo/app/services/base",
        dockerfile: "/repo/app/services/base/Dockerfile",
      });
    });
    it("GIVEN a service whose context is in a source checkout THEN paths are under the checkout", () => {
      assert.deepEqual(
        servicePaths("/repo", repo.services.backend, { backend: "/cache/backend" }),
        {
          context: "/cache/backend",
          dockerfile: "/cache/backend/Dockerfile",
        },
      );
    });
    it("GIVEN a missing checkout THEN it throws naming service and source", () => {
      assert.throws(() => servicePaths("/repo", repo.services.backend), {
        message: "service backend: no checkout for source backend",
      });
    });
  });

  it("GIVEN a temp file WHEN loading THEN errors name the path as given", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-config-"));
    try {
      const file = path.join(dir, "gitops-rings.yaml");
      fs.writeFileSync(
        file,
        "project: x\nregistry: r\nrings: [dev]\nenvironments: { dev: { overlay: o, namespace: n } }\nservices: { a: { context: a, contxt: b } }\n",
      );
      throwsConfig(
        () => loadRepositoryConfig(file),
        [
          `${file}:5: services.a.contxt: unknown key (known keys: image, context, source, dockerfile, buildArgs, target, platforms, sources, labels, aliases)`,
        ],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("lib/config: services.<name>.aliases (names the manifests use for an image)", () => {
  const withServices = (services: string) =>
    `project: ledger\nregistry: registry.example.com\nrings: [dev]\n` +
    `environments: { dev: { overlay: o, namespace: n } }\nservices:\n${services}`;

  it("GIVEN aliases with and without a registry THEN they are read, duplicates once, and only where given", () => {
    const repo = parseRepositoryConfig(
      withServices(
        "  api:\n    context: api\n    aliases: [ledger-api, old.example.com:5000/team/api, ledger-api]\n" +
          "  worker:\n    context: worker\n",
      ),
      FILE,
    );
    assert.deepEqual(repo.services.api.aliases, ["ledger-api", "old.example.com:5000/team/api"]);
    assert.equal("aliases" in repo.services.worker, false);
  });

  it("GIVEN an alias with a tag, a digest or upper case THEN each is an error naming file, line, key and value", () => {
    throwsConfig(
      () =>
        parseRepositoryConfig(
          withServices(
            `  api:\n    context: api\n    aliases:\n      - ledger/api:1.4\n      - ledger/api@sha256:abc\n      - Ledger/API\n`,
          ),
          FILE,
        ),
      [0, 1, 2].map(
        (i) =>
          `${FILE}:${9 + i}: services.api.aliases[${i}]: ${JSON.stringify(
            ["ledger/api:1.4", "ledger/api@sha256:abc", "Ledger/API"][i],
          )} is not an image name without tag or digest (e.g. ledger/api, registry.example.com/ledger/api)`,
      ),
    );
  });

  const claimedTwice: [string, string, string, string][] = [
    [
      "an alias that is another service's repository",
      "  api:\n    context: api\n" +
        "  worker:\n    context: worker\n    aliases: [registry.example.com/ledger/api]\n",
      '10: services.worker.aliases[0]: "registry.example.com/ledger/api"',
      "api and worker",
    ],
    [
      "two services with the same alias",
      "  api:\n    context: api\n    aliases: [legacy/app]\n" +
        "  worker:\n    context: worker\n    aliases: [legacy/app]\n",
      '11: services.worker.aliases[0]: "legacy/app"',
      "api and worker",
    ],
    [
      "a service whose image is another service's name",
      "  api:\n    context: api\n  web:\n    context: web\n    image: api-web\n" +
        "  worker:\n    context: worker\n    image: web\n",
      '13: services.worker.image: "web"',
      "web and worker",
    ],
  ];
  for (const [what, services, where, both] of claimedTwice) {
    it(`GIVEN ${what} THEN the error names the key, the name and both services`, () => {
      throwsConfig(
        () => parseRepositoryConfig(withServices(services), FILE),
        [
          `${FILE}:${where} names the images of both ${both}; a name in the manifests must name one service`,
        ],
      );
    });
  }
});
