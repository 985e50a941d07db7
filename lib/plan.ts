/**
 * The release plan of a build against ring R (DESIGN.md, flows 1 and 7): per service, in
 * dependency order, whether its image is reused or rebuilt and why, its current and next
 * version and its revision; and the release's current and next version. What
 * `pulumi preview` prints ({@link formatPlan}) and what `pulumi up` builds.
 *
 * Rules: a service with no image in R is `new`; one whose revision differs from the image
 * in R is `revision changed`; one whose dependency rebuilds is `dependency changed` (its
 * revision covers the dependency's digest, which is not known until that dependency is
 * built); else `unchanged` and reused (DESIGN.md invariant 3; GitOps seed 001: "A container
 * will get rebuild if a dependent container has a different version than the current build.
 * Or the revision hash does not match."). Versions follow lib/version.ts. Pure: no I/O.
 */
import type { RepositoryConfig, SiteConfig } from "./config";
import { RELEASE } from "./config";
import { dependencyOrder, type DependencyEdge } from "./graph";
import { revisionOf, type RevisionInput } from "./revision";
import * as semver from "semver";
import type { Digest, ImageRecord, Revision, RingName, RingState, Version } from "./types";
import { nextRing, nextVersion } from "./version";

/** What the plan knows of one service before deciding. */
export interface PlanServiceInput {
  /** The content digest of the service's revision (lib/revision.ts, {@link RevisionInput}). */
  readonly content: RevisionInput["content"];
  /** The services its Dockerfile builds FROM (lib/dockerfile.ts), with where it says so. */
  readonly dependencies: readonly (string | DependencyEdge)[];
}

/** Everything {@link planRelease} decides from. */
export interface PlanInput {
  /** The repository config (services, initial version, rings). */
  readonly repository: RepositoryConfig;
  /** The site's config (ring R, the requested majors `majorBump`). */
  readonly site: SiteConfig;
  /** What ring R points at now. */
  readonly current: RingState;
  /** What ring N (the one after R) points at now; absent when R is `post`. */
  readonly next?: RingState;
  /** Every configured service's revision input and dependencies, by service name. */
  readonly services: Readonly<Record<string, PlanServiceInput>>;
  /**
   * Images already in the registry, by service name, that the plan may reuse when a service's
   * revision equals theirs (a revert, or the same change built before): same revision, no
   * rebuild and no new version (DESIGN.md invariant 3). lib/state-store.ts `findByRevision`
   * finds them. @default {}
   */
  readonly known?: Readonly<Record<string, readonly ImageRecord[]>>;
  /**
   * Every version tag its repository holds already, by service name and `release`. A next
   * version that is taken (after an unshift, or a revert that reused an older image) is bumped
   * by patch until it is free, since a version tag never moves (invariant 1). When neither R
   * nor N has a version, the highest of them counts as the version in R (lib/version.ts
   * `nextVersion`, `registry`): a service re-added after its rings were emptied continues
   * after its last build; the initial version is only for a repository with no version tag.
   * @default {}
   */
  readonly taken?: Readonly<Record<string, readonly Version[]>>;
}

/** Why a service is rebuilt or reused. */
export type PlanReason = "new" | "revision changed" | "dependency changed" | "unchanged";

/** The decision for one service. */
export interface PlannedService {
  /** The service name. */
  readonly service: string;
  /** `build`: a new image and version; `reuse`: the image R's release holds. */
  readonly action: "build" | "reuse";
  /** Why (DESIGN.md, flow 7). */
  readonly reason: PlanReason;
  /** Its version in R, when it has one. */
  readonly currentVersion?: Version;
  /** The version it will have in R: `currentVersion` when reused. */
  readonly nextVersion: Version;
  /**
   * Its revision. Absent when a dependency rebuilds: the revision covers the dependency's
   * new digest, known only once that dependency is built.
   */
  readonly revision?: Revision;
  /** The digest reused, when reused. */
  readonly digest?: Digest;
  /** The services it depends on, sorted. */
  readonly dependencies: readonly string[];
}

