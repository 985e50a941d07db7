/**
 * The labels this program writes on every image and on the release image, and the functions
 * that write and read them. Labels are the only place the registry (the state store, DESIGN.md)
 * keeps what an image was built from, so reading them back must give exactly what was written:
 * `parseImageLabels(imageLabels(x))` and `parseReleaseLabels(releaseLabels(r), r.digest)` are
 * round trips (test/unit/labels.test.ts).
 *
 * Label keys on a service image:
 *
 * | key | value |
 * |---|---|
 * | `org.opencontainers.image.version` | the image's semver |
 * | `org.opencontainers.image.revision` | the revision (lib/revision.ts), not a git commit |
 * | `org.opencontainers.image.ref.name` | `<project>/<image>` (GitOps seed 001) |
 * | `org.opencontainers.image.vendor` | when configured |
 * | `org.opencontainers.image.source` | the source repository URL, when the image has exactly one source (or one is given) |
 * | `dependency.<service>` | the semver of each dependency image it is built `FROM` |
 * | `io.gitops-rings.source.<name>.commit` | the 40-hex commit of source repository `<name>` |
 * | `io.gitops-rings.source.<name>.url` | the clone URL of source repository `<name>` |
 *
 * Label keys on the release image (a `FROM scratch` image, DESIGN.md "release"), besides the
 * `org.opencontainers.image.*` ones above (version = release version, ref.name =
 * `<project>/release`, revision = {@link releaseRevision}):
 *
 * | key | value |
 * |---|---|
 * | `io.gitops-rings.release.version` | the release's semver |
 * | `io.gitops-rings.service.<svc>.version` | semver of service `<svc>` |
 * | `io.gitops-rings.service.<svc>.digest` | manifest digest of that image |
 * | `io.gitops-rings.service.<svc>.revision` | its revision |
 * | `io.gitops-rings.service.<svc>.repository` | its repository, `host[:port]/path` |
 * | `io.gitops-rings.service.<svc>.dependency.<dep>` | the version of each dependency it was built FROM |
 * | `io.gitops-rings.service.<svc>.source.<name>.commit` | commit of each of its sources |
 * | `io.gitops-rings.service.<svc>.source.<name>.url` | URL of each of its sources |
 *
 * Service, dependency and source names are label key segments, so they may not contain a dot:
 * {@link assertLabelName} enforces `[A-Za-z0-9][A-Za-z0-9_-]*`.
 */
import { createHash } from "node:crypto";
import * as semver from "semver";
import type { Digest, ImageRecord, ReleaseRecord, Revision, SourceCommit, Version } from "./types";

/** `org.opencontainers.image.version`: the semver of the image. */
export const LABEL_VERSION = "org.opencontainers.image.version";
/** `org.opencontainers.image.revision`: the revision (lib/revision.ts), not a git commit. */
export const LABEL_REVISION = "org.opencontainers.image.revision";
/** `org.opencontainers.image.ref.name`: `<project>/<image>`. */
export const LABEL_REF_NAME = "org.opencontainers.image.ref.name";
/** `org.opencontainers.image.vendor`: the configured vendor. */
export const LABEL_VENDOR = "org.opencontainers.image.vendor";
/** `org.opencontainers.image.source`: URL of the image's source repository. */
export const LABEL_SOURCE = "org.opencontainers.image.source";
/** Prefix of `dependency.<service>` labels (GitOps seed 001). */
export const DEPENDENCY_PREFIX = "dependency.";
/** The namespace of every label this program invents. */
export const NAMESPACE = "io.gitops-rings";
/** Prefix of `io.gitops-rings.source.<name>.commit|url` labels on a service image. */
export const SOURCE_PREFIX = `${NAMESPACE}.source.`;
/** Prefix of `io.gitops-rings.service.<svc>.<field>` labels on the release image. */
export const SERVICE_PREFIX = `${NAMESPACE}.service.`;
/** `io.gitops-rings.release.version`: marks the release image and gives its version. */
export const LABEL_RELEASE_VERSION = `${NAMESPACE}.release.version`;
/** The image name of the release image in `<project>/release`. */
export const RELEASE_IMAGE = "release";

