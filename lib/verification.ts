/**
 * Verified promotion. A site that deployed a release and whose post-deploy Jobs passed (the
 * update fails otherwise, lib/jobs.ts) records a verification in the registry next to the
 * release; `rings promote` moves a ring's release on only when a site of that ring verified it,
 * and `--force` records an override instead.
 *
 * Distribution 2.8 has no referrers API, so records are found by tag, in cosign's scheme: on the
 * release repository, an OCI artifact (`artifactType` {@link VERIFICATION_TYPE}) tagged
 * `sha256-<hex>.verify.<site>` for a site's verification and `sha256-<hex>.force.<ring>` for a
 * forced promotion out of `<ring>`, where `sha256-<hex>` is the release's digest. Its
 * annotations say who, when and what ({@link Verification}); its `subject` names the release,
 * so a registry with the referrers API lists it there too. The tags move when a site verifies
 * the same release again (they are records, not version tags).
 */
import { canonicalJson } from "./canonical";
import { isTag, MediaType, parseRepository, sha256Digest, type RegistryClient } from "./registry";
import type { Digest } from "./types";

/** The artifact type (and config media type) of a verification or override record. */
export const VERIFICATION_TYPE = "application/vnd.gitops-rings.verification.v1+json";
/** The artifact type of a forced promotion's record. */
export const OVERRIDE_TYPE = "application/vnd.gitops-rings.promotion-override.v1+json";

/** Annotation keys of a record's manifest. */
export const ANNOTATION = {
  site: "io.gitops-rings.verification.site",
  ring: "io.gitops-rings.verification.ring",
  release: "io.gitops-rings.verification.release",
  jobs: "io.gitops-rings.verification.jobs",
  reason: "io.gitops-rings.override.reason",
  by: "io.gitops-rings.override.by",
  created: "org.opencontainers.image.created",
} as const;

/** One post-deploy Job a verification counts. */
export interface VerifiedJob {
  readonly name: string;
  readonly status: string;
}

/** A site's verification of a release. */
export interface Verification {
  readonly site: string;
  /** The ring the site follows. */
  readonly ring: string;
  /** The release version. */
  readonly release: string;
  /** The release's digest. */
  readonly digest: Digest;
  /** ISO 8601. */
  readonly time: string;
  /** The post-deploy Jobs that passed; empty for a site that has none (the rollout completed). */
  readonly jobs: readonly VerifiedJob[];
}

/** A forced promotion: the release left `ring` unverified. */
export interface Override {
  readonly ring: string;
  readonly release: string;
  readonly digest: Digest;
  readonly time: string;
  /** Who forced it ($USER or the CI's identity). */
  readonly by: string;
  readonly reason: string;
}

const tagPrefix = (digest: Digest) => {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return `sha256-${m[1]}`;
};

/**
 * The tag of `site`'s verification of the release at `digest`: `sha256-<hex>.verify.<site>`.
 * @throws Error when the result is not a valid tag (site names past 49 characters, or with
 *   characters a tag cannot hold).
 */
export function verificationTag(digest: Digest, site: string): string {
  const tag = `${tagPrefix(digest)}.verify.${site}`;
  if (!isTag(tag)) throw new Error(`site ${JSON.stringify(site)} cannot be part of a tag: ${tag}`);
  return tag;
}

/** The tag of a forced promotion of the release at `digest` out of `ring`. */
export function overrideTag(digest: Digest, ring: string): string {
  const tag = `${tagPrefix(digest)}.force.${ring}`;
  if (!isTag(tag)) throw new Error(`ring ${JSON.stringify(ring)} cannot be part of a tag: ${tag}`);
  return tag;
}

