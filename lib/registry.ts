/**
 * A client for the OCI distribution spec (the registry HTTP API v2), on Node's built-in fetch.
 *
 * Why not a library: the npm clients that exist are pull-only or unmaintained (e.g.
 * `@snyk/docker-registry-v2-client` reads manifests and tags but cannot push a blob or a
 * manifest; `docker-registry-client` was last released years ago on restify), and none has the
 * two operations the state store rests on: a tag put that refuses to move a version tag, and a
 * manifest copy under a moving ring tag. The protocol is small, so this file speaks it directly.
 *
 * What it does: ping; list repositories and tags following `Link` pagination; HEAD/GET
 * manifests (OCI manifest and index, Docker v2 manifest and manifest list), choosing a platform
 * in an index; read an image's config and labels; resolve a tag to a digest; push blobs
 * (monolithic POST + PUT) and manifests; tag a digest immutably ({@link RegistryClient.putTag})
 * or movably ({@link RegistryClient.moveTag}); delete a manifest. Auth: anonymous, basic (given
 * or from docker's `config.json` `auths`), and bearer tokens from the `WWW-Authenticate`
 * challenge, cached per scope. Retries with exponential backoff and jitter on 429, 5xx and
 * connection errors, honouring `Retry-After`; bounded concurrency; plain HTTP for loopback and
 * `insecure` registries, HTTPS otherwise. Every error names registry, repository, reference and
 * HTTP status ({@link RegistryError}).
 */
import { canonicalJson } from "./canonical";
import { mapLimit, Semaphore } from "./limit";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { readFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import type { Digest } from "./types";

// ---------------------------------------------------------------------------------------------
// Media types

/** Manifest and config media types this client reads and writes. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** The `Accept` header of every manifest request: the four manifest kinds. */
export const MANIFEST_ACCEPT = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
].join(", ");

/** True for an OCI index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

// ---------------------------------------------------------------------------------------------
// Image references

/** The registry Docker uses for references without a host. */
export const DOCKER_HUB = "docker.io";

/** A parsed image reference, `host[:port]/path[:tag][@digest]`. */
export interface ImageReference {
  /** `host[:port]`, e.g. `127.0.0.1:5000`; `docker.io` when the reference has no host. */
  readonly registry: string;
  /** Path within the registry, e.g. `example/backend` (`library/x` for a Docker Hub `x`). */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256 = /^sha256:[0-9a-f]{64}$/;
const HOST =
  /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]{1,5})?$/;

/** True when `s` is a digest `algorithm:encoded` (OCI descriptor grammar). */
export function isDigest(s: string): boolean {
  return DIGEST.test(s) && (!s.startsWith("sha256:") || SHA256.test(s));
}

/** True when `s` is a valid tag (`[\w][\w.-]{0,127}`). */
export function isTag(s: string): boolean {
  return TAG.test(s);
}

/**
 * Parses `host[:port]/path[:tag][@digest]`. The first component is a host when it contains a
 * `.` or a `:`, is `localhost`, or is a bracketed IPv6 address; otherwise the reference is on
 * Docker Hub (`docker.io`, and a one-component path gets `library/`), as docker does it.
 * @throws an error naming the reference and what is wrong with it.
 */
export function parseReference(ref: string): ImageReference {
  const bad = (why: string) => new Error(`image reference ${JSON.stringify(ref)}: ${why}`);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad(`digest ${JSON.stringify(digest)} is not <algorithm>:<hex>`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag)} is not [A-Za-z0-9_][A-Za-z0-9_.-]*`);
  }
  if (rest === "") throw bad("no repository");
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first[0] === "[") {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!HOST.test(registry)) throw bad(`registry ${JSON.stringify(registry)} is not host[:port]`);
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  for (const component of repository.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      throw bad(`path component ${JSON.stringify(component)} must be lowercase [a-z0-9._-]`);
    }
  }
  if (registry.length + 1 + repository.length > 255) throw bad("name is longer than 255");
  return { registry, repository, tag, digest };
}

/** Parses `host[:port]/path`, refusing a tag or a digest. */
export function parseRepository(name: string): ImageReference {
  const ref = parseReference(name);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new Error(`repository ${JSON.stringify(name)} has a tag or digest`);
  }
  return { registry: ref.registry, repository: ref.repository };
}

/** `host/path[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return (
    `${ref.registry}/${ref.repository}` +
    (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "")
  );
}

/** `host/path`, the repository name without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** True for `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`, with or without a port. */
export function isLoopback(registry: string): boolean {
  const host = registry.startsWith("[")
    ? registry.slice(0, registry.indexOf("]") + 1)
    : registry.replace(/:\d+$/, "");
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    host === "[::1]"
  );
}

// ---------------------------------------------------------------------------------------------
// Manifests

/** An OCI platform (image-index spec). */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly "os.version"?: string;
}

/** An OCI content descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly urls?: readonly string[];
}

/** An OCI image manifest or a Docker v2 schema 2 manifest. */
export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An OCI image index or a Docker manifest list. */
export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The part of an image config this program reads (OCI image-spec config.md). */
export interface ImageConfig {
  readonly architecture?: string;
  readonly os?: string;
  readonly variant?: string;
  readonly created?: string;
  readonly config?: { readonly Labels?: Readonly<Record<string, string>> | null };
  readonly rootfs?: { readonly type: string; readonly diff_ids: readonly string[] };
  readonly [key: string]: unknown;
}

/** What a HEAD of a manifest says. */
export interface ManifestHead {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
}

