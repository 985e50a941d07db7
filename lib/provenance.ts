/**
 * BuildKit's provenance attestation (issue 11, item 5): how it is requested, how the publish
 * step keeps it naming the published image, and how `rings check` reads it back.
 *
 * Storage (BuildKit docs/attestations/attestation-storage.md): an image built with
 * `attest:provenance` is an index whose runnable manifests are each followed by an
 * *attestation manifest* (platform `unknown/unknown`, index annotations
 * `vnd.docker.reference.type: attestation-manifest` and `vnd.docker.reference.digest: <the
 * manifest it attests>`). Its layers are in-toto statements (`application/vnd.in-toto+json`,
 * annotation `in-toto.io/predicate-type`), whose `subject` lists the attested manifest's digest.
 * Distribution 2.8 has no referrers API, so the index is the only place an attestation can live
 * next to its image.
 *
 * Mode (BuildKit docs/attestations/slsa-provenance.md): `mode=max` adds `buildConfig` (the LLB
 * definition of every step) and source maps to the predicate; `mode=min` has neither. The
 * buildctl backend asks for `mode=max`. The docker-build backend cannot: `@pulumi/docker-build`
 * 0.0.22 has no attestation input, and buildx then adds its default, `mode=min`
 * (docker/buildx build/opt.go, `attest:provenance=mode=min,inline-only=true`).
 */
import type { Labels } from "./labels";
import {
  isIndexMediaType,
  parseRepository,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type RegistryClient,
} from "./registry";
import type { Digest } from "./types";

/** Index annotation naming the kind of a non-runnable manifest (BuildKit attestation storage). */
export const REFERENCE_TYPE = "vnd.docker.reference.type";
/** Index annotation naming the manifest an attestation manifest attests. */
export const REFERENCE_DIGEST = "vnd.docker.reference.digest";
/** Media type of an in-toto statement layer. */
export const IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json";
/** Layer annotation repeating the statement's predicate type. */
export const PREDICATE_TYPE_ANNOTATION = "in-toto.io/predicate-type";
/** The SLSA provenance predicate types BuildKit writes (v0.2 by default, v1 with `version=v1`). */
export const PROVENANCE_PREDICATE_TYPES: readonly string[] = [
  "https://slsa.dev/provenance/v0.2",
  "https://slsa.dev/provenance/v1",
];

/** How much a provenance attestation records. */
export type ProvenanceMode = "max" | "min";

/** What `rings check` demands: a mode at least this complete, or nothing (`off`). */
export type ProvenanceRequirement = ProvenanceMode | "off";

