/**
 * Waits for a site's Deployments to roll out, all at once, under one overall timeout.
 *
 * `kubectl rollout status` waits for one Deployment per process, with a timeout each: a site of
 * 200 Deployments waited for them one after another, up to 200 × 300 s. Here one
 * `kubectl get deployments -o json` per namespace and poll reads every Deployment's status, the
 * readiness rule is kubectl's own (`kubectl rollout status`, pkg/polymorphichelpers/rollout_status.go),
 * progress is reported as `rollouts: 180/200 ready`, and a timeout names every Deployment not
 * ready with why: its status, its conditions and the newest warning events of it, its
 * ReplicaSets and its Pods.
 */
import { kubectl, type KubectlOptions, type ObjectRef } from "./kubectl";

/** The parts of a Deployment that its rollout status reads. */
export interface DeploymentStatusJson {
  readonly metadata: { readonly name: string; readonly generation?: number };
  readonly spec?: { readonly replicas?: number };
  readonly status?: {
    readonly observedGeneration?: number;
    readonly replicas?: number;
    readonly updatedReplicas?: number;
    readonly availableReplicas?: number;
    readonly conditions?: readonly {
      readonly type: string;
      readonly status: string;
      readonly reason?: string;
      readonly message?: string;
    }[];
  };
}

/** Where one Deployment's rollout is. */
export type RolloutState =
  | { readonly done: true }
  | { readonly done: false; readonly failed: boolean; readonly why: string };

/**
 * The rollout state of one Deployment, by `kubectl rollout status`'s rule: the controller has
 * observed the current generation, every replica is updated, no old replica is left, every
 * updated replica is available. A Progressing condition with reason `ProgressDeadlineExceeded`
 * has failed (it will not progress without a change).
 * @param d the Deployment as the API server returns it.
 */
export function rolloutState(d: DeploymentStatusJson): RolloutState {
  const s = d.status ?? {};
  const generation = d.metadata.generation ?? 0;
  if ((s.observedGeneration ?? 0) < generation) {
    return { done: false, failed: false, why: "waiting for the controller to observe the update" };
  }
  const progressing = s.conditions?.find((c) => c.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded") {
    return {
      done: false,
      failed: true,
      why: `exceeded its progress deadline: ${progressing.message ?? ""}`.trim(),
    };
  }
  const wanted = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  if (updated < wanted) {
    return { done: false, failed: false, why: `${updated} of ${wanted} replicas updated` };
  }
  if ((s.replicas ?? 0) > updated) {
    return {
      done: false,
      failed: false,
      why: `${(s.replicas ?? 0) - updated} old replicas pending termination`,
    };
  }
  const available = s.availableReplicas ?? 0;
  if (available < updated) {
    return {
      done: false,
      failed: false,
      why: `${available} of ${updated} updated replicas available`,
    };
  }
  return { done: true };
}

/** Options of {@link awaitRollouts}. */
export interface RolloutOptions extends KubectlOptions {
  /** Called with a progress line (`rollouts: 180/200 ready`) when the count changes. */
  readonly onProgress?: (line: string) => void;
  /** Time between two reads of the Deployments' status, in milliseconds. @default 1000 */
  readonly intervalMs?: number;
  /** Clock, for tests. @default Date.now */
  readonly now?: () => number;
}

