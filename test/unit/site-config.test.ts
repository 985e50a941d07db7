import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError } from "../../lib/config";
import * as YAML from "yaml";
import { platformOf, readConfig, siteNamespace } from "../../lib/site";

describe("site config (lib/site.ts)", () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "site-config-"));
    fs.writeFileSync(
      path.join(root, "gitops-rings.yaml"),
      [
        "project: example",
        "registry: 127.0.0.1:5001",
        "rings: [developers, testers]",
        "environments:",
        "  dev: { overlay: deploy/dev, namespace: example-dev }",
        "services:",
        "  base: { context: services/base }",
        "",
      ].join("\n"),
    );
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const values = { "gitops-rings:ring": "developers", "gitops-rings:environment": "dev" };

  it("GIVEN an environment overlay without a kustomization WHEN read THEN the error names gitops-rings.yaml, the key and the directory", () => {
    assert.throws(
      () => readConfig(root, "dev-developers", values),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message ===
          'gitops-rings.yaml: environments.dev.overlay: "deploy/dev" has no kustomization.yaml',
    );
  });

  it("GIVEN a valid repository and site WHEN read THEN the site builds on the first ring", () => {
    fs.mkdirSync(path.join(root, "deploy/dev"), { recursive: true });
    fs.writeFileSync(path.join(root, "deploy/dev/kustomization.yaml"), "resources: []\n");
    const { repo, site } = readConfig(root, "dev-developers", values);
    assert.equal(repo.project, "example");
    assert.equal(site.ring, "developers");
    assert.equal(site.build, true);
    assert.equal(site.file, "stacks/Pulumi.dev-developers.yaml");
  });

  it("GIVEN two stacks that build the same ring in one registry WHEN either is read THEN the error names its file, gitops-rings:build and the other stack's file", () => {
    fs.mkdirSync(path.join(root, "deploy/dev"), { recursive: true });
    fs.writeFileSync(path.join(root, "deploy/dev/kustomization.yaml"), "resources: []\n");
    fs.mkdirSync(path.join(root, "stacks"));
    const stack = (name: string, lines: string[]) =>
      fs.writeFileSync(
        path.join(root, "stacks", `Pulumi.${name}.yaml`),
        ["config:", ...lines.map((l) => `  ${l}`), ""].join("\n"),
      );
    stack("dev-developers", ["gitops-rings:ring: developers", "gitops-rings:environment: dev"]);
    // Another registry, or build turned off: no rival.
    stack("mirror-developers", [
      "gitops-rings:ring: developers",
      "gitops-rings:environment: dev",
      "gitops-rings:registry: mirror.example.com",
    ]);
    stack("eu-developers", [
      "gitops-rings:ring: developers",
      "gitops-rings:environment: dev",
      "gitops-rings:build: false",
    ]);
    assert.equal(readConfig(root, "dev-developers", values).site.build, true);

    stack("us-developers", ["gitops-rings:ring: developers", "gitops-rings:environment: dev"]);
    assert.throws(
      () => readConfig(root, "dev-developers", values),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.startsWith(
          "stacks/Pulumi.dev-developers.yaml: gitops-rings:build: stacks/Pulumi.us-developers.yaml builds ring developers in registry 127.0.0.1:5001 too",
        ),
    );
  });

  describe("GIVEN values as the Pulumi runtime passes them (strings, JSON for maps and lists)", () => {
    beforeEach(() => {
      fs.mkdirSync(path.join(root, "deploy/dev"), { recursive: true });
      fs.writeFileSync(path.join(root, "deploy/dev/kustomization.yaml"), "resources: []\n");
    });

    it("WHEN Pulumi.yaml's declared defaults are added THEN the site config is valid (no list-form majorBump default)", () => {
      const project = YAML.parse(
        fs.readFileSync(path.join(__dirname, "../../Pulumi.yaml"), "utf8"),
      ) as { name: string; config: Record<string, { default?: unknown }> };
      const defaults = Object.fromEntries(
        Object.entries(project.config)
          .filter(([, c]) => c.default !== undefined)
          .map(([key, c]) => [
            `${project.name}:${key}`,
            typeof c.default === "string" ? c.default : JSON.stringify(c.default),
          ]),
      );
      const { site } = readConfig(root, "dev-developers", { ...defaults, ...values });
      assert.deepEqual(site.majorBump, {});
    });

    it("WHEN majorBump is the old list THEN the error names the stack file, key, value and the map to write", () => {
      assert.throws(
        () =>
          readConfig(root, "dev-developers", { ...values, "gitops-rings:majorBump": '["base"]' }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message ===
            'stacks/Pulumi.dev-developers.yaml: gitops-rings:majorBump: ["base"] is the old list form, which bumped the major version again on every build; write the major version each should reach once instead: { base: <major> } (pulumi config set --path gitops-rings:majorBump.base <major>)',
      );
    });

    it("WHEN majorBump and a Flux-shaped policy are JSON maps THEN they are read", () => {
      const { site } = readConfig(root, "dev-testers", {
        "gitops-rings:ring": "testers",
        "gitops-rings:environment": "dev",
        "gitops-rings:majorBump": '{"base":2,"release":1}',
        "gitops-rings:policies":
          '{"base":{"numerical":{"order":"desc"},"filterTags":{"pattern":"^b-(?P<n>[0-9]+)$","extract":"$n"}}}',
      });
      assert.deepEqual(site.majorBump, { base: 2, release: 1 });
      assert.deepEqual(site.policies, {
        base: {
          numerical: { order: "desc" },
          filterTags: { pattern: "^b-(?P<n>[0-9]+)$", extract: "$n" },
        },
      });
    });
  });

  it("GIVEN an environment namespace and a ring THEN the site's namespace joins them, and refuses more than 63 characters", () => {
    assert.equal(siteNamespace("example-dev", "testers"), "example-dev-testers");
    assert.throws(() => siteNamespace("x".repeat(60), "testers"), /longer than 63 characters/);
  });

  it("GIVEN the local platform's environment THEN images are built with buildctl and applied with kubectl; otherwise with docker-build and kubernetes", () => {
    assert.deepEqual(
      platformOf({
        GITOPS_RINGS_PLATFORM: "local",
        BUILDKIT_HOST: "tcp://127.0.0.1:9",
        KUBECONFIG: "/k",
      }),
      {
        builder: { kind: "buildctl", addr: "tcp://127.0.0.1:9" },
        deployer: { kind: "kubectl", kubeconfig: "/k" },
      },
    );
    assert.deepEqual(platformOf({ GITOPS_RINGS_BUILDX_BUILDER: "ci" }), {
      builder: { kind: "docker-build", name: "ci" },
      deployer: { kind: "kubernetes" },
    });
    assert.throws(
      () => platformOf({ GITOPS_RINGS_PLATFORM: "docker" }),
      /GITOPS_RINGS_PLATFORM: "docker" is not "local"/,
    );
  });
});
