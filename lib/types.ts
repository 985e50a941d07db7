/**
 * Plain value types shared by the modules of `lib/`. No Pulumi types here: the
 * components lift these into Outputs once. Vocabulary: ../shared/DESIGN.md.
 */

/** A semantic version string such as `0.3.2` (semver 2.0.0, no leading `v`). */
export type Version = string;

/** An OCI content digest, `sha256:<64 hex>` (OCI image spec, descriptor.md). */
export type Digest = string;

/** A revision as lib/revision.ts computes it: `v1:sha256:<64 hex>`. */
export type Revision = string;

/** The name of a ring. `ante` and `post` are the pseudo-rings (GitOps seed 001). */
export type RingName = string;

/** One source repository of a service (Version Repository seed 000: repo_dependencies). */
export interface SourceCommit {
  /** Name of the source as the service config gives it, e.g. `backend`. */
  readonly name: string;
  /** Clone URL. */
  readonly url: string;
  /** Full 40-hex commit id the image was built from. */
  readonly commit: string;
}

/** What the registry says about one built image of a service. */
export interface ImageRecord {
  /** Service name, e.g. `backend`. */
  readonly service: string;
  /** Repository in the registry, e.g. `127.0.0.1:5001/example/backend`. */
  readonly repository: string;
  readonly version: Version;
  /** Digest of the manifest (or image index) the version tag points at. */
  readonly digest: Digest;
  readonly revision: Revision;
  /** Versions of the dependency images this one was built FROM, by service name. */
  readonly dependencies: Readonly<Record<string, Version>>;
  readonly sources: readonly SourceCommit[];
}

/** A release: the root image whose labels record every service (DESIGN.md, "release"). */
export interface ReleaseRecord {
  readonly version: Version;
  readonly digest: Digest;
  /** Every service of the release, by service name. */
  readonly services: Readonly<Record<string, ImageRecord>>;
}

/** What one ring points at: its release, or nothing yet. */
export interface RingState {
  readonly ring: RingName;
  readonly release?: ReleaseRecord;
}
