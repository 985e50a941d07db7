import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as dockerbuild from "@pulumi/docker-build";
import {
  buildImage,
  type ImageAction,
  type ImageBuilder,
  type RegistryCredentials,
} from "../service/serviceImage";
import type { BuildkitImage } from "../service/buildkitImage";

/** Arguments of {@link Release}. */
export interface ReleaseArgs {
  /** Release repository, `<registry>/<project>/release` (lib/state-store.ts). */
  readonly repository: string;
  /** `build` pushes a new release version, `keep` re-declares the one this stack pushed, `reuse` takes the ring's. */
  readonly action: ImageAction;
  /** The release's semver (the version rule of DESIGN.md applies to releases too). */
  readonly version: string;
  /** `v1:sha256:…` over the services' digests (lib/labels.ts `releaseRevision`). */
  readonly revision: pulumi.Input<string>;
  /** Digest of the existing release; required when `action` is `reuse`. */
  readonly digest?: string;
  /**
   * The release labels (lib/labels.ts `releaseLabels`): every service's version, digest,
   * revision and source commits. Digests of images built in this update are Outputs.
   */
  readonly labels: pulumi.Input<Readonly<Record<string, pulumi.Input<string>>>>;
  /** @default { kind: "docker-build" } */
  readonly builder?: ImageBuilder;
  readonly registries?: readonly RegistryCredentials[];
}

/**
 * The release (`gitops-rings:release:Release`): the root image of GitOps seed 001, a
 * `FROM scratch` image with no layers whose labels record every service of the application.
 * It is the unit that moves between rings. Built with docker-build like the services, pushed
 * under its version tag, `retainOnDelete` so no update ever deletes a pushed release.
 */
export class Release extends pulumi.ComponentResource {
  /** `<repository>@sha256:…`. */
  public readonly ref: pulumi.Output<string>;
  public readonly digest: pulumi.Output<string>;
  public readonly version: pulumi.Output<string>;
  public readonly image?: dockerbuild.Image | BuildkitImage;

  constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitops-rings:release:Release", name, {}, opts);
    if (args.action === "reuse") {
      if (!args.digest) {
        throw new pulumi.ResourceError(`release ${args.version}: reuse needs its digest`, this);
      }
      this.digest = pulumi.output(args.digest);
    } else {
      // The scratch directory holds only the release's Dockerfile (`FROM scratch`).
      const scratch = path.join(__dirname, "scratch");
      this.image = buildImage(name, {
        context: scratch,
        dockerfile: path.join(scratch, "Dockerfile"),
        builder: args.builder,
        registries: args.registries,
        repository: args.repository,
        tag: args.version,
        revision: args.revision,
        labels: args.labels,
        parent: this,
      });
      this.digest = this.image.digest;
    }
    this.ref = pulumi.interpolate`${args.repository}@${this.digest}`;
    this.version = pulumi.output(args.version);
    this.registerOutputs({ ref: this.ref, digest: this.digest, version: this.version });
  }
}
