import * as pulumi from "@pulumi/pulumi";
import {
  configureRegistryAuth,
  loadLib,
  outputsOf,
  providerByName,
  registryAuth,
} from "../dynamic";

/** Inputs of the ring pointer dynamic resource, all plain once resolved. */
export interface RingPointerInputs {
  /** Registry host[:port], e.g. `127.0.0.1:5001`. */
  readonly registry: string;
  /** Project path in the registry, e.g. `example`. */
  readonly project: string;
  /** The configured rings in order (without `ante` and `post`). */
  readonly rings: string[];
  /** Ring name; the pointer is the tag `ring-<ring>` on the release repository. */
  readonly ring: string;
  /** Release version the pointer moves to. */
  readonly version: string;
  /** The release's digest, so that a re-pushed release with another digest is a change. */
  readonly digest: string;
  /**
   * The digest the ring pointed at when the update was planned (lib/site.ts reads the ring);
   * absent when it had no release. The move is a compare-and-swap on it.
   */
  readonly expected?: string;
}

/**
 * The dynamic provider behind {@link RingPointer}. Its functions are serialized into the
 * Pulumi state and run by the engine's dynamic-provider host, so they load lib/ themselves.
 * Delete never untags: a ring keeps its last release (DESIGN.md invariant 2). `expected` is
 * the precondition of a move, not a state: a change of it alone is no change.
 */
export const ringPointerProvider: pulumi.dynamic.ResourceProvider = {
  configure: configureRegistryAuth,
  async create(inputs: RingPointerInputs) {
    await move(inputs);
    return {
      id: `${inputs.registry}/${inputs.project}/release:ring-${inputs.ring}`,
      outs: outputsOf(inputs),
    };
  },
  async diff(_id: string, olds: RingPointerInputs, news: RingPointerInputs) {
    const keys = ["registry", "project", "ring", "version", "digest"] as const;
    const changed: string[] = keys.filter((k) => olds[k] !== news[k]);
    if (JSON.stringify(olds.rings) !== JSON.stringify(news.rings)) changed.push("version");
    const replaces = changed.filter((k) => k === "registry" || k === "project" || k === "ring");
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: false };
  },
  async update(_id: string, _olds: RingPointerInputs, news: RingPointerInputs) {
    await move(news);
    return { outs: outputsOf(news) };
  },
  // No delete: a ring pointer is never removed by an update (the ring keeps pointing at its
  // release), and the SDK skips the delete of a provider that has none.
};

/** What the engine serializes for RingPointer: a loader of {@link ringPointerProvider} by name. */
const ENGINE_PROVIDER = providerByName("RingPointer", ringPointerProvider);

/**
 * Moves the ring through lib/state-store.ts `moveRing`: checks first that release `version` has
 * `digest` and that it and every image it names exist, then compares the ring with `expected`
 * and swaps (see `moveRing` for the window Distribution 2.8 leaves, having no conditional PUT).
 * A ring already at the release (a retried update) is not moved again.
 */
async function move(inputs: RingPointerInputs): Promise<void> {
  const { StateStore } = loadLib<typeof import("../../lib/state-store")>("state-store");
  const store = new StateStore({
    registry: inputs.registry,
    project: inputs.project,
    rings: inputs.rings,
    client: registryAuth().providerClient(),
  });
  await store.moveRing(inputs.ring, inputs.version, {
    digest: inputs.digest,
    expected: inputs.expected ?? null,
  });
}

/** Arguments of {@link RingPointer}; Outputs allowed (the digest is known after the push). */
export type RingPointerArgs = {
  readonly [K in keyof RingPointerInputs]: pulumi.Input<RingPointerInputs[K]>;
};

/**
 * The moving pointer of one ring (`gitops-rings:ring:RingPointer`): the `ring-<name>` tag on
 * the release repository, the only mutable tag in the registry (DESIGN.md, "state store").
 * Moving it is a step that `pulumi preview` shows and does not perform. Before the tag moves,
 * lib/state-store.ts checks that the release has the digest this update pushed and that it and
 * every image it names exist; then the move is a compare-and-swap on `expected`, the digest the
 * ring held when the update was planned: a ring that another writer moved since (a promote, an
 * unshift, another site) fails the update, naming the ring and the planned and found releases,
 * and moves nothing. Distribution 2.8 has no conditional PUT (no `If-Match` on manifests), so
 * the compare and the write are separate requests a moment apart; the tag is read again after
 * the write, and a concurrent writer that won is reported as an error.
 */
export class RingPointer extends pulumi.dynamic.Resource {
  declare public readonly version: pulumi.Output<string>;
  declare public readonly digest: pulumi.Output<string>;
  /** The digest the ring held when the update that last moved it was planned. */
  declare public readonly expected: pulumi.Output<string | undefined>;

  constructor(name: string, args: RingPointerArgs, opts?: pulumi.CustomResourceOptions) {
    super(ENGINE_PROVIDER, name, { expected: undefined, ...args }, opts, "ring", "RingPointer");
  }
}
