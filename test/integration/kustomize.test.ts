/**
 * lib/kustomize.ts with the real Kustomize (`kubectl kustomize`, through lib/kubectl.ts's
 * renderOverlay): a site overlay written over the example application's `dev` overlay renders
 * to digest-pinned images in the site's namespace, labelled with site, ring and release on
 * object metadata only; the manifests of test/fixtures/manifests, which name images the way teams
 * write them, render with every service's image by digest; and the planning step (prepareSite)
 * refuses an overlay whose image no service builds breaks the site's rules, before anything is
 * built.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { ConfigError } from "../../lib/config";
import { imageNameOwners, serviceImagesOf } from "../../lib/dockerfile";
import { kustomize, manifestObjects, renderOverlay } from "../../lib/kubectl";
import {
  ImagesPassCache,
  objectsRenderer,
  pinnedImages,
  renderSiteOverlay,
  writeSiteOverlay,
  type SiteOverlay,
} from "../../lib/kustomize";
import { prepareSite, readConfig } from "../../lib/site";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { useRegistry } from "./helpers/registry";

const DEV = path.resolve(__dirname, "../../app/deploy/overlays/dev");
const BACKEND = `sha256:${"a".repeat(64)}`;
const FRONTEND = `sha256:${"b".repeat(64)}`;
const BASE = `sha256:${"c".repeat(64)}`;

const SITE_LABELS = {
  "gitops-rings.io/site": "dev-developers",
  "gitops-rings.io/ring": "developers",
};

// Plain objects of the rendered YAML; only the fields these tests read are typed.
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    selector?: Record<string, unknown> & { matchLabels?: Record<string, string> };
    template?: {
      metadata?: { labels?: Record<string, string> };
      spec: {
        containers: { name: string; image: string }[];
        initContainers?: { image: string }[];
      };
    };
  };
}

const site = (over: Partial<SiteOverlay> = {}): SiteOverlay => ({
  environmentOverlay: DEV,
  namespace: "it-kustomize",
  site: "dev-developers",
  ring: "developers",
  release: "0.4.1",
  images: [
    { name: "backend", newName: "127.0.0.1:5001/example/backend", digest: BACKEND },
    { name: "frontend", newName: "127.0.0.1:5001/example/frontend", digest: FRONTEND },
    // A dependency no container names: Kustomize leaves the entry unused.
    { name: "base", newName: "127.0.0.1:5001/example/base", digest: BASE },
  ],
  ...over,
});

async function render(dir: string): Promise<K8sObject[]> {
  const { yaml } = await renderOverlay(dir);
  return parseAllDocuments(yaml).map((d) => d.toJS() as K8sObject);
}

describe("site overlay rendered by kubectl kustomize", function () {
  this.timeout(60_000);
  let tmp: string;
  let dir: string;
  let objects: K8sObject[];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-kustomize-"));
    dir = writeSiteOverlay(path.join(tmp, "sites", "dev-developers"), site());
    objects = await render(dir);
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("GIVEN the dev overlay WHEN rendered THEN it has exactly the Namespace, the ConfigMap, two Services and two Deployments", async () => {
    const ids = objects.map((o) => [o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name]);
    const configMap = objects.find((o) => o.kind === "ConfigMap")?.metadata.name ?? "";
    assert.match(configMap, /^example-config-[a-z0-9]{10}$/);
    assert.deepEqual(ids, [
      ["v1", "Namespace", undefined, "it-kustomize"],
      ["v1", "ConfigMap", "it-kustomize", configMap],
      ["v1", "Service", "it-kustomize", "backend"],
      ["v1", "Service", "it-kustomize", "frontend"],
      ["apps/v1", "Deployment", "it-kustomize", "backend"],
      ["apps/v1", "Deployment", "it-kustomize", "frontend"],
    ]);
    // renderOverlay's identities are the same, the Namespace without a namespace key.
    assert.deepEqual((await renderOverlay(dir)).objects, [
      { apiVersion: "v1", kind: "Namespace", name: "it-kustomize" },
      { apiVersion: "v1", kind: "ConfigMap", namespace: "it-kustomize", name: configMap },
      { apiVersion: "v1", kind: "Service", namespace: "it-kustomize", name: "backend" },
      { apiVersion: "v1", kind: "Service", namespace: "it-kustomize", name: "frontend" },
      { apiVersion: "apps/v1", kind: "Deployment", namespace: "it-kustomize", name: "backend" },
      { apiVersion: "apps/v1", kind: "Deployment", namespace: "it-kustomize", name: "frontend" },
    ]);
  });

  it("GIVEN pinned images WHEN rendered THEN every container image is <repository>@sha256:…", () => {
    const images = objects
      .filter((o) => o.spec?.template)
      .flatMap((o) => [
        ...o.spec!.template!.spec.containers,
        ...(o.spec!.template!.spec.initContainers ?? []),
      ])
      .map((c) => c.image);
    assert.deepEqual(images, [
      `127.0.0.1:5001/example/backend@${BACKEND}`,
      `127.0.0.1:5001/example/frontend@${FRONTEND}`,
    ]);
    for (const image of images) assert.match(image, /^[^@:]+(:\d+)?\/[^@]+@sha256:[0-9a-f]{64}$/);
  });

  it("GIVEN the site's labels WHEN rendered THEN every object's metadata carries site and ring, and the Namespace's the release too", () => {
    for (const o of objects) {
      const labels = o.metadata.labels ?? {};
      const own = Object.fromEntries(
        Object.entries(labels).filter(([k]) => k.startsWith("gitops-rings.io/")),
      );
      const release = o.kind === "Namespace" ? { "gitops-rings.io/release": "0.4.1" } : {};
      assert.deepEqual(own, { ...SITE_LABELS, ...release }, `${o.kind} ${o.metadata.name}`);
    }
  });

  it("GIVEN the site's labels WHEN rendered THEN no selector and no pod template has them", () => {
    const deployments = objects.filter((o) => o.kind === "Deployment");
    const services = objects.filter((o) => o.kind === "Service");
    assert.deepEqual(
      deployments.map((d) => [d.spec?.selector, d.spec?.template?.metadata?.labels]),
      [
        [
          { matchLabels: { "app.kubernetes.io/name": "backend" } },
          { "app.kubernetes.io/name": "backend" },
        ],
        [
          { matchLabels: { "app.kubernetes.io/name": "frontend" } },
          { "app.kubernetes.io/name": "frontend" },
        ],
      ],
    );
    assert.deepEqual(
      services.map((s) => s.spec?.selector),
      [{ "app.kubernetes.io/name": "backend" }, { "app.kubernetes.io/name": "frontend" }],
    );
  });

  it("GIVEN an unchanged overlay WHEN written again THEN neither file is rewritten (mtimes stay)", () => {
    const past = new Date("2020-01-02T03:04:05Z");
    for (const f of ["kustomization.yaml", "namespace.yaml"])
      fs.utimesSync(path.join(dir, f), past, past);
    assert.equal(writeSiteOverlay(dir, site()), dir);
    assert.deepEqual(
      ["kustomization.yaml", "namespace.yaml"].map((f) => fs.statSync(path.join(dir, f)).mtimeMs),
      [past.getTime(), past.getTime()],
    );
  });

  it("GIVEN a new release WHEN written THEN only namespace.yaml is rewritten and only the Namespace changes, with the new label (issue 10: a release re-applies what changed, not every object)", async () => {
    const other = fs.mkdtempSync(path.join(tmp, "release-"));
    writeSiteOverlay(other, site());
    const past = new Date("2020-01-02T03:04:05Z");
    for (const f of ["kustomization.yaml", "namespace.yaml"])
      fs.utimesSync(path.join(other, f), past, past);
    writeSiteOverlay(other, site({ release: "0.5.0" }));
    assert.equal(fs.statSync(path.join(other, "kustomization.yaml")).mtimeMs, past.getTime());
    assert.notEqual(fs.statSync(path.join(other, "namespace.yaml")).mtimeMs, past.getTime());
    const before = await render(dir);
    const after = await render(other);
    const changed = after.filter((o, i) => JSON.stringify(o) !== JSON.stringify(before[i]));
    assert.deepEqual(
      changed.map((o) => [o.kind, o.metadata.labels?.["gitops-rings.io/release"]]),
      [["Namespace", "0.5.0"]],
    );
  });

  it("GIVEN an await timeout (the @pulumi/kubernetes path) WHEN rendered THEN each Deployment's own metadata has pulumi.com/timeoutSeconds and its pod template, Services and ConfigMap do not", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "await-"));
    writeSiteOverlay(dir, site({ awaitTimeoutSeconds: 900 }));
    const rendered = (await render(dir)) as (K8sObject & {
      metadata: { annotations?: Record<string, string> };
      spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
    })[];
    const annotated = rendered
      .filter((o) => o.metadata.annotations?.["pulumi.com/timeoutSeconds"] === "900")
      .map((o) => `${o.kind}/${o.metadata.name}`)
      .sort();
    assert.deepEqual(annotated, ["Deployment/backend", "Deployment/frontend"]);
    for (const o of rendered) {
      assert.equal(
        o.spec?.template?.metadata?.annotations?.["pulumi.com/timeoutSeconds"],
        undefined,
      );
    }
  });

  it("GIVEN a namespace, site and ring YAML 1.1 reads as booleans WHEN rendered THEN they stay strings", async () => {
    const odd = writeSiteOverlay(
      fs.mkdtempSync(path.join(tmp, "yaml11-")),
      site({ namespace: "no", site: "yes", ring: "on" }),
    );
    const rendered = await render(odd);
    assert.deepEqual(
      rendered.map((o) => [o.kind, o.metadata.namespace ?? o.metadata.name]),
      [
        ["Namespace", "no"],
        ["ConfigMap", "no"],
        ["Service", "no"],
        ["Service", "no"],
        ["Deployment", "no"],
        ["Deployment", "no"],
      ],
    );
    for (const o of rendered) {
      assert.equal(o.metadata.labels?.["gitops-rings.io/site"], "yes");
      assert.equal(o.metadata.labels?.["gitops-rings.io/ring"], "on");
    }
  });
});

const FIXTURE = path.resolve(__dirname, "../fixtures/manifests");

/** Mocha hooks: a temp dir made before the suite's tests and removed after them. */
function useTmpDir(prefix: string): () => string {
  let dir = "";
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}
const API = `sha256:${"1".repeat(64)}`;
const WORKER = `sha256:${"2".repeat(64)}`;

