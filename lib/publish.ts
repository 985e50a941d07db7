/**
 * Publishing a built image: the one step after every builder (docker-build or buildctl, see
 * components/service/build.ts) that turns an image pushed by digest into a version.
 *
 * 1. Its labels are made its own (DESIGN.md invariant 7, "an image's labels describe that
 *    image alone"): a container image inherits every label of the image it is built `FROM`
 *    (OCI image-spec config.md, `config.Labels`), so a service built FROM a base would carry
 *    the base's `org.opencontainers.image.source`, `dependency.*`, source commits and extra
 *    labels. No Dockerfile instruction removes a label, so the published image gets a config
 *    whose labels are the built ones minus those inherited (see {@link ownLabels}); the layers
 *    are untouched and only the config and manifest (and index) are pushed again. BuildKit's
 *    provenance attestation of a rewritten manifest is pushed again too, its subject naming
 *    the published manifest (lib/provenance.ts `followMovedSubjects`).
 * 2. The version tag is put on the result with lib/registry.ts `putTag`, which refuses to move
 *    an existing version tag (invariant 1). Builders never push tags themselves, so no
 *    builder can move one either.
 *
 * Both steps are deterministic: the same built digest and labels give the same published
 * digest, so a retry after a failure halfway is a no-op where the first attempt succeeded.
 */
import * as semver from "semver";
import { isReserved, type Labels } from "./labels";
import {
  RegistryClient,
  isIndexMediaType,
  parseRepository,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from "./registry";
import { followMovedSubjects, isAttestation } from "./provenance";
import { beginReleaseCheck } from "./state-store";
import type { Digest } from "./types";

/** What {@link publishImage} publishes. */
export interface PublishRequest {
  /** Repository the builder pushed to, e.g. `127.0.0.1:5001/example/backend`. */
  readonly repository: string;
  /** The digest the builder pushed (a manifest or an index). */
  readonly digest: Digest;
  /** The version tag, a semver. */
  readonly tag: string;
  /**
   * The labels this program gave the build (lib/labels.ts `imageLabels`): they stay, whatever
   * the base image has.
   */
  readonly labels: Labels;
  /**
   * The image the built stage is `FROM`, by digest (`repo@sha256:…`), when it is a service of
   * this repository: labels equal to one of its labels (key and value) are inherited and
   * dropped. Labels in this program's own keys that the build did not set are dropped in any
   * case. @default none
   */
  readonly base?: string;
}

/** What {@link publishImage} did. */
export interface Published {
  /** The digest the version tag points at. */
  readonly digest: Digest;
  /** `<repository>@<digest>`. */
  readonly ref: string;
  /** Whether the config was rewritten (inherited labels were found). */
  readonly rewritten: boolean;
}

/**
 * The labels an image keeps: every label of its built config except those inherited, i.e.
 * labels in this program's own keys (lib/labels.ts: `org.opencontainers.image.*` that it
 * writes, `dependency.*`, `io.gitops-rings.*`) that `given` does not set, and labels equal
 * (key and value) to one of `base`'s that `given` does not set. A `LABEL` instruction of the
 * service's own Dockerfile stays, unless it repeats a label of its base with the same value.
 * @param built `config.Labels` of the built image.
 * @param given the labels the build was given.
 * @param base the labels of the service image it is built FROM. @default {}
 * @returns the labels to keep, in the order of `built`.
 */
export function ownLabels(built: Labels, given: Labels, base: Labels = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(built)) {
    const set = Object.prototype.hasOwnProperty.call(given, key);
    if (!set && (isReserved(key) || base[key] === value)) continue;
    out[key] = value;
  }
  return out;
}

function sameLabels(a: Labels, b: Labels): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/**
 * Publishes one built image: own labels only, then the immutable version tag. For a release,
 * it then begins the check that every image the release names exists, which the ring move of
 * the same update takes (lib/state-store.ts `beginReleaseCheck`).
 * @returns the digest the version tag points at (the built digest when nothing was inherited).
 * @throws `TagImmutableError` (lib/registry.ts) when the version tag exists at another digest;
 *   Error when `tag` is not a semver or the built image is not in the registry.
 */
