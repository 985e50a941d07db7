/**
 * The watcher's HTTP API (fastify, a JSON schema per route), in the spirit of
 * registrywatcher (seeds/004): `GET /ping`, `GET /metrics`, `GET /repos`, `GET|POST
 * /tags/{repo}`, `POST /tags/{repo}/reset`, `GET /sites`, `GET /sites/{site}`, `POST
 * /sites/{site}/deploy`, `POST /events` (Distribution notifications), and the board at `GET /`.
 * Routes that change anything need the shared token (`Authorization: Bearer <token>`).
 * Pins and the autoDeploy switch are written to the site's stack config, so they show in its
 * stack history; the watcher's own memory holds only what it observed.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { CONFIG_NAMESPACE, RELEASE, parseSiteConfig, siteValuesFromConfigMap } from "../lib/config";
import { EVENTS_MEDIA_TYPE, envelopeSchema, type RegistryEvent } from "./events";
import {
  hasConfigValue,
  pinKey,
  pinRoot,
  pinnedTagOf,
  readStackConfig,
  siteRepositories,
  withConfigValue,
  type SiteEntry,
} from "./sites";
import type { Watcher } from "./watcher";

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** The shared token of mutating routes. */
  readonly token: string;
  /** The board's HTML. @default watcher/board.html */
  readonly board?: string;
}

const message = { type: "object", properties: { message: { type: "string" } } } as const;
const anyObject = { type: "object", additionalProperties: true } as const;
const siteParam = {
  type: "object",
  required: ["site"],
  properties: { site: { type: "string", pattern: "^[A-Za-z0-9_.-]+$" } },
} as const;
const repoParam = {
  type: "object",
  required: ["repo"],
  properties: { repo: { type: "string", minLength: 1 } },
} as const;

/** Constant-time comparison of a request's bearer token with the configured one. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!m) return false;
  const a = createHash("sha256").update(m[1].trim()).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

/** The API view of one site. */
export function siteView(watcher: Watcher, entry: SiteEntry) {
  const s = watcher.status(entry.site);
  const q = watcher.queueState(entry.site);
  return {
    site: entry.site,
    file: entry.file,
    ...(entry.error !== undefined ? { configError: entry.error } : {}),
    ring: entry.config?.ring,
    environment: entry.config?.environment,
    build: entry.config?.build,
    autoDeploy: entry.config?.autoDeploy ?? false,
    watched: watcher.watches(entry),
    release: s.running?.release ?? null,
    desiredRelease: s.desired?.release ?? null,
    inSync: s.inSync ?? null,
    drift: s.drift,
    checkedAt: s.checkedAt ?? null,
    checkError: s.checkError ?? null,
    checks: s.checks,
    updates: s.updates,
    lastUpdate: s.lastUpdate ?? null,
    queue: {
      state: q.phase,
      pending: q.pending !== undefined,
      ...(q.trigger !== undefined ? { reason: q.trigger.reason } : {}),
      failures: q.failures,
      ...(q.retryAt !== undefined ? { retryAt: new Date(q.retryAt).toISOString() } : {}),
      ...(q.lastError !== undefined ? { lastError: q.lastError } : {}),
      runs: q.runs,
      coalesced: q.coalesced,
    },
  };
}

/** The API view of one repository (a service, or `release`): its tags and the sites that run it. */
async function repoView(watcher: Watcher, repo: string, entries: readonly SiteEntry[]) {
  const config = watcher.repository();
  const sites: Record<string, unknown> = {};
  const repositories = new Set<string>();
  for (const e of entries) {
    if (!e.config) continue;
    const repository = siteRepositories(config, e.config)[repo];
    repositories.add(repository);
    const s = watcher.status(e.site);
    const pinned =
      repo === RELEASE ? e.config.release : pinnedTagOf(e.config.pins[repo] ?? undefined);
    const running =
      repo === RELEASE
        ? { version: s.running?.release ?? null }
        : {
            version: s.running?.services[repo]?.version ?? null,
            digest: s.running?.services[repo]?.digest ?? null,
          };
    const desired =
      repo === RELEASE
        ? { version: s.desired?.release ?? null }
        : {
            version: s.desired?.images[repo]?.version ?? null,
            digest: s.desired?.images[repo]?.digest ?? null,
            why: s.desired?.images[repo]?.why ?? null,
          };
    sites[e.site] = {
      repository,
      pinnedTag: pinned ?? null,
      policy: repo === RELEASE ? null : (e.config.policies[repo] ?? null),
      autoDeploy: e.config.autoDeploy,
      running,
      desired,
    };
  }
  const tags: Record<string, string[]> = {};
  for (const r of [...repositories].sort()) {
    try {
      tags[r] = [...(await watcher.client.listTags(r))].sort();
    } catch (e) {
      watcher.options.logger.warn({ event: "tags", repository: r }, (e as Error).message);
      tags[r] = [];
    }
  }
  return { repo, tags, sites };
}

