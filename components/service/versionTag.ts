import * as pulumi from "@pulumi/pulumi";
import {
  configureRegistryAuth,
  loadLib,
  outputsOf,
  providerByName,
  registryAuth,
} from "../dynamic";
import { RegistryImageResource, type DynamicArgs } from "./registryImage";

/** Inputs of {@link VersionTag} once resolved. */
export interface VersionTagInputs {
  /** Repository, e.g. `127.0.0.1:5001/example/backend`. */
  readonly repository: string;
  /** The version tag, a semver; immutable once pushed (DESIGN.md invariant 1). */
  readonly tag: string;
  /** The digest the builder pushed (by digest, untagged). */
  readonly built: string;
  /** The labels the build was given: they stay, whatever the base image has. */
  readonly labels: Record<string, string>;
  /** The service image the built stage is FROM, by digest, when there is one. */
  readonly base?: string;
}

type Outs = VersionTagInputs & { readonly digest: string; readonly ref: string };

async function publish(inputs: VersionTagInputs): Promise<Outs> {
  const { publishImage } = loadLib<typeof import("../../lib/publish")>("publish");
  const published = await publishImage(
    {
      repository: inputs.repository,
      digest: inputs.built,
      tag: inputs.tag,
      labels: inputs.labels,
      ...(inputs.base ? { base: inputs.base } : {}),
    },
    registryAuth().providerClient(),
  );
  return outputsOf({ ...inputs, digest: published.digest, ref: published.ref });
}

/** VersionTag's provider (the engine runs it through components/dynamic.ts `providerByName`). */
export const versionTagProvider: pulumi.dynamic.ResourceProvider = {
  configure: configureRegistryAuth,
  async create(inputs: VersionTagInputs) {
    return { id: `${inputs.repository}:${inputs.tag}`, outs: await publish(inputs) };
  },
  async diff(_id: string, olds: Outs, news: VersionTagInputs) {
    const keys = ["repository", "tag", "built", "labels", "base"] as const;
    const changed = keys.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
    // Another repository or tag is another tag: create it, and never untag the old one.
    const replaces = changed.filter((k) => k === "repository" || k === "tag");
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: false };
  },
  async update(_id: string, _olds: Outs, news: VersionTagInputs) {
    // Publishing again under the same tag succeeds only when the result is the same digest:
    // lib/registry.ts putTag refuses to move a version tag.
    return { outs: await publish(news) };
  },
  // No delete: a version tag is never removed by an update (DESIGN.md: nothing in the registry
  // is lost), and the SDK skips the delete of a provider that has none.
};

/** What the engine serializes for VersionTag: a loader of {@link versionTagProvider} by name. */
const ENGINE_PROVIDER = providerByName("VersionTag", versionTagProvider);

/** Arguments of {@link VersionTag}; Outputs allowed (the built digest is known after the build). */
export type VersionTagArgs = DynamicArgs<VersionTagInputs>;

/**
 * The version tag of one built image (`pulumi-nodejs:dynamic/service:VersionTag`): the step
 * after every builder, the same on the docker-build and the buildctl path (lib/publish.ts).
 * It makes the image's labels its own (none inherited from its base; DESIGN.md invariant 7)
 * and then puts the immutable version tag on the result, refusing with `TagImmutableError`
 * when the tag already points at another digest (invariant 1). Its `digest` is the digest the
 * version tag points at: the one a release records and a site deploys.
 */
export class VersionTag extends RegistryImageResource<VersionTagInputs> {
  constructor(name: string, args: VersionTagArgs, opts?: pulumi.CustomResourceOptions) {
    super(ENGINE_PROVIDER, name, args, opts, "VersionTag");
  }
}
