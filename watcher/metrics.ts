/**
 * The watcher's Prometheus metrics (`GET /metrics`), on a registry of their own so that two
 * watchers in one process (tests) do not collide.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The metrics of one watcher. */
export class WatcherMetrics {
  readonly registry = new Registry();
  /** Registry notifications and poll ticks received. */
  readonly events = new Counter({
    name: "gitops_rings_watch_events_total",
    help: "Events received: registry notifications (source=webhook, by action) and poll ticks (source=poll).",
    labelNames: ["source", "action"] as const,
    registers: [this.registry],
  });
  /** Reconciles that compared a site's plan with its outputs. */
  readonly checks = new Counter({
    name: "gitops_rings_watch_checks_total",
    help: "Site checks (plan compared with stack outputs), by site and result (in_sync, out_of_sync, error).",
    labelNames: ["site", "result"] as const,
    registers: [this.registry],
  });
  /** `pulumi up` runs by result. */
  readonly updates = new Counter({
    name: "gitops_rings_watch_updates_total",
    help: "pulumi up runs by site and result (succeeded, failed).",
    labelNames: ["site", "result"] as const,
    registers: [this.registry],
  });
  /** How long `pulumi up` runs took. */
  readonly updateDuration = new Histogram({
    name: "gitops_rings_watch_update_duration_seconds",
    help: "Duration of pulumi up runs, by site.",
    labelNames: ["site"] as const,
    buckets: [5, 10, 20, 30, 60, 120, 300, 600, 1200],
    registers: [this.registry],
  });
  /** Sites whose last check found them out of sync. */
  readonly outOfSync = new Gauge({
    name: "gitops_rings_watch_sites_out_of_sync",
    help: "Sites whose last check found that what they run differs from what they should run.",
    registers: [this.registry],
  });
}