export async function publishImage(
  req: PublishRequest,
  client: RegistryClient = new RegistryClient(),
): Promise<Published> {
  if (semver.valid(req.tag) !== req.tag) {
    throw new Error(`${req.repository}: version tag ${JSON.stringify(req.tag)} is not a semver`);
  }
  const base = req.base ? await baseLabels(client, req.base) : {};
  const rewritten = await rewrite(client, req.repository, req.digest, req.labels, base);
  await client.putTag(req.repository, req.tag, rewritten.digest);
  beginReleaseCheck(client, req.repository, req.labels, rewritten.digest);
  return {
    digest: rewritten.digest,
    ref: `${req.repository}@${rewritten.digest}`,
    rewritten: rewritten.digest !== req.digest,
  };
}

/** Labels of every platform of `ref`, merged (a base built for several platforms labels each alike). */
async function baseLabels(client: RegistryClient, ref: string): Promise<Labels> {
  const top = await client.getManifest(ref);
  if (!isIndexMediaType(top.mediaType)) return (await client.getImageConfig(ref)).labels;
  const at = ref.slice(0, ref.lastIndexOf("@"));
  const merged: Record<string, string> = {};
  for (const m of (top.manifest as ImageIndex).manifests) {
    if (isAttestation(m)) continue;
    Object.assign(merged, await configLabels(client, at, m.digest));
  }
  return merged;
}

async function configLabels(client: RegistryClient, repository: string, digest: Digest) {
  const m = (await client.getManifest(`${repository}@${digest}`)).manifest as ImageManifest;
  const config = JSON.parse((await client.getBlob(repository, m.config.digest)).toString("utf8"));
  return (config.config?.Labels ?? {}) as Labels;
}

/** Rewrites the manifest or index at `digest` so that every image config has its own labels only. */
async function rewrite(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  given: Labels,
  base: Labels,
): Promise<Descriptor> {
  const r = parseRepository(repository);
  const top = await client.getManifest({ ...r, digest });
  if (!isIndexMediaType(top.mediaType)) {
    return rewriteManifest(client, repository, top.manifest as ImageManifest, top, given, base);
  }
  const index = top.manifest as ImageIndex;
  const moved = new Map<Digest, Descriptor>();
  for (const m of index.manifests) {
    if (isAttestation(m)) continue;
    const child = await client.getManifest({ ...r, digest: m.digest });
    const d = await rewriteManifest(
      client,
      repository,
      child.manifest as ImageManifest,
      child,
      given,
      base,
    );
    if (d.digest !== m.digest) moved.set(m.digest, d);
  }
  if (moved.size === 0) return { mediaType: top.mediaType, digest: top.digest, size: top.size };
  // An attestation names the manifest it attests, in the index and in its statements' subject;
  // both follow that manifest's new digest (lib/provenance.ts).
  const manifests = await Promise.all(
    index.manifests.map(async (m): Promise<Descriptor> => {
      const to = moved.get(m.digest);
      if (to) return { ...m, digest: to.digest, size: to.size };
      return isAttestation(m) ? followMovedSubjects(client, repository, m, moved) : m;
    }),
  );
  const bytes = Buffer.from(JSON.stringify({ ...index, manifests }));
  return client.pushManifest(repository, bytes, top.mediaType);
}

async function rewriteManifest(
  client: RegistryClient,
  repository: string,
  manifest: ImageManifest,
  at: { readonly digest: Digest; readonly mediaType: string; readonly size: number },
  given: Labels,
  base: Labels,
): Promise<Descriptor> {
  const unchanged = { mediaType: at.mediaType, digest: at.digest, size: at.size };
  const configBytes = await client.getBlob(repository, manifest.config.digest);
  const config = JSON.parse(configBytes.toString("utf8"));
  const labels: Labels = config.config?.Labels ?? {};
  const own = ownLabels(labels, given, base);
  if (sameLabels(own, labels)) return unchanged;
  const next = { ...config, config: { ...config.config, Labels: own } };
  const configDesc = await client.pushBlob(
    repository,
    Buffer.from(JSON.stringify(next)),
    manifest.config.mediaType,
  );
  const bytes = Buffer.from(
    JSON.stringify({
      ...manifest,
      config: { ...manifest.config, digest: configDesc.digest, size: configDesc.size },
    }),
  );
  return client.pushManifest(repository, bytes, at.mediaType);
}
