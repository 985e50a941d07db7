import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { SitePlan, ServiceStep } from "../../lib/site";

// Pulumi mocks (STYLE.md rule 9): record every resource, give docker-build Images, the dynamic
// BuildkitImage and VersionTag a digest as their provider would (a VersionTag's differs from the
// built one, as when inherited labels are dropped; so does a BuildkitImage's published `digest`
// from its `built`), and refuse calls we did not expect.
interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  parent?: string;
}
let recorded: Recorded[] = [];
const digestOf = (name: string) =>
  `sha256:${Buffer.from(name.padEnd(32, "-").slice(0, 32)).toString("hex")}`;

pulumi.runtime.setMocks(
  {
    newResource(args: pulumi.runtime.MockResourceArgs) {
      recorded.push({ type: args.type, name: args.name, inputs: args.inputs });
      const state: Record<string, unknown> = { ...args.inputs };
      if (
        args.type === "docker-build:index:Image" ||
        args.type.endsWith("dynamic/service:BuildkitImage") ||
        args.type.endsWith("dynamic/service:VersionTag")
      ) {
        state.digest = digestOf(args.name);
      }
      if (args.type.endsWith("dynamic/service:BuildkitImage")) {
        state.built = digestOf(`${args.name}-built`);
      }
      return { id: `${args.name}-id`, state };
    },
    call(args: pulumi.runtime.MockCallArgs) {
      // The provider path renders the site's overlay (components/site/render.ts): no objects.
      if (args.token === "kubernetes:kustomize:directory") return { result: [] };
      throw new Error(`unexpected call ${args.token}`);
    },
  },
  "gitops-rings",
  "dev-developers",
  false,
);

const sha = (c: string) => `sha256:${c.repeat(64)}`;