/** The decision for the release (the root image). */
export interface PlannedRelease {
  /** The release version in R, when there is one. */
  readonly currentVersion?: Version;
  /** The version of the release R will point at: `currentVersion` when unchanged. */
  readonly nextVersion: Version;
  /** Whether a new release is made: a service rebuilds, or the set of services changed. */
  readonly changed: boolean;
}

/** The release plan of a build against ring R. */
export interface Plan {
  /** R: the ring built against. */
  readonly ring: RingName;
  /** N: the ring after R, when there is one. */
  readonly nextRing?: RingName;
  /** Every service, in dependency order (ties by name). */
  readonly services: readonly PlannedService[];
  /** The release (root image) R will point at. */
  readonly release: PlannedRelease;
}

/**
 * Plans a build against the site's ring (DESIGN.md, flows 1 and 7).
 * @param input repository and site config, the states of R and N, and each service's
 *   revision input and dependencies.
 * @returns the plan, services in dependency order.
 * @throws {ConfigError} on a dependency cycle (lib/graph.ts).
 * @throws {Error} when a configured service has no revision input, or R and N do not match
 *   the site's ring and the ring after it.
 */
export function planRelease(input: PlanInput): Plan {
  const { repository, site, current, next } = input;
  const ring = site.ring;
  const after = nextRing(repository.rings, ring);
  if (current.ring !== ring) {
    throw new Error(`the state of ring ${current.ring} was given for ring ${ring}`);
  }
  if (next !== undefined && next.ring !== after) {
    throw new Error(
      `the state of ring ${next.ring} was given as the ring after ${ring} (${after ?? "none"})`,
    );
  }
  const graph: Record<string, DependencyEdge[]> = {};
  for (const name of Object.keys(repository.services)) {
    const s = input.services[name];
    if (s === undefined) throw new Error(`service ${name} has no revision input`);
    graph[name] = s.dependencies.map((d) => (typeof d === "string" ? { service: d } : d));
  }
  const order = dependencyOrder(graph, repository.file);
  const inR = current.release?.services ?? {};
  const inN = next?.release?.services ?? {};
  const decided = new Map<string, PlannedService>();

  for (const name of order) {
    const deps = [...new Set(graph[name].map((e) => e.service))].sort();
    const record = inR[name];
    // A dependency changes this service when it rebuilds, or when it is reused at another
    // digest than R's (an older image with the dependency's revision).
    const changedDeps = deps.filter((d) => {
      const dep = decided.get(d);
      return dep?.action === "build" || dep?.digest !== inR[d]?.digest;
    });
    // The revision with each dependency's digest in R: tells "revision changed" from
    // "dependency changed" when a dependency changes.
    const digestsInR: Record<string, Digest> = {};
    let completeInR = true;
    for (const d of deps) {
      const digest = inR[d]?.digest;
      if (digest === undefined) completeInR = false;
      else digestsInR[d] = digest;
    }
    const revisionInR = completeInR ? revisionOf(input.services[name], digestsInR) : undefined;
    // The revision with each dependency's digest in this update: known unless one rebuilds.
    const digestsNow: Record<string, Digest> = {};
    let completeNow = true;
    for (const d of deps) {
      const digest = decided.get(d)?.action === "build" ? undefined : decided.get(d)?.digest;
      if (digest === undefined) completeNow = false;
      else digestsNow[d] = digest;
    }
    const revisionNow = completeNow ? revisionOf(input.services[name], digestsNow) : undefined;
    let reason: PlanReason;
    if (record === undefined) reason = "new";
    else if (
      revisionInR !== record.revision &&
      (changedDeps.length === 0 || revisionInR !== undefined)
    ) {
      reason = "revision changed";
    } else if (changedDeps.length > 0) reason = "dependency changed";
    else reason = "unchanged";

    if (reason === "unchanged") {
      decided.set(name, {
        service: name,
        action: "reuse",
        reason,
        currentVersion: record.version,
        nextVersion: record.version,
        revision: record.revision,
        digest: record.digest,
        dependencies: deps,
      });
      continue;
    }
    const existing =
      revisionNow === undefined
        ? undefined
        : (input.known?.[name] ?? []).find((r) => r.revision === revisionNow);
    if (existing !== undefined) {
      decided.set(name, {
        service: name,
        action: "reuse",
        reason,
        ...(record !== undefined ? { currentVersion: record.version } : {}),
        nextVersion: existing.version,
        revision: revisionNow,
        digest: existing.digest,
        dependencies: deps,
      });
      continue;
    }
    decided.set(name, {
      service: name,
      action: "build",
      reason,
      ...(record !== undefined ? { currentVersion: record.version } : {}),
      nextVersion: free(
        nextVersion({
          current: record?.version,
          next: inN[name]?.version,
          registry: highest(input.taken?.[name]),
          major: site.majorBump[name],
          initial: repository.initialVersion,
        }),
        input.taken?.[name],
      ),
      ...(revisionNow !== undefined ? { revision: revisionNow } : {}),
      dependencies: deps,
    });
  }

  const services = order.map((n) => decided.get(n) as PlannedService);
  const currentRelease = current.release;
  const sameServices =
    currentRelease !== undefined &&
    Object.keys(currentRelease.services).sort().join("\0") === [...order].sort().join("\0");
  const changed =
    !sameServices ||
    services.some(
      (s) => s.action === "build" || s.digest !== currentRelease?.services[s.service]?.digest,
    );
  const release: PlannedRelease = {
    ...(currentRelease !== undefined ? { currentVersion: currentRelease.version } : {}),
    nextVersion:
      changed || currentRelease === undefined
        ? free(
            nextVersion({
              current: currentRelease?.version,
              next: next?.release?.version,
              registry: highest(input.taken?.[RELEASE]),
              major: site.majorBump[RELEASE],
              initial: repository.initialVersion,
            }),
            input.taken?.[RELEASE],
          )
        : currentRelease.version,
    changed,
  };
  return { ring, ...(after !== undefined ? { nextRing: after } : {}), services, release };
}