/** True when `d` is an attestation manifest's descriptor in an index. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[REFERENCE_TYPE] === "attestation-manifest";
}

/** An in-toto statement, as far as this program reads it. */
interface Statement {
  readonly subject?: readonly { readonly name?: string; readonly digest?: Labels }[];
  readonly predicateType?: string;
  readonly predicate?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

/** The mode of a SLSA provenance predicate: `max` when it records the build's definition. */
export function provenanceMode(predicate: Record<string, unknown> | undefined): ProvenanceMode {
  const v1 = predicate?.buildDefinition as { internalParameters?: Record<string, unknown> };
  return predicate?.buildConfig !== undefined || v1?.internalParameters?.buildConfig !== undefined
    ? "max"
    : "min";
}

/** `sha256:<hex>` of an in-toto subject's digest map, or undefined. */
function subjectDigest(s: { readonly digest?: Labels }): Digest | undefined {
  const hex = s.digest?.sha256;
  return hex ? (`sha256:${hex}` as Digest) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Publishing: attestations follow the manifests the publish step rewrote

/**
 * Rewrites the attestation manifest `attestation` so that every statement whose subject names a
 * manifest in `moved` names the new digest instead; the predicate is BuildKit's, byte for byte
 * apart from the re-serialised JSON. Returns the descriptor to put in the index, with its
 * `vnd.docker.reference.digest` following too; `attestation` unchanged when it attests nothing
 * that moved.
 *
 * Why: the publish step (lib/publish.ts) drops inherited labels, which gives the image a new
 * config and so a new manifest digest. A verifier (cosign, slsa-verifier, `docker buildx
 * imagetools inspect`) matches the statement's subject against the image it was handed, so the
 * subject must name the manifest that is published, not the one only BuildKit ever saw.
 * @param moved old manifest digest → its published descriptor.
 */
export async function followMovedSubjects(
  client: RegistryClient,
  repository: string,
  attestation: Descriptor,
  moved: ReadonlyMap<Digest, Descriptor>,
): Promise<Descriptor> {
  const target = moved.get(attestation.annotations?.[REFERENCE_DIGEST] as Digest);
  if (!target) return attestation;
  const r = parseRepository(repository);
  const manifest = (await client.getManifest({ ...r, digest: attestation.digest }))
    .manifest as ImageManifest;
  const layerMoves = new Map<Digest, Descriptor>();
  const layers = await Promise.all(
    manifest.layers.map(async (layer): Promise<Descriptor> => {
      if (layer.mediaType !== IN_TOTO_MEDIA_TYPE) return layer;
      const statement = JSON.parse(
        (await client.getBlob(repository, layer.digest)).toString("utf8"),
      ) as Statement;
      const subject = (statement.subject ?? []).map((s) => {
        const to = moved.get(subjectDigest(s) as Digest);
        return to
          ? { ...s, digest: { ...s.digest, sha256: to.digest.slice("sha256:".length) } }
          : s;
      });
      const pushed = await client.pushBlob(
        repository,
        Buffer.from(JSON.stringify({ ...statement, subject })),
        layer.mediaType,
      );
      layerMoves.set(layer.digest, pushed);
      return { ...layer, digest: pushed.digest, size: pushed.size };
    }),
  );
  // The attestation manifest's config lists its layers as diff_ids (they are not compressed).
  const config = JSON.parse(
    (await client.getBlob(repository, manifest.config.digest)).toString("utf8"),
  ) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = (config.rootfs?.diff_ids ?? []).map(
    (d) => layerMoves.get(d as Digest)?.digest ?? d,
  );
  const configDesc = await client.pushBlob(
    repository,
    Buffer.from(JSON.stringify({ ...config, rootfs: { ...config.rootfs, diff_ids: diffIds } })),
    manifest.config.mediaType,
  );
  const pushed = await client.pushManifest(
    repository,
    Buffer.from(
      JSON.stringify({
        ...manifest,
        config: { ...manifest.config, digest: configDesc.digest, size: configDesc.size },
        layers,
      }),
    ),
    attestation.mediaType,
  );
  return {
    ...attestation,
    digest: pushed.digest,
    size: pushed.size,
    annotations: { ...attestation.annotations, [REFERENCE_DIGEST]: target.digest },
  };
}

// ---------------------------------------------------------------------------------------------
// Reading: what `rings check` reports

/** The provenance of one runnable manifest of an image. */
export interface ManifestProvenance {
  /** The image manifest's digest. */
  readonly manifest: Digest;
  /** `os/architecture[/variant]`, or `unknown` outside an index. */
  readonly platform: string;
  /** The attestation manifest that attests it; undefined: none. */
  readonly attestation?: Digest;
  /** The provenance statement's predicate type; undefined: no provenance statement. */
  readonly predicateType?: string;
  /** Undefined without a provenance statement. */
  readonly mode?: ProvenanceMode;
  /** Whether the statement's subject names `manifest`. */
  readonly subjectMatches: boolean;
}

/**
 * Reads the provenance of every runnable manifest of `ref` (`repo@sha256:…`): its attestation
 * manifest, its SLSA provenance statement, the statement's mode and subject. An image that is a
 * single manifest (no index) has no room for an attestation and is reported as one entry
 * without one.
 * @throws RegistryError when the registry cannot be read or `ref` is not there.
 */
export async function readProvenance(
  client: RegistryClient,
  ref: string,
): Promise<ManifestProvenance[]> {
  const top = await client.getManifest(ref);
  if (!isIndexMediaType(top.mediaType)) {
    return [{ manifest: top.digest, platform: "unknown", subjectMatches: false }];
  }
  const repository = ref.slice(0, ref.lastIndexOf("@"));
  const manifests = (top.manifest as ImageIndex).manifests;
  const attestations = manifests.filter(isAttestation);
  return Promise.all(
    manifests
      .filter((m) => !isAttestation(m))
      .map(async (m): Promise<ManifestProvenance> => {
        const p = m.platform;
        const platform = p
          ? [p.os, p.architecture, p.variant].filter(Boolean).join("/")
          : "unknown";
        const attestation = attestations.find(
          (a) => a.annotations?.[REFERENCE_DIGEST] === m.digest,
        );
        if (!attestation) return { manifest: m.digest, platform, subjectMatches: false };
        const statement = await provenanceStatement(client, repository, attestation.digest);
        return {
          manifest: m.digest,
          platform,
          attestation: attestation.digest,
          predicateType: statement?.predicateType,
          mode: statement ? provenanceMode(statement.predicate) : undefined,
          subjectMatches: (statement?.subject ?? []).some((s) => subjectDigest(s) === m.digest),
        };
      }),
  );
}

/** The first SLSA provenance statement of an attestation manifest, or undefined. */
async function provenanceStatement(
  client: RegistryClient,
  repository: string,
  digest: Digest,
): Promise<Statement | undefined> {
  const r = parseRepository(repository);
  const manifest = (await client.getManifest({ ...r, digest })).manifest as ImageManifest;
  for (const layer of manifest.layers) {
    if (layer.mediaType !== IN_TOTO_MEDIA_TYPE) continue;
    const annotated = layer.annotations?.[PREDICATE_TYPE_ANNOTATION];
    if (annotated !== undefined && !PROVENANCE_PREDICATE_TYPES.includes(annotated)) continue;
    const statement = JSON.parse(
      (await client.getBlob(repository, layer.digest)).toString("utf8"),
    ) as Statement;
    if (PROVENANCE_PREDICATE_TYPES.includes(statement.predicateType ?? "")) return statement;
  }
  return undefined;
}

/**
 * What is wrong with one manifest's provenance under `required`, or undefined when nothing is:
 * no attestation, no provenance statement, a subject that does not name the manifest, or
 * `min` where `max` is required.
 */
export function provenanceProblem(
  p: ManifestProvenance,
  required: ProvenanceRequirement,
): string | undefined {
  if (required === "off") return undefined;
  if (!p.attestation) return "no attestation manifest";
  if (!p.mode) return `attestation ${p.attestation} has no SLSA provenance statement`;
  if (!p.subjectMatches) return `provenance subject does not name ${p.manifest}`;
  if (required === "max" && p.mode === "min") return "provenance mode=min";
  return undefined;
}
