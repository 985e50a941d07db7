import * as pulumi from "@pulumi/pulumi";
import {
  configureRegistryAuth,
  loadLib,
  outputsOf,
  providerByName,
  registryAuth,
} from "../dynamic";
import { RegistryImageResource, type DynamicArgs } from "./registryImage";

/** Inputs of {@link BuildkitImage} once resolved. */
export interface BuildkitImageInputs {
  /** BuildKit address, e.g. `tcp://127.0.0.1:1234`. */
  readonly addr: string;
  /** Absolute path of the build context. */
  readonly context: string;
  /** Absolute path of the Dockerfile. */
  readonly dockerfile: string;
  readonly buildArgs: Record<string, string>;
  /** Named contexts (`docker-image://…`) by the name the Dockerfile uses. */
  readonly namedContexts: Record<string, string>;
  readonly labels: Record<string, string>;
  readonly target?: string;
  readonly platforms: string[];
  /** Repository pushed to by digest, e.g. `127.0.0.1:5001/example/backend`. */
  readonly repository: string;
  /** The revision the image is built from; a new revision is a new build. */
  readonly revision: string;
  /** The version tag the build is published under (lib/publish.ts). */
  readonly tag: string;
  /** The service image the built stage is FROM, by digest: its labels are not inherited. */
  readonly base?: string;
}

type Outs = BuildkitImageInputs & {
  /** The digest BuildKit pushed (untagged, before publishing). */
  readonly built: string;
  /** The digest the version tag points at. */
  readonly digest: string;
  readonly ref: string;
};

/**
 * Properties that are no reason to build again: the outputs that are not inputs, and the SDK's
 * `__provider` (this provider's serialized code, which the engine passes in olds and news: a new
 * version of gitops-rings must not rebuild every image, whose version tags then refuse the new
 * digests). An array, not a Set: the provider's closure is serialized, and the serializer does
 * not carry a Set.
 */
const NOT_COMPARED = ["built", "digest", "ref", "__provider"];

/**
 * Builds, then publishes: the step VersionTag takes after the docker-build backend, taken here
 * in the same provider call (lib/publish.ts, written once), so that a site of N services has N
 * resources for its images rather than 2N (issue 10: each resource is an engine step and a
 * checkpoint write).
 */
async function buildAndPublish(inputs: BuildkitImageInputs): Promise<Outs> {
  const buildkit = loadLib<typeof import("../../lib/buildkit")>("buildkit");
  const { publishImage } = loadLib<typeof import("../../lib/publish")>("publish");
  const auth = registryAuth();
  const built = await buildkit.buildWithBuildkit({
    ...inputs,
    credentials: auth.providerCredentials(),
  });
  const published = await publishImage(
    {
      repository: inputs.repository,
      digest: built.digest,
      tag: inputs.tag,
      labels: inputs.labels,
      ...(inputs.base ? { base: inputs.base } : {}),
    },
    auth.providerClient(),
  );
  return outputsOf({
    ...inputs,
    built: built.digest,
    digest: published.digest,
    ref: published.ref,
  });
}

/** BuildkitImage's provider (exported for tests; the engine runs a serialized copy). */
export const buildkitImageProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req: pulumi.dynamic.ConfigureRequest) {
    await configureRegistryAuth(req);
    // Validated with the rest of the site config before anything is created (lib/config.ts).
    const limit = req.config.get("gitops-rings:buildConcurrency");
    loadLib<typeof import("../../lib/buildkit")>("buildkit").limitBuilds(
      limit === undefined ? undefined : Number(limit),
    );
  },
  async create(inputs: BuildkitImageInputs) {
    const outs = await buildAndPublish(inputs);
    return { id: outs.ref, outs };
  },
  async diff(_id: string, olds: Outs, news: BuildkitImageInputs) {
    const before = olds as unknown as Record<string, unknown>;
    const after = news as unknown as Record<string, unknown>;
    const keys = Object.keys({ ...before, ...after }).filter((k) => !NOT_COMPARED.includes(k));
    const changed = keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    return { changes: changed.length > 0 };
  },
  async update(_id: string, _olds: Outs, news: BuildkitImageInputs) {
    // Publishing under a version tag that points at another digest fails: lib/registry.ts
    // putTag refuses to move a version tag (invariant 1).
    return { outs: await buildAndPublish(news) };
  },
  // No delete: pushed versions are never deleted by an update (DESIGN.md: nothing in the
  // registry is lost), and the SDK skips the delete of a provider that has none.
};

/** What the engine serializes for BuildkitImage: a loader of {@link buildkitImageProvider} by name. */
const ENGINE_PROVIDER = providerByName("BuildkitImage", buildkitImageProvider);

/** Arguments of {@link BuildkitImage}. */
export type BuildkitImageArgs = DynamicArgs<BuildkitImageInputs>;

/**
 * An image built by BuildKit's own client, pushed by digest and then published under its
 * version tag by lib/publish.ts, the step VersionTag (./versionTag.ts) takes on the
 * docker-build path: own labels only (invariant 7), an immutable version tag (invariant 1).
 * `digest` and `ref` are the published image's, `built` the digest BuildKit pushed. Type token
 * `pulumi-nodejs:dynamic/service:BuildkitImage` (dynamic resources carry the SDK's prefix).
 *
 * The build backend of the local platform, where the docker-build provider plugin cannot be
 * built (./build.ts `buildctlBackend`).
 */
export class BuildkitImage extends RegistryImageResource<BuildkitImageInputs> {
  declare public readonly built: pulumi.Output<string>;

  constructor(name: string, args: BuildkitImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(ENGINE_PROVIDER, name, args, opts, "BuildkitImage", ["built"]);
  }
}