/** Pushes a record: its config blob is the record itself; no layers. */
async function pushRecord(
  client: RegistryClient,
  repository: string,
  tag: string,
  artifactType: string,
  subject: { readonly digest: Digest },
  record: object,
  annotations: Record<string, string>,
): Promise<Digest> {
  const config = Buffer.from(canonicalJson(record));
  const configDesc = await client.pushBlob(repository, config, artifactType);
  const subjectHead = await client.headManifest({
    ...parseRepository(repository),
    digest: subject.digest,
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType,
    config: configDesc,
    layers: [],
    ...(subjectHead
      ? {
          subject: {
            mediaType: subjectHead.mediaType,
            digest: subject.digest,
            size: subjectHead.size,
          },
        }
      : {}),
    annotations,
  };
  const bytes = Buffer.from(canonicalJson(manifest));
  await client.putManifest(repository, tag, bytes, MediaType.ociManifest);
  return sha256Digest(bytes);
}

/**
 * Records `v` on the release repository under {@link verificationTag}.
 * @returns the record's digest.
 */
export async function recordVerification(
  client: RegistryClient,
  releaseRepository: string,
  v: Verification,
): Promise<Digest> {
  return pushRecord(
    client,
    releaseRepository,
    verificationTag(v.digest, v.site),
    VERIFICATION_TYPE,
    v,
    v,
    {
      [ANNOTATION.site]: v.site,
      [ANNOTATION.ring]: v.ring,
      [ANNOTATION.release]: v.release,
      [ANNOTATION.created]: v.time,
      [ANNOTATION.jobs]: v.jobs.map((j) => `${j.name}=${j.status}`).join(","),
    },
  );
}

/** Records a forced promotion under {@link overrideTag}. @returns the record's digest. */
export async function recordOverride(
  client: RegistryClient,
  releaseRepository: string,
  o: Override,
): Promise<Digest> {
  return pushRecord(client, releaseRepository, overrideTag(o.digest, o.ring), OVERRIDE_TYPE, o, o, {
    [ANNOTATION.ring]: o.ring,
    [ANNOTATION.release]: o.release,
    [ANNOTATION.created]: o.time,
    [ANNOTATION.by]: o.by,
    [ANNOTATION.reason]: o.reason,
  });
}

/** What the registry holds about one release. */
export interface ReleaseRecords {
  readonly verifications: Verification[];
  readonly overrides: Override[];
}

/**
 * Every verification and override of the release at `digest`, read from the tags of the release
 * repository ({@link verificationTag}, {@link overrideTag}) and their config blobs.
 */
export async function readRecords(
  client: RegistryClient,
  releaseRepository: string,
  digest: Digest,
): Promise<ReleaseRecords> {
  const prefix = `${tagPrefix(digest)}.`;
  const tags = (await client.listTags(releaseRepository)).filter((t) => t.startsWith(prefix));
  const r = parseRepository(releaseRepository);
  const out: { verifications: Verification[]; overrides: Override[] } = {
    verifications: [],
    overrides: [],
  };
  for (const tag of tags.sort()) {
    const m = await client.getManifest({ ...r, tag });
    const manifest = JSON.parse(m.bytes.toString("utf8")) as {
      config?: { digest: Digest };
      artifactType?: string;
    };
    if (!manifest.config) continue;
    const record = JSON.parse(
      (await client.getBlob(releaseRepository, manifest.config.digest)).toString("utf8"),
    ) as Verification & Override;
    if (manifest.artifactType === VERIFICATION_TYPE) out.verifications.push(record);
    if (manifest.artifactType === OVERRIDE_TYPE) out.overrides.push(record);
  }
  return out;
}

/**
 * Whether a ring's release may move on: some site of `ring` verified it.
 * @returns the verifications of sites of `ring` (at least one).
 * @throws Error naming the ring, the release and the sites that verified it elsewhere, and how
 *   to force it, when none did.
 */
export function requireVerified(
  ring: string,
  release: { readonly version: string; readonly digest: Digest },
  records: ReleaseRecords,
): Verification[] {
  const mine = records.verifications.filter((v) => v.ring === ring);
  if (mine.length > 0) return mine;
  const elsewhere = records.verifications.map((v) => `${v.site} (ring ${v.ring})`);
  throw new Error(
    `ring ${ring}: release ${release.version} (${release.digest}) is not verified by any site ` +
      `of ring ${ring}` +
      (elsewhere.length > 0 ? `; verified only by ${elsewhere.join(", ")}` : "") +
      `: deploy it to a site of ring ${ring} until its post-deploy Jobs pass, ` +
      `or promote with --force (recorded in the registry)`,
  );
}

/** One ring's verification, as `rings status` shows it: `verified: dev-developers (2 jobs)`. */
export function formatVerification(ring: string, records: ReleaseRecords): string {
  const mine = records.verifications.filter((v) => v.ring === ring);
  const parts = mine.map(
    (v) => `${v.site} (${v.jobs.length > 0 ? `${v.jobs.length} post-deploy jobs` : "rollout"})`,
  );
  const forced = records.overrides.map((o) => `forced out of ${o.ring} by ${o.by}`);
  if (parts.length === 0 && forced.length === 0) return "no";
  return [...(parts.length > 0 ? [`yes: ${parts.join(", ")}`] : ["no"]), ...forced].join("; ");
}