/** The highest semver of `taken` (prereleases count), or undefined when it holds none. */
function highest(taken: readonly Version[] = []): Version | undefined {
  return semver.rsort(taken.filter((v) => semver.valid(v) === v))[0];
}

/** `version`, or the next patch after it that `taken` does not hold. */
function free(version: Version, taken: readonly Version[] = []): Version {
  const used = new Set(taken);
  let v = version;
  while (used.has(v)) v = semver.inc(v, "patch") as Version;
  return v;
}

/**
 * Formats a plan as the table `pulumi preview` prints (DESIGN.md, flow 7).
 * @param plan the plan.
 * @returns lines like
 *   `backend   build   dependency changed   0.3.2   0.4.0   (after base is built)`,
 *   a header, and a last line for the release.
 */
export function formatPlan(plan: Plan): string {
  const rows: string[][] = [["SERVICE", "ACTION", "REASON", "CURRENT", "NEXT", "REVISION"]];
  for (const s of plan.services) {
    const waiting = s.dependencies.filter(
      (d) => plan.services.find((p) => p.service === d)?.action === "build",
    );
    rows.push([
      s.service,
      s.action,
      s.reason,
      s.currentVersion ?? "-",
      s.nextVersion,
      s.revision !== undefined
        ? shortRevision(s.revision)
        : `(after ${waiting.join(", ")} ${waiting.length === 1 ? "is" : "are"} built)`,
    ]);
  }
  rows.push([
    "(release)",
    plan.release.changed ? "build" : "reuse",
    plan.release.changed ? "changed" : "unchanged",
    plan.release.currentVersion ?? "-",
    plan.release.nextVersion,
    "",
  ]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c])))
      .join("  ")
      .trimEnd(),
  );
  const title = `Release plan for ring ${plan.ring}${plan.nextRing ? ` (next ring: ${plan.nextRing})` : ""}`;
  return [title, ...lines].join("\n");
}

/** `v1:sha256:` and the first 12 hex digits. */
function shortRevision(revision: Revision): string {
  const m = /^(v\d+:sha256:)([0-9a-f]{12})[0-9a-f]*$/.exec(revision);
  return m ? `${m[1]}${m[2]}` : revision;
}
