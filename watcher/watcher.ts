/**
 * The watcher (DESIGN.md flow 6): level-triggered reconciliation of the version repository's
 * sites. Registry notifications, poll ticks and API calls only say "look at these sites"; a
 * reconcile computes what the site should run now (lib/site.ts prepareSite, the plan `pulumi
 * preview` computes), compares it with what its stack outputs say it runs (watcher/sites.ts
 * siteDrift) and, when they differ and the site has `autoDeploy` on (or the call was an
 * explicit request), runs `pulumi up` on it. A lost event, a restart, or turning `autoDeploy`
 * back on therefore reconciles to the current desired state. The watcher never moves a ring
 * or a tag.
 */
import type { Logger } from "pino";
import { parseSiteOutputs, type SiteOutputs } from "../lib/check";
import type { RepositoryConfig } from "../lib/config";
import { Semaphore } from "../lib/limit";
import { RegistryClient } from "../lib/registry";
import { prepareSite, readConfig, type BuiltImages, type SitePlan } from "../lib/site";
import { isRelevant, sitesOfEvent, type RegistryEvent } from "./events";
import { WatcherMetrics } from "./metrics";
import type { SiteOps } from "./pulumi";
import {
  ReconcileQueue,
  systemClock,
  type Backoff,
  type Clock,
  type QueueState,
  type Trigger,
} from "./queue";
import {
  readRepository,
  readSites,
  repositoryPath,
  siteDrift,
  siteRepositories,
  type SiteEntry,
} from "./sites";

/** The last `pulumi up` the watcher ran on a site. */
export interface UpdateRecord {
  /** ISO time. */
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSeconds: number;
  readonly result: "succeeded" | "failed";
  /** The trigger's reason. */
  readonly reason: string;
  /** What differed before the update. */
  readonly drift: readonly string[];
  readonly error?: string;
}

/** What the watcher last learned of a site. */
export interface SiteStatus {
  /** ISO time of the last check. */
  checkedAt?: string;
  /** Whether what it runs is what it should run, at the last check (or after the last update). */
  inSync?: boolean;
  drift: string[];
  /** What it runs: its stack outputs at the last check or update. */
  running?: SiteOutputs;
  /** What it should run: the plan's release and images at the last check. */
  desired?: {
    readonly release?: string;
    readonly images: Readonly<Record<string, { version?: string; digest?: string; why: string }>>;
  };
  /** Why the last check failed (bad config, a registry error), until one succeeds. */
  checkError?: string;
  lastUpdate?: UpdateRecord;
  checks: number;
  updates: number;
}

/** Options of {@link Watcher}. */
export interface WatcherOptions {
  /** The version repository's root (holds `gitops-rings.yaml` and `stacks/`). */
  readonly root: string;
  readonly ops: SiteOps;
  readonly logger: Logger;
  /** Every site is checked this often, whatever the notifications said. @default 60000 */
  readonly pollIntervalMs?: number;
  /** Sites reconciled at once. @default 2 */
  readonly concurrency?: number;
  /** @default 10 s doubling to 5 min */
  readonly backoff?: Backoff;
  /**
   * Whether building sites (`build: true`, by default those of the first ring) are reconciled
   * too; their changes come from git, so by default the watcher leaves them to `pulumi up` by a
   * person or CI. @default false
   */
  readonly includeBuilding?: boolean;
  /** @default a new {@link RegistryClient} */
  readonly client?: RegistryClient;
  /** @default {@link systemClock} */
  readonly clock?: Clock;
  /** Computes a site's plan. @default lib/site.ts prepareSite over readConfig */
  readonly plan?: (site: SiteEntry, previous: BuiltImages) => Promise<SitePlan>;
}

/** The watcher service without its HTTP server (watcher/server.ts). */
export class Watcher {
  readonly metrics = new WatcherMetrics();
  readonly queue: ReconcileQueue;
  readonly client: RegistryClient;
  private readonly statuses = new Map<string, SiteStatus>();
  /** Config writes one at a time: two `pulumi config set` on one file would race. */
  private readonly configLock = new Semaphore(1);
  private pollTimer?: unknown;
  private stopped = false;
  private readonly clock: Clock;

