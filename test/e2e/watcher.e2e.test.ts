/**
 * End to end, the watcher (DESIGN.md flow 6; README, "The watcher"): the real service
 * (`gitops-rings watch`, a child process over real HTTP), a Distribution registry of its own
 * whose webhook notifications go to the watcher, the real Pulumi engine through the Automation
 * API, BuildKit and the API server. A site with `autoDeploy` follows ring testers; every claim
 * about a deploy is read back from the API server (the Deployment's image, by digest).
 *
 * The steps share one copy of the version repository and one watcher, and run in order.
 */
import { strict as assert } from "node:assert";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import type { Stack } from "@pulumi/pulumi/automation";
import { RegistryClient } from "../../lib/registry";
import { StateStore } from "../../lib/state-store";
import type { ReleaseRecord } from "../../lib/types";
import { freePort, startRegistry, type TestRegistry } from "../integration/helpers/registry";
import { assertInvariantsHold } from "./helpers/check";
import { assertPlatformEnv, makeVersionRepo, type VersionRepo } from "./helpers/versionRepo";

const ROOT = path.resolve(__dirname, "../..");
const TOKEN = `token-${Math.random().toString(16).slice(2)}`;
const SITE = "dev-testers";
const client = new RegistryClient();

interface SiteView {
  release: string | null;
  desiredRelease: string | null;
  inSync: boolean | null;
  drift: string[];
  checks: number;
  updates: number;
  lastUpdate: { result: string; durationSeconds: number; error?: string } | null;
  queue: { state: string; pending: boolean; runs: number; coalesced: number };
}

/** One JSON line the watcher logged. */
type LogLine = Record<string, unknown> & { event?: string; site?: string };

