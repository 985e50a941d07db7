import * as pulumi from "@pulumi/pulumi";
import * as dockerbuild from "@pulumi/docker-build";
import { BuildkitImage } from "./buildkitImage";
import type { ImageAction, ImageBuilder, ImageReason } from "../../lib/site";

export type { ImageAction, ImageBuilder, ImageReason };

/** Registry credentials handed to BuildKit for the push (docker-build `registries`). */
export interface RegistryCredentials {
  /** Registry host[:port], e.g. `registry.example.com`. */
  readonly address: string;
  readonly username?: pulumi.Input<string>;
  readonly password?: pulumi.Input<string>;
}

/** How one service is built; read when {@link ServiceImageArgs.action} is `build` or `keep`. */
export interface ServiceBuild {
  /** Absolute path of the build context. */
  readonly context: string;
  /** Absolute path of the Dockerfile. */
  readonly dockerfile: string;
  /** Build args as configured, before the dependency references are added. @default {} */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Target stage. @default the last stage */
  readonly target?: string;
  /** Platforms, e.g. `["linux/amd64"]`. @default ["linux/amd64"] */
  readonly platforms?: readonly string[];
  /**
   * Build args whose value is a dependency image (lib/dockerfile.ts finds them in `FROM`),
   * mapped to the dependency's reference by digest (`repo@sha256:…`). Pinning `FROM` by digest
   * is what makes a dependency's rebuild reach its dependents (DESIGN.md, flow 1).
   * @default {}
   */
  readonly dependencyArgs?: Readonly<Record<string, pulumi.Input<string>>>;
  /**
   * Named build contexts, `docker-image://<repo>@sha256:…` by the image name the Dockerfile
   * writes (`FROM base`): BuildKit builds FROM the named context instead. @default {}
   */
  readonly namedContexts?: Readonly<Record<string, pulumi.Input<string>>>;
  /** @default { kind: "docker-build" } */
  readonly builder?: ImageBuilder;
  readonly registries?: readonly RegistryCredentials[];
}

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
  readonly reason: ImageReason;
  /** Required when `action` is `build` or `keep`. */
  readonly build?: ServiceBuild;
}

/**
 * One service's image (`gitops-rings:service:ServiceImage`): built with `@pulumi/docker-build`
 * and pushed under its version tag when the plan says `build`, otherwise the existing image by
 * digest.
 *
 * The version tag is immutable (DESIGN.md invariant 1): the push names a version that the plan
 * took from the registry as free, and the child Image is `retainOnDelete`, so that docker-build
 * never deletes a pushed tag when a later update stops declaring it.
 *
 * @throws pulumi.ResourceError when `reuse` has no digest or `build` has no build settings.
 */
export class ServiceImage extends pulumi.ComponentResource {
  /** Reference by digest, `<repository>@sha256:…` (DESIGN.md invariant 4). */
  public readonly ref: pulumi.Output<string>;
  public readonly digest: pulumi.Output<string>;
  public readonly version: pulumi.Output<string>;
  public readonly revision: pulumi.Output<string>;
  public readonly reason: pulumi.Output<ImageReason>;
  /** The image resource when this update declares one (`build` or `keep`), else undefined. */
  public readonly image?: dockerbuild.Image | BuildkitImage;

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
      this.image = buildImage(name, {
        ...build,
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
    this.revision = pulumi.output(args.revision);
    this.reason = pulumi.output(args.reason);
    this.registerOutputs({
      ref: this.ref,
      digest: this.digest,
      version: this.version,
      revision: this.revision,
      reason: this.reason,
    });
  }
}

/** What {@link buildImage} needs: one build, its repository, tag and labels. */
export interface ImageBuildRequest extends ServiceBuild {
  readonly repository: string;
  /** The version tag. */
  readonly tag: string;
  readonly revision: pulumi.Input<string>;
  readonly labels: pulumi.Input<Readonly<Record<string, pulumi.Input<string>>>>;
  readonly parent: pulumi.Resource;
}

/**
 * Declares the image resource of one build with the chosen builder: a docker-build Image
 * (`retainOnDelete`, so docker-build never deletes a pushed tag) or a BuildkitImage.
 * Shared by {@link ServiceImage} and the release.
 */
export function buildImage(
  name: string,
  req: ImageBuildRequest,
): dockerbuild.Image | BuildkitImage {
  const builder = req.builder ?? { kind: "docker-build" };
  const buildArgs = { ...req.buildArgs, ...req.dependencyArgs };
  const platforms = [...(req.platforms ?? ["linux/amd64"])];
  if (builder.kind === "buildctl") {
    return new BuildkitImage(
      name,
      {
        addr: builder.addr,
        namedContexts: pulumi.output(req.namedContexts ?? {}),
        context: req.context,
        dockerfile: req.dockerfile,
        buildArgs: pulumi.output(buildArgs),
        labels: pulumi.output(req.labels),
        target: req.target,
        platforms,
        repository: req.repository,
        tag: req.tag,
        revision: req.revision,
      },
      { parent: req.parent },
    );
  }
  return new dockerbuild.Image(
    name,
    {
      context: {
        location: req.context,
        named: pulumi
          .output(req.namedContexts ?? {})
          .apply((named) =>
            Object.fromEntries(Object.entries(named).map(([k, v]) => [k, { location: v }])),
          ),
      },
      dockerfile: { location: req.dockerfile },
      buildArgs,
      target: req.target,
      platforms: platforms as dockerbuild.Platform[],
      labels: req.labels,
      tags: [`${req.repository}:${req.tag}`],
      push: true,
      buildOnPreview: false,
      builder: builder.name ? { name: builder.name } : undefined,
      registries: req.registries?.map((r) => ({ ...r })),
    },
    { parent: req.parent, retainOnDelete: true },
  );
}