/** Every container of the rendered objects as `<Kind>/<name> <field> <container>: <image>`. */
function containers(objects: K8sObject[]): string[] {
  type Spec = Record<string, { name: string; image: string }[] | undefined>;
  return objects.flatMap((o) => {
    const any = o as unknown as {
      spec?: { template?: { spec?: Spec }; jobTemplate?: { spec: { template: { spec: Spec } } } };
    };
    const spec = any.spec?.jobTemplate?.spec.template.spec ?? any.spec?.template?.spec;
    if (!spec) return [];
    return ["initContainers", "containers"].flatMap((field) =>
      (spec[field] ?? []).map((c) => `${o.kind}/${o.metadata.name} ${field} ${c.name}: ${c.image}`),
    );
  });
}

/**
 * The fixture's two services pinned under every name its manifests may use (the site-registry
 * environment's config, registry 127.0.0.1:5001).
 */
function ledgerImages(worker = WORKER) {
  const { repo } = readConfig(FIXTURE, "site-registry-developers", {
    "gitops-rings:ring": "developers",
    "gitops-rings:environment": "site-registry",
    "gitops-rings:registry": "127.0.0.1:5001",
  });
  return pinnedImages(
    {
      api: { repository: "127.0.0.1:5001/ledger/api", digest: API },
      worker: { repository: "127.0.0.1:5001/ledger/jobs/worker", digest: worker },
    },
    Object.fromEntries(imageNameOwners(serviceImagesOf(repo, "127.0.0.1:5001"))),
  );
}