/** A label set: key to value, as in an image config's `config.Labels`. */
export type Labels = Readonly<Record<string, string>>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Throws unless `name` can be one segment of a label key (no dot, no slash, no space).
 * @param what what the name is, for the error: `service`, `source`, `dependency`.
 */
export function assertLabelName(what: string, name: string): void {
  if (!NAME.test(name)) {
    throw new Error(
      `${what} name ${JSON.stringify(name)} cannot be a label key segment: use letters, digits, "-" and "_" only`,
    );
  }
}

/** `dependency.<service>`. */
export function dependencyLabel(service: string): string {
  assertLabelName("dependency", service);
  return `${DEPENDENCY_PREFIX}${service}`;
}

/** `io.gitops-rings.source.<name>.commit`: the label the git revision policy matches on. */
export function sourceCommitLabel(name: string): string {
  assertLabelName("source", name);
  return `${SOURCE_PREFIX}${name}.commit`;
}

/** `io.gitops-rings.source.<name>.url`. */
export function sourceUrlLabel(name: string): string {
  assertLabelName("source", name);
  return `${SOURCE_PREFIX}${name}.url`;
}

/** The fields of one service that the release image records. */
export type ServiceField = "version" | "digest" | "revision" | "repository";

/** `io.gitops-rings.service.<svc>.<field>`. */
export function serviceLabel(service: string, field: ServiceField): string {
  assertLabelName("service", service);
  return `${SERVICE_PREFIX}${service}.${field}`;
}

/** What {@link imageLabels} needs: the record-ish description of one service image. */
export interface ImageLabelInput {
  /** Project name, may contain slashes; with `image` gives `org.opencontainers.image.ref.name`. */
  readonly project: string;
  /** Image name within the project. */
  readonly image: string;
  readonly version: Version;
  readonly revision: Revision;
  /**
   * Versions of the dependency images, by service name.
   * @default {}
   */
  readonly dependencies?: Readonly<Record<string, Version>>;
  /**
   * The source repositories the image was built from, each pinned to a commit.
   * @default []
   */
  readonly sources?: readonly SourceCommit[];
  /** `org.opencontainers.image.vendor`, when configured. */
  readonly vendor?: string;
  /**
   * `org.opencontainers.image.source`.
   * @default the URL of the only source, when there is exactly one; else no label
   */
  readonly source?: string;
  /**
   * Labels the service's config adds. They may not use a key this function writes
   * (the `org.opencontainers.image.*` keys above, `dependency.*`, `io.gitops-rings.*`).
   * @default {}
   */
  readonly extra?: Labels;
}

/** What {@link parseImageLabels} reads back from a service image's labels. */
export interface ParsedImageLabels {
  /** `org.opencontainers.image.ref.name` as written. */
  readonly refName?: string;
  /** The part of `refName` before its last slash. */
  readonly project?: string;
  /** The part of `refName` after its last slash. */
  readonly image?: string;
  /** `org.opencontainers.image.version` when it is a valid semver (else undefined). */
  readonly version?: Version;
  readonly revision?: Revision;
  readonly vendor?: string;
  readonly source?: string;
  /** `dependency.*` labels, by service name. */
  readonly dependencies: Readonly<Record<string, Version>>;
  /** `io.gitops-rings.source.*` labels, sorted by source name. */
  readonly sources: readonly SourceCommit[];
  /** Every other label. */
  readonly extra: Labels;
}

/**
 * Whether `key` is one this program writes itself: the `org.opencontainers.image.*` labels of the
 * table above, `dependency.*` and every `io.gitops-rings.*` label.
 */
export function isReserved(key: string): boolean {
  return (
    key === LABEL_VERSION ||
    key === LABEL_REVISION ||
    key === LABEL_REF_NAME ||
    key === LABEL_VENDOR ||
    key === LABEL_SOURCE ||
    key.startsWith(DEPENDENCY_PREFIX) ||
    key.startsWith(`${NAMESPACE}.`)
  );
}

