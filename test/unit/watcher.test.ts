import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pino from "pino";
import { parse as parseYaml, stringify } from "yaml";
import type { SitePlan } from "../../lib/site";
import { isRelevant, sitesOfEvent } from "../../watcher/events";
import { parseDuration, parseListen, parseWatchOptions } from "../../watcher/options";
import type { SiteOps } from "../../watcher/pulumi";
import { createServer, tokenMatches } from "../../watcher/server";
import {
  pinKey,
  readSites,
  readRepository,
  siteDrift,
  siteRepositories,
  hasConfigValue,
  withConfigValue,
} from "../../watcher/sites";
import { Watcher } from "../../watcher/watcher";
import { FakeClock } from "./helpers/fakeClock";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

/** A non-building plan running `digest` for backend, release `release`. */
function plan(digest: string, release = "0.2.0"): SitePlan {
  return {
    site: "dev-testers",
    ring: "testers",
    environment: { name: "dev" },
    build: false,
    deploy: {
      release,
      images: {
        backend: {
          repository: "r/p/backend",
          digest,
          version: "0.1.0",
          why: "ring testers",
          sources: [],
        },
      },
    },
  } as unknown as SitePlan;
}

const outputs = (digest: string, release = "0.2.0") => ({
  ring: "testers",
  environment: "dev",
  release,
  services: { backend: { version: "0.1.0", digest, ref: `r/p/backend@${digest}` } },
});

describe("watcher: options", () => {
  it("GIVEN no flags WHEN parsed THEN the documented defaults apply, the token from the environment", () => {
    const o = parseWatchOptions([], { GITOPS_RINGS_WATCH_TOKEN: " t0k " }, "/repo");
    assert.deepEqual(o, {
      host: "127.0.0.1",
      port: 8787,
      token: "t0k",
      dir: "/repo",
      pollIntervalMs: 60_000,
      concurrency: 2,
      retryInitialMs: 10_000,
      retryMaxMs: 300_000,
      includeBuilding: false,
      logLevel: "info",
    });
  });

  it("GIVEN flags and environment WHEN parsed THEN flags win over environment variables", () => {
    const o = parseWatchOptions(
      ["--listen", "0.0.0.0:9000", "--poll-interval", "90s", "--include-building"],
      {
        GITOPS_RINGS_WATCH_TOKEN: "t",
        GITOPS_RINGS_WATCH_POLL_INTERVAL: "5m",
        GITOPS_RINGS_WATCH_CONCURRENCY: "4",
      },
    );
    assert.equal(o.host, "0.0.0.0");
    assert.equal(o.port, 9000);
    assert.equal(o.pollIntervalMs, 90_000);
    assert.equal(o.concurrency, 4);
    assert.equal(o.includeBuilding, true);
  });

  it("GIVEN bad values WHEN parsed THEN the error names the flag and the value", () => {
    assert.throws(() => parseWatchOptions([], {}), /GITOPS_RINGS_WATCH_TOKEN or pass --token-file/);
    assert.throws(
      () => parseDuration("soon", "--poll-interval"),
      /--poll-interval: "soon" is not a duration/,
    );
    assert.throws(() => parseListen("8787"), /--listen: "8787" is not host:port/);
    assert.equal(parseDuration("250ms", "x"), 250);
    assert.equal(parseDuration("2", "x"), 2000);
    assert.deepEqual(parseListen("[::1]:80"), { host: "::1", port: 80 });
  });
});