describe("manifests that name images the way teams write them (issue 7 item 14)", function () {
  this.timeout(60_000);
  const tmp = useTmpDir("gitops-rings-manifests-");

  it("GIVEN <project>/<image>, the repository with a tag, the site registry's repository, an alias and the service name WHEN rendered THEN each is <repository>@<digest>, init containers and CronJobs included", async () => {
    const dir = writeSiteOverlay(path.join(tmp(), "site-registry"), {
      environmentOverlay: path.join(FIXTURE, "deploy/overlays/site-registry"),
      namespace: "it-manifests",
      site: "site-registry-developers",
      ring: "developers",
      release: "0.1.0",
      images: ledgerImages(),
    });
    const api = `127.0.0.1:5001/ledger/api@${API}`;
    const worker = `127.0.0.1:5001/ledger/jobs/worker@${WORKER}`;
    assert.deepEqual(containers(await render(dir)).sort(), [
      `CronJob/settle containers settle: ${worker}`,
      `CronJob/settle initContainers wait: ${worker}`,
      `Deployment/api containers api: ${api}`,
      `Deployment/api containers sidecar: ${worker}`,
      `Deployment/api initContainers migrate: ${api}`,
      `Job/reports containers reports: ${worker}`,
    ]);
  });

  it("GIVEN names written every way, a foreign image by tag, its annotation and an extra image field WHEN rendered in images passes of 1, 2 and 40 objects THEN the YAML is exactly kubectl kustomize's one render of the written overlay, and through a renderer of objects the objects are (issue 10)", async () => {
    const redis = `sha256:${"3".repeat(64)}`;
    const overlay: SiteOverlay = {
      environmentOverlay: path.join(FIXTURE, "deploy/overlays/bad"),
      namespace: "it-passes",
      site: "bad-developers",
      ring: "developers",
      release: "0.2.0",
      images: ledgerImages(),
      foreign: {
        pins: [{ reference: "redis:7.4", name: "redis", digest: redis }],
        annotations: [
          {
            object: { apiVersion: "apps/v1", kind: "Deployment", name: "cache" },
            value: `redis:7.4=redis@${redis}`,
          },
        ],
        fields: [{ path: "spec/template/metadata/annotations/sidecar-image", kind: "Deployment" }],
      },
    };
    const whole = await kustomize(writeSiteOverlay(path.join(tmp(), "whole"), overlay));
    assert.match(whole, new RegExp(`redis@${redis}`));
    assert.match(whole, new RegExp(`127.0.0.1:5001/ledger/jobs/worker@${WORKER}`));
    for (const objectsPerPass of [1, 2, 40]) {
      const dir = path.join(tmp(), `passes-${objectsPerPass}`);
      const yaml = await renderSiteOverlay(dir, overlay, (d) => kustomize(d), { objectsPerPass });
      assert.equal(yaml, whole, `${objectsPerPass} objects per pass`);
      // The directory holds the whole overlay, for `kubectl kustomize <dir>` to read.
      assert.equal(await kustomize(dir), whole);
    }
    // The provider path's renderer returns objects; its passes read them back as JSON.
    const objects = objectsRenderer(async (d) => manifestObjects(await kustomize(d)));
    const passes = await renderSiteOverlay(path.join(tmp(), "objects"), overlay, objects, {
      objectsPerPass: 2,
    });
    assert.deepEqual(manifestObjects(passes), manifestObjects(whole));
  });

  it("GIVEN a cache of images passes WHEN the overlay is rendered again with one service's digest changed THEN only the passes that name that service are rendered again, and the YAML is still kubectl kustomize's one render (issue 10)", async () => {
    const overlay = (worker: string): SiteOverlay => ({
      environmentOverlay: path.join(FIXTURE, "deploy/overlays/site-registry"),
      namespace: "it-pass-cache",
      site: "site-registry-developers",
      ring: "developers",
      release: "0.1.0",
      images: ledgerImages(worker),
    });
    const passes = new ImagesPassCache();
    let renders = 0;
    const render = (o: SiteOverlay) =>
      renderSiteOverlay(
        path.join(tmp(), `cache-${renders}`),
        o,
        (d) => {
          renders++;
          return kustomize(d);
        },
        { objectsPerPass: 1, passes },
      );
    const worker2 = `sha256:${"9".repeat(64)}`;
    const check = async (o: SiteOverlay) => {
      const before = renders;
      const yaml = await render(o);
      assert.equal(yaml, await kustomize(writeSiteOverlay(path.join(tmp(), "one-step"), o)));
      return renders - before;
    };
    const first = await check(overlay(WORKER));
    const again = await check(overlay(WORKER));
    const changed = await check(overlay(worker2));
    // One render of the overlay without images each time, then the passes not yet seen.
    assert.ok(first > 2, `${first} renders`);
    assert.equal(again, 1);
    assert.ok(changed > 1 && changed < first, `${changed} renders after ${first}`);
  });

  describe("the planning step (prepareSite)", () => {
    const registry = useRegistry();
    const plan = (environment: string, images?: unknown) =>
      prepareSite({
        root: FIXTURE,
        stack: `${environment}-developers`,
        config: readConfig(FIXTURE, `${environment}-developers`, {
          "gitops-rings:ring": "developers",
          "gitops-rings:environment": environment,
          "gitops-rings:registry": registry().host,
          ...(images !== undefined ? { "gitops-rings:images": JSON.stringify(images) } : {}),
        }),
        env: { GITOPS_RINGS_PLATFORM: "local" },
      });
    const catalog = async () =>
      ((await (await fetch(`${registry().url}/v2/_catalog`)).json()) as { repositories: string[] })
        .repositories;

    it("GIVEN an overlay whose images are all services' WHEN planned THEN the plan builds both services and carries every accepted name", async () => {
      const site = await plan("good");
      assert.deepEqual(
        site.services.map((s) => [s.service, s.action]),
        [
          ["api", "build"],
          ["worker", "build"],
        ],
      );
      assert.equal(site.imageNames?.["legacy.example.com/payments/worker"], "worker");
      assert.equal(site.imageNames?.["ledger/api"], "api");
      assert.equal(site.imageNames?.[`${registry().host}/ledger/jobs/worker`], "worker");
    });

    it("GIVEN an overlay with an image by tag from a registry the site does not allow WHEN planned THEN it throws the overlay, object, container, image and key, and the registry got nothing", async () => {
      // Resolving images no service builds is test/integration/foreign-images.test.ts's; here the
      // site's rule refuses redis (Docker Hub) before any registry is asked.
      await assert.rejects(
        plan("bad", { allowedRegistries: [registry().host] }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
          assert.equal(
            err.message,
            'deploy/overlays/bad: Deployment/ledger-bad-developers/cache: container redis: "redis:7.4" ' +
              "is from docker.io/library/redis, which stacks/Pulumi.bad-developers.yaml: " +
              `gitops-rings:images.allowedRegistries does not list (${registry().host})`,
          );
          return true;
        },
      );
      assert.deepEqual(await catalog(), []);
    });
  });
});

