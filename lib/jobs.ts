/**
 * Boot-up order (seed 000: "k8s Jobs, e.g. to seed a database"; "run integration/e2e tests as a
 * Job"). A site's manifests may hold Jobs annotated `gitops-rings.io/phase: pre-deploy` (a
 * migration or seed: run and awaited before the workloads change) or `post-deploy` (smoke tests:
 * run after every rollout completed).
 *
 * The rule that splits rendered objects into the three phases ({@link splitPhases}) is written
 * once, here, and both deploy paths follow it: the local platform's kubectl path
 * ({@link deployInPhases}) and the `@pulumi/kubernetes` path (components/site/site.ts, one
 * ConfigGroup per phase, each depending on the one before).
 *
 * Jobs are immutable, so every release runs its own: a phased Job is renamed
 * `<name>-<release>` ({@link jobNameForRelease}). The rest of this module is the kubectl path's
 * waiting and its failure report.
 */
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import { canonicalJson } from "./canonical";
import {
  applyManifests,
  deleteObjects,
  imagesNotByDigest,
  imagesNotByDigestMessage,
  kubectl,
  manifestObjects,
  objectKey,
  objectRef,
  type ManifestObject,
  type KubectlOptions,
  type ObjectRef,
} from "./kubectl";
import type { RolloutOptions } from "./rollout";

/** The annotation that gives a Job its phase. */
export const PHASE_ANNOTATION = "gitops-rings.io/phase";
/**
 * The annotation on a phased Job with a hash of its spec as rendered: a Job of the same name
 * whose spec changed (a new overlay in the same release) is run again, not patched.
 */
export const JOB_SPEC_ANNOTATION = "gitops-rings.io/job-spec";
/** The phases a Job may name. */
export const PHASES = ["pre-deploy", "post-deploy"] as const;
/** A Job's phase. */
export type JobPhase = (typeof PHASES)[number];

/** Kinds that run Pods: what the `main` phase holds when there are pre-deploy Jobs. */
export const WORKLOAD_KINDS: ReadonlySet<string> = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "ReplicationController",
  "Pod",
  "Job",
  "CronJob",
]);

/** A site's objects in apply order. */
export interface DeployPhases<T> {
  /**
   * Applied first, its Jobs awaited: the pre-deploy Jobs and, with them, every object that is
   * not a workload (Namespace, ServiceAccount, ConfigMap, Secret, Service, …), which the Jobs
   * may need. Empty when there is no pre-deploy Job.
   */
  readonly pre: T[];
  /** Then: the workloads (every object, without pre-deploy Jobs), rollouts awaited. */
  readonly main: T[];
  /** Last, after every rollout: the post-deploy Jobs, awaited. */
  readonly post: T[];
}