function assertVersion(where: string, version: string): void {
  if (semver.valid(version) !== version) {
    throw new Error(`${where}: ${JSON.stringify(version)} is not a semantic version`);
  }
}

function assertCommit(where: string, commit: string): void {
  if (!COMMIT.test(commit)) {
    throw new Error(`${where}: ${JSON.stringify(commit)} is not a 40-hex git commit`);
  }
}

/** Returns `labels` with its keys in sorted order (stable config JSON, STYLE.md rule 8). */
export function sortLabels(labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(labels).sort()) out[key] = labels[key];
  return out;
}

function sourceLabels(prefix: string, where: string, sources: readonly SourceCommit[]) {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const s of sources) {
    assertLabelName("source", s.name);
    if (seen.has(s.name)) throw new Error(`${where}: source ${JSON.stringify(s.name)} twice`);
    seen.add(s.name);
    assertCommit(`${where}: source ${s.name}: commit`, s.commit);
    out[`${prefix}${s.name}.commit`] = s.commit;
    out[`${prefix}${s.name}.url`] = s.url;
  }
  return out;
}

function dependencyLabels(prefix: string, where: string, deps: Readonly<Record<string, string>>) {
  const out: Record<string, string> = {};
  for (const [name, version] of Object.entries(deps)) {
    assertLabelName("dependency", name);
    assertVersion(`${where}: dependency ${name}`, version);
    out[`${prefix}${name}`] = version;
  }
  return out;
}

/**
 * The labels of one service image, keys sorted.
 * @throws when a name cannot be a key segment, a version is not semver, a commit is not 40 hex,
 * or `extra` sets a key this function owns (the message names the key).
 */
export function imageLabels(input: ImageLabelInput): Record<string, string> {
  const where = `image ${input.project}/${input.image}`;
  assertVersion(`${where}: version`, input.version);
  if (!input.revision) throw new Error(`${where}: revision is empty`);
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.extra ?? {})) {
    if (isReserved(key)) {
      throw new Error(`${where}: label ${JSON.stringify(key)} is written by gitops-rings itself`);
    }
    labels[key] = value;
  }
  labels[LABEL_VERSION] = input.version;
  labels[LABEL_REVISION] = input.revision;
  labels[LABEL_REF_NAME] = `${input.project}/${input.image}`;
  if (input.vendor !== undefined) labels[LABEL_VENDOR] = input.vendor;
  const sources = input.sources ?? [];
  const source = input.source ?? (sources.length === 1 ? sources[0].url : undefined);
  if (source !== undefined) labels[LABEL_SOURCE] = source;
  Object.assign(labels, dependencyLabels(DEPENDENCY_PREFIX, where, input.dependencies ?? {}));
  Object.assign(labels, sourceLabels(SOURCE_PREFIX, where, sources));
  return sortLabels(labels);
}

/** Collects `<prefix><name>.commit|url` pairs into sources sorted by name. */
function parseSources(where: string, prefix: string, labels: Labels): SourceCommit[] {
  const byName = new Map<string, { commit?: string; url?: string }>();
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const dot = rest.lastIndexOf(".");
    const name = rest.slice(0, dot);
    const field = rest.slice(dot + 1);
    if (dot <= 0 || !NAME.test(name) || (field !== "commit" && field !== "url")) {
      throw new Error(`${where}: label ${JSON.stringify(key)} is not <name>.commit or <name>.url`);
    }
    const entry = byName.get(name) ?? {};
    entry[field] = value;
    byName.set(name, entry);
  }
  return [...byName.keys()].sort().map((name) => {
    const { commit, url } = byName.get(name)!;
    if (commit === undefined) throw new Error(`${where}: label ${prefix}${name}.commit is missing`);
    if (url === undefined) throw new Error(`${where}: label ${prefix}${name}.url is missing`);
    assertCommit(`${where}: label ${prefix}${name}.commit`, commit);
    return { name, url, commit };
  });
}