/**
 * A Pulumi project in a temp dir whose program declares a Site straight from a plan, so that
 * its overlay reaches the deploy without the planning step's check, as an overlay changed
 * between plan and deploy would.
 */
const BAD_SITE = { "gitops-rings:ring": "developers", "gitops-rings:environment": "bad" };

function siteProject(dir: string, overlay: string): void {
  const root = path.resolve(__dirname, "../..");
  for (const entry of ["components", "lib", "package.json", "tsconfig.json"]) {
    fs.cpSync(path.join(root, entry), path.join(dir, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"));
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    "name: deploy-check\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n",
  );
  const plan = {
    site: "bad-developers",
    project: "ledger",
    registry: "127.0.0.1:5001",
    ring: "developers",
    rings: ["developers"],
    nextRing: "post",
    environment: { name: "bad", overlay, namespace: "it-deploy-check" },
    build: false,
    builder: { kind: "buildctl", addr: "tcp://127.0.0.1:1" },
    deployer: { kind: "kubectl" },
    services: [],
    release: { repository: "127.0.0.1:5001/ledger/release", action: "reuse", version: "0.1.0" },
    deploy: {
      release: "0.1.0",
      images: Object.fromEntries(
        ["api", "jobs/worker"].map((image) => [
          image.replace("jobs/", ""),
          { repository: `127.0.0.1:5001/ledger/${image}`, digest: API, sources: [], why: "test" },
        ]),
      ),
    },
    table: "",
    imageNames: Object.fromEntries(
      imageNameOwners(serviceImagesOf(readConfig(FIXTURE, "x", BAD_SITE).repo, "127.0.0.1:5001")),
    ),
  };
  fs.writeFileSync(
    path.join(dir, "index.ts"),
    `import { Site } from "./components/site/site";\n` +
      `new Site("bad-developers", { plan: ${JSON.stringify(plan)} as never });\n`,
  );
}

describe("the deploy's second check (a Pulumi update with the local platform's applier)", function () {
  this.timeout(300_000);
  const tmp = useTmpDir("gitops-rings-deploy-check-");

  it("GIVEN an overlay with an image by tag that reaches the deploy WHEN updated THEN the update fails with the message alone: no stack trace, no 'error serializing property'", async () => {
    const project = path.join(tmp(), "project");
    fs.mkdirSync(project);
    siteProject(project, path.join(FIXTURE, "deploy/overlays/bad"));
    const state = path.join(tmp(), "state");
    fs.mkdirSync(state);
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: "bad-developers", workDir: project },
      {
        envVars: {
          PULUMI_BACKEND_URL: `file://${state}`,
          PULUMI_CONFIG_PASSPHRASE: "deploy-check",
          GITOPS_RINGS_PLATFORM: "local",
        },
      },
    );
    let output = "";
    await assert.rejects(stack.up({ onOutput: (o) => (output += o) }), (err: Error) => {
      output += err.message;
      return true;
    });
    assert.match(
      output,
      /error: refusing to apply manifests with images that are neither a service's nor pinned by digest/,
    );
    // Only the image no service builds: every name of a service's image was pinned.
    assert.match(
      output,
      /with any tag or none\):\n\s*Deployment\/it-deploy-check\/cache: container redis: "redis:7\.4"\n(?!\s*(Deployment|CronJob)\/)/,
    );
    assert.doesNotMatch(output, /error serializing property/);
    assert.doesNotMatch(output, /^\s+at .+:\d+:\d+\)?$/m, "no stack frame");
  });
});