describe("the watcher on the local platform (end to end)", function () {
  this.timeout(240_000);
  let repo: VersionRepo;
  let registry: TestRegistry;
  let store: StateStore;
  let developers: Stack;
  let testers: Stack;
  let watcher: ChildProcess;
  let exited: Promise<number | null>;
  let base: string;
  const lines: LogLine[] = [];
  let r1: ReleaseRecord;
  let r2: ReleaseRecord;

  const api = async (method: string, route: string, body?: unknown, token = TOKEN) => {
    const res = await fetch(`${base}${route}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text,
    };
  };
  const site = async (): Promise<SiteView> => (await api("GET", `/sites/${SITE}`)).body;
  const waitFor = async <T>(what: string, f: () => Promise<T | undefined>, ms = 120_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; site: ${JSON.stringify(await site())}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const logged = (pred: (l: LogLine) => boolean, from = 0) => lines.slice(from).find(pred);
  const image = (service: string) =>
    execFileSync(
      "kubectl",
      [
        ...["get", "deployment", service, "-n", repo.namespace("dev", "testers")],
        ...["-o", "jsonpath={.spec.template.spec.containers[0].image}"],
      ],
      { encoding: "utf8" },
    );
  /** The image a release names for a service, by digest. */
  const byDigest = (release: ReleaseRecord, service: string) =>
    `${release.services[service].repository}@${release.services[service].digest}`;
  /** A new release in ring developers: the frontend changes, `pulumi up` builds it. */
  const buildRelease = async (text: string): Promise<ReleaseRecord> => {
    repo.write("app/services/frontend/index.html", `<h1>${text}</h1>\n`);
    const up = await developers.up({ onOutput: () => undefined });
    assert.equal(up.summary.result, "succeeded");
    return (await store.readRing("developers")).release as ReleaseRecord;
  };

  before(async function () {
    assertPlatformEnv();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    registry = await startRegistry({ notifications: { url: `${base}/events`, token: TOKEN } });
    repo = makeVersionRepo();
    const config = parse(repo.read("gitops-rings.yaml"));
    config.registry = registry.host;
    repo.write("gitops-rings.yaml", stringify(config));
    // Only the two dev sites: the prod rings never get a release here.
    for (const f of ["stacks/Pulumi.prod-users.yaml", "stacks/Pulumi.prod-lts.yaml"]) {
      fs.rmSync(path.join(repo.dir, f));
    }
    repo.write(
      `stacks/Pulumi.${SITE}.yaml`,
      stringify({
        config: {
          "gitops-rings:ring": "testers",
          "gitops-rings:environment": "dev",
          "gitops-rings:autoDeploy": "true",
        },
      }),
    );
    // The copy's own registry (repo.stateStore would name the platform's).
    store = new StateStore({
      registry: registry.host,
      project: repo.project,
      rings: config.rings,
      client,
    });
    developers = await repo.stack("dev-developers");
    testers = await repo.stack(SITE);
    r1 = await buildRelease("one");
    await store.promote("developers");

    watcher = spawn(
      process.execPath,
      [
        ...["--import", "tsx", path.join(ROOT, "watcher/cli.ts"), "watch"],
        ...["--listen", `127.0.0.1:${port}`, "--poll-interval", "10m"],
        ...["--retry-initial", "2s", "--retry-max", "10s"],
      ],
      {
        cwd: repo.dir,
        env: {
          ...process.env,
          PULUMI_BACKEND_URL: `file://${path.join(repo.dir, ".state")}`,
          GITOPS_RINGS_WATCH_TOKEN: TOKEN,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    exited = new Promise((resolve) => watcher.once("exit", (code) => resolve(code)));
    let partial = "";
    watcher.stdout?.on("data", (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8");
      const parts = text.split("\n");
      partial = parts.pop() ?? "";
      for (const p of parts) {
        try {
          lines.push(JSON.parse(p) as LogLine);
        } catch {
          lines.push({ text: p });
        }
      }
    });
    let stderr = "";
    watcher.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    await waitFor(
      "the watcher to listen",
      async () => {
        if (watcher.exitCode !== null) throw new Error(`watcher exited: ${stderr}`);
        return fetch(`${base}/ping`).then(
          (r) => r.ok,
          () => false,
        );
      },
      30_000,
    );
  });

  after(async function () {
    if (watcher && watcher.exitCode === null) {
      watcher.kill("SIGKILL");
    }
    await registry?.stop();
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
  });

  it("GIVEN ring testers holds a release WHEN the watcher starts THEN it deploys the autoDeploy site following testers, by digest", async () => {
    const s = await waitFor("the first update", async () => {
      const v = await site();
      return v.lastUpdate !== null && v.queue.state === "idle" ? v : undefined;
    });
    assert.equal(s.lastUpdate?.result, "succeeded", JSON.stringify(s.lastUpdate));
    assert.equal(s.release, r1.version);
    assert.equal(s.inSync, true);
    assert.equal(image("frontend"), byDigest(r1, "frontend"));
    assert.equal(image("backend"), byDigest(r1, "backend"));
    const ping = await api("GET", "/ping", undefined, "");
    assert.deepEqual(ping, { status: 200, body: { message: "pong" } });
  });

  it("GIVEN a wrong or missing token WHEN a mutating route is called THEN 401 and nothing is queued", async () => {
    const runs = (await site()).queue.runs;
    assert.equal((await api("POST", `/sites/${SITE}/deploy`, undefined, "wrong")).status, 401);
    assert.equal((await api("POST", `/sites/${SITE}/deploy`, undefined, "")).status, 401);
    assert.equal(
      (await api("POST", "/tags/frontend", { site: SITE, autoDeploy: false }, "x")).status,
      401,
    );
    assert.equal((await api("POST", "/events", { events: [] }, "")).status, 401);
    assert.equal((await site()).queue.runs, runs);
    assert.match(repo.read(`stacks/Pulumi.${SITE}.yaml`), /autoDeploy: "?true"?/);
  });

  it("GIVEN a new release promoted to testers WHEN the registry notifies THEN the watcher deploys it long before the poll, and events during the update coalesce into one more check", async () => {
    r2 = await buildRelease("two");
    const before = await site();
    assert.equal(before.inSync, true, "building developers changes nothing ring testers runs");
    const from = lines.length;
    const t0 = Date.now();
    await store.promote("developers");
    // The registry's own notification names the ring tag and the site.
    await waitFor("the ring-testers notification", async () =>
      logged((l) => l.event === "notification" && l.tag === "ring-testers", from),
    );
    await waitFor("the update to start", async () =>
      logged((l) => l.event === "update-start" && l.site === SITE, from),
    );
    const event = {
      action: "push",
      target: {
        repository: `${repo.project}/release`,
        tag: "ring-testers",
        mediaType: "application/vnd.oci.image.manifest.v1+json",
      },
    };
    for (let i = 0; i < 3; i++) {
      const r = await api("POST", "/events", { events: [event] });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.sites, [SITE]);
    }
    const during = await site();
    assert.equal(during.queue.state, "running");
    assert.equal(during.queue.pending, true, "the events wait for the running update");
    const after = await waitFor("the update and the coalesced check", async () => {
      const v = await site();
      return v.updates === before.updates + 1 &&
        v.queue.state === "idle" &&
        v.checks >= before.checks + 2
        ? v
        : undefined;
    });
    assert.ok(Date.now() - t0 < 120_000, "deployed long before the 10 minute poll");
    assert.equal(after.lastUpdate?.result, "succeeded");
    assert.equal(after.release, r2.version);
    assert.equal(after.inSync, true);
    assert.ok(after.queue.coalesced >= before.queue.coalesced + 2, JSON.stringify(after.queue));
    assert.equal(after.updates, before.updates + 1, "the coalesced check found the site in sync");
    assert.equal(image("frontend"), byDigest(r2, "frontend"));
    assert.notEqual(byDigest(r2, "frontend"), byDigest(r1, "frontend"));
  });

  it("GIVEN autoDeploy turned off WHEN the ring moves THEN nothing deploys; WHEN turned on THEN the site runs what changed meanwhile", async () => {
    const off = await api("POST", "/tags/frontend", { site: SITE, autoDeploy: false });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.match(repo.read(`stacks/Pulumi.${SITE}.yaml`), /gitops-rings:autoDeploy: "?false"?/);
    const before = await site();
    const from = lines.length;
    await store.moveRing("testers", r1.version);
    const stale = await waitFor("the check after the move", async () => {
      const v = await site();
      return v.checks > before.checks && v.queue.state === "idle" ? v : undefined;
    });
    assert.equal(stale.inSync, false);
    assert.equal(stale.desiredRelease, r1.version);
    assert.equal(stale.updates, before.updates, "autoDeploy off: no update");
    assert.ok(logged((l) => l.event === "out-of-sync" && l.site === SITE, from));
    assert.equal(image("frontend"), byDigest(r2, "frontend"));
    const metrics = (await api("GET", "/metrics")).body as string;
    assert.match(metrics, /^gitops_rings_watch_sites_out_of_sync 1$/m);

    // No new event after this: turning the switch on must itself reconcile (seed 004's bug).
    const on = await api("POST", "/tags/frontend", { site: SITE, autoDeploy: true });
    assert.equal(on.status, 200);
    const done = await waitFor("the update after autoDeploy on", async () => {
      const v = await site();
      return v.updates === before.updates + 1 && v.queue.state === "idle" ? v : undefined;
    });
    assert.equal(done.lastUpdate?.result, "succeeded");
    assert.equal(done.release, r1.version);
    assert.equal(image("frontend"), byDigest(r1, "frontend"));
    const repos = (await api("GET", "/repos")).body;
    assert.equal(repos.frontend.sites[SITE].autoDeploy, true);
    assert.equal(repos.frontend.sites[SITE].running.digest, r1.services.frontend.digest);
    assert.ok(
      repos.frontend.tags[`${registry.host}/${repo.project}/frontend`].includes(
        r2.services.frontend.version,
      ),
    );
  });

  it("GIVEN a pin through the API WHEN SIGTERM arrives during its update THEN the update finishes, then the watcher exits 0", async () => {
    const from = lines.length;
    const pin = await api("POST", "/tags/frontend", {
      site: SITE,
      pinnedTag: r2.services.frontend.version,
    });
    assert.equal(pin.status, 200, JSON.stringify(pin.body));
    assert.match(
      repo.read(`stacks/Pulumi.${SITE}.yaml`),
      new RegExp(`version: ${r2.services.frontend.version.replace(/\./g, "\\.")}`),
    );
    const bad = await api("POST", "/tags/release", { site: SITE, pinnedTag: "latest" });
    assert.equal(bad.status, 400);
    await waitFor("the pinned update to start", async () =>
      logged((l) => l.event === "update-start" && l.site === SITE, from),
    );
    watcher.kill("SIGTERM");
    assert.equal(await exited, 0);
    const tail = lines.slice(from);
    const update = tail.findIndex((l) => l.event === "update" && l.site === SITE);
    const stopping = tail.findIndex((l) => l.event === "stopping");
    const stopped = tail.findIndex((l) => l.event === "stopped");
    assert.ok(
      stopping >= 0 && update > stopping && stopped > update,
      JSON.stringify(tail.map((l) => l.event)),
    );
    assert.equal(tail[stopping].running, 1, "SIGTERM came during the update");
    assert.equal(tail[update].result, "succeeded");
    assert.equal(image("frontend"), byDigest(r2, "frontend"));
    assert.equal(image("backend"), byDigest(r1, "backend"));
    const [last] = await testers.history(1);
    assert.equal(last.result, "succeeded");
    await assertInvariantsHold({
      dir: repo.dir,
      registry: registry.host,
      project: repo.project,
      stacks: [developers, testers],
    });
  });
});