/** A manifest as fetched: its exact bytes (what a digest covers) and their parse. */
export interface ManifestResult extends ManifestHead {
  readonly bytes: Buffer;
  readonly manifest: ImageManifest | ImageIndex;
}

/** An image's config, read through its manifest (and the index, if any). */
export interface ImageConfigResult {
  /** The digest the reference resolves to: the index's when it is an index. */
  readonly digest: Digest;
  /** The digest of the platform's image manifest (equal to `digest` without an index). */
  readonly manifestDigest: Digest;
  /** The platform chosen in the index, when there was one. */
  readonly platform?: Platform;
  readonly config: ImageConfig;
  /** `config.Labels`, `{}` when absent. */
  readonly labels: Readonly<Record<string, string>>;
}

/** The platform an index is resolved to unless the caller names one. */
export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

/** Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(s: string): Platform {
  const [os_, architecture, variant, ...more] = s.split("/");
  if (!os_ || !architecture || more.length > 0) {
    throw new Error(`platform ${JSON.stringify(s)} is not os/architecture[/variant]`);
  }
  return variant ? { os: os_, architecture, variant } : { os: os_, architecture };
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/**
 * The descriptor in an index for `wanted`: same os and architecture, and the same variant when
 * `wanted` names one (arm64 without a variant counts as `v8`). Undefined when none matches.
 */
export function selectPlatform(index: ImageIndex, wanted: Platform): Descriptor | undefined {
  const variant = (p: Platform) => p.variant ?? (p.architecture === "arm64" ? "v8" : undefined);
  return index.manifests.find(
    (d) =>
      d.platform !== undefined &&
      d.platform.os === wanted.os &&
      d.platform.architecture === wanted.architecture &&
      (wanted.variant === undefined || variant(d.platform) === variant(wanted)),
  );
}

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

// ---------------------------------------------------------------------------------------------
// HTTP details (pure, unit tested)

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** Lower-cased scheme: `basic` or `bearer`. */
  readonly scheme: string;
  /** Parameters, e.g. `realm`, `service`, `scope`. */
  readonly params: Readonly<Record<string, string>>;
}

/** Parses the first challenge of a `WWW-Authenticate` header (RFC 7235, quoted strings). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2])) !== null && p[0] !== "") {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

/** The `rel="next"` target of a `Link` header, or undefined. */
export function parseNextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/.test(m[2])) return m[1];
  }
  return undefined;
}

/** `Retry-After` (seconds or HTTP date) in milliseconds from `now`, or undefined. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(header)) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The delay before retry `attempt` (1 = first retry): `base * 2^(attempt-1)` capped at `max`,
 * then "equal jitter": a uniform pick in its upper half, so concurrent clients spread out.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Statuses worth retrying: throttling and transient server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Where a registry error happened. */
export interface RegistryErrorContext {
  readonly registry: string;
  readonly repository?: string;
  /** Tag or digest. */
  readonly reference?: string;
  /** What was being done, e.g. `GET manifest`. */
  readonly operation: string;
  /** HTTP status, when there was a response. */
  readonly status?: number;
  /** The first error code of the registry's JSON error body, e.g. `MANIFEST_UNKNOWN`. */
  readonly code?: string;
}

/** An error from a registry: its message names registry, repository, reference and status. */
export class RegistryError extends Error implements RegistryErrorContext {
  readonly registry: string;
  readonly repository?: string;
  readonly reference?: string;
  readonly operation: string;
  readonly status?: number;
  readonly code?: string;

  constructor(ctx: RegistryErrorContext, detail: string, options?: { cause?: unknown }) {
    super(`${RegistryError.where(ctx)}: ${ctx.operation}: ${detail}`, options);
    this.name = "RegistryError";
    this.registry = ctx.registry;
    this.repository = ctx.repository;
    this.reference = ctx.reference;
    this.operation = ctx.operation;
    this.status = ctx.status;
    this.code = ctx.code;
  }

  /** `registry R, repository P, reference T`. */
  static where(ctx: Pick<RegistryErrorContext, "registry" | "repository" | "reference">): string {
    return [
      `registry ${ctx.registry}`,
      ctx.repository !== undefined ? `repository ${ctx.repository}` : undefined,
      ctx.reference !== undefined ? `reference ${ctx.reference}` : undefined,
    ]
      .filter(Boolean)
      .join(", ");
  }
}

/** {@link RegistryClient.putTag} refused to move an existing tag (invariant 1). */
export class TagImmutableError extends RegistryError {
  constructor(
    ctx: { registry: string; repository: string; reference: string },
    readonly existingDigest: Digest,
    readonly newDigest: Digest,
  ) {
    super(
      { ...ctx, operation: "put tag" },
      `tag ${ctx.reference} already points at ${existingDigest}; refusing to move it to ${newDigest} (version tags are immutable)`,
    );
    this.name = "TagImmutableError";
  }
}

// ---------------------------------------------------------------------------------------------
// Credentials

/** Username and password (or token as password) for basic auth and token requests. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Hostnames under which docker's config.json may keep Docker Hub credentials. */
const DOCKER_HUB_ALIASES = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/** `https://host/v1/` or `host` to `host`. */
function authKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
}

/**
 * Credentials for `registry` from a docker `config.json` object's `auths` (the `auth` base64
 * `user:password`, or `username` and `password`). `credsStore` and `credHelpers` are not run.
 */