  constructor(readonly options: WatcherOptions) {
    this.clock = options.clock ?? systemClock;
    this.client = options.client ?? new RegistryClient();
    this.queue = new ReconcileQueue({
      concurrency: options.concurrency ?? 2,
      clock: this.clock,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      run: (site, trigger) => this.reconcile(site, trigger),
      onFailure: (site, err, failures, delayMs) =>
        options.logger.warn(
          { event: "retry", site, failures, retryInSeconds: delayMs / 1000 },
          `${site}: ${(err as Error).message}`,
        ),
    });
  }

  /** The repository config, read anew each time: git may change it under a running watcher. */
  repository(): RepositoryConfig {
    return readRepository(this.options.root);
  }

  /** Every site of `stacks/`, with its config or the error that config has. */
  sites(): SiteEntry[] {
    return readSites(this.options.root, this.repository());
  }

  /** Whether the watcher reconciles `site` (building sites only with `includeBuilding`). */
  watches(entry: SiteEntry): boolean {
    return entry.config === undefined || !entry.config.build || !!this.options.includeBuilding;
  }

  /** What the watcher last learned of `site`. */
  status(site: string): SiteStatus {
    let s = this.statuses.get(site);
    if (!s) {
      s = { drift: [], checks: 0, updates: 0 };
      this.statuses.set(site, s);
    }
    return s;
  }

  /** The queue state of `site`. */
  queueState(site: string): QueueState {
    return this.queue.state(site);
  }