describe("watcher: drift, pins, events", () => {
  it("GIVEN a plan and outputs WHEN compared THEN each difference is one line, none when in sync", () => {
    assert.deepEqual(siteDrift(plan(D1), outputs(D1)), []);
    assert.deepEqual(siteDrift(plan(D1), undefined), ["never deployed (the stack has no outputs)"]);
    const drift = siteDrift(plan(D2, "0.3.0"), outputs(D1));
    assert.equal(drift.length, 2);
    assert.equal(drift[0], "release: runs 0.2.0, should run 0.3.0");
    assert.match(
      drift[1],
      /^backend: runs 0\.1\.0 \(sha256:111111111111\), should run 0\.1\.0 \(sha256:222222222222, ring testers\)$/,
    );
  });

  it("GIVEN a pinned tag WHEN mapped THEN digests, versions and other tags get their own keys; the release takes versions only", () => {
    assert.deepEqual(pinKey("backend", "0.3.1"), {
      key: "gitops-rings:pins.backend.version",
      value: "0.3.1",
    });
    assert.deepEqual(pinKey("backend", D1), { key: "gitops-rings:pins.backend.digest", value: D1 });
    assert.deepEqual(pinKey("backend", "stable"), {
      key: "gitops-rings:pins.backend.tag",
      value: "stable",
    });
    assert.deepEqual(pinKey("release", "0.4.0"), { key: "gitops-rings:release", value: "0.4.0" });
    assert.throws(
      () => pinKey("release", "latest"),
      /pinnedTag: "latest" is not a release version/,
    );
  });

  it("GIVEN a config map WHEN a path key is set or removed THEN only that leaf changes", () => {
    const raw = {
      "gitops-rings:ring": "testers",
      "gitops-rings:pins": { backend: { tag: "x" }, frontend: { version: "1.0.0" } },
    };
    assert.deepEqual(withConfigValue(raw, "gitops-rings:pins.backend", undefined), {
      "gitops-rings:ring": "testers",
      "gitops-rings:pins": { frontend: { version: "1.0.0" } },
    });
    assert.deepEqual(withConfigValue({}, "gitops-rings:pins.base.digest", D1), {
      "gitops-rings:pins": { base: { digest: D1 } },
    });
    assert.ok(hasConfigValue(raw, "gitops-rings:pins.backend"));
    assert.ok(hasConfigValue(raw, "gitops-rings:pins.frontend.version"));
    assert.ok(!hasConfigValue(raw, "gitops-rings:pins.base"));
    assert.ok(!hasConfigValue(raw, "gitops-rings:release"));
    assert.ok(
      hasConfigValue({ "gitops-rings:pins": '{"base":{"tag":"x"}}' }, "gitops-rings:pins.base.tag"),
    );
    assert.deepEqual(
      withConfigValue(raw, "gitops-rings:autoDeploy", "true")["gitops-rings:autoDeploy"],
      "true",
    );
  });

  it("GIVEN registry events WHEN matched THEN manifest and tag pushes concern the sites running that repository path, blobs and pulls none", () => {
    const watched = new Map([
      ["dev-testers", new Set(["example/release", "example/backend"])],
      ["prod-users", new Set(["example/release"])],
    ]);
    const push = { action: "push", target: { repository: "example/backend", tag: "0.2.0" } };
    assert.ok(isRelevant(push));
    assert.deepEqual(sitesOfEvent(push, watched), ["dev-testers"]);
    const ring = {
      action: "push",
      target: {
        repository: "example/release",
        mediaType: "application/vnd.oci.image.manifest.v1+json",
      },
    };
    assert.ok(isRelevant(ring));
    assert.deepEqual(sitesOfEvent(ring, watched), ["dev-testers", "prod-users"]);
    assert.ok(
      !isRelevant({ action: "pull", target: { repository: "example/backend", tag: "0.2.0" } }),
    );
    assert.ok(
      !isRelevant({
        action: "push",
        target: {
          repository: "example/backend",
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        },
      }),
    );
  });

  it("GIVEN a bearer header WHEN compared with the token THEN only the exact token matches", () => {
    assert.ok(tokenMatches("Bearer s3cret", "s3cret"));
    assert.ok(!tokenMatches("Bearer s3cret2", "s3cret"));
    assert.ok(!tokenMatches("s3cret", "s3cret"));
    assert.ok(!tokenMatches(undefined, "s3cret"));
  });
});