function parseDependencies(where: string, prefix: string, labels: Labels) {
  const deps: Record<string, Version> = {};
  for (const key of Object.keys(labels).sort()) {
    if (!key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length);
    if (!NAME.test(name)) throw new Error(`${where}: label ${JSON.stringify(key)}: bad name`);
    assertVersion(`${where}: label ${key}`, labels[key]);
    deps[name] = labels[key];
  }
  return deps;
}

/**
 * Reads a service image's labels back. Lenient about images this program did not build (no
 * version, a version that is not semver, no revision: those fields come back undefined), strict
 * about its own `dependency.*` and `io.gitops-rings.source.*` labels.
 * @param where names the image in errors, e.g. `127.0.0.1:5000/example/backend@sha256:…`.
 */
export function parseImageLabels(labels: Labels, where = "image"): ParsedImageLabels {
  const refName = labels[LABEL_REF_NAME];
  const slash = refName?.lastIndexOf("/") ?? -1;
  const version = labels[LABEL_VERSION];
  const extra: Record<string, string> = {};
  for (const key of Object.keys(labels).sort()) if (!isReserved(key)) extra[key] = labels[key];
  return {
    refName,
    project: slash > 0 ? refName!.slice(0, slash) : undefined,
    image: slash > 0 ? refName!.slice(slash + 1) : refName,
    version: version !== undefined && semver.valid(version) === version ? version : undefined,
    revision: labels[LABEL_REVISION],
    vendor: labels[LABEL_VENDOR],
    source: labels[LABEL_SOURCE],
    dependencies: parseDependencies(where, DEPENDENCY_PREFIX, labels),
    sources: parseSources(where, SOURCE_PREFIX, labels),
    extra,
  };
}

/**
 * An {@link ImageRecord} from a service image's labels and where the image is.
 * @throws when the labels lack a semver version or a revision (the message names `where`).
 */
export function imageRecordFromLabels(
  labels: Labels,
  at: { readonly service: string; readonly repository: string; readonly digest: Digest },
): ImageRecord {
  const where = `service ${at.service}: ${at.repository}@${at.digest}`;
  const parsed = parseImageLabels(labels, where);
  if (parsed.version === undefined) {
    throw new Error(`${where}: label ${LABEL_VERSION} is missing or not semver`);
  }
  if (!parsed.revision) throw new Error(`${where}: label ${LABEL_REVISION} is missing`);
  return {
    service: at.service,
    repository: at.repository,
    version: parsed.version,
    digest: at.digest,
    revision: parsed.revision,
    dependencies: parsed.dependencies,
    sources: parsed.sources,
  };
}

/**
 * The revision of a release: sha256 over the sorted `service=digest` lines, prefixed like the
 * revisions of lib/revision.ts (`v1:sha256:<hex>`). Same images, same release revision.
 */
export function releaseRevision(services: ReleaseRecord["services"]): Revision {
  const lines = Object.keys(services)
    .sort()
    .map((name) => `${name}=${services[name].digest}\n`)
    .join("");
  return `v1:sha256:${createHash("sha256").update(`release\n${lines}`).digest("hex")}`;
}

/** Options of {@link releaseLabels}. */
export interface ReleaseLabelOptions {
  /**
   * Project name, for `org.opencontainers.image.ref.name` = `<project>/release`.
   * @default no ref.name label
   */
  readonly project?: string;
  /** `org.opencontainers.image.vendor`. */
  readonly vendor?: string;
}

/**
 * The labels of the release image: the release version and, for every service, its version,
 * digest, revision, repository, dependencies and sources. Keys sorted.
 * @throws when a name or version is invalid, or a service record's `service` differs from its key.
 */
