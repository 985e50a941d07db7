/**
 * The watcher's reconcile queue (DESIGN.md flow 6): one reconcile per site at a time, events
 * during a reconcile coalesce into at most one more, different sites run concurrently up to a
 * limit, and a failed reconcile is retried with exponential backoff. It knows nothing of
 * Pulumi or the registry: it schedules calls of a `run` function, on a clock that tests
 * replace with a fake one.
 */

/** Timers, so that tests can drive the queue with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Why a site is reconciled. */
export interface Trigger {
  /** What asked for it: `startup`, `poll`, `event`, `api`, `retry`, … (merged ones joined by `+`). */
  readonly reason: string;
  /**
   * Deploy even when the site's `autoDeploy` is off: an explicit request (`POST
   * /sites/{site}/deploy`, a pin set through the API). @default false
   */
  readonly force?: boolean;
}

/** Merges two triggers into the one reconcile that serves both. */
export function mergeTriggers(a: Trigger | undefined, b: Trigger): Trigger {
  if (a === undefined) return b;
  const reasons = [...new Set([...a.reason.split("+"), ...b.reason.split("+")])];
  return { reason: reasons.join("+"), force: Boolean(a.force || b.force) };
}

/** Where a site is in the queue. */
export type Phase = "idle" | "queued" | "running" | "backoff";

/** A site's queue state, as `GET /sites/{site}` shows it. */
export interface QueueState {
  readonly phase: Phase;
  /** The trigger of the reconcile that is queued, running, or waiting to be retried. */
  readonly trigger?: Trigger;
  /** While running: the one more reconcile that events during this one coalesced into. */
  readonly pending?: Trigger;
  /** Failed reconciles in a row. */
  readonly failures: number;
  /** While in backoff: when the retry runs (ms since the epoch). */
  readonly retryAt?: number;
  /** The last failure's message, until a reconcile succeeds. */
  readonly lastError?: string;
  /** Reconciles started. */
  readonly runs: number;
  /** Triggers that joined a reconcile already queued, running or waiting (not run on their own). */
  readonly coalesced: number;
}

/** Exponential backoff of failed reconciles. */
export interface Backoff {
  /** Delay after the first failure. @default 10000 */
  readonly initialMs: number;
  /** Longest delay. @default 300000 */
  readonly maxMs: number;
}

/** The delay before retry number `failures` (1 for the first): doubling, capped. */
export function backoffDelay(backoff: Backoff, failures: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, failures - 1));
}

/** Options of {@link ReconcileQueue}. */
export interface ReconcileQueueOptions {
  /** Reconciles of different sites at once. @default 2 */
  readonly concurrency?: number;
  /** Reconciles one site; a rejection counts as a failure and is retried. */
  readonly run: (site: string, trigger: Trigger) => Promise<void>;
  /** @default {@link systemClock} */
  readonly clock?: Clock;
  /** @default 10 s doubling to 5 min */
  readonly backoff?: Backoff;
  /** Called after each failure with the delay until the retry. */
  readonly onFailure?: (site: string, error: unknown, failures: number, delayMs: number) => void;
}

interface Entry {
  phase: Phase;
  trigger?: Trigger;
  pending?: Trigger;
  failures: number;
  retryAt?: number;
  timer?: unknown;
  lastError?: string;
  runs: number;
  coalesced: number;
}