/** An object named for messages: `Kind/namespace/name`. */
export function describeObject(o: ManifestObject): string {
  return `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
}

/**
 * The phase an object's annotation names.
 * @returns undefined for an object without the annotation.
 * @throws Error naming the object, the annotation and its value, when the value is not a phase
 *   or the object is not a `batch/v1` Job (only Jobs run to completion).
 */
export function phaseOf(o: ManifestObject): JobPhase | undefined {
  const value = o.metadata?.annotations?.[PHASE_ANNOTATION];
  if (value === undefined) return undefined;
  const where = `${describeObject(o)}: annotation ${PHASE_ANNOTATION}: ${JSON.stringify(value)}`;
  if (!(PHASES as readonly string[]).includes(value)) {
    throw new Error(`${where} is not a phase (use ${PHASES.join(" or ")})`);
  }
  if (o.kind !== "Job" || !String(o.apiVersion).startsWith("batch/")) {
    throw new Error(`${where}: only a Job (batch/v1) has a phase, this is a ${o.kind}`);
  }
  return value as JobPhase;
}

/** Longest object name that is also a valid label value (a Job's name is its Pods' label). */
const MAX_JOB_NAME = 63;

/**
 * The name of a phased Job in one release: `<name>-<release>`, the release version lowercased
 * with every run of characters other than `a-z0-9` turned into `-` (`0.4.1-rc.1` gives
 * `migrate-0-4-1-rc-1`). Names past 63 characters keep the release whole and shorten the Job's
 * own name, adding 8 hex of its hash so that two long names stay apart.
 * @param release the release version; "" (no release yet) gives `<name>-unreleased`.
 */
export function jobNameForRelease(name: string, release: string): string {
  const suffix =
    release
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "unreleased";
  const full = `${name}-${suffix}`;
  if (full.length <= MAX_JOB_NAME) return full;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  const keep = Math.max(1, MAX_JOB_NAME - suffix.length - hash.length - 2);
  return `${name.slice(0, keep).replace(/-+$/, "")}-${hash}-${suffix}`.slice(0, MAX_JOB_NAME);
}

/** A hash of what a Job runs (`spec`, sorted keys): 16 hex. */
export function jobSpecHash(job: ManifestObject): string {
  return createHash("sha256")
    .update(`v1:${canonicalJson(job.spec ?? null)}`)
    .digest("hex")
    .slice(0, 16);
}

/**
 * Splits a site's rendered objects into the phases it applies them in (the one rule of both
 * deploy paths). Phased Jobs come back renamed for `release` ({@link jobNameForRelease}) and
 * annotated with {@link JOB_SPEC_ANNOTATION}; every other object is returned as it was. Order
 * within a phase is the rendered order.
 *
 * Without pre-deploy Jobs, `pre` is empty and `main` holds every object but the post-deploy
 * Jobs, so a site without Jobs applies exactly as before.
 * @throws Error from {@link phaseOf} for a bad annotation.
 */
export function splitPhases<T extends ManifestObject>(
  objects: readonly T[],
  release: string,
): DeployPhases<T> {
  const phased = objects.map((o) => ({ o, phase: phaseOf(o) }));
  const renamed = (o: T): T =>
    ({
      ...o,
      metadata: {
        ...o.metadata,
        name: jobNameForRelease(String(o.metadata?.name), release),
        annotations: { ...o.metadata?.annotations, [JOB_SPEC_ANNOTATION]: jobSpecHash(o) },
      },
    }) as T;
  const pre = phased.filter((p) => p.phase === "pre-deploy").map((p) => renamed(p.o));
  const post = phased.filter((p) => p.phase === "post-deploy").map((p) => renamed(p.o));
  const rest = phased.filter((p) => p.phase === undefined).map((p) => p.o);
  if (pre.length === 0) return { pre: [], main: rest, post };
  return {
    pre: [...rest.filter((o) => !WORKLOAD_KINDS.has(String(o.kind))), ...pre],
    main: rest.filter((o) => WORKLOAD_KINDS.has(String(o.kind))),
    post,
  };
}

/** The outcome of one phased Job. */
export interface JobResult {
  readonly phase: JobPhase;
  readonly namespace?: string;
  readonly name: string;
  /** `Complete` or `Failed`. */
  readonly status: "Complete" | "Failed";
  /** When it finished (the condition's `lastTransitionTime`). */
  readonly finishedAt?: string;
}

/** A Job condition as the API server returns it. */
interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: string;
}

/** What {@link jobFailureMessage} reads of a Pod of the Job. */
export interface JobPodReport {
  readonly name: string;
  readonly phase?: string;
  readonly containers: readonly {
    readonly name: string;
    readonly exitCode?: number;
    readonly reason?: string;
    readonly message?: string;
  }[];
  /** The tail of its log, or why there is none. */
  readonly log: { readonly text: string } | { readonly unavailable: string };
}

/**
 * The error text of a failed Job: the Job, its failing condition, then per Pod each terminated
 * container's exit code, reason and termination message, and the tail of the Pod's log or why
 * there is none (the local platform's simulated node keeps no logs: the termination message is
 * what a failing Job tells there).
 */
export function jobFailureMessage(
  phase: JobPhase,
  job: { readonly namespace?: string; readonly name: string; readonly conditions: Condition[] },
  pods: readonly JobPodReport[],
): string {
  const failed =
    job.conditions.find((c) => c.type === "Failed" && c.status === "True") ??
    job.conditions.find((c) => c.status === "True");
  const lines = [
    `${phase} Job ${job.namespace ?? ""}/${job.name} failed` +
      (failed
        ? `: ${failed.reason ?? failed.type}${failed.message ? `: ${failed.message}` : ""}`
        : ""),
  ];
  if (pods.length === 0) lines.push("  no Pod of the Job is left");
  for (const pod of pods) {
    for (const c of pod.containers) {
      const parts = [
        c.exitCode !== undefined ? `exit code ${c.exitCode}` : undefined,
        c.reason ? `reason ${c.reason}` : undefined,
        c.message ? `message ${JSON.stringify(c.message.trim())}` : undefined,
      ].filter((x) => x !== undefined);
      lines.push(`  pod ${pod.name}: container ${c.name} terminated: ${parts.join(", ")}`);
    }
    if ("text" in pod.log) {
      lines.push(`  pod ${pod.name}: log (last ${LOG_LINES} lines):`);
      lines.push(
        ...pod.log.text
          .trimEnd()
          .split("\n")
          .map((l) => `    ${l}`),
      );
    } else {
      lines.push(`  pod ${pod.name}: no log: ${pod.log.unavailable}`);
    }
  }
  if (phase === "pre-deploy") lines.push("the workloads were not changed");
  return lines.join("\n");
}

/** Lines of a failed Pod's log that the error shows. */
export const LOG_LINES = 20;

/** A phased Job failed; the message says which, why, and what its Pods said. */
export class JobFailedError extends Error {
  constructor(
    readonly results: readonly JobResult[],
    message: string,
  ) {
    super(message);
    this.name = "JobFailedError";
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Live = Record<string, any>;

const ns = (namespace?: string) => (namespace ? ["-n", namespace] : []);

async function getJson(
  opts: KubectlOptions,
  args: readonly string[],
  namespace?: string,
): Promise<Live | undefined> {
  const out = await kubectl(opts, [
    "get",
    ...args,
    ...ns(namespace),
    "--ignore-not-found",
    "-o",
    "json",
  ]);
  return out.trim() ? (JSON.parse(out) as Live) : undefined;
}

/** The Pods of a Job, with their terminated containers and log tails. */
async function podReports(opts: KubectlOptions, job: Live): Promise<JobPodReport[]> {
  const labels = Object.entries(job.spec?.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(",");
  const namespace = job.metadata?.namespace as string | undefined;
  const list = await getJson(opts, ["pods", "-l", labels], namespace);
  const reports: JobPodReport[] = [];
  for (const pod of (list?.items ?? []) as Live[]) {
    const statuses = [
      ...((pod.status?.initContainerStatuses ?? []) as Live[]),
      ...((pod.status?.containerStatuses ?? []) as Live[]),
    ];
    const containers = statuses
      .filter((s) => s.state?.terminated && s.state.terminated.exitCode !== 0)
      .map((s) => ({
        name: String(s.name),
        exitCode: s.state.terminated.exitCode as number,
        reason: s.state.terminated.reason as string | undefined,
        message: s.state.terminated.message as string | undefined,
      }));
    let log: JobPodReport["log"];
    try {
      const text = await kubectl(opts, [
        "logs",
        pod.metadata.name,
        ...ns(namespace),
        "--all-containers",
        `--tail=${LOG_LINES}`,
      ]);
      log = text.trim() ? { text } : { unavailable: "the log is empty" };
    } catch (err) {
      log = { unavailable: (err as Error).message.split("\n")[0] };
    }
    reports.push({ name: String(pod.metadata.name), phase: pod.status?.phase, containers, log });
  }
  return reports;
}

/** The Job's finishing condition, if it has one. */
function finished(job: Live): Condition | undefined {
  const conditions = (job.status?.conditions ?? []) as Condition[];
  return conditions.find(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
}

/**
 * Waits for Jobs to finish (condition `Complete` or `Failed`), polling every second.
 * @returns one result per Job, when all completed.
 * @throws {JobFailedError} once every Job finished and any failed (its message from
 *   {@link jobFailureMessage} for each failed Job), or when one does not finish within
 *   `opts.timeoutSeconds` (default 300).
 */
export async function awaitJobs(
  phase: JobPhase,
  jobs: readonly ObjectRef[],
  opts: KubectlOptions = {},
): Promise<JobResult[]> {
  const deadline = Date.now() + (opts.timeoutSeconds ?? 300) * 1000;
  const one = async (ref: ObjectRef): Promise<{ result: JobResult; failure?: string }> => {
    for (;;) {
      const job = await getJson(opts, ["job", ref.name], ref.namespace);
      const done = job ? finished(job) : undefined;
      if (job && done) {
        const result: JobResult = {
          phase,
          ...(ref.namespace ? { namespace: ref.namespace } : {}),
          name: ref.name,
          status: done.type === "Complete" ? "Complete" : "Failed",
          ...(done.lastTransitionTime ? { finishedAt: done.lastTransitionTime } : {}),
        };
        if (result.status === "Complete") return { result };
        const message = jobFailureMessage(
          phase,
          { namespace: ref.namespace, name: ref.name, conditions: job.status.conditions },
          await podReports(opts, job),
        );
        return { result, failure: message };
      }
      if (Date.now() > deadline) {
        const state = job
          ? JSON.stringify(job.status ?? {})
          : "the Job is gone (deleted by someone else?)";
        const result: JobResult = { phase, name: ref.name, status: "Failed" };
        return {
          result,
          failure: `${phase} Job ${ref.namespace ?? ""}/${ref.name} did not finish in ${opts.timeoutSeconds ?? 300}s: ${state}`,
        };
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  const outcomes = await Promise.all(jobs.map(one));
  const failures = outcomes.flatMap((o) => (o.failure ? [o.failure] : []));
  const results = outcomes.map((o) => o.result);
  if (failures.length > 0) throw new JobFailedError(results, failures.join("\n"));
  return results;
}

/**
 * Deletes the Jobs of this name that must run again: those that failed (an update run again
 * retries its Jobs) and those whose spec hash differs from the one about to be applied. A Job
 * that completed with the same spec stays, and is not run again.
 */
async function clearStaleJobs(jobs: readonly ManifestObject[], opts: KubectlOptions) {
  for (const j of jobs) {
    const live = await getJson(opts, ["job", String(j.metadata?.name)], j.metadata?.namespace);
    if (!live) continue;
    const sameSpec =
      live.metadata?.annotations?.[JOB_SPEC_ANNOTATION] ===
      j.metadata?.annotations?.[JOB_SPEC_ANNOTATION];
    if (sameSpec && finished(live)?.type !== "Failed") continue;
    await kubectl(opts, [
      "delete",
      "job",
      String(j.metadata?.name),
      ...ns(j.metadata?.namespace),
      "--cascade=foreground",
      "--wait=true",
    ]);
  }
}

/** What {@link deployInPhases} applied. */
export interface PhasedDeployment {
  /** Every applied object (pass as `previous` next time). */
  readonly objects: ObjectRef[];
  /** The phased Jobs, all `Complete`. */
  readonly jobs: JobResult[];
}

/** What the previous successful deploy of a site applied. */
export interface AppliedBefore {
  /** Its manifests (the KubectlApply state's `manifests`). */
  readonly manifests: string;
  /** Its release (phased Jobs are named after it). */
  readonly release: string;
}

/**
 * The kubectl path of a site's deploy: checks every image is by digest, splits the manifests
 * with {@link splitPhases}, then applies each phase with lib/kubectl.ts `applyManifests` (which
 * awaits the main phase's rollouts) and awaits its Jobs before the next phase; last it deletes
 * the objects of `previous` that the manifests no longer have (older releases' Jobs included).
 *
 * With `before`, an object whose rendered document is the one the previous deploy applied is
 * not applied again (nor its rollout awaited), as the kubernetes provider updates only the
 * resources whose inputs changed: one changed Deployment of 500 is one apply and one rollout
 * (issue 10). Phased Jobs always go through their phase.
 * @throws {JobFailedError} when a Job fails: a failed pre-deploy Job stops before the workloads
 *   are applied; Error from `applyManifests` when the API server refuses an object or a rollout
 *   does not complete.
 */
export async function deployInPhases(
  manifests: string,
  previous: readonly ObjectRef[],
  release: string,
  opts: RolloutOptions = {},
  before?: AppliedBefore,
): Promise<PhasedDeployment> {
  // Parsed once: at 500 services the stream is about 250 KB, and each parse or write-out of it
  // takes a few hundred milliseconds of the deploy step (issue 10).
  const objects = manifestObjects(manifests);
  const byTag = imagesNotByDigest(objects);
  if (byTag.length > 0) {
    throw new Error(`refusing to apply manifests with ${imagesNotByDigestMessage(byTag)}`);
  }
  const phases = splitPhases(objects, release);
  const old = before ? splitPhases(manifestObjects(before.manifests), before.release) : undefined;
  const unchanged = new Set(old ? [...old.pre, ...old.main, ...old.post].map(canonicalJson) : []);
  const toApply = (list: readonly ManifestObject[]) =>
    list.filter((o) => phaseOf(o) !== undefined || !unchanged.has(canonicalJson(o)));
  const applied: ObjectRef[] = [];
  const jobs: JobResult[] = [];
  for (const [phase, list] of [
    ["pre-deploy", phases.pre],
    [undefined, phases.main],
    ["post-deploy", phases.post],
  ] as const) {
    if (list.length === 0) continue;
    const phasedJobs = phase ? list.filter((o) => phaseOf(o) === phase) : [];
    await clearStaleJobs(phasedJobs, opts);
    const changed = toApply(list);
    if (changed.length > 0) await applyManifests(toYaml(changed), [], opts);
    applied.push(...list.map(objectRef));
    if (phase) jobs.push(...(await awaitJobs(phase, phasedJobs.map(objectRef), opts)));
  }
  const now = new Set(applied.map(objectKey));
  await deleteObjects(
    previous.filter((o) => !now.has(objectKey(o))),
    opts,
  );
  return { objects: applied, jobs };
}

/** Objects as one multi-document YAML stream. */
function toYaml(objects: readonly ManifestObject[]): string {
  return objects.map((o) => stringify(o)).join("---\n");
}