describe("watcher: reconcile and API without Pulumi", () => {
  let root: string;
  let ups: string[];
  let running: string;
  let wanted: string;
  let configWrites: string[];

  const stack = (extra: Record<string, string>) =>
    stringify({
      config: { "gitops-rings:ring": "testers", "gitops-rings:environment": "dev", ...extra },
    });

  const ops: SiteOps = {
    outputs: async () => ({
      ring: { value: "testers" },
      environment: { value: "dev" },
      release: { value: "0.2.0" },
      services: { value: outputs(running).services },
    }),
    up: async (site) => {
      ups.push(site);
      running = wanted;
      return { outputs: outputs(running) };
    },
    setConfig: async (site, key, value) => {
      configWrites.push(`set ${site} ${key}=${value}`);
      const file = path.join(root, `stacks/Pulumi.${site}.yaml`);
      const doc = { config: withConfigValue(readRaw(file), key, value) };
      fs.writeFileSync(file, stringify(doc));
    },
    removeConfig: async (site, key) => {
      configWrites.push(`rm ${site} ${key}`);
    },
  };
  const readRaw = (file: string) =>
    (parseYaml(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> }).config;

  function makeWatcher(clock?: FakeClock) {
    return new Watcher({
      root,
      ops,
      logger: pino({ level: "silent" }),
      plan: async () => plan(wanted),
      pollIntervalMs: 60_000,
      ...(clock ? { clock } : {}),
    });
  }

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-watcher-"));
    fs.copyFileSync(
      path.resolve(__dirname, "../../gitops-rings.yaml"),
      path.join(root, "gitops-rings.yaml"),
    );
    fs.mkdirSync(path.join(root, "stacks"));
    fs.writeFileSync(path.join(root, "stacks/Pulumi.dev-testers.yaml"), stack({}));
    fs.writeFileSync(
      path.join(root, "stacks/Pulumi.dev-developers.yaml"),
      stack({ "gitops-rings:ring": "developers" }),
    );
    ups = [];
    configWrites = [];
    running = D1;
    wanted = D2;
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("GIVEN the repository WHEN sites are read THEN building sites are not watched, and each site watches its release and service repositories", () => {
    const w = makeWatcher();
    const sites = w.sites();
    assert.deepEqual(
      sites.map((s) => [s.site, w.watches(s)]),
      [
        ["dev-developers", false],
        ["dev-testers", true],
      ],
    );
    const repos = siteRepositories(readRepository(root), sites[1].config ?? {});
    assert.equal(repos.release, "127.0.0.1:5001/example/release");
    assert.equal(repos.backend, "127.0.0.1:5001/example/backend");
    assert.equal(readSites(root, readRepository(root)).length, 2);
  });

  it("GIVEN autoDeploy off WHEN the site drifts THEN it is reported and not deployed; WHEN the switch turns on through the API THEN it deploys with no new event", async () => {
    const w = makeWatcher();
    const app = createServer(w, { token: "tok", board: "<html></html>" });
    w.queue.enqueue("dev-testers", { reason: "event" });
    await w.queue.idle();
    assert.deepEqual(ups, []);
    assert.equal(w.status("dev-testers").inSync, false);

    const denied = await app.inject({
      method: "POST",
      url: "/tags/backend",
      payload: { site: "dev-testers", autoDeploy: true },
    });
    assert.equal(denied.statusCode, 401);
    const res = await app.inject({
      method: "POST",
      url: "/tags/backend",
      headers: { authorization: "Bearer tok" },
      payload: { site: "dev-testers", autoDeploy: true },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(configWrites, ["set dev-testers gitops-rings:autoDeploy=true"]);
    await w.queue.idle();
    assert.deepEqual(ups, ["dev-testers"]);
    const view = (await app.inject({ method: "GET", url: "/sites/dev-testers" })).json();
    assert.equal(view.inSync, true);
    assert.equal(view.lastUpdate.result, "succeeded");
    assert.equal(view.updates, 1);
    await app.close();
  });

  it("GIVEN a bad request WHEN posted THEN the schema or the site config refuses it before anything is written", async () => {
    const w = makeWatcher();
    const app = createServer(w, { token: "tok", board: "" });
    const post = (url: string, payload: unknown) =>
      app.inject({
        method: "POST",
        url,
        headers: { authorization: "Bearer tok" },
        payload: payload as object,
      });
    assert.equal((await post("/tags/backend", { site: "dev-testers" })).statusCode, 400);
    assert.equal(
      (await post("/tags/nope", { site: "dev-testers", autoDeploy: true })).statusCode,
      404,
    );
    const building = await post("/tags/backend", { site: "dev-developers", pinnedTag: "0.1.0" });
    assert.equal(building.statusCode, 400);
    assert.match(building.json().message, /this site builds/);
    assert.equal((await post("/events", { nope: [] })).statusCode, 400);
    assert.deepEqual(configWrites, []);
    const events = await app.inject({
      method: "POST",
      url: "/events",
      headers: {
        authorization: "Bearer tok",
        "content-type": "application/vnd.docker.distribution.events.v1+json",
      },
      payload: JSON.stringify({
        events: [{ action: "push", target: { repository: "example/backend", tag: "0.9.0" } }],
      }),
    });
    assert.equal(events.statusCode, 200, events.body);
    assert.deepEqual(events.json(), { events: 1, sites: ["dev-testers"] });
    await w.queue.idle();
    await app.close();
  });

  it("GIVEN autoDeploy off WHEN a pin is set and then reset through the API THEN each writes stack config and deploys at once", async () => {
    const w = makeWatcher();
    const app = createServer(w, { token: "tok", board: "" });
    const post = (url: string, payload: object) =>
      app.inject({ method: "POST", url, headers: { authorization: "Bearer tok" }, payload });
    const pinned = await post("/tags/backend", { site: "dev-testers", pinnedTag: "0.1.0" });
    assert.equal(pinned.statusCode, 200, pinned.body);
    await w.queue.idle();
    assert.deepEqual(configWrites, ["set dev-testers gitops-rings:pins.backend.version=0.1.0"]);
    assert.deepEqual(ups, ["dev-testers"], "a pin is an explicit request");
    const view = (await app.inject({ method: "GET", url: "/tags/backend" })).json();
    assert.equal(view.sites["dev-testers"].pinnedTag, "0.1.0");
    assert.equal(view.sites["dev-testers"].autoDeploy, false);

    wanted = D1;
    const reset = await post("/tags/backend/reset", { site: "dev-testers" });
    assert.equal(reset.statusCode, 200, reset.body);
    await w.queue.idle();
    assert.deepEqual(configWrites.slice(1), ["rm dev-testers gitops-rings:pins.backend"]);
    assert.deepEqual(ups, ["dev-testers", "dev-testers"]);
    await app.close();
  });

  it("GIVEN no notification at all WHEN the poll interval passes THEN the watched sites are checked and deployed anyway", async () => {
    const clock = new FakeClock();
    fs.writeFileSync(
      path.join(root, "stacks/Pulumi.dev-testers.yaml"),
      stack({ "gitops-rings:autoDeploy": "true" }),
    );
    wanted = D1;
    const w = makeWatcher(clock);
    w.start();
    await w.queue.idle();
    assert.deepEqual(ups, [], "in sync at startup");
    assert.equal(w.status("dev-testers").checks, 1);
    wanted = D2; // the registry changed, and its notification was lost
    clock.advance(59_999);
    await w.queue.idle();
    assert.deepEqual(ups, []);
    clock.advance(1);
    await w.queue.idle();
    assert.deepEqual(ups, ["dev-testers"]);
    assert.equal(w.status("dev-testers").checks, 2);
    assert.equal(w.status("dev-developers").checks, 0, "building sites are not watched");
    await w.stop();
    assert.equal(clock.pending, 0, "no poll after stop");
  });
});