interface EventJson {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTimestamp?: string;
  readonly eventTime?: string;
  readonly involvedObject?: { readonly kind?: string; readonly name?: string };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until every Deployment in `deployments` has rolled out ({@link rolloutState}), reading
 * them together: one `kubectl get deployments` per namespace and poll.
 * @param deployments the Deployments to wait for (namespace undefined: the kubeconfig's).
 * @param opts `timeoutSeconds` is the overall limit, for all of them (@default 300).
 * @throws Error naming every Deployment not rolled out, why, its conditions and newest warning
 *   events, when the limit passes or a Deployment exceeded its progress deadline.
 */
export async function awaitRollouts(
  deployments: readonly ObjectRef[],
  opts: RolloutOptions = {},
): Promise<void> {
  if (deployments.length === 0) return;
  const now = opts.now ?? Date.now;
  const deadline = now() + (opts.timeoutSeconds ?? 300) * 1000;
  const byNamespace = new Map<string, Set<string>>();
  for (const d of deployments) {
    const ns = d.namespace ?? "";
    byNamespace.set(ns, (byNamespace.get(ns) ?? new Set()).add(d.name));
  }
  let reported = -1;
  for (;;) {
    const pending: { namespace: string; deployment: DeploymentStatusJson; why: string }[] = [];
    let failed = false;
    let ready = 0;
    for (const [namespace, names] of byNamespace) {
      const list = JSON.parse(
        await kubectl(opts, ["get", "deployments", ...nsArgs(namespace), "-o", "json"]),
      ) as { items: DeploymentStatusJson[] };
      const found = new Map(list.items.map((d) => [d.metadata.name, d]));
      for (const name of names) {
        const d = found.get(name);
        const state: RolloutState = d
          ? rolloutState(d)
          : { done: false, failed: false, why: "not found" };
        if (state.done) {
          ready++;
          continue;
        }
        failed ||= state.failed;
        pending.push({ namespace, deployment: d ?? { metadata: { name } }, why: state.why });
      }
    }
    if (ready !== reported) {
      opts.onProgress?.(`rollouts: ${ready}/${deployments.length} ready`);
      reported = ready;
    }
    if (pending.length === 0) return;
    if (failed || now() >= deadline) {
      const head = failed
        ? "rollouts failed"
        : `rollouts not complete after ${opts.timeoutSeconds ?? 300}s`;
      throw new Error(
        `${head}: ${pending.length} of ${deployments.length} Deployments not ready:\n` +
          (await describePending(pending, opts)).join("\n"),
      );
    }
    await sleep(Math.min(opts.intervalMs ?? 1000, Math.max(0, deadline - now())));
  }
}

function nsArgs(namespace: string): string[] {
  return namespace ? ["-n", namespace] : [];
}

/** One paragraph per pending Deployment: name, why, conditions, newest warning events. */
async function describePending(
  pending: readonly { namespace: string; deployment: DeploymentStatusJson; why: string }[],
  opts: KubectlOptions,
): Promise<string[]> {
  const events = new Map<string, EventJson[]>();
  for (const ns of new Set(pending.map((p) => p.namespace))) {
    const list = await kubectl(opts, ["get", "events", ...nsArgs(ns), "-o", "json"]).then(
      (out) => (JSON.parse(out) as { items: EventJson[] }).items,
      () => [] as EventJson[],
    );
    events.set(ns, list);
  }
  return pending.map(({ namespace, deployment, why }) => {
    const name = deployment.metadata.name;
    const where = namespace ? `${namespace}/${name}` : name;
    const lines = [`  Deployment ${where}: ${why}`];
    for (const c of deployment.status?.conditions ?? []) {
      lines.push(
        `    condition ${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ""}${c.message ? `: ${c.message}` : ""}`,
      );
    }
    // Its own events, its ReplicaSets' (`<name>-<hash>`) and its Pods' (`<name>-<hash>-<id>`).
    const own = (events.get(namespace) ?? [])
      .filter((e) => e.type === "Warning")
      .filter(
        (e) => e.involvedObject?.name === name || e.involvedObject?.name?.startsWith(`${name}-`),
      )
      .sort((a, b) => time(b).localeCompare(time(a)))
      .slice(0, 3);
    for (const e of own) {
      lines.push(
        `    event ${e.involvedObject?.kind}/${e.involvedObject?.name}: ${e.reason}: ${e.message}`,
      );
    }
    return lines.join("\n");
  });
}

function time(e: EventJson): string {
  return e.lastTimestamp ?? e.eventTime ?? "";
}