export function credentialsFromDockerConfig(
  config: unknown,
  registry: string,
): Credentials | undefined {
  const auths = (config as { auths?: Record<string, Record<string, string>> } | null)?.auths;
  if (!auths || typeof auths !== "object") return undefined;
  const wanted = DOCKER_HUB_ALIASES.includes(registry) ? DOCKER_HUB_ALIASES : [registry];
  for (const [key, entry] of Object.entries(auths)) {
    if (!wanted.includes(authKeyHost(key)) || !entry) continue;
    if (typeof entry.auth === "string" && entry.auth !== "") {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0)
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof entry.username === "string" && typeof entry.password === "string") {
      return { username: entry.username, password: entry.password };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The client

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /**
   * Credentials by registry `host[:port]`; they win over docker's config.json.
   * @default {}
   */
  readonly credentials?: Readonly<Record<string, Credentials>>;
  /**
   * Path of a docker `config.json` to read `auths` from; `false` to read none.
   * @default `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (missing file: none)
   */
  readonly dockerConfig?: string | false;
  /**
   * Registries (`host[:port]`) reached over plain HTTP besides the loopback ones.
   * @default []
   */
  readonly insecure?: readonly string[];
  /**
   * Attempts per HTTP request, first try included, on 429, 5xx and connection errors.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * First retry delay; doubles per retry, with jitter.
   * @default 200
   */
  readonly retryBaseMs?: number;
  /**
   * Cap of the backoff delay and of an honoured `Retry-After`.
   * @default 30000
   */
  readonly retryMaxMs?: number;
  /**
   * HTTP requests in flight at once.
   * @default 4
   */
  readonly concurrency?: number;
  /**
   * Time limit of one HTTP attempt.
   * @default 60000
   */
  readonly timeoutMs?: number;
  /** Called with a line for every retry and token fetch, for diagnostics. */
  readonly log?: (line: string) => void;
  /**
   * A directory where manifests fetched by digest and blobs are kept, by registry and digest
   * (`<dir>/<registry>/sha256/<hex>`): they are immutable, so a later read of the same digest
   * is served from disk, verified against its digest, and never asks the registry again. Tags,
   * HEADs and existence checks are always live. @default none (no cache)
   */
  readonly cacheDir?: string;
  /**
   * The error message when a registry asks for credentials (HTTP 401) and this client has none
   * for it, e.g. naming the config key that gives them (lib/registry-auth.ts).
   * @default `HTTP 401: … no credentials for it` (set them in docker's config.json)
   */
  readonly missingCredentials?: (registry: string) => string;
}

interface Request {
  readonly method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE" | "PATCH";
  readonly registry: string;
  /** Absolute URL, or a path starting with `/v2/`. */
  readonly url: string;
  readonly repository?: string;
  readonly reference?: string;
  readonly operation: string;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  /** Token scope; `undefined` for ping. */
  readonly scope?: string;
  /** Statuses returned to the caller; any other throws. */
  readonly ok: readonly number[];
}

interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  readonly url: string;
}

interface CachedToken {
  readonly header: string;
  readonly expiresAt: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Options of {@link RegistryClient.pushImage}. */
export interface PushImageOptions {
  /** Labels of the image config (`config.Labels`). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Uncompressed tar layers; each is gzipped and pushed. `[]` for a `FROM scratch` image with
   * no files (the release image).
   * @default []
   */
  readonly layers?: readonly Buffer[];
  /** @default {@link DEFAULT_PLATFORM} */
  readonly platform?: Platform;
  /**
   * `oci` for OCI media types, `docker` for Docker v2 schema 2.
   * @default "oci"
   */
  readonly format?: "oci" | "docker";
  /** Tag to put on the pushed manifest, immutably ({@link RegistryClient.putTag}). */
  readonly tag?: string;
  /**
   * Other top-level config fields, e.g. `created`. The `config` field itself is always
   * `{ Labels: labels }`.
   */
  readonly configExtra?: Readonly<Record<string, unknown>>;
}

/** What {@link RegistryClient.pushImage} and {@link RegistryClient.pushIndex} pushed. */
export interface PushedManifest {
  /** Descriptor of the manifest (with `platform` for an image pushed with one). */
  readonly descriptor: Descriptor;
  /** `host/path@sha256:…`. */
  readonly reference: string;
  readonly bytes: Buffer;
}

/**
 * An OCI distribution-spec client. One instance caches credentials, token and challenge per
 * registry; share it. Repositories are written `host[:port]/path`, references
 * `host[:port]/path:tag` or `host[:port]/path@sha256:…`.
 */
export class RegistryClient {
  private readonly sem: Semaphore;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly challenges = new Map<string, Challenge>();
  private dockerConfigJson?: Promise<unknown>;

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.sem = new Semaphore(options.concurrency ?? 4);
  }

  /** `http` for loopback and `insecure` registries, `https` otherwise. */
  schemeOf(registry: string): "http" | "https" {
    return isLoopback(registry) || (this.options.insecure ?? []).includes(registry)
      ? "http"
      : "https";
  }

  /** `scheme://host` the API lives at (`registry-1.docker.io` for `docker.io`). */
  baseUrl(registry: string): string {
    const host = registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
    return `${this.schemeOf(registry)}://${host}`;
  }

  // -- auth ------------------------------------------------------------------------------------

  private async credentialsFor(registry: string): Promise<Credentials | undefined> {
    const given = this.options.credentials?.[registry];
    if (given) return given;
    const configured = this.options.dockerConfig;
    if (configured === false) return undefined;
    this.dockerConfigJson ??= (async () => {
      const file =
        configured ??
        path.join(process.env.DOCKER_CONFIG ?? path.join(os.homedir(), ".docker"), "config.json");
      try {
        return JSON.parse(await readFile(file, "utf8")) as unknown;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
        throw new Error(`docker config ${file}: ${(e as Error).message}`, { cause: e });
      }
    })();
    return credentialsFromDockerConfig(await this.dockerConfigJson, registry);
  }

