/**
 * End to end on the local platform: the real Pulumi engine (CLI + nodejs language host, through
 * the Automation API), the real BuildKit, registry and API server. Every claim about a build,
 * a push or a deploy is read back from the registry or the API server.
 *
 * The steps share one copy of the version repository and run in order, as a user would.
 * Images no service builds (issue 12) are pushed to the platform's registry under
 * `<project>-vendor/`, a repository no service builds.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import type { OutputMap, Stack, UpResult } from "@pulumi/pulumi/automation";
import { RegistryClient } from "../../lib/registry";
import { StateStore } from "../../lib/state-store";
import { parse, stringify } from "yaml";
import { TestRepo } from "../integration/helpers/git";
import { tarOf } from "../integration/helpers/images";
import { assertInvariantsHold } from "./helpers/check";
import {
  assertPlatformEnv,
  kubectlJson,
  makeSourceRepo,
  makeVersionRepo,
  type VersionRepo,
} from "./helpers/versionRepo";

interface ServiceOut {
  version: string;
  digest: string;
  ref: string;
  revision: string;
  why: string;
}

const client = new RegistryClient();
const timings: { step: string; seconds: number; built: number }[] = [];

function services(outputs: OutputMap): Record<string, ServiceOut> {
  return outputs.services.value as Record<string, ServiceOut>;
}

/** Services the update built (their `why` says so). */
function built(outputs: OutputMap): string[] {
  return Object.entries(services(outputs))
    .filter(([, s]) => s.why.startsWith("built"))
    .map(([name]) => name)
    .sort();
}

interface DeploymentJson {
  metadata: { name: string; labels: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
  status: { availableReplicas?: number; updatedReplicas?: number };
}

function deployments(namespace: string): Record<string, DeploymentJson> {
  const list = kubectlJson(["get", "deployments", "-n", namespace]).items as DeploymentJson[];
  return Object.fromEntries(list.map((d) => [d.metadata.name, d]));
}

function images(namespace: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(deployments(namespace)).map(([n, d]) => [
      n,
      d.spec.template.spec.containers[0].image,
    ]),
  );
}

/** The update changed no resource (`read` is the site's reference to its own previous outputs). */
function assertNoChanges(result: UpResult): void {
  const changes = result.summary.resourceChanges ?? {};
  assert.deepEqual(
    Object.keys(changes).filter((k) => k !== "same" && k !== "read"),
    [],
    `changes: ${JSON.stringify(changes)}`,
  );
}

async function timed(step: string, stack: Stack): Promise<UpResult> {
  const t0 = Date.now();
  const result = await stack.up({ onOutput: () => undefined });
  timings.push({ step, seconds: (Date.now() - t0) / 1000, built: built(result.outputs).length });
  return result;
}