/** The names `/tags/{repo}` accepts: every service, and `release`. */
function repoNames(watcher: Watcher): string[] {
  return [RELEASE, ...Object.keys(watcher.repository().services).sort()];
}

/**
 * Validates the stack config `site` would have after `changes`, as `pulumi up` would
 * (lib/config.ts), before anything is written.
 * @throws ConfigError (lib/config.ts) naming the stack file, key and value.
 */
function checkChanges(
  watcher: Watcher,
  site: string,
  changes: readonly { readonly key: string; readonly value?: string }[],
): void {
  let raw: Record<string, unknown> = readStackConfig(watcher.options.root, site);
  for (const c of changes) raw = withConfigValue(raw, c.key, c.value);
  parseSiteConfig(siteValuesFromConfigMap(raw), `stacks/Pulumi.${site}.yaml`, watcher.repository());
}

/** Creates the fastify app of `watcher` (not listening yet). */
export function createServer(watcher: Watcher, options: ServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: watcher.options.logger as FastifyBaseLogger,
    // The watcher logs one line per event and per update, not one per request.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const board =
    options.board ?? fs.readFileSync(path.join(__dirname, "board.html"), { encoding: "utf8" });

  app.addContentTypeParser(EVENTS_MEDIA_TYPE, { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      (e as { statusCode?: number }).statusCode = 400;
      done(e as Error, undefined);
    }
  });

  const auth = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!tokenMatches(req.headers.authorization, options.token)) {
      return reply.code(401).send({ message: "missing or wrong token (Authorization: Bearer …)" });
    }
  };
  const findSite = (site: string) => watcher.sites().find((e) => e.site === site);
  const knownRepo = (repo: string) => repoNames(watcher).includes(repo);

  app.get("/", { schema: { response: { 200: { type: "string" } } } }, async (_req, reply) =>
    reply.type("text/html; charset=utf-8").send(board),
  );

  app.get("/ping", { schema: { response: { 200: message } } }, async () => ({ message: "pong" }));

  app.get("/metrics", async (_req, reply) => {
    const text = await watcher.metrics.registry.metrics();
    return reply.type(watcher.metrics.registry.contentType).send(text);
  });

  app.get("/repos", { schema: { response: { 200: anyObject } } }, async () => {
    const entries = watcher.sites();
    const names = repoNames(watcher);
    const views = await Promise.all(names.map((r) => repoView(watcher, r, entries)));
    return Object.fromEntries(views.map((v) => [v.repo, v]));
  });

  app.get<{ Params: { repo: string } }>(
    "/tags/:repo",
    { schema: { params: repoParam, response: { 200: anyObject, 404: message } } },
    async (req, reply) => {
      if (!knownRepo(req.params.repo)) {
        return reply.code(404).send({
          message: `no repository ${req.params.repo} (repositories: ${repoNames(watcher).join(", ")})`,
        });
      }
      return repoView(watcher, req.params.repo, watcher.sites());
    },
  );

  app.post<{
    Params: { repo: string };
    Body: { site: string; pinnedTag?: string; autoDeploy?: boolean };
  }>(
    "/tags/:repo",
    {
      onRequest: auth,
      schema: {
        params: repoParam,
        body: {
          type: "object",
          required: ["site"],
          additionalProperties: false,
          anyOf: [{ required: ["pinnedTag"] }, { required: ["autoDeploy"] }],
          properties: {
            site: { type: "string", minLength: 1 },
            pinnedTag: { type: "string", minLength: 1 },
            autoDeploy: { type: "boolean" },
          },
        },
        response: { 200: anyObject, 400: message, 404: message },
      },
    },
    async (req, reply) => {
      const { repo } = req.params;
      const { site, pinnedTag, autoDeploy } = req.body;
      if (!knownRepo(repo)) return reply.code(404).send({ message: `no repository ${repo}` });
      if (!findSite(site)) return reply.code(404).send({ message: `no site ${site} in stacks/` });
      const changes: { key: string; value?: string }[] = [];
      try {
        if (pinnedTag !== undefined) {
          changes.push({ key: pinRoot(repo) });
          changes.push(pinKey(repo, pinnedTag));
        }
        if (autoDeploy !== undefined) {
          changes.push({ key: `${CONFIG_NAMESPACE}:autoDeploy`, value: String(autoDeploy) });
        }
        checkChanges(watcher, site, changes);
      } catch (e) {
        return reply.code(400).send({ message: (e as Error).message });
      }
      // Removing a key that is not set fails in the CLI: remove only what is there.
      const raw = readStackConfig(watcher.options.root, site);
      await watcher.writeConfig(
        site,
        changes.filter((c) => c.value !== undefined || hasConfigValue(raw, c.key)),
      );
      // A pin is an explicit request: deploy it even with autoDeploy off. Turning autoDeploy on
      // reconciles what changed while it was off; turning it off deploys nothing.
      if (pinnedTag !== undefined || autoDeploy === true) {
        watcher.queue.enqueue(site, { reason: "api", force: pinnedTag !== undefined });
      }
      return { message: `site ${site}: ${changes.map((c) => c.key).join(", ")} written`, site };
    },
  );

  app.post<{ Params: { repo: string }; Body: { site: string } }>(
    "/tags/:repo/reset",
    {
      onRequest: auth,
      schema: {
        params: repoParam,
        body: {
          type: "object",
          required: ["site"],
          additionalProperties: false,
          properties: { site: { type: "string", minLength: 1 } },
        },
        response: { 200: anyObject, 404: message },
      },
    },
    async (req, reply) => {
      const { repo } = req.params;
      const { site } = req.body;
      if (!knownRepo(repo)) return reply.code(404).send({ message: `no repository ${repo}` });
      if (!findSite(site)) return reply.code(404).send({ message: `no site ${site} in stacks/` });
      const key = pinRoot(repo);
      const pinned = hasConfigValue(readStackConfig(watcher.options.root, site), key);
      if (pinned) await watcher.writeConfig(site, [{ key }]);
      watcher.queue.enqueue(site, { reason: "api", force: true });
      return {
        message: pinned ? `site ${site}: ${key} removed` : `site ${site}: ${key} was not set`,
        site,
      };
    },
  );

  app.get(
    "/sites",
    { schema: { response: { 200: { type: "array", items: anyObject } } } },
    async () => watcher.sites().map((e) => siteView(watcher, e)),
  );

  app.get<{ Params: { site: string } }>(
    "/sites/:site",
    { schema: { params: siteParam, response: { 200: anyObject, 404: message } } },
    async (req, reply) => {
      const entry = findSite(req.params.site);
      if (!entry) return reply.code(404).send({ message: `no site ${req.params.site} in stacks/` });
      return siteView(watcher, entry);
    },
  );

  app.post<{ Params: { site: string } }>(
    "/sites/:site/deploy",
    { onRequest: auth, schema: { params: siteParam, response: { 202: message, 404: message } } },
    async (req, reply) => {
      const entry = findSite(req.params.site);
      if (!entry) return reply.code(404).send({ message: `no site ${req.params.site} in stacks/` });
      watcher.queue.enqueue(entry.site, { reason: "api", force: true });
      return reply.code(202).send({ message: `site ${entry.site}: reconcile queued` });
    },
  );

  app.post<{ Body: { events: RegistryEvent[] } }>(
    "/events",
    {
      onRequest: auth,
      schema: {
        body: envelopeSchema,
        response: {
          200: {
            type: "object",
            properties: {
              events: { type: "number" },
              sites: { type: "array", items: { type: "string" } },
            },
          },
        },
      },
    },
    async (req) => {
      const sites = watcher.onEvents(req.body.events);
      return { events: req.body.events.length, sites };
    },
  );

  return app;
}
