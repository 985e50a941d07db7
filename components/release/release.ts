import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { buildAndPublish, type PublishedImage, type RegistryCredentials } from "../service/build";
import type { ImageArgs, ImageBuilder } from "../service/serviceImage";

/** Arguments of {@link Release}: the release repository is `<registry>/<project>/release`. */
export interface ReleaseArgs extends ImageArgs {
  /** @default { kind: "docker-build" } */
  readonly builder?: ImageBuilder;
  readonly registries?: readonly RegistryCredentials[];
}

/**
 * The release (`gitops-rings:release:Release`): the root image of GitOps seed 001, a
 * `FROM scratch` image with no layers whose labels record every service of the application.
 * It is the unit that moves between rings. Built and published like the services
 * (../service/build.ts): pushed by digest, then under its immutable version tag.
 */
export class Release extends pulumi.ComponentResource {
  /** `<repository>@sha256:…`. */
  public readonly ref: pulumi.Output<string>;
  public readonly digest: pulumi.Output<string>;
  public readonly version: pulumi.Output<string>;
  public readonly image?: PublishedImage;

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
      this.image = buildAndPublish(name, {
        context: scratch,
        dockerfile: path.join(scratch, "Dockerfile"),
        builder: args.builder,
        registries: args.registries,
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
    this.registerOutputs({ ref: this.ref, digest: this.digest, version: this.version });
  }
}
