import * as pulumi from "@pulumi/pulumi";
import { loadLib, outputsOf, providerByName } from "../dynamic";
import type { JobResult } from "../../lib/jobs";
import type { ObjectRef } from "../../lib/kubectl";

/** Inputs of {@link KubectlApply} once resolved. */
export interface KubectlApplyInputs {
  /** The rendered manifests of the site's generated overlay (multi-document YAML). */
  readonly manifests: string;
  /** Kubeconfig path. @default $KUBECONFIG of the engine */
  readonly kubeconfig?: string;
  /**
   * How long to wait for all rollouts together, in seconds (not part of the diff: a new limit
   * deploys nothing). @default 300
   */
  readonly timeoutSeconds?: number;
  /**
   * The release the manifests deploy: phased Jobs are named after it (lib/jobs.ts).
   * @default "" (Jobs named `<name>-unreleased`)
   */
  readonly release?: string;
  /**
   * The kubeconfig (YAML text) of the site's deploy identity, with its short-lived token: the
   * create and update apply with it (written to a private temporary file for the run), delete
   * with {@link KubectlApplyInputs.kubeconfig}. Pass it as a Pulumi secret; not part of the
   * diff (every update brings a new token). @default none
   */
  readonly identity?: string;
}

/** Rollout progress lines go to the provider's stderr, which the engine shows for the resource. */
const progress = (line: string) => console.error(line);

type Outs = KubectlApplyInputs & { readonly objects: ObjectRef[]; readonly jobs: JobResult[] };

const kubectl = () => loadLib<typeof import("../../lib/kubectl")>("kubectl");
const jobs = () => loadLib<typeof import("../../lib/jobs")>("jobs");
const identity = () => loadLib<typeof import("../../lib/identity")>("identity");

/** Runs `fn` with the kubeconfig to apply with: the identity's, in a temporary file, or the caller's. */
async function asSite<T>(
  inputs: KubectlApplyInputs,
  fn: (kubeconfig: string | undefined) => Promise<T>,
): Promise<T> {
  return inputs.identity ? identity().withKubeconfig(inputs.identity, fn) : fn(inputs.kubeconfig);
}

/** KubectlApply's provider (the engine runs it through components/dynamic.ts `providerByName`). */
export const kubectlApplyProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: KubectlApplyInputs) {
    const deployed = await asSite(inputs, (kubeconfig) =>
      jobs().deployInPhases(inputs.manifests, [], inputs.release ?? "", {
        kubeconfig,
        timeoutSeconds: inputs.timeoutSeconds,
        onProgress: progress,
      }),
    );
    return { id: `site-${Date.now()}`, outs: outputsOf({ ...inputs, ...deployed }) };
  },
  async diff(_id: string, olds: Outs, news: KubectlApplyInputs) {
    return {
      changes:
        olds.manifests !== news.manifests ||
        olds.kubeconfig !== news.kubeconfig ||
        (olds.release ?? "") !== (news.release ?? ""),
    };
  },
  async update(_id: string, olds: Outs, news: KubectlApplyInputs) {
    const deployed = await asSite(news, (kubeconfig) =>
      jobs().deployInPhases(
        news.manifests,
        olds.objects,
        news.release ?? "",
        { kubeconfig, timeoutSeconds: news.timeoutSeconds, onProgress: progress },
        // What the last successful update applied: unchanged objects are not applied again.
        { manifests: olds.manifests, release: olds.release ?? "" },
      ),
    );
    return { outs: outputsOf({ ...news, ...deployed }) };
  },
  async delete(_id: string, olds: Outs) {
    await kubectl().deleteObjects(olds.objects, { kubeconfig: olds.kubeconfig });
  },
};

/** What the engine serializes for KubectlApply: a loader of {@link kubectlApplyProvider} by name. */
const ENGINE_PROVIDER = providerByName("KubectlApply", kubectlApplyProvider);

/**
 * A site's manifests applied with `kubectl apply --server-side` (field manager `gitops-rings`)
 * in the phases of lib/jobs.ts (pre-deploy Jobs awaited, then the workloads and their rollouts,
 * then the post-deploy Jobs awaited); an update applies only the objects whose rendered
 * document changed since the last successful one, as the kubernetes provider does; objects
 * dropped from the manifests are deleted on the next update, and all of them on destroy. Type token
 * `pulumi-nodejs:dynamic/site:KubectlApply`.
 *
 * The deploy path of the local platform, where the kubernetes provider plugin cannot be built;
 * elsewhere {@link Site} applies the same overlay with `@pulumi/kubernetes`.
 */
export class KubectlApply extends pulumi.dynamic.Resource {
  declare public readonly objects: pulumi.Output<ObjectRef[]>;
  /** The phased Jobs of this update, all `Complete` (a failed one fails the update). */
  declare public readonly jobs: pulumi.Output<JobResult[]>;

  constructor(
    name: string,
    args: { readonly [K in keyof KubectlApplyInputs]: pulumi.Input<KubectlApplyInputs[K]> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      ENGINE_PROVIDER,
      name,
      { ...args, objects: undefined, jobs: undefined },
      opts,
      "site",
      "KubectlApply",
    );
  }
}