  private static basic(c: Credentials): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
  }

  /** The Authorization header to send before any 401, from what earlier requests learnt. */
  private async knownAuth(req: Request): Promise<string | undefined> {
    const challenge = this.challenges.get(req.registry);
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") {
      const creds = await this.credentialsFor(req.registry);
      return creds ? RegistryClient.basic(creds) : undefined;
    }
    if (challenge.scheme === "bearer" && req.scope !== undefined) {
      const key = `${req.registry} ${req.scope}`;
      const cached = this.tokens.get(key);
      if (cached && cached.expiresAt > Date.now()) return cached.header;
      return this.fetchToken(req, challenge);
    }
    return undefined;
  }

  /** Answers a challenge: basic credentials, or a bearer token from the realm, cached per scope. */
  private async answer(req: Request, challenge: Challenge, status: number): Promise<string> {
    const ctx = { ...req, status, code: "UNAUTHORIZED" };
    if (challenge.scheme === "basic") {
      const creds = await this.credentialsFor(req.registry);
      if (!creds) {
        const hint = this.options.missingCredentials?.(req.registry);
        throw new RegistryError(
          ctx,
          `HTTP 401: basic auth required and no credentials for it${hint ? `: ${hint}` : ""}`,
        );
      }
      return RegistryClient.basic(creds);
    }
    if (challenge.scheme === "bearer") return this.fetchToken(req, challenge);
    throw new RegistryError(ctx, `HTTP 401: unsupported auth scheme ${challenge.scheme}`);
  }

  private async fetchToken(req: Request, challenge: Challenge): Promise<string> {
    const { realm, service } = challenge.params;
    const ctx = { ...req, operation: `${req.operation}: get token` };
    if (!realm) throw new RegistryError(ctx, "bearer challenge without realm");
    const url = new URL(realm);
    if (service) url.searchParams.set("service", service);
    const scope = req.scope ?? challenge.params.scope;
    if (scope) url.searchParams.set("scope", scope);
    const creds = await this.credentialsFor(req.registry);
    this.options.log?.(`token: ${url.toString()}`);
    const res = await this.send(
      { ...ctx, method: "GET", url: url.toString(), ok: [200] },
      creds ? RegistryClient.basic(creds) : undefined,
    );
    if (res.status === 401) {
      const hint = creds ? undefined : this.options.missingCredentials?.(req.registry);
      if (hint) throw new RegistryError({ ...ctx, status: 401, code: "UNAUTHORIZED" }, hint);
      throw RegistryClient.httpError({ ...ctx, method: "GET", url: "", ok: [] }, res);
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(res.body.toString("utf8"));
    } catch (e) {
      throw new RegistryError({ ...ctx, status: res.status }, "token response is not JSON", {
        cause: e,
      });
    }
    const token = body.token ?? body.access_token;
    if (!token)
      throw new RegistryError({ ...ctx, status: res.status }, "token response has no token");
    const header = `Bearer ${token}`;
    const ttl = Math.max(10, (body.expires_in ?? 60) - 10) * 1000;
    if (req.scope !== undefined) {
      this.tokens.set(`${req.registry} ${req.scope}`, { header, expiresAt: Date.now() + ttl });
    }
    return header;
  }

  // -- transport -------------------------------------------------------------------------------

  /**
   * One request with retries (429, 5xx, connection errors; bounded attempts, backoff with
   * jitter, `Retry-After` honoured up to `retryMaxMs`), in a concurrency slot per attempt.
   * Returns any status in `req.ok`, and 401 for the caller to answer; throws on the rest.
   */
  private async send(req: Request, authorization: string | undefined): Promise<HttpResult> {
    const maxAttempts = this.options.maxAttempts ?? 5;
    const base = this.options.retryBaseMs ?? 200;
    const max = this.options.retryMaxMs ?? 30_000;
    const url = req.url.startsWith("/") ? `${this.baseUrl(req.registry)}${req.url}` : req.url;
    for (let attempt = 1; ; attempt++) {
      let res: HttpResult;
      try {
        res = await this.sem.run(async () => {
          const r = await fetch(url, {
            method: req.method,
            headers: {
              "User-Agent": "gitops-rings",
              ...(authorization ? { Authorization: authorization } : {}),
              ...req.headers,
            },
            body: req.body,
            redirect: "follow",
            signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
          });
          const body = req.method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await r.arrayBuffer());
          return { status: r.status, headers: r.headers, body, url: r.url || url };
        });
      } catch (e) {
        const cause = e as Error & { cause?: { code?: string; message?: string } };
        const why = cause.cause?.code ?? cause.cause?.message ?? cause.message;
        if (attempt >= maxAttempts) {
          throw new RegistryError(req, `${url}: no response after ${attempt} attempts: ${why}`, {
            cause: e,
          });
        }
        const delay = backoffDelay(attempt, base, max);
        this.options.log?.(`retry ${attempt}/${maxAttempts - 1} in ${delay} ms: ${url}: ${why}`);
        await sleep(delay);
        continue;
      }
      if (req.ok.includes(res.status) || res.status === 401) return res;
      if (isRetryableStatus(res.status) && attempt < maxAttempts) {
        const after = parseRetryAfter(res.headers.get("retry-after"));
        const delay = Math.min(max, after ?? backoffDelay(attempt, base, max));
        this.options.log?.(
          `retry ${attempt}/${maxAttempts - 1} in ${delay} ms: ${url}: HTTP ${res.status}`,
        );
        await sleep(delay);
        continue;
      }
      throw RegistryClient.httpError(req, res, attempt);
    }
  }

  private static httpError(req: Request, res: HttpResult, attempts = 1): RegistryError {
    let code: string | undefined;
    let message = "";
    try {
      const body = JSON.parse(res.body.toString("utf8")) as {
        errors?: { code?: string; message?: string }[];
      };
      code = body.errors?.[0]?.code;
      message = body.errors?.map((e) => `${e.code}: ${e.message}`).join("; ") ?? "";
    } catch {
      message = res.body.toString("utf8").slice(0, 200).trim();
    }
    const tries = attempts > 1 ? ` after ${attempts} attempts` : "";
    return new RegistryError(
      { ...req, status: res.status, code },
      `HTTP ${res.status}${tries}${message ? ` (${message})` : ""}`,
    );
  }

  /**
   * {@link send} plus authentication. Sends what earlier answers taught (basic credentials, or
   * the bearer token cached for this scope); on a 401 reads the `WWW-Authenticate` challenge,
   * answers it once (basic credentials, or a new token for the scope) and sends again.
   */
  private async request(req: Request): Promise<HttpResult> {
    const auth = await this.knownAuth(req);
    const first = await this.send(req, auth);
    if (first.status !== 401) return first;
    const header = first.headers.get("www-authenticate");
    const challenge = header ? parseChallenge(header) : undefined;
    if (!challenge) throw RegistryClient.httpError(req, first);
    this.challenges.set(req.registry, challenge);
    if (auth !== undefined && challenge.scheme === "basic") {
      throw RegistryClient.httpError(req, first); // the credentials were refused
    }
    if (req.scope !== undefined) this.tokens.delete(`${req.registry} ${req.scope}`);
    const second = await this.send(req, await this.answer(req, challenge, first.status));
    if (second.status === 401) throw RegistryClient.httpError(req, second);
    return second;
  }

  // -- API -------------------------------------------------------------------------------------

  /**
   * `GET /v2/`: checks the registry speaks the API and the credentials (if any) work.
   * @throws {@link RegistryError} when it does not answer 200.
   */
  async ping(registry: string): Promise<void> {
    await this.request({
      method: "GET",
      registry,
      url: "/v2/",
      operation: "ping",
      ok: [200],
    });
  }

  /** Follows `Link: <…>; rel="next"` pages from `first`, collecting `pick(body)`. */
  private async paginate(
    req: Omit<Request, "url" | "method" | "ok">,
    first: string,
    pick: (body: unknown) => readonly string[] | null | undefined,
  ): Promise<string[]> {
    const out: string[] = [];
    let url: string | undefined = first;
    const seen = new Set<string>();
    while (url !== undefined) {
      if (seen.has(url)) {
        throw new RegistryError(req, `pagination loops at ${url}`);
      }
      seen.add(url);
      const res = await this.request({ ...req, method: "GET", url, ok: [200] });
      out.push(...(pick(JSON.parse(res.body.toString("utf8"))) ?? []));
      const next = parseNextLink(res.headers.get("link"));
      url = next === undefined ? undefined : new URL(next, res.url).toString();
    }
    return out;
  }

  /**
   * `GET /v2/_catalog`, following pagination.
   * @param pageSize the `n` of each page.
   * @returns repository paths (without host), as the registry orders them.
   */
  async listRepositories(registry: string, pageSize = 100): Promise<string[]> {
    return this.paginate(
      { registry, operation: "list repositories", scope: "registry:catalog:*" },
      `${this.baseUrl(registry)}/v2/_catalog?n=${pageSize}`,
      (b) => (b as { repositories?: string[] }).repositories,
    );
  }

  /**
   * `GET /v2/<name>/tags/list`, following `Link` pagination (`n`, `last`).
   * @returns the tags as the registry orders them; `[]` for an unknown repository.
   */
  async listTags(repository: string, pageSize = 1000): Promise<string[]> {
    const r = parseRepository(repository);
    try {
      return await this.paginate(
        {
          registry: r.registry,
          repository: r.repository,
          operation: "list tags",
          scope: `repository:${r.repository}:pull`,
        },
        `${this.baseUrl(r.registry)}/v2/${r.repository}/tags/list?n=${pageSize}`,
        (b) => (b as { tags?: string[] | null }).tags,
      );
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return [];
      throw e;
    }
  }

  private static refOf(ref: string | ImageReference): ImageReference {
    return typeof ref === "string" ? parseReference(ref) : ref;
  }

  private static manifestRequest(r: ImageReference, method: "GET" | "HEAD"): Request {
    const reference = r.digest ?? r.tag;
    if (reference === undefined) {
      throw new Error(`image reference ${formatReference(r)} has neither tag nor digest`);
    }
    return {
      method,
      registry: r.registry,
      repository: r.repository,
      reference,
      url: `/v2/${r.repository}/manifests/${reference}`,
      operation: `${method} manifest`,
      headers: { Accept: MANIFEST_ACCEPT },
      scope: `repository:${r.repository}:pull`,
      ok: [200, 404],
    };
  }

  /**
   * `HEAD` a manifest by tag or digest.
   * @returns its digest (`Docker-Content-Digest`, else from a GET), media type and size, or
   * undefined when the registry does not have it (404).
   */
  async headManifest(ref: string | ImageReference): Promise<ManifestHead | undefined> {
    const r = RegistryClient.refOf(ref);
    const res = await this.request(RegistryClient.manifestRequest(r, "HEAD"));
    if (res.status === 404) return undefined;
    const digest = res.headers.get("docker-content-digest") ?? r.digest;
    const mediaType = res.headers.get("content-type");
    if (!digest || !mediaType) {
      const full = await this.getManifest(r);
      return { digest: full.digest, mediaType: full.mediaType, size: full.size };
    }
    return { digest, mediaType, size: Number(res.headers.get("content-length") ?? 0) };
  }

  /** True when the registry has the manifest `ref` names. */
  async manifestExists(ref: string | ImageReference): Promise<boolean> {
    return (await this.headManifest(ref)) !== undefined;
  }

  /**
   * `GET` a manifest by tag or digest: its exact bytes, media type and digest
   * (`Docker-Content-Digest`, else the sha256 of the bytes). A digest reference is verified
   * against the bytes.
   * @throws {@link RegistryError} with status 404 when it does not exist.
   */
  async getManifest(ref: string | ImageReference): Promise<ManifestResult> {
    const r = RegistryClient.refOf(ref);
    const cached = r.digest ? this.cached(r.registry, r.digest, "manifest") : undefined;
    if (cached) {
      const manifest = JSON.parse(cached.bytes.toString("utf8")) as ImageManifest | ImageIndex;
      return {
        digest: r.digest as Digest,
        mediaType: cached.mediaType ?? manifest.mediaType ?? MediaType.ociManifest,
        size: cached.bytes.length,
        bytes: cached.bytes,
        manifest,
      };
    }
    const result = await this.fetchManifest(r);
    if (r.digest) this.keep(r.registry, r.digest, result.bytes, result.mediaType);
    return result;
  }

  private async fetchManifest(r: ImageReference): Promise<ManifestResult> {
    const req = RegistryClient.manifestRequest(r, "GET");
    const res = await this.request(req);
    if (res.status === 404) throw RegistryClient.httpError(req, res);
    const computed = sha256Digest(res.body);
    const digest = r.digest ?? res.headers.get("docker-content-digest") ?? computed;
    if (digest.startsWith("sha256:") && digest !== computed) {
      throw new RegistryError(
        { ...req, status: res.status },
        `manifest bytes hash to ${computed}, not ${digest}`,
      );
    }
    let manifest: ImageManifest | ImageIndex;
    try {
      manifest = JSON.parse(res.body.toString("utf8"));
    } catch (e) {
      throw new RegistryError({ ...req, status: res.status }, "manifest is not JSON", { cause: e });
    }
    const headerType = (res.headers.get("content-type") ?? "").split(";")[0].trim();
    const mediaType =
      manifest.mediaType ??
      (headerType && headerType !== "application/json"
        ? headerType
        : "manifests" in manifest
          ? MediaType.ociIndex
          : MediaType.ociManifest);
    return { digest, mediaType, size: res.body.length, bytes: res.body, manifest };
  }

  /**
   * The digest a tag (or digest) reference resolves to: an index's own digest for a multi-platform
   * image.
   * @throws {@link RegistryError} with status 404 when the tag does not exist.
   */
  async resolveDigest(ref: string | ImageReference): Promise<Digest> {
    const r = RegistryClient.refOf(ref);
    const head = await this.headManifest(r);
    if (!head) {
      const req = RegistryClient.manifestRequest(r, "HEAD");
      throw new RegistryError(
        { ...req, status: 404, code: "MANIFEST_UNKNOWN" },
        "HTTP 404 (not found)",
      );
    }
    return head.digest;
  }

  /**
   * `GET` a blob, verifying its sha256.
   * @throws {@link RegistryError} when missing or corrupt.
   */
  async getBlob(repository: string, digest: Digest): Promise<Buffer> {
    const r = parseRepository(repository);
    const cached = this.cached(r.registry, digest, "blob");
    if (cached) return cached.bytes;
    const req: Request = {
      method: "GET",
      registry: r.registry,
      repository: r.repository,
      reference: digest,
      url: `/v2/${r.repository}/blobs/${digest}`,
      operation: "GET blob",
      scope: `repository:${r.repository}:pull`,
      ok: [200],
    };
    const res = await this.request(req);
    if (digest.startsWith("sha256:") && sha256Digest(res.body) !== digest) {
      throw new RegistryError(
        { ...req, status: res.status },
        `blob bytes hash to ${sha256Digest(res.body)}`,
      );
    }
    this.keep(r.registry, digest, res.body);
    return res.body;
  }

  // -- content cache ---------------------------------------------------------------------------

  private cachePath(registry: string, digest: Digest): string | undefined {
    const dir = this.options.cacheDir;
    const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
    if (!dir || !m) return undefined;
    return path.join(dir, registry.replace(/[^A-Za-z0-9._-]/g, "_"), "sha256", m[1]);
  }

  /** What the cache holds for `digest`, when its bytes still hash to it. */
  private cached(
    registry: string,
    digest: Digest,
    kind: "manifest" | "blob",
  ): { bytes: Buffer; mediaType?: string } | undefined {
    const file = this.cachePath(registry, digest);
    if (!file) return undefined;
    try {
      const bytes = fs.readFileSync(file);
      if (sha256Digest(bytes) !== digest) return undefined;
      if (kind === "blob") return { bytes };
      const mediaType = fs.readFileSync(`${file}.type`, "utf8");
      return { bytes, ...(mediaType ? { mediaType } : {}) };
    } catch {
      return undefined;
    }
  }

  /** Keeps verified bytes (and a manifest's media type); a failed write only skips the cache. */
  private keep(registry: string, digest: Digest, bytes: Buffer, mediaType?: string): void {
    const file = this.cachePath(registry, digest);
    if (!file || sha256Digest(bytes) !== digest) return;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // Written under a temporary name and renamed: a reader never sees half a file.
      const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}`;
      if (mediaType !== undefined) {
        fs.writeFileSync(`${tmp}.type`, mediaType);
        fs.renameSync(`${tmp}.type`, `${file}.type`);
      }
      fs.writeFileSync(tmp, bytes);
      fs.renameSync(tmp, file);
    } catch {
      // a read-only or full disk: the registry stays the source
    }
  }

  /** True when `repository` has blob `digest` (`HEAD /v2/<name>/blobs/<digest>`). */
  async blobExists(repository: string, digest: Digest): Promise<boolean> {
    const r = parseRepository(repository);
    const res = await this.request({
      method: "HEAD",
      registry: r.registry,
      repository: r.repository,
      reference: digest,
      url: `/v2/${r.repository}/blobs/${digest}`,
      operation: "HEAD blob",
      scope: `repository:${r.repository}:pull`,
      ok: [200, 404],
    });
    return res.status === 200;
  }

  /**
   * The config of the image `ref` names. For an index, the manifest for `platform` is chosen.
   * @param platform @default {@link DEFAULT_PLATFORM}
   * @throws when the index has no manifest for the platform (the message lists those it has).
   */
  async getImageConfig(
    ref: string | ImageReference,
    platform: Platform = DEFAULT_PLATFORM,
  ): Promise<ImageConfigResult> {
    const r = RegistryClient.refOf(ref);
    const top = await this.getManifest(r);
    let manifest = top;
    let chosen: Platform | undefined;
    if (isIndexMediaType(top.mediaType)) {
      const index = top.manifest as ImageIndex;
      const d = selectPlatform(index, platform);
      if (!d) {
        const have = index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : "?"));
        throw new RegistryError(
          {
            registry: r.registry,
            repository: r.repository,
            reference: r.digest ?? r.tag,
            operation: "select platform",
          },
          `index ${top.digest} has no ${formatPlatform(platform)} manifest (has: ${have.join(", ") || "none"})`,
        );
      }
      chosen = d.platform;
      manifest = await this.getManifest({
        registry: r.registry,
        repository: r.repository,
        digest: d.digest,
      });
      if (isIndexMediaType(manifest.mediaType)) {
        throw new RegistryError(
          {
            registry: r.registry,
            repository: r.repository,
            reference: d.digest,
            operation: "select platform",
          },
          "nested index",
        );
      }
    }
    const m = manifest.manifest as ImageManifest;
    if (!m.config?.digest) {
      throw new RegistryError(
        {
          registry: r.registry,
          repository: r.repository,
          reference: manifest.digest,
          operation: "read config",
        },
        `manifest of media type ${manifest.mediaType} has no config`,
      );
    }
    const bytes = await this.getBlob(repositoryName(r), m.config.digest);
    const config = JSON.parse(bytes.toString("utf8")) as ImageConfig;
    return {
      digest: top.digest,
      manifestDigest: manifest.digest,
      platform: chosen,
      config,
      labels: config.config?.Labels ?? {},
    };
  }

  /** The labels (`config.Labels`) of the image `ref` names; see {@link getImageConfig}. */
  async getLabels(
    ref: string | ImageReference,
    platform: Platform = DEFAULT_PLATFORM,
  ): Promise<Readonly<Record<string, string>>> {
    return (await this.getImageConfig(ref, platform)).labels;
  }

  /**
   * Pushes a blob monolithically (`POST` an upload, `PUT` the bytes with `?digest=`), unless the
   * repository has it already.
   * @returns its descriptor.
   */
  async pushBlob(
    repository: string,
    bytes: Buffer,
    mediaType = "application/octet-stream",
  ): Promise<Descriptor> {
    const r = parseRepository(repository);
    const digest = sha256Digest(bytes);
    const descriptor = { mediaType, digest, size: bytes.length };
    if (await this.blobExists(repository, digest)) return descriptor;
    const ctx = {
      registry: r.registry,
      repository: r.repository,
      reference: digest,
      scope: `repository:${r.repository}:pull,push`,
    };
    const started = await this.request({
      ...ctx,
      method: "POST",
      url: `/v2/${r.repository}/blobs/uploads/`,
      operation: "start blob upload",
      ok: [202],
    });
    const location = started.headers.get("location");
    if (!location) {
      throw new RegistryError(
        { ...ctx, operation: "start blob upload", status: 202 },
        "no Location",
      );
    }
    const url = new URL(location, started.url);
    url.searchParams.set("digest", digest);
    await this.request({
      ...ctx,
      method: "PUT",
      url: url.toString(),
      operation: "PUT blob",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
      ok: [201],
    });
    return descriptor;
  }

  /**
   * `PUT` manifest bytes under `reference` (a tag or digest) as they are. Moves a tag if it
   * existed: use {@link putTag} for version tags and {@link moveTag} for ring pointers.
   * @returns the digest of the bytes (checked against `Docker-Content-Digest`).
   */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<Digest> {
    const r = parseRepository(repository);
    const digest = sha256Digest(bytes);
    const req: Request = {
      method: "PUT",
      registry: r.registry,
      repository: r.repository,
      reference,
      url: `/v2/${r.repository}/manifests/${reference}`,
      operation: "PUT manifest",
      headers: { "Content-Type": mediaType },
      body: bytes,
      scope: `repository:${r.repository}:pull,push`,
      ok: [201, 200],
    };
    if (!isTag(reference) && reference !== digest) {
      throw new Error(`${RegistryError.where(req)}: ${reference} is neither a tag nor ${digest}`);
    }
    const res = await this.request(req);
    const said = res.headers.get("docker-content-digest");
    if (said && said !== digest) {
      throw new RegistryError(
        { ...req, status: res.status },
        `registry stored ${said}, bytes are ${digest}`,
      );
    }
    return digest;
  }

  /**
   * Pushes a manifest by digest and, with `tag`, tags it immutably ({@link putTag}).
   * @returns its descriptor.
   */
  async pushManifest(
    repository: string,
    bytes: Buffer,
    mediaType: string,
    tag?: string,
  ): Promise<Descriptor> {
    const digest = await this.putManifest(repository, sha256Digest(bytes), bytes, mediaType);
    if (tag !== undefined) await this.putTag(repository, tag, digest);
    return { mediaType, digest, size: bytes.length };
  }

  /**
   * Points `tag` at `digest` (already in `repository`) and never moves it: a no-op when the tag
   * already points there, a {@link TagImmutableError} naming repository, tag, existing and new
   * digest when it points elsewhere (invariant 1). The check and the put are two requests: two
   * writers racing for the same new tag are not excluded by the protocol.
   * @returns whether the tag was created.
   */
  async putTag(repository: string, tag: string, digest: Digest): Promise<boolean> {
    const r = parseRepository(repository);
    const existing = await this.headManifest({ ...r, tag });
    if (existing) {
      if (existing.digest === digest) return false;
      throw new TagImmutableError(
        { registry: r.registry, repository: r.repository, reference: tag },
        existing.digest,
        digest,
      );
    }
    await this.copyManifest(repository, digest, tag);
    return true;
  }

  /**
   * Points `tag` at `digest`, wherever it pointed before: for ring pointers only. Copies the
   * manifest's exact bytes (GET by digest, PUT under the tag), so no blob is pushed again.
   * @returns the digest the tag pointed at before, or undefined.
   */
  async moveTag(repository: string, tag: string, digest: Digest): Promise<Digest | undefined> {
    const r = parseRepository(repository);
    const before = await this.headManifest({ ...r, tag });
    if (before?.digest !== digest) await this.copyManifest(repository, digest, tag);
    return before?.digest;
  }

  private async copyManifest(repository: string, digest: Digest, tag: string): Promise<void> {
    const r = parseRepository(repository);
    const m = await this.getManifest({ ...r, digest });
    await this.putManifest(repository, tag, m.bytes, m.mediaType);
  }

  /**
   * Deletes a manifest by digest (the registry must allow deletes); every tag on it goes too.
   * @returns false when it did not exist.
   */
  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    const r = parseRepository(repository);
    const res = await this.request({
      method: "DELETE",
      registry: r.registry,
      repository: r.repository,
      reference: digest,
      url: `/v2/${r.repository}/manifests/${digest}`,
      operation: "DELETE manifest",
      scope: `repository:${r.repository}:pull,push,delete`,
      ok: [202, 404],
    });
    return res.status === 202;
  }

  /**
   * Builds and pushes a single-platform image: gzipped layers, a config with `labels` (keys
   * sorted, no timestamp unless `configExtra` has one, so equal inputs give an equal digest),
   * and an OCI (or Docker v2) manifest, tagged immutably when `tag` is given.
   */
  async pushImage(repository: string, options: PushImageOptions = {}): Promise<PushedManifest> {
    const docker = options.format === "docker";
    const platform = options.platform ?? DEFAULT_PLATFORM;
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const tar of options.layers ?? []) {
      diffIds.push(sha256Digest(tar));
      const gz = gzipSync(tar);
      layers.push(
        await this.pushBlob(
          repository,
          gz,
          docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
        ),
      );
    }
    const config = {
      ...options.configExtra,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Labels: options.labels ?? {} },
      rootfs: { type: "layers", diff_ids: diffIds },
    };
    const configBytes = Buffer.from(canonicalJson(config));
    const configDesc = await this.pushBlob(
      repository,
      configBytes,
      docker ? MediaType.dockerConfig : MediaType.ociConfig,
    );
    const mediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
    const manifest: ImageManifest = { schemaVersion: 2, mediaType, config: configDesc, layers };
    const bytes = Buffer.from(canonicalJson(manifest));
    const d = await this.pushManifest(repository, bytes, mediaType, options.tag);
    return {
      descriptor: { ...d, platform },
      reference: `${repository}@${d.digest}`,
      bytes,
    };
  }

  /**
   * Pushes an index (OCI) or manifest list (`docker`) over manifests already in `repository`
   * (their descriptors must carry `platform`), tagged immutably when `tag` is given.
   */
  async pushIndex(
    repository: string,
    manifests: readonly Descriptor[],
    options: { readonly tag?: string; readonly format?: "oci" | "docker" } = {},
  ): Promise<PushedManifest> {
    const mediaType =
      options.format === "docker" ? MediaType.dockerManifestList : MediaType.ociIndex;
    const index: ImageIndex = { schemaVersion: 2, mediaType, manifests };
    const bytes = Buffer.from(canonicalJson(index));
    const d = await this.pushManifest(repository, bytes, mediaType, options.tag);
    return { descriptor: d, reference: `${repository}@${d.digest}`, bytes };
  }
}

export { canonicalJson, mapLimit, Semaphore };
