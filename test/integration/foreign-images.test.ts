/**
 * Images a site deploys that no service builds (issue 12; seed 002, kbld), with the real
 * registry (Distribution 2.8), the real Kustomize (`kubectl kustomize`) and the local
 * platform's API server: the planning step (prepareSite) resolves every such image by tag to
 * its digest (an index's own digest for a multi-platform image), checks images by digest
 * exist, applies the site's rules, and fails naming the object, container and reference before
 * anything is pushed; the overlay it plans pins them exactly as written and annotates their
 * objects; a tag moved upstream shows in the next plan and is applied by the next deploy.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { parse, parseAllDocuments, stringify } from "yaml";
import { ConfigError } from "../../lib/config";
import { IMAGES_ANNOTATION, type ForeignImage } from "../../lib/images";
import { applyManifests, deleteObjects, kubectl, renderOverlay } from "../../lib/kubectl";
import { pinnedImages, writeSiteOverlay } from "../../lib/kustomize";
import { RegistryClient, type Descriptor } from "../../lib/registry";
import { prepareSite, readConfig, type SitePlan } from "../../lib/site";
import { freePort, useRegistry } from "./helpers/registry";
import { tarOf } from "./helpers/images";

const FIXTURE = path.resolve(__dirname, "../fixtures/manifests");

/** A random suffix, so that namespaces and directories do not collide with other runs. */
const RUN = randomBytes(4).toString("hex");

/** An environment's namespace; a site's is suffixed with its ring. */
const environmentNamespace = (environment: string) => `it-foreign-${RUN}-${environment}`;
const namespaceOf = (environment: string) => `${environmentNamespace(environment)}-developers`;

/** Objects as the tests read them. */
interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** The manifests of the `foreign` environment: every place an image no service builds hides. */
function foreignManifests(host: string, agentDigest: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      initContainers:
        - { name: migrate, image: "${host}/vendor/migrate:2.1" }
      containers:
        - { name: api, image: "ledger/api:1.4" }
        - { name: proxy, image: "${host}/vendor/proxy:1.0" }
        - { name: multi, image: "${host}/vendor/multi:1.0" }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent }
spec:
  selector: { matchLabels: { app: agent } }
  template:
    metadata: { labels: { app: agent } }
    spec:
      containers:
        - { name: agent, image: "${host}/vendor/agent@${agentDigest}" }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: flush }
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - { name: flush, image: "${host}/vendor/cache:7.4" }
`;
}

/** A custom resource that keeps images where only the site's `images.fields` finds them. */
function runnerManifest(host: string): string {
  return `apiVersion: ci.example.com/v1
kind: Runner
metadata: { name: nightly }
spec:
  steps:
    - { name: warm, image: "${host}/vendor/cache:7.4" }
    - { name: report, image: "${host}/vendor/proxy" }
