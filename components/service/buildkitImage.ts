import * as pulumi from "@pulumi/pulumi";
import { configureRegistryAuth, loadLib, outputsOf, registryAuth } from "../dynamic";
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
}

type Outs = BuildkitImageInputs & { readonly digest: string; readonly ref: string };

async function build(inputs: BuildkitImageInputs): Promise<Outs> {
  const buildkit = loadLib<typeof import("../../lib/buildkit")>("buildkit");
  const built = await buildkit.buildWithBuildkit({
    ...inputs,
    credentials: registryAuth().providerCredentials(),
  });
  return outputsOf({ ...inputs, digest: built.digest, ref: built.ref });
}

const provider: pulumi.dynamic.ResourceProvider = {
  configure: configureRegistryAuth,
  async create(inputs: BuildkitImageInputs) {
    const outs = await build(inputs);
    return { id: outs.ref, outs };
  },
  async diff(_id: string, olds: Outs, news: BuildkitImageInputs) {
    const before = olds as unknown as Record<string, unknown>;
    const after = news as unknown as Record<string, unknown>;
    const keys = Object.keys({ ...before, ...after }).filter((k) => k !== "digest" && k !== "ref");
    const changed = keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    return { changes: changed.length > 0 };
  },
  async update(_id: string, _olds: Outs, news: BuildkitImageInputs) {
    return { outs: await build(news) };
  },
  async delete() {
    // Pushed versions are never deleted by an update (DESIGN.md: nothing in the registry is lost).
  },
};

/** Arguments of {@link BuildkitImage}. */
export type BuildkitImageArgs = DynamicArgs<BuildkitImageInputs>;

/**
 * An image built by BuildKit's own client and pushed by digest, untagged: the version tag is
 * put by VersionTag (./versionTag.ts), the same step as on the docker-build path. Type token
 * `pulumi-nodejs:dynamic/service:BuildkitImage` (dynamic resources carry the SDK's prefix).
 *
 * The build backend of the local platform, where the docker-build provider plugin cannot be
 * built (./build.ts `buildctlBackend`).
 */
export class BuildkitImage extends RegistryImageResource<BuildkitImageInputs> {
  constructor(name: string, args: BuildkitImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(provider, name, args, opts, "BuildkitImage");
  }
}
