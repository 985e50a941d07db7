import * as pulumi from "@pulumi/pulumi";
import { buildAndPublish, type PublishedImage, type ServiceBuild } from "./build";
import type { ImageAction, ImageBuilder } from "../../lib/site";

export type { ImageAction, ImageBuilder };
export type { RegistryCredentials, ServiceBuild } from "./build";

/** What every pushed image of a site has: a repository, a version, a revision and labels. */
export interface ImageArgs {
  /** Repository the image is pushed to, e.g. `127.0.0.1:5001/example/backend`. */
  readonly repository: string;
  /**
   * `build` pushes a new version. `keep` declares the image resource this stack built in an
   * earlier update with the same inputs, so the engine sees no change and builds nothing.
   * `reuse` takes an image that another stack built, by digest, and declares no resource.
   */
  readonly action: ImageAction;
  /** The semver this image has (the next version when building; lib/version.ts). */
  readonly version: string;
  /** The revision of what the image is built from (lib/revision.ts), `v1:sha256:…`. */
  readonly revision: pulumi.Input<string>;
  /** Digest of the existing image; required when `action` is `reuse`. */
  readonly digest?: string;
  /**
   * Labels of the image (lib/labels.ts: the OCI annotations, `dependency.*`, source commits
   * and the service's own; for the release, every service's record). Digests of images built
   * in this update are Outputs.
   */
  readonly labels: pulumi.Input<Readonly<Record<string, pulumi.Input<string>>>>;
}

/** Arguments of {@link ServiceImage}. */
export interface ServiceImageArgs extends ImageArgs {
  /** Service name as in `gitops-rings.yaml`. */
  readonly service: string;
  /** Required when `action` is `build` or `keep`. */
  readonly build?: ServiceBuild;
}

/**
 * One service's image (`gitops-rings:service:ServiceImage`): when the plan says `build`, built
 * by the site's builder backend and pushed by digest, then published under its version tag by
 * a VersionTag (./build.ts), which drops inherited labels and refuses to move an existing
 * version tag (DESIGN.md invariants 1 and 7); `keep` declares the same resources as the update
 * that built them, with every input ignored in the diff; `reuse` takes the existing image by
 * digest and declares nothing.
 *
 * @throws pulumi.ResourceError when `reuse` has no digest or `build` has no build settings.
 */
export class ServiceImage extends pulumi.ComponentResource {
  /** Reference by digest, `<repository>@sha256:…` (DESIGN.md invariant 4). */
  public readonly ref: pulumi.Output<string>;
  public readonly digest: pulumi.Output<string>;
  public readonly version: pulumi.Output<string>;
  public readonly revision: pulumi.Output<string>;
  /** The build and its version tag when this update declares them (`build` or `keep`). */
  public readonly image?: PublishedImage;

  constructor(name: string, args: ServiceImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitops-rings:service:ServiceImage", name, {}, opts);

    if (args.action === "reuse") {
      if (!args.digest) {
        throw new pulumi.ResourceError(
          `service ${args.service}: reusing version ${args.version} needs its digest`,
          this,
        );
      }
      this.digest = pulumi.output(args.digest);
    } else {
      const build = args.build;
      if (!build) {
        throw new pulumi.ResourceError(
          `service ${args.service}: building version ${args.version} needs build settings`,
          this,
        );
      }
      this.image = buildAndPublish(name, {
        ...build,
        repository: args.repository,
        tag: args.version,
        revision: args.revision,
        labels: args.labels,
        keep: args.action === "keep",
        parent: this,
      });
      this.digest = this.image.digest;
    }

    this.ref = pulumi.interpolate`${args.repository}@${this.digest}`;
    this.version = pulumi.output(args.version);
    this.revision = pulumi.output(args.revision);
    // Only what stays the same while the image does: a reason among the outputs ("new", then
    // "unchanged") made the update after every build write the whole checkpoint once more per
    // service built (issue 10). The plan's reason is the stack output `services`' `why`.
    this.registerOutputs({
      ref: this.ref,
      digest: this.digest,
      version: this.version,
      revision: this.revision,
    });
  }
}