  /** Starts: every watched site is reconciled now, then every poll interval. */
  start(): void {
    this.enqueueAll({ reason: "startup" });
    this.schedulePoll();
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.metrics.events.inc({ source: "poll", action: "poll" });
      this.enqueueAll({ reason: "poll" });
      this.schedulePoll();
    }, this.options.pollIntervalMs ?? 60_000);
  }

  /** Asks for a reconcile of every watched site. */
  enqueueAll(trigger: Trigger): void {
    for (const entry of this.sites()) {
      if (this.watches(entry)) this.queue.enqueue(entry.site, trigger);
    }
  }

  /**
   * Handles the events of one registry notification: logs each, and reconciles the sites that
   * run an image of a repository a relevant one names.
   * @returns the sites asked to reconcile.
   */
  onEvents(events: readonly RegistryEvent[]): string[] {
    const repo = this.repository();
    const entries = this.sites().filter((e) => this.watches(e));
    const watched = new Map(
      entries.map((e) => [
        e.site,
        new Set(Object.values(siteRepositories(repo, e.config ?? {})).map(repositoryPath)),
      ]),
    );
    const sites = new Set<string>();
    for (const event of events) {
      this.metrics.events.inc({ source: "webhook", action: event.action });
      const relevant = isRelevant(event);
      const concerned = relevant ? sitesOfEvent(event, watched) : [];
      // Pulls and blob uploads are logged only at debug level: they change no site.
      this.options.logger[relevant ? "info" : "debug"](
        {
          event: "notification",
          action: event.action,
          repository: event.target?.repository,
          tag: event.target?.tag,
          digest: event.target?.digest,
          sites: concerned,
        },
        "registry event",
      );
      for (const s of concerned) sites.add(s);
    }
    for (const site of sites) this.queue.enqueue(site, { reason: "event" });
    return [...sites].sort();
  }

  /** Reconciles one site: check, and deploy when it differs and may be deployed. */
  private async reconcile(site: string, trigger: Trigger): Promise<void> {
    const log = this.options.logger;
    const status = this.status(site);
    const entry = this.sites().find((e) => e.site === site);
    if (entry === undefined) {
      this.statuses.delete(site);
      return;
    }
    let drift: string[];
    try {
      if (entry.error !== undefined) throw new Error(entry.error);
      if (!this.watches(entry)) return;
      const raw = await this.options.ops.outputs(site);
      const outputs = parseSiteOutputs(raw, site);
      const previous = ((raw.builtImages as { value?: unknown } | undefined)?.value ??
        {}) as BuiltImages;
      const plan = await (this.options.plan ?? this.defaultPlan)(entry, previous);
      drift = siteDrift(plan, outputs);
      status.checks++;
      status.checkedAt = new Date(this.clock.now()).toISOString();
      status.running = outputs;
      status.desired = desiredOf(plan);
      status.drift = drift;
      status.inSync = drift.length === 0;
      status.checkError = undefined;
      this.metrics.checks.inc({ site, result: status.inSync ? "in_sync" : "out_of_sync" });
      this.updateGauge();
    } catch (e) {
      status.checkError = (e as Error).message;
      this.metrics.checks.inc({ site, result: "error" });
      throw e;
    }
    const autoDeploy = entry.config?.autoDeploy ?? false;
    log.debug({ event: "check", site, reason: trigger.reason, drift }, "checked");
    if (drift.length === 0) return;
    if (!autoDeploy && !trigger.force) {
      log.info(
        { event: "out-of-sync", site, reason: trigger.reason, drift },
        `${site}: out of sync, autoDeploy off: not deploying`,
      );
      return;
    }
    await this.update(site, trigger, drift);
  }

  private readonly defaultPlan = async (entry: SiteEntry, previous: BuiltImages) =>
    prepareSite({
      root: this.options.root,
      stack: entry.site,
      config: readConfig(this.options.root, entry.site, entry.raw),
      previous,
      client: this.client,
    });

  private async update(site: string, trigger: Trigger, drift: string[]): Promise<void> {
    const status = this.status(site);
    const started = this.clock.now();
    const record = (result: UpdateRecord["result"], error?: string): UpdateRecord => {
      const finished = this.clock.now();
      return {
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(finished).toISOString(),
        durationSeconds: (finished - started) / 1000,
        result,
        reason: trigger.reason,
        drift,
        ...(error !== undefined ? { error } : {}),
      };
    };
    this.options.logger.info(
      { event: "update-start", site, reason: trigger.reason, drift },
      `${site}: pulumi up`,
    );
    try {
      const { outputs } = await this.options.ops.up(site);
      status.lastUpdate = record("succeeded");
      status.running = parseSiteOutputs(outputs, site);
      status.inSync = true;
      status.drift = [];
      this.updateGauge();
    } catch (e) {
      status.lastUpdate = record("failed", (e as Error).message);
      throw e;
    } finally {
      const u = status.lastUpdate as UpdateRecord;
      status.updates++;
      this.metrics.updates.inc({ site, result: u.result });
      this.metrics.updateDuration.observe({ site }, u.durationSeconds);
      this.options.logger[u.result === "succeeded" ? "info" : "error"](
        {
          event: "update",
          site,
          result: u.result,
          durationSeconds: u.durationSeconds,
          reason: u.reason,
          release: status.running?.release,
          drift,
          ...(u.error !== undefined ? { error: u.error } : {}),
        },
        `${site}: update ${u.result}`,
      );
    }
  }

  private updateGauge(): void {
    let n = 0;
    for (const s of this.statuses.values()) if (s.inSync === false) n++;
    this.metrics.outOfSync.set(n);
  }

  /**
   * Writes stack config of `site` (each key set to its value, or removed when undefined), one
   * writer at a time, so that the change shows in the stack's history with the next update.
   */
  async writeConfig(
    site: string,
    changes: readonly { readonly key: string; readonly value?: string }[],
  ): Promise<void> {
    await this.configLock.run(async () => {
      for (const c of changes) {
        if (c.value === undefined) await this.options.ops.removeConfig(site, c.key);
        else await this.options.ops.setConfig(site, c.key, c.value);
      }
    });
    this.options.logger.info({ event: "config", site, changes }, `${site}: stack config written`);
  }

  /**
   * Stops: no more polls or new reconciles; resolves when the updates running now have
   * finished (SIGTERM lets a running update finish).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer !== undefined) this.clock.clearTimeout(this.pollTimer);
    await this.queue.drain();
  }
}

/** The plan's release and images, as the API shows what a site should run. */
function desiredOf(plan: SitePlan): SiteStatus["desired"] {
  if (plan.build) {
    return {
      release: plan.release.version,
      images: Object.fromEntries(
        plan.services.map((s) => [
          s.service,
          {
            version: s.version,
            ...(s.digest !== undefined && s.action !== "build" ? { digest: s.digest } : {}),
            why: s.action === "build" ? `build (${s.reason})` : s.action,
          },
        ]),
      ),
    };
  }
  return {
    ...(plan.deploy.release !== undefined ? { release: plan.deploy.release } : {}),
    images: plan.deploy.images,
  };
}
