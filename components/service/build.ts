/**
 * Building an image, behind one interface with one implementation per backend (STYLE.md rule
 * 11): `@pulumi/docker-build` for users with Docker, BuildKit's own client (`buildctl`) on the
 * local platform. Every backend builds and pushes by digest only, never a tag; the rules that
 * must hold on both (own labels only, the immutable version tag) are written once, in
 * lib/publish.ts, which every build goes through: after a docker-build image as the
 * {@link VersionTag} step, and inside the BuildkitImage step on the buildctl path (one
 * resource per image instead of two, issue 10).
 */
import * as pulumi from "@pulumi/pulumi";
import * as dockerbuild from "@pulumi/docker-build";
import type { ImageBuilder } from "../../lib/site";
import { BuildkitImage } from "./buildkitImage";
import { VersionTag } from "./versionTag";

/** Registry credentials handed to BuildKit for the push (docker-build `registries`). */
export interface RegistryCredentials {
  /** Registry host[:port], e.g. `registry.example.com`. */
  readonly address: string;
  readonly username?: pulumi.Input<string>;
  readonly password?: pulumi.Input<string>;
}

/** How one image is built. */
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
   * writes (`FROM base`, `COPY --from=base`): BuildKit uses the named context instead.
   * @default {}
   */
  readonly namedContexts?: Readonly<Record<string, pulumi.Input<string>>>;
  /**
   * The service image the built stage is FROM, by digest: its labels are not inherited
   * (lib/publish.ts). @default none
   */
  readonly base?: pulumi.Input<string>;
  /** @default { kind: "docker-build" } */
  readonly builder?: ImageBuilder;
  readonly registries?: readonly RegistryCredentials[];
}

/** One build: what, where to, under which version and with which labels. */
export interface ImageBuildRequest extends ServiceBuild {
  readonly repository: string;
  /** The version tag. */
  readonly tag: string;
  readonly revision: pulumi.Input<string>;
  readonly labels: pulumi.Input<Readonly<Record<string, pulumi.Input<string>>>>;
  /**
   * Declare the resources this stack built in an earlier update, unchanged: every input is
   * ignored in the diff (`ignoreChanges`), so that a new checkout directory, a source commit
   * that changes no file the build reads, or new extra labels never rebuild or re-tag an
   * image whose revision is the same (DESIGN.md invariant 3). @default false
   */
  readonly keep?: boolean;
  readonly parent: pulumi.Resource;
}

/** What a backend declared: the resource that builds and pushes by digest, and that digest. */
export interface BuiltImage {
  readonly resource: dockerbuild.Image | BuildkitImage;
  /** The digest the backend pushed (untagged). */
  readonly digest: pulumi.Output<string>;
  /**
   * The digest the version tag points at, when the backend's resource also published the image
   * through lib/publish.ts; undefined: {@link buildAndPublish} declares a {@link VersionTag}.
   */
  readonly published?: pulumi.Output<string>;
}

/**
 * One image builder backend: builds `req` and pushes it by digest. It puts no tag itself, other
 * than through lib/publish.ts (which refuses to move a version tag).
 */
export interface ImageBuilderBackend {
  build(name: string, req: ImageBuildRequest, opts: pulumi.CustomResourceOptions): BuiltImage;
}

/** `opts` plus `ignoreChanges` on every key of `args` when the request keeps an earlier build. */
function keepOptions(
  req: ImageBuildRequest,
  args: object,
  opts: pulumi.CustomResourceOptions,
): pulumi.CustomResourceOptions {
  return req.keep ? pulumi.mergeOptions(opts, { ignoreChanges: Object.keys(args) }) : opts;
}

/** The docker-build backend: a buildx build exported to the registry by digest (`push-by-digest`). */
export const dockerBuildBackend: ImageBuilderBackend = {
  build(name, req, opts) {
    const builder = req.builder?.kind === "docker-build" ? req.builder : undefined;
    const args: dockerbuild.ImageArgs = {
      context: {
        location: req.context,
        named: pulumi
          .output(req.namedContexts ?? {})
          .apply((named) =>
            Object.fromEntries(Object.entries(named).map(([k, v]) => [k, { location: v }])),
          ),
      },
      dockerfile: { location: req.dockerfile },
      buildArgs: { ...req.buildArgs, ...req.dependencyArgs },
      target: req.target,
      platforms: [...(req.platforms ?? ["linux/amd64"])] as dockerbuild.Platform[],
      labels: req.labels,
      // By digest only: the version tag is VersionTag's, which refuses to move it.
      exports: [{ registry: { names: [req.repository], pushByDigest: true } }],
      push: false,
      buildOnPreview: false,
      builder: builder?.name ? { name: builder.name } : undefined,
      registries: req.registries?.map((r) => ({ ...r })),
    };
    // retainOnDelete: docker-build never deletes what it pushed when an update stops declaring it.
    const image = new dockerbuild.Image(
      name,
      args,
      keepOptions(req, args, pulumi.mergeOptions(opts, { retainOnDelete: true })),
    );
    return { resource: image, digest: image.digest };
  },
};

/**
 * The buildctl backend (local platform): BuildKit's own client, pushing by digest, then
 * publishing in the same step (./buildkitImage.ts).
 */
export function buildctlBackend(addr: string): ImageBuilderBackend {
  return {
    build(name, req, opts) {
      const args = {
        addr,
        namedContexts: pulumi.output(req.namedContexts ?? {}),
        context: req.context,
        dockerfile: req.dockerfile,
        buildArgs: pulumi.output({ ...req.buildArgs, ...req.dependencyArgs }),
        labels: pulumi.output(req.labels),
        target: req.target,
        platforms: [...(req.platforms ?? ["linux/amd64"])],
        repository: req.repository,
        revision: req.revision,
        tag: req.tag,
        ...(req.base !== undefined ? { base: req.base } : {}),
      };
      const image = new BuildkitImage(name, args, keepOptions(req, args, opts));
      return { resource: image, digest: image.built, published: image.digest };
    },
  };
}

/** The backend of a builder setting. */
export function builderBackend(
  builder: ImageBuilder = { kind: "docker-build" },
): ImageBuilderBackend {
  return builder.kind === "buildctl" ? buildctlBackend(builder.addr) : dockerBuildBackend;
}

/** What {@link buildAndPublish} declared. */
export interface PublishedImage {
  /** The build, pushed by digest. */
  readonly build: BuiltImage;
  /** The version tag step, when the backend does not publish itself (docker-build). */
  readonly tag?: VersionTag;
  /** The digest the version tag points at. */
  readonly digest: pulumi.Output<string>;
}

/**
 * Declares one build with the chosen backend, then, unless the backend published it, its
 * {@link VersionTag}; children of `req.parent`. Shared by the service images and the release.
 */
export function buildAndPublish(name: string, req: ImageBuildRequest): PublishedImage {
  const build = builderBackend(req.builder).build(name, req, { parent: req.parent });
  if (build.published) return { build, digest: build.published };
  const args = {
    repository: req.repository,
    tag: req.tag,
    built: build.digest,
    labels: pulumi.output(req.labels),
    ...(req.base !== undefined ? { base: req.base } : {}),
  };
  const tag = new VersionTag(
    `${name}-tag`,
    args,
    keepOptions(req, args, { parent: req.parent, dependsOn: [build.resource] }),
  );
  return { build, tag, digest: tag.digest };
}