`;
}

/** A version repository in a temp dir: test/fixtures/manifests plus the given overlays. */
function versionRepo(dir: string, overlays: Record<string, Record<string, string>>): void {
  fs.cpSync(FIXTURE, dir, { recursive: true });
  const config = parse(fs.readFileSync(path.join(dir, "gitops-rings.yaml"), "utf8"));
  for (const [name, files] of Object.entries(overlays)) {
    const overlay = path.join(dir, "deploy/overlays", name);
    fs.mkdirSync(overlay, { recursive: true });
    const resources = ["../../base", ...Object.keys(files)];
    fs.writeFileSync(
      path.join(overlay, "kustomization.yaml"),
      stringify({
        apiVersion: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources,
      }),
    );
    for (const [file, text] of Object.entries(files)) {
      fs.writeFileSync(path.join(overlay, file), text);
    }
    config.environments[name] = {
      overlay: `deploy/overlays/${name}`,
      namespace: environmentNamespace(name),
    };
  }
  fs.writeFileSync(path.join(dir, "gitops-rings.yaml"), stringify(config));
}

describe("images no service builds (issue 12)", function () {
  this.timeout(120_000);
  const registry = useRegistry();
  const client = new RegistryClient({ dockerConfig: false });
  let tmp: string;
  let host: string;
  /** Digests as pushed, by reference. */
  const pushed: Record<string, string> = {};
  let closedPort: number;

  /** Pushes a one-layer image; with `tag`, puts (or moves, as an upstream re-push does) it. */
  async function push(repository: string, content: string, tag?: string): Promise<string> {
    const image = await client.pushImage(`${host}/${repository}`, {
      layers: [tarOf({ "content.txt": content })],
    });
    if (tag !== undefined)
      await client.moveTag(`${host}/${repository}`, tag, image.descriptor.digest);
    return image.descriptor.digest;
  }

  before(async () => {
    host = registry().host;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-foreign-"));
    pushed.cache = await push("vendor/cache", "cache 7.4", "7.4");
    pushed.proxy = await push("vendor/proxy", "proxy 1.0", "1.0");
    pushed.proxyLatest = await push("vendor/proxy", "proxy latest", "latest");
    pushed.migrate = await push("vendor/migrate", "migrate 2.1", "2.1");
    pushed.agent = await push("vendor/agent", "agent");
    // A multi-platform image: the index for amd64 and arm64, whose own digest is deployed.
    const platforms: Descriptor[] = [];
    for (const [architecture, variant] of [["amd64"], ["arm64", "v8"]] as const) {
      const p = await client.pushImage(`${host}/vendor/multi`, {
        layers: [tarOf({ "arch.txt": architecture })],
        platform: { os: "linux", architecture, ...(variant ? { variant } : {}) },
      });
      platforms.push(p.descriptor);
    }
    pushed.multi = (
      await client.pushIndex(`${host}/vendor/multi`, platforms, { tag: "1.0" })
    ).descriptor.digest;
    // An index without the services' platform (linux/amd64).
    const arm = await client.pushImage(`${host}/vendor/armonly`, {
      layers: [tarOf({ "arch.txt": "arm64" })],
      platform: { os: "linux", architecture: "arm64" },
    });
    await client.pushIndex(`${host}/vendor/armonly`, [arm.descriptor], { tag: "1.0" });
    closedPort = await freePort();
    versionRepo(tmp, {
      foreign: {
        "foreign.yaml": foreignManifests(host, pushed.agent),
        "runner.yaml": runnerManifest(host),
      },
      missing: {
        "missing.yaml": foreignManifests(host, pushed.agent)
          .replace(`${host}/vendor/cache:7.4`, `${host}/vendor/cache:9.9`)
          .replace(`vendor/agent@${pushed.agent}`, `vendor/agent@sha256:${"e".repeat(64)}`),
      },
      closed: {
        "closed.yaml": foreignManifests(host, pushed.agent).replace(
          `${host}/vendor/proxy:1.0`,
          `127.0.0.1:${closedPort}/vendor/proxy:1.0`,
        ),
      },
      applied: { "foreign.yaml": foreignManifests(host, pushed.agent) },
      armonly: {
        "armonly.yaml": foreignManifests(host, pushed.agent).replace(
          `${host}/vendor/multi:1.0`,
          `${host}/vendor/armonly:1.0`,
        ),
      },
    });
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const RUNNER_FIELD = { kind: "Runner", group: "ci.example.com", path: "spec/steps[]/image" };

  /** The plan of a building site of `environment`, with `images` site config. */
  const plan = (environment: string, images?: unknown, previousImages = {}) => {
    const stack = `${environment}-developers`;
    return prepareSite({
      root: tmp,
      stack,
      config: readConfig(tmp, stack, {
        "gitops-rings:ring": "developers",
        "gitops-rings:environment": environment,
        "gitops-rings:registry": host,
        ...(images !== undefined ? { "gitops-rings:images": JSON.stringify(images) } : {}),
      }),
      env: { GITOPS_RINGS_PLATFORM: "local", KUBECONFIG: process.env.KUBECONFIG },
      client,
      previousImages,
    });
  };

  /** Every repository the registry holds: what "nothing was pushed" compares. */
  const catalog = async () => (await client.listRepositories(host)).sort();

  /** The site's overlay as the Site component writes it, rendered. */
  async function renderPlan(site: SitePlan, digests: Record<string, string> = {}) {
    const dir = writeSiteOverlay(path.join(tmp, "sites", `${site.site}-${RUN}`), {
      environmentOverlay: site.environment.overlay,
      namespace: site.environment.namespace,
      site: site.site,
      ring: site.ring,
      release: site.release.version,
      images: pinnedImages(
        Object.fromEntries(
          site.services.map((s) => [
            s.service,
            { repository: s.repository, digest: digests[s.service] ?? `sha256:${"1".repeat(64)}` },
          ]),
        ),
        site.imageNames,
      ),
      ...(site.foreign ? { foreign: site.foreign } : {}),
    });
    return (await renderOverlay(dir)).yaml;
  }

  const objectsOf = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS() as K8sObject);

  it("GIVEN a sidecar, an initContainer, a CronJob and a custom resource by tag, an image by digest and a multi-platform index WHEN planned THEN each resolves to the registry's digest, the index to its own, and the outputs record origin, registry and uses", async () => {
    const site = await plan("foreign", { fields: [RUNNER_FIELD] });
    const images = site.foreignImages as Record<string, ForeignImage>;
    const ns = site.environment.namespace;
    assert.deepEqual(Object.keys(images), [
      `${host}/vendor/agent@${pushed.agent}`,
      `${host}/vendor/cache:7.4`,
      `${host}/vendor/migrate:2.1`,
      `${host}/vendor/multi:1.0`,
      `${host}/vendor/proxy`,
      `${host}/vendor/proxy:1.0`,
    ]);
    assert.deepEqual(images[`${host}/vendor/cache:7.4`], {
      reference: `${host}/vendor/cache:7.4`,
      registry: host,
      repository: `${host}/vendor/cache`,
      tag: "7.4",
      digest: pushed.cache,
      image: `${host}/vendor/cache@${pushed.cache}`,
      usedBy: [
        `CronJob/${ns}/flush: container flush`,
        `Runner/${ns}/nightly: field spec/steps[0]/image`,
      ],
    });
    assert.equal(images[`${host}/vendor/proxy:1.0`].digest, pushed.proxy);
    assert.equal(images[`${host}/vendor/proxy`].tag, "latest");
    assert.equal(images[`${host}/vendor/proxy`].digest, pushed.proxyLatest);
    assert.deepEqual(images[`${host}/vendor/migrate:2.1`].usedBy, [
      `Deployment/${ns}/web: init container migrate`,
    ]);
    assert.equal(images[`${host}/vendor/multi:1.0`].digest, pushed.multi);
    assert.deepEqual(images[`${host}/vendor/agent@${pushed.agent}`], {
      reference: `${host}/vendor/agent@${pushed.agent}`,
      registry: host,
      repository: `${host}/vendor/agent`,
      digest: pushed.agent,
      image: `${host}/vendor/agent@${pushed.agent}`,
      usedBy: [`DaemonSet/${ns}/agent: container agent`],
    });
    // The service's image is the service's, not resolved as a foreign one.
    assert.ok(!Object.keys(images).some((r) => r.includes("ledger/api")));
    // Preview's table: the tag, the digest it resolves to, and that it is new to this site.
    assert.match(
      site.table,
      new RegExp(
        `\\n\\nImages no service builds \\(resolved in the planning step\\)\\nIMAGE +TAG +DIGEST +CHANGE\\n`,
      ),
    );
    assert.match(
      site.table,
      new RegExp(`${host}/vendor/cache:7\\.4 +7\\.4 +${pushed.cache}  new\\n`),
    );
    assert.match(
      site.table,
      new RegExp(`vendor/agent@${pushed.agent} +\\(digest\\) +${pushed.agent}  new`),
    );
  });

  it("GIVEN the planned overlay WHEN rendered by Kustomize THEN every foreign reference is at its digest exactly where written, the by-digest one untouched, and each object with a resolved image carries the origins annotation", async () => {
    const site = await plan("foreign", { fields: [RUNNER_FIELD] });
    const objects = objectsOf(await renderPlan(site));
    const byName = Object.fromEntries(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
    const podSpec = (o: K8sObject) =>
      (o.spec as { template: { spec: Record<string, { name: string; image: string }[]> } }).template
        .spec;
    const web = podSpec(byName["Deployment/web"]);
    assert.deepEqual(
      [...web.initContainers, ...web.containers].map((c) => [c.name, c.image]),
      [
        ["migrate", `${host}/vendor/migrate@${pushed.migrate}`],
        ["api", `${host}/ledger/api@sha256:${"1".repeat(64)}`],
        ["proxy", `${host}/vendor/proxy@${pushed.proxy}`],
        ["multi", `${host}/vendor/multi@${pushed.multi}`],
      ],
    );
    assert.deepEqual(
      podSpec(byName["DaemonSet/agent"]).containers[0].image,
      `${host}/vendor/agent@${pushed.agent}`,
    );
    const runner = byName["Runner/nightly"].spec as { steps: { image: string }[] };
    // `vendor/proxy` (latest) and `vendor/proxy:1.0` are two references: each gets its own digest.
    assert.deepEqual(
      runner.steps.map((s) => s.image),
      [`${host}/vendor/cache@${pushed.cache}`, `${host}/vendor/proxy@${pushed.proxyLatest}`],
    );
    assert.deepEqual(
      JSON.parse(byName["Deployment/web"].metadata.annotations?.[IMAGES_ANNOTATION] ?? "null"),
      [
        { origin: `${host}/vendor/migrate:2.1`, image: `${host}/vendor/migrate@${pushed.migrate}` },
        { origin: `${host}/vendor/multi:1.0`, image: `${host}/vendor/multi@${pushed.multi}` },
        { origin: `${host}/vendor/proxy:1.0`, image: `${host}/vendor/proxy@${pushed.proxy}` },
      ],
    );
    assert.deepEqual(
      JSON.parse(byName["CronJob/flush"].metadata.annotations?.[IMAGES_ANNOTATION] ?? "null"),
      [{ origin: `${host}/vendor/cache:7.4`, image: `${host}/vendor/cache@${pushed.cache}` }],
    );
    // Written by digest: nothing was resolved, so no origin to record.
    assert.equal(byName["DaemonSet/agent"].metadata.annotations?.[IMAGES_ANNOTATION], undefined);
    assert.equal(byName["Deployment/api"].metadata.annotations?.[IMAGES_ANNOTATION], undefined);
  });

  it("GIVEN a tag that does not exist and a digest the registry lacks WHEN planned THEN it fails naming overlay, object, container and reference, and nothing is pushed", async () => {
    const before = await catalog();
    await assert.rejects(plan("missing"), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
      const ns = namespaceOf("missing");
      assert.equal(
        err.message,
        [
          `deploy/overlays/missing: DaemonSet/${ns}/agent: container agent: "${host}/vendor/agent@sha256:${"e".repeat(64)}": ${host}/vendor/agent has no manifest sha256:${"e".repeat(64)}`,
          `deploy/overlays/missing: CronJob/${ns}/flush: container flush: "${host}/vendor/cache:9.9": ${host}/vendor/cache has no tag 9.9`,
        ].join("\n"),
      );
      assert.doesNotMatch(err.message, /\n\s+at /);
      return true;
    });
    assert.deepEqual(await catalog(), before);
  });

  it("GIVEN a registry that does not answer (a closed port) WHEN planned THEN it fails naming the object, container, reference and the unreachable registry", async () => {
    await assert.rejects(plan("closed"), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
      const ns = namespaceOf("closed");
      assert.match(
        err.message,
        new RegExp(
          `^deploy/overlays/closed: Deployment/${ns}/web: container proxy: "127\\.0\\.0\\.1:${closedPort}/vendor/proxy:1\\.0": ` +
            `registry 127\\.0\\.0\\.1:${closedPort} unreachable \\(no response after \\d+ attempts: ECONNREFUSED\\)$`,
        ),
      );
      return true;
    });
  });

  it("GIVEN an index without the services' platform WHEN planned THEN it fails naming the reference and the platforms the index has", async () => {
    await assert.rejects(plan("armonly"), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /Deployment\/[\w-]+\/web: container multi: "[\d.:]+\/vendor\/armonly:1\.0": index sha256:[a-f0-9]{64} has no linux\/amd64 manifest \(has: linux\/arm64\)/,
      );
      return true;
    });
  });

  it("GIVEN requireDigest true WHEN planned THEN every reference by tag is refused naming object, container, reference and the key; the one by digest passes", async () => {
    await assert.rejects(plan("foreign", { requireDigest: true }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const lines = err.message.split("\n");
      assert.equal(lines.length, 4, err.message);
      const ns = namespaceOf("foreign");
      assert.ok(
        lines.includes(
          `deploy/overlays/foreign: CronJob/${ns}/flush: container flush: "${host}/vendor/cache:7.4" is by tag, ` +
            `and stacks/Pulumi.foreign-developers.yaml: gitops-rings:images.requireDigest is true: write it by digest (<name>@sha256:…)`,
        ),
        err.message,
      );
      assert.ok(!err.message.includes("vendor/agent"), err.message);
      return true;
    });
  });

  it("GIVEN requireDigest for one registry and allowedRegistries without it WHEN planned THEN tags from that registry, and anything from outside the allowed ones, are refused", async () => {
    const ns = namespaceOf("foreign");
    await assert.rejects(
      plan("foreign", { requireDigest: [`${host}/vendor/proxy`] }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          `deploy/overlays/foreign: Deployment/${ns}/web: container proxy: "${host}/vendor/proxy:1.0" is by tag, ` +
            `and stacks/Pulumi.foreign-developers.yaml: gitops-rings:images.requireDigest lists ${host}/vendor/proxy: ` +
            `write it by digest (<name>@sha256:…)`,
        );
        return true;
      },
    );
    await assert.rejects(plan("foreign", { allowedRegistries: ["docker.io"] }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        new RegExp(
          `DaemonSet/[\\w-]+/agent: container agent: "${host}/vendor/agent@${pushed.agent}" is from ${host}/vendor/agent, ` +
            `which stacks/Pulumi\\.foreign-developers\\.yaml: gitops-rings:images\\.allowedRegistries does not list \\(docker\\.io\\)`,
        ),
      );
      return true;
    });
    const allowed = await plan("foreign", { allowedRegistries: [host] });
    assert.equal(Object.keys(allowed.foreignImages ?? {}).length, 5);
  });

  describe("a tag moved upstream, with the local platform's applier", () => {
    let namespace = "";
    let applied: Awaited<ReturnType<typeof applyManifests>> = [];
    after(async () => {
      await deleteObjects(applied);
    });

    it("GIVEN a deployed site WHEN a tag is re-pushed to a new digest THEN the next plan marks it changed and the next deploy runs the new digest, recording both", async () => {
      const first = await plan("applied");
      namespace = first.environment.namespace;
      applied = await applyManifests(await renderPlan(first), [], {});
      const running = async () => {
        const out = await kubectl({}, ["get", "deployment", "web", "-n", namespace, "-o", "json"]);
        const d = JSON.parse(out) as {
          metadata: { annotations: Record<string, string> };
          spec: { template: { spec: { containers: { name: string; image: string }[] } } };
        };
        return {
          proxy: d.spec.template.spec.containers.find((c) => c.name === "proxy")?.image,
          annotation: JSON.parse(d.metadata.annotations[IMAGES_ANNOTATION]) as {
            origin: string;
            image: string;
          }[],
        };
      };
      assert.equal((await running()).proxy, `${host}/vendor/proxy@${pushed.proxy}`);

      const moved = await push("vendor/proxy", "proxy 1.0, rebuilt upstream", "1.0");
      const second = await plan("applied", undefined, first.foreignImages);
      assert.equal(second.foreignImages?.[`${host}/vendor/proxy:1.0`].digest, moved);
      assert.match(
        second.table,
        new RegExp(
          `${host}/vendor/proxy:1\\.0 +1\\.0 +${moved}  digest changed \\(was ${pushed.proxy}\\)`,
        ),
      );
      assert.match(
        second.table,
        new RegExp(`${host}/vendor/cache:7\\.4 +7\\.4 +${pushed.cache}  unchanged`),
      );

      applied = await applyManifests(await renderPlan(second), applied, {});
      const now = await running();
      assert.equal(now.proxy, `${host}/vendor/proxy@${moved}`);
      assert.deepEqual(
        now.annotation.find((a) => a.origin === `${host}/vendor/proxy:1.0`),
        { origin: `${host}/vendor/proxy:1.0`, image: `${host}/vendor/proxy@${moved}` },
      );
      pushed.proxy = moved;
    });
  });
});