/** The reconcile queue: see the module comment. */
export class ReconcileQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly ready: string[] = [];
  private active = 0;
  private draining = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly clock: Clock;
  private readonly backoff: Backoff;

  constructor(private readonly options: ReconcileQueueOptions) {
    this.concurrency = options.concurrency ?? 2;
    if (!(this.concurrency >= 1)) {
      throw new Error(`concurrency: ${this.concurrency} must be at least 1`);
    }
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? { initialMs: 10_000, maxMs: 300_000 };
  }

  private entry(site: string): Entry {
    let e = this.entries.get(site);
    if (!e) {
      e = { phase: "idle", failures: 0, runs: 0, coalesced: 0 };
      this.entries.set(site, e);
    }
    return e;
  }

  /**
   * Asks for a reconcile of `site`. An idle site is queued; a queued one keeps its place and
   * merges the trigger; a running one gets at most one more reconcile after this one (every
   * trigger meanwhile merges into it); one waiting to be retried merges the trigger into the
   * retry, unless the trigger is forced, which runs it now. Ignored once {@link drain} began.
   */
  enqueue(site: string, trigger: Trigger): void {
    if (this.draining) return;
    const e = this.entry(site);
    switch (e.phase) {
      case "running":
        if (e.pending !== undefined) e.coalesced++;
        e.pending = mergeTriggers(e.pending, trigger);
        return;
      case "queued":
        e.coalesced++;
        e.trigger = mergeTriggers(e.trigger, trigger);
        return;
      case "backoff":
        e.trigger = mergeTriggers(e.trigger, trigger);
        if (!trigger.force) {
          e.coalesced++;
          return;
        }
        this.clock.clearTimeout(e.timer);
        e.timer = undefined;
        e.retryAt = undefined;
        this.queue(site, e);
        return;
      case "idle":
        e.trigger = trigger;
        this.queue(site, e);
        return;
    }
  }

  private queue(site: string, e: Entry): void {
    e.phase = "queued";
    this.ready.push(site);
    this.pump();
  }

  private pump(): void {
    while (!this.draining && this.active < this.concurrency && this.ready.length > 0) {
      const site = this.ready.shift() as string;
      void this.start(site, this.entry(site));
    }
    this.notifyIdle();
  }

  private async start(site: string, e: Entry): Promise<void> {
    e.phase = "running";
    e.runs++;
    this.active++;
    const trigger = e.trigger ?? { reason: "unknown" };
    try {
      await this.options.run(site, trigger);
      e.failures = 0;
      e.lastError = undefined;
      e.trigger = undefined;
      if (e.pending !== undefined && !this.draining) {
        e.trigger = e.pending;
        e.pending = undefined;
        e.phase = "queued";
        this.ready.push(site);
      } else {
        e.pending = undefined;
        e.phase = "idle";
      }
    } catch (err) {
      e.failures++;
      e.lastError = err instanceof Error ? err.message : String(err);
      const delay = backoffDelay(this.backoff, e.failures);
      // The retry serves the failed trigger and whatever came meanwhile.
      e.trigger = mergeTriggers(
        e.pending === undefined ? trigger : mergeTriggers(trigger, e.pending),
        { reason: "retry" },
      );
      e.pending = undefined;
      this.options.onFailure?.(site, err, e.failures, delay);
      if (this.draining) {
        e.phase = "idle";
      } else {
        e.phase = "backoff";
        e.retryAt = this.clock.now() + delay;
        e.timer = this.clock.setTimeout(() => {
          e.timer = undefined;
          e.retryAt = undefined;
          if (e.phase === "backoff" && !this.draining) this.queue(site, e);
        }, delay);
      }
    } finally {
      this.active--;
      this.pump();
    }
  }

  /** The queue state of `site` (idle when it was never enqueued). */
  state(site: string): QueueState {
    const e = this.entries.get(site) ?? { phase: "idle", failures: 0, runs: 0, coalesced: 0 };
    return {
      phase: e.phase,
      ...(e.trigger !== undefined && e.phase !== "idle" ? { trigger: e.trigger } : {}),
      ...(e.pending !== undefined ? { pending: e.pending } : {}),
      failures: e.failures,
      ...(e.retryAt !== undefined ? { retryAt: e.retryAt } : {}),
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
      runs: e.runs,
      coalesced: e.coalesced,
    };
  }

  /** Reconciles running now. */
  get running(): number {
    return this.active;
  }

  /** Resolves when nothing runs and nothing is queued (sites waiting in backoff do not count). */
  idle(): Promise<void> {
    if (this.active === 0 && (this.ready.length === 0 || this.draining)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.active === 0 && (this.ready.length === 0 || this.draining)) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /**
   * Stops: nothing new starts (queued and pending reconciles and retries are dropped), and the
   * returned promise resolves once the reconciles running now have finished.
   */
  drain(): Promise<void> {
    this.draining = true;
    for (const e of this.entries.values()) {
      if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
      e.timer = undefined;
      if (e.phase !== "running") e.phase = "idle";
    }
    this.ready.length = 0;
    return this.idle();
  }
}
