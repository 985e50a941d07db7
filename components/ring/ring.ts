import * as pulumi from "@pulumi/pulumi";
import { RingPointer } from "./ringPointer";

/** Arguments of {@link Ring}. */
export interface RingArgs {
  /** Registry `host[:port][/prefix]`. */
  readonly registry: string;
  /** Project path in the registry. */
  readonly project: string;
  /** The configured rings in order (without `ante` and `post`). */
  readonly rings: readonly string[];
  /** This ring. */
  readonly ring: string;
  /**
   * The release this ring pointed at when the update was planned (lib/site.ts reads it with
   * lib/state-store.ts), if any: the pointer moves only if the ring still points there.
   */
  readonly current?: { readonly version: string; readonly digest: string };
  /** The ring after this one, and the release it points at, if any (what the version rule reads). */
  readonly next: { readonly ring: string; readonly release?: string };
  /** The release the ring moves to: its version and, once pushed, its digest. */
  readonly release: {
    readonly version: pulumi.Input<string>;
    readonly digest: pulumi.Input<string>;
  };
  /**
   * What must be done before the pointer moves: the release and every image it names exist,
   * and the site's own deployment succeeded (DESIGN.md invariant 2).
   */
  readonly dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * One ring of a building site (`gitops-rings:ring:Ring`): what it pointed at, what the next ring
 * points at, and its {@link RingPointer}, which moves only after the release and its images
 * exist and the site deployed them (DESIGN.md invariant 2), and only if the ring still points
 * where it did when the update was planned. Preview shows the move and does not perform it.
 */
export class Ring extends pulumi.ComponentResource {
  /** The release version the ring pointed at before this update (empty when none). */
  public readonly current: pulumi.Output<string>;
  /** The release version of the next ring (empty when none). */
  public readonly nextRelease: pulumi.Output<string>;
  /** The release version the ring points at after this update. */
  public readonly release: pulumi.Output<string>;
  public readonly pointer: RingPointer;

  constructor(name: string, args: RingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitops-rings:ring:Ring", name, {}, opts);
    this.pointer = new RingPointer(
      `${name}-pointer`,
      {
        registry: args.registry,
        project: args.project,
        rings: [...args.rings],
        ring: args.ring,
        version: args.release.version,
        digest: args.release.digest,
        ...(args.current ? { expected: args.current.digest } : {}),
      },
      { parent: this, dependsOn: args.dependsOn },
    );
    this.current = pulumi.output(args.current?.version ?? "");
    this.nextRelease = pulumi.output(args.next.release ?? "");
    this.release = this.pointer.version;
    this.registerOutputs({
      current: this.current,
      nextRelease: this.nextRelease,
      release: this.release,
    });
  }
}