describe("a site on the local platform (end to end)", function () {
  let repo: VersionRepo;
  let store: StateStore;
  let developers: Stack;
  let testers: Stack;
  let first: UpResult;
  const repoOf = (image: string) => `${repo.registry}/${repo.project}/${image}`;
  /** Every tag of each image's repository, sorted: what "nothing changed in the registry" compares. */
  const tagsOf = (images: readonly string[]) =>
    Promise.all(images.map(async (i) => [...(await client.listTags(repoOf(i)))].sort()));
  const ALL = ["base", "backend", "frontend", "release"];

  before(async function () {
    assertPlatformEnv();
    repo = makeVersionRepo();
    store = new StateStore({
      registry: repo.registry,
      project: repo.project,
      rings: ["developers", "testers", "users", "lts"],
      client,
    });
    developers = await repo.stack("dev-developers");
    testers = await repo.stack("dev-testers");
  });

  // The checker after every step, failed ones included (issue 7): invariants 1, 2, 4 and 5 over
  // the registry, both sites' outputs and the cluster.
  afterEach(async function () {
    await assertInvariantsHold({
      dir: repo.dir,
      registry: repo.registry,
      project: repo.project,
      stacks: [developers, testers],
    });
  });

  after(async function () {
    for (const ring of ["developers", "testers"]) {
      try {
        execFileSync(
          "kubectl",
          ["delete", "namespace", repo.namespace("dev", ring), "--wait=false"],
          {
            stdio: "pipe",
          },
        );
      } catch {
        // already gone
      }
    }
    repo?.remove();
    if (timings.length > 0) {
      console.log("\n  step                                       seconds  images built");
      for (const t of timings) {
        console.log(`  ${t.step.padEnd(42)} ${t.seconds.toFixed(1).padStart(7)}  ${t.built}`);
      }
    }
  });

  it("GIVEN an empty registry WHEN the building site is updated THEN every image is built at 0.1.0 with its labels, the release is pushed, the ring moves and the Deployments run by digest", async function () {
    first = await timed("first up of dev-developers", developers);
    const out = services(first.outputs);
    assert.deepEqual(built(first.outputs), ["backend", "base", "frontend"]);
    for (const name of ["base", "backend", "frontend"]) {
      assert.equal(out[name].version, "0.1.0");
      assert.equal(out[name].why, "built (new)");
      const labels = await client.getLabels(`${repoOf(name)}:0.1.0`);
      assert.equal(labels["org.opencontainers.image.version"], "0.1.0");
      assert.equal(labels["org.opencontainers.image.revision"], out[name].revision);
      assert.equal(labels["org.opencontainers.image.ref.name"], `${repo.project}/${name}`);
      assert.equal(await client.resolveDigest(`${repoOf(name)}:0.1.0`), out[name].digest);
      assert.equal(out[name].ref, `${repoOf(name)}@${out[name].digest}`);
    }
    for (const name of ["backend", "frontend"]) {
      const labels = await client.getLabels(`${repoOf(name)}:0.1.0`);
      assert.equal(labels["dependency.base"], "0.1.0");
      // An image's labels describe that image alone (invariant 7): nothing of the base's.
      assert.equal(labels.team, undefined);
      assert.equal(labels["org.opencontainers.image.revision"], out[name].revision);
    }
    assert.equal((await client.getLabels(`${repoOf("base")}:0.1.0`)).team, "platform");
    // Builders push by digest; the only tags are the version tags, the ring pointer and the
    // site's verification of the release it deployed (`sha256-<hex>.verify.<site>`).
    const releaseDigest = await client.resolveDigest(`${repoOf("release")}:0.1.0`);
    assert.deepEqual(await tagsOf(ALL), [
      ["0.1.0"],
      ["0.1.0"],
      ["0.1.0"],
      [
        "0.1.0",
        "ring-developers",
        `${releaseDigest.replace(":", "-")}.verify.dev-developers`,
      ].sort(),
    ]);
    assert.equal(first.outputs.release.value, "0.1.0");
    const ring = await store.readRing("developers");
    assert.equal(ring.release?.version, "0.1.0");
    assert.deepEqual(
      Object.fromEntries(Object.entries(ring.release!.services).map(([n, s]) => [n, s.digest])),
      Object.fromEntries(Object.entries(out).map(([n, s]) => [n, s.digest])),
    );
    const deployed = deployments(repo.namespace("dev", "developers"));
    assert.deepEqual(Object.keys(deployed).sort(), ["backend", "frontend"]);
    for (const name of ["backend", "frontend"]) {
      assert.equal(deployed[name].spec.template.spec.containers[0].image, out[name].ref);
      assert.equal(deployed[name].status.availableReplicas, 1);
      assert.equal(deployed[name].metadata.labels["gitops-rings.io/site"], "dev-developers");
      assert.equal(deployed[name].metadata.labels["gitops-rings.io/ring"], "developers");
      // The release labels the site's Namespace only: a new release changes no other object.
      assert.equal(deployed[name].metadata.labels["gitops-rings.io/release"], undefined);
    }
    const namespace = kubectlJson(["get", "namespace", repo.namespace("dev", "developers")]);
    const labels = (namespace.metadata as { labels: Record<string, string> }).labels;
    assert.equal(labels["gitops-rings.io/release"], "0.1.0");
  });

  it("GIVEN nothing changed WHEN the site is updated again THEN nothing is built or changed, preview expects no changes and the registry's tags are the same", async function () {
    const tagsBefore = await tagsOf(ALL);
    const again = await timed("second up, nothing changed", developers);
    assert.deepEqual(built(again.outputs), []);
    assertNoChanges(again);
    await developers.preview({ expectNoChanges: true, onOutput: () => undefined });
    const tagsAfter = await tagsOf(ALL);
    assert.deepEqual(tagsAfter, tagsBefore);
    // The same images, now reused: only `why` differs ("built (new)" before).
    const strip = (o: OutputMap) =>
      Object.fromEntries(
        Object.entries(services(o)).map(([n, { why: _why, ...rest }]) => [n, rest]),
      );
    assert.deepEqual(strip(again.outputs), strip(first.outputs));
    assert.equal(services(again.outputs).backend.why, "ring developers (unchanged)");
  });

  it("GIVEN a service's extra labels change WHEN the site is updated THEN nothing is built, pushed or changed: same revision, same image", async function () {
    const tagsBefore = await tagsOf(ALL);
    const config = parse(repo.read("gitops-rings.yaml"));
    config.services.base.labels = { team: "platform", tier: "base" };
    repo.write("gitops-rings.yaml", stringify(config));
    const up = await timed("extra labels changed", developers);
    assert.deepEqual(built(up.outputs), []);
    assertNoChanges(up);
    await developers.preview({ expectNoChanges: true, onOutput: () => undefined });
    assert.deepEqual(await tagsOf(ALL), tagsBefore);
    assert.equal(services(up.outputs).base.digest, services(first.outputs).base.digest);
  });

  it("GIVEN manifests that name images as teams write them (an alias, <project>/<image> with a tag) WHEN the site is updated THEN every container runs its service's digest and nothing changes", async function () {
    const config = parse(repo.read("gitops-rings.yaml"));
    config.services.backend.aliases = ["legacy.example.com/shop/backend"];
    repo.write("gitops-rings.yaml", stringify(config));
    const rewrite = (file: string, from: string, to: string) =>
      repo.write(file, repo.read(file).replace(`image: ${from}\n`, `image: ${to}\n`));
    rewrite("app/deploy/base/backend.yaml", "backend", "legacy.example.com/shop/backend:2.0");
    rewrite("app/deploy/base/frontend.yaml", "frontend", `${repo.project}/frontend:1.4`);
    const up = await timed("manifests name images by repository", developers);
    assert.deepEqual(built(up.outputs), []);
    assertNoChanges(up);
    const running = images(repo.namespace("dev", "developers"));
    assert.equal(running.backend, services(up.outputs).backend.ref);
    assert.equal(running.frontend, services(up.outputs).frontend.ref);
  });

  it("GIVEN a manifest whose sidecar names by tag an image no service builds WHEN the site is updated THEN it runs at the tag's digest with its origin recorded; a re-push of the tag shows in the next preview and deploys; a tag that does not exist fails the plan before anything is built, pushed or moved", async function () {
    const file = "app/deploy/base/frontend.yaml";
    const manifest = repo.read(file);
    const sidecarRepository = `${repo.registry}/${repo.project}-vendor/sidecar`;
    const sidecar = `${sidecarRepository}:1.0`;
    const index = "app/services/frontend/index.html";
    const html = repo.read(index);
    const namespace = repo.namespace("dev", "developers");
    /** Pushes a one-layer image and points the tag at it, as an upstream (re-)push does. */
    const pushSidecar = async (content: string) => {
      const image = await client.pushImage(sidecarRepository, {
        layers: [tarOf({ "sidecar.txt": content })],
      });
      await client.moveTag(sidecarRepository, "1.0", image.descriptor.digest);
      return image.descriptor.digest;
    };
    const withSidecar = (image: string) =>
      manifest.replace(
        /( *)- name: frontend\n/,
        (line, indent: string) => `${indent}- name: sidecar\n${indent}  image: ${image}\n${line}`,
      );
    const running = () => {
      const d = kubectlJson(["get", "deployment", "frontend", "-n", namespace]) as unknown as {
        metadata: { annotations?: Record<string, string> };
        spec: { template: { spec: { containers: { name: string; image: string }[] } } };
      };
      return {
        sidecar: d.spec.template.spec.containers.find((c) => c.name === "sidecar")?.image,
        origins: JSON.parse(
          d.metadata.annotations?.["gitops-rings.io/images"] ?? "null",
        ) as unknown,
      };
    };
    try {
      const first = await pushSidecar("sidecar 1.0");
      repo.write(file, withSidecar(sidecar));
      const up = await timed("a sidecar no service builds, by tag", developers);
      assert.deepEqual(built(up.outputs), []);
      const recorded = up.outputs.foreignImages.value as Record<string, Record<string, unknown>>;
      assert.deepEqual(recorded[sidecar], {
        reference: sidecar,
        registry: repo.registry,
        repository: sidecarRepository,
        tag: "1.0",
        digest: first,
        image: `${sidecarRepository}@${first}`,
        usedBy: [`Deployment/${namespace}/frontend: container sidecar`],
      });
      assert.deepEqual(running(), {
        sidecar: `${sidecarRepository}@${first}`,
        origins: [{ origin: sidecar, image: `${sidecarRepository}@${first}` }],
      });

      // The tag moves upstream: a change to what the site runs, shown by preview, deployed by up.
      const moved = await pushSidecar("sidecar 1.0, rebuilt upstream");
      let printed = "";
      const preview = await developers.preview({ onOutput: (o) => (printed += o) });
      const row = `${sidecar.replace(/\./g, "\\.")}\\s+1\\.0\\s+${moved}\\s+digest changed \\(was ${first}\\)`;
      assert.match(printed, new RegExp(row));
      assert.ok(
        (preview.changeSummary.update ?? 0) >= 1,
        `preview: ${JSON.stringify(preview.changeSummary)}`,
      );
      assert.equal(running().sidecar, `${sidecarRepository}@${first}`, "preview deployed nothing");
      const next = await timed("the sidecar's tag moved upstream", developers);
      assert.deepEqual(built(next.outputs), []);
      assert.equal(running().sidecar, `${sidecarRepository}@${moved}`);

      // A tag that does not exist fails the plan: nothing is built, pushed or moved.
      const tagsBefore = await tagsOf(ALL);
      const ringsBefore = (await store.readRings()).map((r) => r.release?.digest);
      repo.write(file, withSidecar(`${sidecarRepository}:9.9`));
      repo.write(index, `${html}<!-- would be built -->\n`);
      const failed = await developers.up({ onOutput: () => undefined }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(failed, "the update fails");
      assert.ok(
        failed.message.includes(
          `Deployment/${namespace}/frontend: container sidecar: "${sidecarRepository}:9.9": ` +
            `${sidecarRepository} has no tag 9.9`,
        ),
        failed.message,
      );
      assert.doesNotMatch(failed.message, /error serializing property|\n\s+at .*\.ts:\d+/);
      assert.deepEqual(await tagsOf(ALL), tagsBefore);
      assert.deepEqual(
        (await store.readRings()).map((r) => r.release?.digest),
        ringsBefore,
      );
      assert.equal(running().sidecar, `${sidecarRepository}@${moved}`, "nothing was applied");
    } finally {
      repo.write(file, manifest);
      repo.write(index, html);
    }
  });

  it("GIVEN a file that only the frontend COPYs changes WHEN the site is updated THEN exactly the frontend is rebuilt with a patch bump and the release is bumped", async function () {
    repo.write(
      "app/services/frontend/index.html",
      `${repo.read("app/services/frontend/index.html")}<!-- change -->\n`,
    );

    // Preview first (flow 7): it shows the plan and builds, pushes and moves nothing.
    const tagsBefore = await tagsOf(["frontend", "release"]);
    let printed = "";
    const preview = await developers.preview({ onOutput: (o) => (printed += o) });
    assert.match(printed, /frontend\s+build\s+revision changed\s+0\.1\.0\s+0\.1\.1/);
    assert.match(printed, /backend\s+reuse\s+unchanged\s+0\.1\.0\s+0\.1\.0/);
    assert.match(printed, /\(release\)\s+build\s+changed\s+0\.1\.0\s+0\.1\.1/);
    assert.ok(
      (preview.changeSummary.update ?? 0) >= 3,
      `preview: ${JSON.stringify(preview.changeSummary)}`,
    );
    const tagsAfter = await tagsOf(["frontend", "release"]);
    assert.deepEqual(tagsAfter, tagsBefore);
    assert.equal((await store.readRing("developers")).release?.version, "0.1.0");

    const up = await timed("frontend file changed", developers);
    assert.deepEqual(built(up.outputs), ["frontend"]);
    const out = services(up.outputs);
    assert.equal(out.frontend.version, "0.1.1");
    assert.equal(out.frontend.why, "built (revision changed)");
    assert.equal(out.backend.version, "0.1.0");
    assert.equal(out.backend.digest, services(first.outputs).backend.digest);
    assert.equal(up.outputs.release.value, "0.1.1");
    assert.equal(images(repo.namespace("dev", "developers")).frontend, out.frontend.ref);
  });

  it("GIVEN a file that no COPY reads changes WHEN the site is updated THEN nothing is rebuilt", async function () {
    repo.write("app/services/backend/README.md", "edited: still read by no COPY\n");
    const up = await timed("file no COPY reads changed", developers);
    assert.deepEqual(built(up.outputs), []);
    assert.equal(up.outputs.release.value, "0.1.1");
  });

  it("GIVEN the frontend's file is reverted WHEN the site is updated THEN the older image with the same revision is reused at its version, nothing is built, and the release is bumped", async function () {
    const original = services(first.outputs).frontend;
    repo.write(
      "app/services/frontend/index.html",
      repo.read("app/services/frontend/index.html").replace("<!-- change -->\n", ""),
    );
    const up = await timed("frontend file reverted", developers);
    assert.deepEqual(built(up.outputs), []);
    const frontend = services(up.outputs).frontend;
    assert.equal(frontend.version, "0.1.0");
    assert.equal(frontend.digest, original.digest);
    assert.equal(frontend.revision, original.revision);
    assert.equal(frontend.why, "reused 0.1.0: same revision (revision changed)");
    assert.equal(up.outputs.release.value, "0.1.2");
    assert.equal(images(repo.namespace("dev", "developers")).frontend, original.ref);
  });

  it("GIVEN the base image changes WHEN the site is updated THEN the base and exactly its dependents are rebuilt and their dependency labels follow", async function () {
    repo.write(
      "app/services/base/Dockerfile",
      `${repo.read("app/services/base/Dockerfile")}# a change\n`,
    );
    const up = await timed("base changed", developers);
    assert.deepEqual(built(up.outputs), ["backend", "base", "frontend"]);
    const out = services(up.outputs);
    assert.equal(out.base.version, "0.1.1");
    assert.equal(out.base.why, "built (revision changed)");
    assert.equal(out.backend.version, "0.1.1");
    assert.equal(out.backend.why, "built (dependency changed)");
    // 0.1.0 in R gives 0.1.1, which exists already (built before the revert): next free patch.
    assert.equal(out.frontend.version, "0.1.2");
    for (const name of ["backend", "frontend"]) {
      const labels = await client.getLabels(out[name].ref);
      assert.equal(labels["dependency.base"], "0.1.1");
    }
    assert.equal(up.outputs.release.value, "0.1.3");
  });

  it("GIVEN developers is promoted to testers WHEN the testers site is updated THEN it deploys the same digests, and the next developers build bumps minor", async function () {
    const dev = services((await developers.outputs()) as OutputMap);
    // The ring operations command, as a user runs it in the version repository.
    const rings = (...args: string[]) =>
      execFileSync("npx", ["tsx", path.join(__dirname, "../../scripts/rings.ts"), ...args], {
        cwd: repo.dir,
        encoding: "utf8",
      });
    const promoted = rings("promote", "developers");
    assert.match(promoted, /ring testers -> release 0\.1\.3/);
    // dev-developers verified 0.1.3 (its deployment passed); no testers site has yet.
    assert.match(promoted, /^testers\s+0\.1\.3\s+0\.1\.1\s+0\.1\.1\s+0\.1\.2\s+no$/m);
    assert.match(promoted, /^developers\s+0\.1\.3\s.*yes: dev-developers \(rollout\)$/m);
    const up = await timed("dev-testers after promote", testers);
    assert.deepEqual(built(up.outputs), []);
    assert.equal(up.outputs.release.value, "0.1.3");
    const deployed = images(repo.namespace("dev", "testers"));
    assert.equal(deployed.backend, dev.backend.ref);
    assert.equal(deployed.frontend, dev.frontend.ref);

    repo.write(
      "app/services/frontend/index.html",
      `${repo.read("app/services/frontend/index.html")}<!-- after promote -->\n`,
    );
    const next = await timed("developers build after promote", developers);
    assert.deepEqual(built(next.outputs), ["frontend"]);
    assert.equal(services(next.outputs).frontend.version, "0.2.0");
    assert.equal(next.outputs.release.value, "0.2.0");
    // The testers site still runs what was promoted.
    assert.equal(images(repo.namespace("dev", "testers")).frontend, dev.frontend.ref);
  });

  it("GIVEN a pin on one site WHEN it is set with pulumi config THEN only that site changes, and removing it restores the ring's image", async function () {
    const devImages = images(repo.namespace("dev", "developers"));
    const releaseBackend = services((await testers.outputs()) as OutputMap).backend.ref;
    await testers.setConfig("gitops-rings:pins.backend.version", { value: "0.1.0" }, true);
    const pinned = await timed("dev-testers with a pin", testers);
    const oldBackend = `${repoOf("backend")}@${await client.resolveDigest(`${repoOf("backend")}:0.1.0`)}`;
    assert.equal(images(repo.namespace("dev", "testers")).backend, oldBackend);
    assert.equal(services(pinned.outputs).backend.version, "0.1.0");
    // What the site runs is recorded from the image's own labels (invariant 5).
    const pinnedLabels = await client.getLabels(`${repoOf("backend")}:0.1.0`);
    assert.equal(
      services(pinned.outputs).backend.revision,
      pinnedLabels["org.opencontainers.image.revision"],
    );
    assert.deepEqual(images(repo.namespace("dev", "developers")), devImages);

    await testers.removeConfig("gitops-rings:pins");
    await timed("dev-testers pin removed", testers);
    assert.equal(images(repo.namespace("dev", "testers")).backend, releaseBackend);
  });

  it("GIVEN a site WHEN it is rolled back with a release pin THEN it runs the older release and stack history shows both updates", async function () {
    const before = (await testers.history()).length;
    await testers.setConfig("gitops-rings:release", { value: "0.1.0" });
    const back = await timed("dev-testers pinned to release 0.1.0", testers);
    assert.equal(back.outputs.release.value, "0.1.0");
    const release010 = await store.readRelease("0.1.0");
    assert.equal(
      images(repo.namespace("dev", "testers")).frontend,
      `${repoOf("frontend")}@${release010.services.frontend.digest}`,
    );
    await testers.removeConfig("gitops-rings:release");
    const forward = await timed("dev-testers release pin removed", testers);
    assert.equal(forward.outputs.release.value, "0.1.3");
    const history = await testers.history();
    assert.equal(history.length, before + 2);
    assert.deepEqual(
      history.slice(0, 2).map((h) => h.result),
      ["succeeded", "succeeded"],
    );
  });

  it("GIVEN a service built from two git repositories WHEN the site builds THEN both checkouts reach the build, a commit that changes no file a COPY reads changes nothing, one that does rebuilds, and a pinned commit is built; the commits are in its labels and outputs", async function () {
    const { repo: source, first } = makeSourceRepo();
    const proto = TestRepo.create("gitops-rings-proto-");
    const original = repo.read("gitops-rings.yaml");
    type Worker = ServiceOut & { sources: { name: string; url: string; commit: string }[] };
    const worker = (o: OutputMap) => services(o).worker as Worker;
    try {
      const protoV1 = proto.commit("v1", { "api.proto": "v1\n", "README.md": "docs\n" });
      const config = parse(original);
      config.services.worker = {
        source: "worker",
        context: ".",
        sources: [
          { name: "worker", url: source.fileUrl, branch: "main" },
          { name: "proto", url: proto.fileUrl, branch: "main", path: "api" },
        ],
      };
      repo.write("gitops-rings.yaml", stringify(config));
      const head = source.commit("v2", {
        "message.txt": "v2\n",
        Dockerfile:
          "FROM base\nCOPY message.txt /www/message.txt\nCOPY api/api.proto /www/api.proto\n",
      });
      const up = await timed("service from two repositories", developers);
      assert.deepEqual(built(up.outputs), ["worker"]);
      assert.deepEqual(worker(up.outputs).sources, [
        { name: "proto", url: proto.fileUrl, commit: protoV1 },
        { name: "worker", url: source.fileUrl, commit: head },
      ]);
      const labels = await client.getLabels(worker(up.outputs).ref);
      assert.equal(labels["io.gitops-rings.source.worker.commit"], head);
      assert.equal(labels["io.gitops-rings.source.proto.commit"], protoV1);
      assert.equal(labels["dependency.base"], services(up.outputs).base.version);
      assert.equal(labels.team, undefined);

      // A commit that changes no file a COPY reads: same revision, no build, no push, no diff,
      // and the site still records the commits the image was built from (invariant 5).
      const tagsBefore = await client.listTags(repoOf("worker"));
      proto.commit("docs", { "README.md": "more docs\n" });
      const docs = await timed("source commit no COPY reads", developers);
      assert.deepEqual(built(docs.outputs), []);
      assertNoChanges(docs);
      assert.deepEqual(worker(docs.outputs).sources, worker(up.outputs).sources);
      assert.deepEqual(await client.listTags(repoOf("worker")), tagsBefore);

      // A commit to the second repository that changes a file the build reads: a new revision.
      const protoV2 = proto.commit("v2", { "api.proto": "v2\n" });
      const changed = await timed("second repository changed", developers);
      assert.deepEqual(built(changed.outputs), ["worker"]);
      assert.notEqual(worker(changed.outputs).revision, worker(up.outputs).revision);
      assert.equal(worker(changed.outputs).version, "0.1.1");
      assert.deepEqual(
        worker(changed.outputs).sources.map((s) => s.commit),
        [protoV2, head],
      );

      await developers.setConfig(
        "gitops-rings:sourceCommits.worker/worker",
        { value: first },
        true,
      );
      const pinned = await timed("service pinned to a commit", developers);
      const again = worker(pinned.outputs);
      assert.deepEqual(built(pinned.outputs), ["worker"]);
      assert.equal(again.sources.find((s) => s.name === "worker")?.commit, first);
      assert.equal(
        (await client.getLabels(again.ref))["io.gitops-rings.source.worker.commit"],
        first,
      );
    } finally {
      repo.write("gitops-rings.yaml", original);
      await developers.removeConfig("gitops-rings:sourceCommits");
      source.remove();
      proto.remove();
    }
  });

  it("GIVEN a site WHEN it is destroyed THEN its objects leave the cluster and nothing leaves the registry", async function () {
    const tagsBefore = await tagsOf(ALL);
    const ringsBefore = (await store.readRings()).map((r) => r.release?.version);
    await testers.destroy({ onOutput: () => undefined });
    assert.deepEqual(deployments(repo.namespace("dev", "testers")), {});
    const tagsAfter = await tagsOf(ALL);
    assert.deepEqual(tagsAfter, tagsBefore);
    assert.deepEqual(
      (await store.readRings()).map((r) => r.release?.version),
      ringsBefore,
    );
  });

  describe("bad config fails before anything is created", function () {
    async function failing(site: string, config: Record<string, string>): Promise<string> {
      const stack = await repo.stack(site);
      for (const [k, v] of Object.entries(config)) await stack.setConfig(k, { value: v });
      const err = await stack.preview({ onOutput: () => undefined }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(err, "preview fails");
      const state = await stack.exportStack();
      const resources = (state.deployment?.resources ?? []) as { type: string }[];
      assert.deepEqual(
        resources.filter((r) => !r.type.startsWith("pulumi:")),
        [],
        "no resource is created",
      );
      return err.message;
    }

    it("GIVEN an unknown ring THEN preview names the stack file, key and value", async function () {
      const msg = await failing("bad-ring", {
        "gitops-rings:ring": "nope",
        "gitops-rings:environment": "dev",
      });
      assert.match(msg, /stacks\/Pulumi\.bad-ring\.yaml: gitops-rings:ring: "nope"/);
    });

    it("GIVEN a malformed version pin THEN preview names the key and value", async function () {
      const stack = await repo.stack("bad-pin");
      await stack.setConfig("gitops-rings:pins.backend.version", { value: "1.x" }, true);
      const msg = await failing("bad-pin", {
        "gitops-rings:ring": "testers",
        "gitops-rings:environment": "dev",
      });
      assert.match(
        msg,
        /stacks\/Pulumi\.bad-pin\.yaml: gitops-rings:pins\.backend\.version: "1\.x" is not a version/,
      );
    });

    it("GIVEN a second stack that builds the first ring THEN its preview names both stack files and the key", async function () {
      const msg = await failing("qa-developers", {
        "gitops-rings:ring": "developers",
        "gitops-rings:environment": "dev",
      });
      assert.match(
        msg,
        /stacks\/Pulumi\.qa-developers\.yaml: gitops-rings:build: stacks\/Pulumi\.dev-developers\.yaml builds ring developers/,
      );
      // Turned into a deploying site, it is no rival any more (and dev-developers builds on).
      await (await repo.stack("qa-developers")).setConfig("gitops-rings:build", { value: "false" });
    });

    it("GIVEN a pin on a building site THEN preview refuses it naming the file and key, instead of ignoring it", async function () {
      const stack = await repo.stack("bad-build-pin");
      await stack.setConfig("gitops-rings:pins.backend.version", { value: "0.1.0" }, true);
      const msg = await failing("bad-build-pin", {
        "gitops-rings:ring": "ante",
        "gitops-rings:environment": "dev",
        "gitops-rings:build": "true",
      });
      assert.match(
        msg,
        /stacks\/Pulumi\.bad-build-pin\.yaml: gitops-rings:pins: this site builds \(gitops-rings:build is true\), and a building site deploys the release it builds/,
      );
    });

    it("GIVEN a dependency cycle THEN preview prints the cycle", async function () {
      repo.write("app/services/base/Dockerfile", "FROM frontend\n");
      try {
        // Built against ante, so that it is no second builder of the developers ring.
        const msg = await failing("bad-cycle", {
          "gitops-rings:ring": "ante",
          "gitops-rings:environment": "dev",
          "gitops-rings:build": "true",
        });
        assert.match(msg, /dependency cycle/);
        assert.match(msg, /base -> frontend -> base|frontend -> base -> frontend/);
      } finally {
        repo.write("app/services/base/Dockerfile", "FROM scratch\n");
      }
    });
  });
});