/** A secret value as the mocks record it: the SDK's secret signature around the value. */
const secret = (value: unknown) => ({
  [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
  value,
});

function step(service: string, overrides: Partial<ServiceStep> = {}): ServiceStep {
  return {
    service,
    repository: `127.0.0.1:5001/example/${service}`,
    action: "build",
    reason: "new",
    version: "0.1.0",
    revision: `v1:sha256:${"0".repeat(64)}`,
    content: `sha256:${"c".repeat(64)}`,
    labelInput: { project: "example", image: service, version: "0.1.0" },
    dependencies: {},
    dependencyArgs: {},
    namedContexts: {},
    build: {
      context: `/repo/app/services/${service}`,
      dockerfile: `/repo/app/services/${service}/Dockerfile`,
      buildArgs: {},
      platforms: ["linux/amd64"],
    },
    sources: [],
    ...overrides,
  };
}

function plan(overrides: Partial<SitePlan>, overlayRoot: string): SitePlan {
  return {
    site: "dev-developers",
    project: "example",
    registry: "127.0.0.1:5001",
    ring: "developers",
    rings: ["developers", "testers"],
    nextRing: "testers",
    environment: {
      name: "dev",
      overlay: path.join(overlayRoot, "overlays/dev"),
      namespace: "example-dev",
    },
    build: true,
    builder: { kind: "docker-build" },
    deployer: { kind: "kubernetes" },
    rolloutTimeout: 600,
    services: [
      step("base"),
      step("backend", {
        revision: undefined,
        dependencies: { base: "0.1.0" },
        dependencyArgs: { BASE: "base" },
        baseService: "base",
        labelInput: {
          project: "example",
          image: "backend",
          version: "0.1.0",
          dependencies: { base: "0.1.0" },
        },
      }),
    ],
    release: { repository: "127.0.0.1:5001/example/release", action: "build", version: "0.1.0" },
    deploy: { images: {} },
    table: "plan",
    ...overrides,
  };
}

const output = <T>(o: pulumi.Output<T>): Promise<T> =>
  new Promise((resolve) => o.apply((v) => resolve(v)));

/** Waits until every child of the site is registered (the last ones wait for digests). */
async function registered(site: import("../../components/site/site").Site): Promise<void> {
  await output(site.deployment.urn);
  if (site.ring) await output(site.ring.pointer.urn);
}

describe("Site (Pulumi mocks)", () => {
  let Site: typeof import("../../components/site/site").Site;
  let tmp: string;

  before(async () => {
    ({ Site } = await import("../../components/site/site"));
  });
  beforeEach(() => {
    recorded = [];
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "site-test-"));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("GIVEN a building site WHEN constructed THEN builds in dependency order with FROM by digest, pushes the release and moves the ring", async () => {
    const site = new Site("dev-developers", {
      plan: plan({}, tmp),
      overlayDir: path.join(tmp, "out"),
    });
    await registered(site);
    const services = await output(site.services);

    const images = recorded.filter((r) => r.type === "docker-build:index:Image");
    assert.deepEqual(
      images.map((r) => r.name),
      ["dev-developers-base", "dev-developers-backend", "dev-developers-release"],
    );
    const backend = images[1].inputs;
    // Builders push by digest only; the version tag is the VersionTag's (invariant 1).
    assert.equal(backend.tags, undefined);
    assert.deepEqual(backend.exports, [
      { registry: { names: ["127.0.0.1:5001/example/backend"], pushByDigest: true } },
    ]);
    assert.equal(backend.push, false);
    const tags = recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/service:VersionTag");
    assert.deepEqual(
      tags.map((r) => [r.name, r.inputs.repository, r.inputs.tag, r.inputs.built]),
      ["base", "backend", "release"].map((n) => [
        `dev-developers-${n}-tag`,
        `127.0.0.1:5001/example/${n}`,
        "0.1.0",
        digestOf(`dev-developers-${n}`),
      ]),
    );
    // FROM is pinned to the base's published digest, and its labels are not inherited.
    const published = digestOf("dev-developers-base-tag");
    assert.deepEqual(backend.buildArgs, { BASE: `127.0.0.1:5001/example/base@${published}` });
    assert.equal(tags[1].inputs.base, `127.0.0.1:5001/example/base@${published}`);
    assert.equal(tags[0].inputs.base, undefined);
    // The backend's revision covers the digest of the base just built (lib/revision.ts).
    const { revisionOf } = await import("../../lib/revision");
    const expected = revisionOf({ content: `sha256:${"c".repeat(64)}` }, { base: published });
    const backendLabels = backend.labels as Record<string, string>;
    assert.equal(backendLabels["org.opencontainers.image.revision"], expected);
    assert.equal(backendLabels["dependency.base"], "0.1.0");
    assert.equal(backendLabels["org.opencontainers.image.ref.name"], "example/backend");
    const release = images[2].inputs as { labels: Record<string, string> };
    assert.equal(
      release.labels["io.gitops-rings.service.backend.digest"],
      digestOf("dev-developers-backend-tag"),
    );
    assert.equal(release.labels["io.gitops-rings.release.version"], "0.1.0");

    const pointer = recorded.find((r) => r.type === "pulumi-nodejs:dynamic/ring:RingPointer");
    assert.ok(pointer, "a ring pointer is declared");
    assert.equal(pointer.name, "dev-developers-ring-developers-pointer");
    const ring = recorded.find((r) => r.type === "gitops-rings:ring:Ring");
    assert.equal(ring?.name, "dev-developers-ring-developers");
    assert.equal(pointer.inputs.version, "0.1.0");
    assert.equal(pointer.inputs.digest, digestOf("dev-developers-release-tag"));

    assert.equal(
      services.backend.ref,
      `127.0.0.1:5001/example/backend@${digestOf("dev-developers-backend-tag")}`,
    );
    assert.equal(services.backend.why, "built (new)");
  });

  it("GIVEN the kubernetes deployer WHEN constructed THEN the generated overlay pins every image by digest and one ConfigGroup per phase applies it, Jobs named after the release", async () => {
    const out = path.join(tmp, "out");
    const rendered: string[] = [];
    const job = (name: string, phase: string) => ({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name, namespace: "example-dev", annotations: { "gitops-rings.io/phase": phase } },
      spec: { template: {} },
    });
    const site = new Site("dev-developers", {
      plan: plan({}, tmp),
      overlayDir: out,
      renderOverlay: async (dir) => {
        rendered.push(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
        return [
          { apiVersion: "v1", kind: "Namespace", metadata: { name: "example-dev" } },
          { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "backend" } },
          job("migrate", "pre-deploy"),
          job("smoke", "post-deploy"),
        ];
      },
    });
    await registered(site);
    const groups = recorded.filter((r) => r.type === "kubernetes:yaml/v2:ConfigGroup");
    assert.deepEqual(
      groups.map((g) => g.name),
      ["dev-developers-pre-deploy", "dev-developers-apply", "dev-developers-post-deploy"],
    );
    const names = (g: Recorded) =>
      (g.inputs.objs as { kind: string; metadata: { name: string } }[]).map(
        (o) => `${o.kind}/${o.metadata.name}`,
      );
    assert.deepEqual(names(groups[0]), ["Namespace/example-dev", "Job/migrate-0-1-0"]);
    assert.deepEqual(names(groups[1]), ["Deployment/backend"]);
    assert.deepEqual(names(groups[2]), ["Job/smoke-0-1-0"]);
    // The verification comes after the post-deploy Jobs and names them.
    assert.ok(site.verification, "a verification is declared");
    await output(site.verification.urn);
    const verification = recorded.find((r) => r.type.endsWith("dynamic/site:SiteVerification"));
    assert.equal(verification?.name, "dev-developers-verification");
    assert.deepEqual(verification?.inputs.jobs, [{ name: "smoke-0-1-0", status: "Complete" }]);
    assert.equal(verification?.inputs.ring, "developers");
    assert.equal(verification?.inputs.digest, digestOf("dev-developers-release-tag"));
    assert.equal(verification?.inputs.releaseRepository, "127.0.0.1:5001/example/release");
    // Rendered in two steps (lib/kustomize.ts renderSiteOverlay): the overlay without its
    // images, then the images over the objects an entry can match (here, the Deployment's name).
    assert.equal(rendered.length, 2);
    assert.match(rendered[0], /\nimages: \[\]\n/);
    assert.match(rendered[0], /gitops-rings\.io\/ring: developers/);
    assert.match(rendered[1], /resources:\n {2}- objects\.yaml\n/);
    assert.match(rendered[1], new RegExp(`digest: ${digestOf("dev-developers-backend-tag")}`));
    const kustomization = fs.readFileSync(path.join(out, "kustomization.yaml"), "utf8");
    assert.match(kustomization, new RegExp(`digest: ${digestOf("dev-developers-backend-tag")}`));
    assert.match(kustomization, /newName: 127\.0\.0\.1:5001\/example\/backend\n/);
    assert.match(kustomization, /- \.\.\/overlays\/dev\n/);
    // The release labels the site's Namespace, the one object every release changes.
    const namespace = fs.readFileSync(path.join(out, "namespace.yaml"), "utf8");
    assert.match(namespace, /gitops-rings\.io\/release: 0\.1\.0/);
    // The provider awaits each workload for the site's rollout timeout.
    assert.match(kustomization, /pulumi\.com\/timeoutSeconds: "600"/);
  });

  it("GIVEN images the ring already has WHEN the site reuses them THEN it declares no image and deploys the same digests", async () => {
    const site = new Site("dev-testers", {
      plan: plan(
        {
          site: "dev-testers",
          ring: "testers",
          build: false,
          services: [],
          deploy: {
            release: "0.1.0",
            images: {
              backend: {
                repository: "127.0.0.1:5001/example/backend",
                digest: sha("b"),
                version: "0.1.0",
                sources: [],
                why: "ring testers",
              },
            },
          },
        },
        tmp,
      ),
      overlayDir: path.join(tmp, "out"),
    });
    await registered(site);
    const services = await output(site.services);
    assert.equal(await output(site.release), "0.1.0");
    assert.equal(recorded.filter((r) => r.type === "docker-build:index:Image").length, 0);
    assert.equal(recorded.filter((r) => r.type.endsWith("RingPointer")).length, 0);
    assert.equal(services.backend.ref, `127.0.0.1:5001/example/backend@${sha("b")}`);
  });

  it("GIVEN the buildctl builder WHEN constructed THEN each image is one BuildkitImage that builds and publishes under its version tag, FROM its dependency's published digest, and no VersionTag is declared", async () => {
    const site = new Site("dev-developers", {
      plan: plan({ builder: { kind: "buildctl", addr: "tcp://127.0.0.1:1234" } }, tmp),
      overlayDir: path.join(tmp, "out"),
    });
    await output(site.releaseImage!.digest);
    await output(site.ring!.pointer.urn);
    const images = recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/service:BuildkitImage");
    assert.deepEqual(
      images.map((r) => r.name),
      ["dev-developers-base", "dev-developers-backend", "dev-developers-release"],
    );
    assert.deepEqual(
      images.map((r) => r.inputs.tag),
      ["0.1.0", "0.1.0", "0.1.0"],
    );
    // FROM the base as published (own labels), not as BuildKit pushed it.
    assert.deepEqual(images[1].inputs.buildArgs, {
      BASE: `127.0.0.1:5001/example/base@${digestOf("dev-developers-base")}`,
    });
    assert.equal(
      images[1].inputs.base,
      `127.0.0.1:5001/example/base@${digestOf("dev-developers-base")}`,
    );
    assert.equal(
      recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/service:VersionTag").length,
      0,
    );
    assert.equal(recorded.filter((r) => r.type === "docker-build:index:Image").length, 0);
  });

  it("GIVEN registry credentials on the provider path WHEN constructed THEN docker-build gets them as secret registries, the pull secret (Namespace, dockerconfigjson Secret as a secret, default ServiceAccount patch) is declared, and no other input holds the password", async () => {
    const auth = { "127.0.0.1:5001": { username: "ci", password: "hunter2" } };
    const site = new Site("dev-developers", {
      plan: plan({ registryAuth: auth }, tmp),
      overlayDir: path.join(tmp, "out"),
      renderOverlay: async () => [],
    });
    await registered(site);
    const images = recorded.filter((r) => r.type === "docker-build:index:Image");
    assert.equal(images.length, 3);
    for (const image of images) {
      assert.deepEqual(
        image.inputs.registries,
        secret([{ address: "127.0.0.1:5001", username: "ci", password: "hunter2" }]),
      );
    }
    const pullSecret = recorded.find((r) => r.type === "kubernetes:core/v1:Secret");
    assert.deepEqual(pullSecret?.inputs, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "gitops-rings-registry", namespace: "example-dev" },
      type: "kubernetes.io/dockerconfigjson",
      stringData: secret({
        ".dockerconfigjson": JSON.stringify({
          auths: { "127.0.0.1:5001": { auth: Buffer.from("ci:hunter2").toString("base64") } },
        }),
      }),
    });
    const account = recorded.find((r) => r.type === "kubernetes:core/v1:ServiceAccountPatch");
    assert.deepEqual(account?.inputs.imagePullSecrets, [{ name: "gitops-rings-registry" }]);
    assert.equal(recorded.filter((r) => r.type === "kubernetes:core/v1:Namespace").length, 1);
    const others = recorded.filter(
      (r) => r.type !== "docker-build:index:Image" && r.type !== "kubernetes:core/v1:Secret",
    );
    assert.ok(others.length > 5);
    for (const r of others) {
      const text = JSON.stringify(r.inputs);
      assert.ok(!text.includes("hunter2") && !text.includes("Y2k6aHVudGVyMg=="), r.name);
    }
  });

  it("GIVEN no registry credentials WHEN constructed THEN no pull secret is declared and builds get no registries", async () => {
    const site = new Site("dev-developers", {
      plan: plan({}, tmp),
      overlayDir: path.join(tmp, "out"),
      renderOverlay: async () => [],
    });
    await registered(site);
    assert.deepEqual(
      recorded.filter((r) => r.type.startsWith("kubernetes:core/v1:")).map((r) => r.type),
      [],
    );
    for (const image of recorded.filter((r) => r.type === "docker-build:index:Image")) {
      assert.equal(image.inputs.registries, undefined);
    }
  });

  it("GIVEN a keep step WHEN constructed THEN its build (which publishes) is declared with every input ignored, so a new checkout or new labels change nothing", async () => {
    const options: Record<string, pulumi.CustomResourceOptions> = {};
    const site = new Site(
      "dev-developers",
      {
        plan: plan(
          {
            builder: { kind: "buildctl", addr: "tcp://127.0.0.1:1234" },
            services: [
              step("base", { action: "keep", reason: "unchanged", digest: sha("a") }),
              step("frontend"),
            ],
          },
          tmp,
        ),
        overlayDir: path.join(tmp, "out"),
      },
      {
        transformations: [
          (args) => {
            options[`${args.type} ${args.name}`] = args.opts;
            return undefined;
          },
        ],
      },
    );
    await registered(site);
    const BUILD = "pulumi-nodejs:dynamic/service:BuildkitImage";
    const ignored = (type: string, name: string) =>
      [...(options[`${type} ${name}`]?.ignoreChanges ?? [])].sort();
    const inputs = (type: string, name: string) =>
      Object.keys(recorded.find((r) => r.type === type && r.name === name)?.inputs ?? {}).filter(
        (k) => !["digest", "ref", "built", "__provider"].includes(k),
      );
    for (const [type, name] of [[BUILD, "dev-developers-base"]]) {
      assert.ok(inputs(type, name).length > 0, `${name} is declared`);
      for (const key of inputs(type, name)) {
        assert.ok(ignored(type, name).includes(key), `${name}: ${key} is ignored`);
      }
    }
    // A build step ignores nothing.
    assert.deepEqual(ignored(BUILD, "dev-developers-frontend"), []);
  });

  it("GIVEN a reuse step without a digest WHEN constructed THEN it fails naming the service and version", () => {
    assert.throws(
      () =>
        new Site("bad", {
          plan: plan({ services: [step("base", { action: "reuse", reason: "unchanged" })] }, tmp),
          overlayDir: path.join(tmp, "out"),
        }),
      /service base: reusing version 0\.1\.0 needs its digest/,
    );
  });
});