export function releaseLabels(
  release: Pick<ReleaseRecord, "version" | "services">,
  options: ReleaseLabelOptions = {},
): Record<string, string> {
  const where = `release ${release.version}`;
  assertVersion(`${where}: version`, release.version);
  const labels: Record<string, string> = {
    [LABEL_RELEASE_VERSION]: release.version,
    [LABEL_VERSION]: release.version,
    [LABEL_REVISION]: releaseRevision(release.services),
  };
  if (options.project !== undefined) labels[LABEL_REF_NAME] = `${options.project}/${RELEASE_IMAGE}`;
  if (options.vendor !== undefined) labels[LABEL_VENDOR] = options.vendor;
  for (const [name, image] of Object.entries(release.services)) {
    const at = `${where}: service ${name}`;
    assertLabelName("service", name);
    if (image.service !== name) {
      throw new Error(`${at}: record names service ${JSON.stringify(image.service)}`);
    }
    assertVersion(`${at}: version`, image.version);
    if (!/^sha256:[0-9a-f]{64}$/.test(image.digest)) {
      throw new Error(`${at}: digest ${JSON.stringify(image.digest)} is not sha256:<64 hex>`);
    }
    const prefix = `${SERVICE_PREFIX}${name}.`;
    labels[`${prefix}version`] = image.version;
    labels[`${prefix}digest`] = image.digest;
    labels[`${prefix}revision`] = image.revision;
    labels[`${prefix}repository`] = image.repository;
    Object.assign(labels, dependencyLabels(`${prefix}dependency.`, at, image.dependencies));
    Object.assign(labels, sourceLabels(`${prefix}source.`, at, image.sources));
  }
  return sortLabels(labels);
}

/**
 * Reads a release image's labels back into a {@link ReleaseRecord}. The release's own digest
 * cannot be one of its labels, so the caller passes it.
 * @throws when `io.gitops-rings.release.version` is missing (not a release image) or a service
 * lacks one of its four fields; the message names the label.
 */
export function parseReleaseLabels(labels: Labels, digest: Digest): ReleaseRecord {
  const version = labels[LABEL_RELEASE_VERSION];
  const where = `release image ${digest}`;
  if (version === undefined) throw new Error(`${where}: label ${LABEL_RELEASE_VERSION} is missing`);
  assertVersion(`${where}: label ${LABEL_RELEASE_VERSION}`, version);
  // One pass over the labels, each service's own collected by its name: a release of 500
  // services has about 2,500 labels, and a scan of all of them per service took a second
  // (issue 10).
  const byName = new Map<string, Record<string, string>>();
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(SERVICE_PREFIX)) continue;
    const rest = key.slice(SERVICE_PREFIX.length);
    const dot = rest.indexOf(".");
    const name = rest.slice(0, dot);
    if (!NAME.test(name)) throw new Error(`${where}: label ${JSON.stringify(key)}: bad service`);
    const own = byName.get(name) ?? {};
    if (dot >= 0) own[key] = value;
    byName.set(name, own);
  }
  const services: Record<string, ImageRecord> = {};
  for (const name of [...byName.keys()].sort()) {
    const prefix = `${SERVICE_PREFIX}${name}.`;
    const field = (f: ServiceField) => {
      const value = labels[`${prefix}${f}`];
      if (value === undefined) throw new Error(`${where}: label ${prefix}${f} is missing`);
      return value;
    };
    const own = byName.get(name)!;
    const known = new Set(["version", "digest", "revision", "repository"].map((f) => prefix + f));
    for (const key of Object.keys(own)) {
      const ok =
        known.has(key) ||
        key.startsWith(`${prefix}dependency.`) ||
        key.startsWith(`${prefix}source.`);
      if (!ok) throw new Error(`${where}: unknown label ${JSON.stringify(key)}`);
    }
    const imageVersion = field("version");
    assertVersion(`${where}: label ${prefix}version`, imageVersion);
    services[name] = {
      service: name,
      repository: field("repository"),
      version: imageVersion,
      digest: field("digest"),
      revision: field("revision"),
      dependencies: parseDependencies(where, `${prefix}dependency.`, own),
      sources: parseSources(where, `${prefix}source.`, own),
    };
  }
  return { version, digest, services };
}
