/**
 * lib/kustomize.ts with the real Kustomize (`kubectl kustomize`, through lib/kubectl.ts's
 * renderOverlay): a site overlay written over the example application's `dev` overlay renders
 * to digest-pinned images in the site's namespace, labelled with site, ring and release on
 * object metadata only.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { renderOverlay } from "../../lib/kubectl";
import { writeSiteOverlay, type SiteOverlay } from "../../lib/kustomize";

const DEV = path.resolve(__dirname, "../../app/deploy/overlays/dev");
const BACKEND = `sha256:${"a".repeat(64)}`;
const FRONTEND = `sha256:${"b".repeat(64)}`;
const BASE = `sha256:${"c".repeat(64)}`;

const SITE_LABELS = {
  "gitops-rings.io/site": "dev-developers",
  "gitops-rings.io/ring": "developers",
  "gitops-rings.io/release": "0.4.1",
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

  it("GIVEN the site's labels WHEN rendered THEN every object's metadata carries them with their values", () => {
    for (const o of objects) {
      const labels = o.metadata.labels ?? {};
      const own = Object.fromEntries(
        Object.entries(labels).filter(([k]) => k.startsWith("gitops-rings.io/")),
      );
      assert.deepEqual(own, SITE_LABELS, `${o.kind} ${o.metadata.name}`);
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

  it("GIVEN a new release WHEN written THEN only kustomization.yaml is rewritten and the render has the new label", async () => {
    const other = fs.mkdtempSync(path.join(tmp, "release-"));
    writeSiteOverlay(other, site());
    const past = new Date("2020-01-02T03:04:05Z");
    for (const f of ["kustomization.yaml", "namespace.yaml"])
      fs.utimesSync(path.join(other, f), past, past);
    writeSiteOverlay(other, site({ release: "0.5.0" }));
    assert.notEqual(fs.statSync(path.join(other, "kustomization.yaml")).mtimeMs, past.getTime());
    assert.equal(fs.statSync(path.join(other, "namespace.yaml")).mtimeMs, past.getTime());
    const releases = (await render(other)).map(
      (o) => o.metadata.labels?.["gitops-rings.io/release"],
    );
    assert.deepEqual(releases, Array(6).fill("0.5.0"));
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
