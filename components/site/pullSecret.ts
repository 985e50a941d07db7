import * as pulumi from "@pulumi/pulumi";
import { loadLib, outputsOf, providerByName } from "../dynamic";

/** Inputs of {@link PullSecret} once resolved. */
export interface PullSecretInputs {
  /** The site's namespace. */
  readonly namespace: string;
  /** The Secret's name. */
  readonly name: string;
  /**
   * The `.dockerconfigjson` (lib/registry-auth.ts `dockerConfigJson`). Pass it as a Pulumi
   * secret: the state then holds it encrypted, in inputs and outputs alike.
   */
  readonly dockerConfigJson: string;
  /** Kubeconfig path. @default $KUBECONFIG of the engine */
  readonly kubeconfig?: string;
}

const kubectl = () => loadLib<typeof import("../../lib/kubectl")>("kubectl");
const registryAuth = () => loadLib<typeof import("../../lib/registry-auth")>("registry-auth");

/** Server-side apply of `objects` (as JSON, a YAML subset) under the pull secret's field manager. */
async function apply(objects: Record<string, unknown>[], kubeconfig?: string): Promise<void> {
  const { PULL_SECRET_FIELD_MANAGER } = registryAuth();
  // On stdin, never on the command line; kubectl's errors do not echo a Secret's data.
  await kubectl().kubectl(
    { kubeconfig },
    [
      "apply",
      "--server-side",
      "--force-conflicts",
      `--field-manager=${PULL_SECRET_FIELD_MANAGER}`,
      "-f",
      "-",
    ],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
}

async function put(inputs: PullSecretInputs): Promise<void> {
  const objects = registryAuth().pullSecretObjects(
    inputs.namespace,
    inputs.dockerConfigJson,
    inputs.name,
  );
  await apply(objects, inputs.kubeconfig);
}

/** PullSecret's provider (the engine runs it through components/dynamic.ts `providerByName`). */
export const pullSecretProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: PullSecretInputs) {
    await put(inputs);
    return { id: `${inputs.namespace}/${inputs.name}`, outs: outputsOf(inputs) };
  },
  async diff(_id: string, olds: PullSecretInputs, news: PullSecretInputs) {
    const keys = ["namespace", "name", "dockerConfigJson", "kubeconfig"] as const;
    const changed = keys.filter((k) => olds[k] !== news[k]);
    const replaces = changed.filter((k) => k === "namespace" || k === "name");
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: true };
  },
  async update(_id: string, _olds: PullSecretInputs, news: PullSecretInputs) {
    await put(news);
    return { outs: outputsOf(news) };
  },
  async delete(_id: string, olds: PullSecretInputs) {
    const opts = { kubeconfig: olds.kubeconfig };
    // Release the ServiceAccount's reference (the field manager's only field there), then the
    // Secret; a namespace already gone (the overlay's delete) leaves nothing to do.
    const sa = registryAuth().pullSecretObjects(olds.namespace, undefined, olds.name);
    await apply(sa, olds.kubeconfig).catch((err: Error) => {
      if (!/not ?found|being terminated/i.test(err.message)) throw err;
    });
    await kubectl().kubectl(opts, [
      "delete",
      "secret",
      olds.name,
      "-n",
      olds.namespace,
      "--ignore-not-found",
      "--wait=false",
    ]);
  },
};

/** What the engine serializes for PullSecret: a loader of {@link pullSecretProvider} by name. */
const ENGINE_PROVIDER = providerByName("PullSecret", pullSecretProvider);

/**
 * A site's image pull secret on the local platform's kubectl path (README, "Registry
 * credentials"): the `kubernetes.io/dockerconfigjson` Secret `gitops-rings-registry` in the
 * site's namespace and the namespace's `default` ServiceAccount naming it in
 * `imagePullSecrets`, applied server-side under the field manager `gitops-rings-pull-secret`
 * before the site's manifests. Type token `pulumi-nodejs:dynamic/site:PullSecret`.
 */
export class PullSecret extends pulumi.dynamic.Resource {
  constructor(
    name: string,
    args: { readonly [K in keyof PullSecretInputs]: pulumi.Input<PullSecretInputs[K]> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(ENGINE_PROVIDER, name, { ...args }, opts, "site", "PullSecret");
  }
}
