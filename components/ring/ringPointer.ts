import * as pulumi from "@pulumi/pulumi";
import { loadLib, outputsOf } from "../dynamic";

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
}

type Outs = RingPointerInputs & { readonly previous?: string };

/**
 * The dynamic provider behind {@link RingPointer}. Its functions are serialized into the
 * Pulumi state and run by the engine's dynamic-provider host, so they load lib/ themselves.
 * Delete never untags: a ring keeps its last release (DESIGN.md invariant 2).
 */
const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RingPointerInputs) {
    const previous = await move(inputs);
    return {
      id: `${inputs.registry}/${inputs.project}/release:ring-${inputs.ring}`,
      outs: outputsOf({ ...inputs, previous }),
    };
  },
  async diff(_id: string, olds: Outs, news: RingPointerInputs) {
    const keys = ["registry", "project", "ring", "version", "digest"] as const;
    const changed: string[] = keys.filter((k) => olds[k] !== news[k]);
    if (JSON.stringify(olds.rings) !== JSON.stringify(news.rings)) changed.push("version");
    const replaces = changed.filter((k) => k === "registry" || k === "project" || k === "ring");
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: false };
  },
  async update(_id: string, _olds: Outs, news: RingPointerInputs) {
    const previous = await move(news);
    return { outs: outputsOf({ ...news, previous }) };
  },
  async delete() {
    // A ring pointer is never removed by an update: the ring keeps pointing at its release.
  },
};

async function move(inputs: RingPointerInputs): Promise<string | undefined> {
  const { StateStore } = loadLib<typeof import("../../lib/state-store")>("state-store");
  const store = new StateStore({
    registry: inputs.registry,
    project: inputs.project,
    rings: inputs.rings,
  });
  const before = (await store.readRing(inputs.ring)).release?.version;
  const after = await store.moveRing(inputs.ring, inputs.version);
  if (after.release?.digest !== inputs.digest) {
    throw new Error(
      `ring ${inputs.ring}: release ${inputs.version} is ${after.release?.digest} in the registry, ` +
        `not ${inputs.digest} as this update pushed it`,
    );
  }
  return before;
}

/** Arguments of {@link RingPointer}; Outputs allowed (the digest is known after the push). */
export type RingPointerArgs = {
  readonly [K in keyof RingPointerInputs]: pulumi.Input<RingPointerInputs[K]>;
};

/**
 * The moving pointer of one ring (`gitops-rings:ring:RingPointer`): the `ring-<name>` tag on
 * the release repository, the only mutable tag in the registry (DESIGN.md, "state store").
 * Moving it is a step that `pulumi preview` shows and does not perform. Before the tag moves,
 * lib/state-store.ts checks that the release and every image it names exist.
 */
export class RingPointer extends pulumi.dynamic.Resource {
  declare public readonly version: pulumi.Output<string>;
  declare public readonly digest: pulumi.Output<string>;
  /** The release version the ring pointed at before this resource last moved it. */
  declare public readonly previous: pulumi.Output<string | undefined>;

  constructor(name: string, args: RingPointerArgs, opts?: pulumi.CustomResourceOptions) {
    super(provider, name, { ...args, previous: undefined }, opts, "ring", "RingPointer");
  }
}
