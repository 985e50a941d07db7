/**
 * Images a site deploys but no service builds (a cache, a proxy, a metrics agent, a migration
 * tool): found in the rendered overlay, checked against the site's rules, resolved through the
 * registry to a digest and pinned by it, their origins recorded (DESIGN.md invariants 4 and 6;
 * seed 002, which runs kbld over the rendered manifests: https://carvel.dev/kbld/docs/latest/).
 *
 * As kbld does, every image reference in the objects' image fields is resolved before anything
 * is applied: containers, init and ephemeral containers of every kind with a pod spec, plus the
 * extra field paths a site names for custom resources (kbld's "search rules"; here written as
 * Kustomize's images transformer configuration writes them, so that the one list both finds
 * the images and pins them). A reference by tag resolves to the digest the registry gives for
 * it: for a multi-platform image, the digest of the index, so that every platform works (each
 * node picks its own manifest); the index must have a manifest for every platform the site's
 * services are built for. A reference by digest is checked to exist.
 *
 * The pure parts (finding images, rules, Kustomize entries, annotations, the preview table) are
 * plain functions; {@link resolveForeignImages} is the one step that reads the registry.
 */
import {
  DOCKER_HUB,
  RegistryError,
  formatPlatform,
  isIndexMediaType,
  parseReference,
  selectPlatform,
  type ImageIndex,
  type ImageReference,
  type Platform,
  type RegistryClient,
} from "./registry";

/**
 * The annotation every object carrying an image resolved from a tag gets: what was written and
 * what it resolved to, as JSON `[{"origin":"redis:7.4","image":"redis@sha256:…"}]`, sorted by
 * origin (kbld's is `kbld.k14s.io/images`; this one is in the domain of the site's labels).
 */
export const IMAGES_ANNOTATION = "gitops-rings.io/images";

/**
 * A field that holds an image reference in objects of one kind (kbld's search rules), written
 * as an entry of Kustomize's images transformer configuration (a fieldSpec), so the overlay
 * pins what is found there through the same transformer.
 */
export interface ImageField {
  /**
   * `/`-separated keys from the object's root to the image string; `key[]` walks every item of
   * a list, e.g. `spec/steps[]/image`.
   */
  readonly path: string;
  /** Only objects of this kind. @default every kind */
  readonly kind?: string;
  /** Only objects of this API group (`""` is the core group). @default every group */
  readonly group?: string;
  /** Only objects of this API version. @default every version */
  readonly version?: string;
}

/** What makes a field path valid: keys of letters, digits, `.`, `_`, `-`, each maybe `[]`. */
export const IMAGE_FIELD_PATH = /^[A-Za-z0-9_.-]+(?:\[\])?(?:\/[A-Za-z0-9_.-]+(?:\[\])?)*$/;

/** Identity of an object in the rendered manifests. */
export interface ObjectId {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/** One image reference found in one object. */
export interface ImageUse {
  readonly object: ObjectId;
  /**
   * Which field: `container redis`, `init container migrate`, `ephemeral container debug`, or
   * `field spec/steps[0]/image` for a site's extra field path.
   */
  readonly container: string;
  /** The reference as the rendered object writes it. */
  readonly image: string;
}

/** `<Kind>/<namespace>/<name>: <container>`, as error lines and outputs name a use. */
export function useName(use: Pick<ImageUse, "object" | "container">): string {
  const o = use.object;
  return `${o.kind}/${o.namespace ?? ""}/${o.name}: ${use.container}`;
}

type PodSpec = Partial<
  Record<"initContainers" | "containers" | "ephemeralContainers", unknown[] | undefined>
>;
interface RawObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly template?: { readonly spec?: PodSpec };
  readonly spec?: PodSpec & {
    readonly template?: { readonly spec?: PodSpec };
    readonly jobTemplate?: { readonly spec?: { readonly template?: { readonly spec?: PodSpec } } };
  };
}

/**
 * The pod spec of an object, wherever its kind keeps it: Pod, PodTemplate, CronJob's job
 * template, and `spec.template.spec` of every other kind (Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, Job, custom kinds with a pod template).
 */
function podSpecOf(o: RawObject): PodSpec | undefined {
  if (o.kind === "Pod") return o.spec;
  if (o.kind === "PodTemplate") return o.template?.spec;
  if (o.kind === "CronJob") return o.spec?.jobTemplate?.spec?.template?.spec;
  return o.spec?.template?.spec;
}

const CONTAINER_FIELDS = [
  ["initContainers", "init container"],
  ["containers", "container"],
  ["ephemeralContainers", "ephemeral container"],
] as const;

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/** `group` and `version` of an `apiVersion` (`apps/v1`; `v1` is the core group). */
export function groupVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Whether `field` applies to objects of this apiVersion and kind. */
function fieldApplies(field: ImageField, apiVersion: string, kind: string): boolean {
  const { group, version } = groupVersion(apiVersion);
  return (
    (field.kind === undefined || field.kind === kind) &&
    (field.group === undefined || field.group === group) &&
    (field.version === undefined || field.version === version)
  );
}

/**
 * The values at `path` in `root` with their concrete paths (`spec/steps[1]/image`); a missing
 * key, or a list where a map is expected, yields nothing, as in Kustomize.
 */
export function valuesAt(root: unknown, path: string): { path: string; value: unknown }[] {
  let at: { path: string; value: unknown }[] = [{ path: "", value: root }];
  for (const segment of path.split("/")) {
    const list = segment.endsWith("[]");
    const key = list ? segment.slice(0, -2) : segment;
    const next: { path: string; value: unknown }[] = [];
    for (const { path: p, value } of at) {
      if (!isObject(value) || !(key in value)) continue;
      const child = value[key];
      const here = p === "" ? key : `${p}/${key}`;
      if (!list) next.push({ path: here, value: child });
      else if (Array.isArray(child)) {
        child.forEach((item, i) => next.push({ path: `${here}[${i}]`, value: item }));
      }
    }
    at = next;
  }
  return at;
}

/**
 * Every image reference in `objects`, in stream order: per object its init containers,
 * containers and ephemeral containers (of the kinds {@link podSpecOf} reads), then the values
 * at each of `fields` that applies to the object's kind. A value found twice (a field that
 * repeats a container path) is reported once.
 * @param objects the rendered objects (non-objects are skipped).
 * @param fields extra image fields, for custom resources (site config `images.fields`).
 * @returns one use per image field; an `image` that is not a string is reported as its JSON.
 */
export function findImages(
  objects: readonly unknown[],
  fields: readonly ImageField[] = [],
): ImageUse[] {
  const found: ImageUse[] = [];
  for (const raw of objects) {
    if (!isObject(raw)) continue;
    const o = raw as RawObject;
    const object: ObjectId = {
      apiVersion: String(o.apiVersion ?? ""),
      kind: String(o.kind ?? ""),
      ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
      name: String(o.metadata?.name ?? ""),
    };
    const seen = new Set<unknown>();
    const spec = podSpecOf(o);
    for (const [field, what] of CONTAINER_FIELDS) {
      const list = spec?.[field];
      for (const c of Array.isArray(list) ? list : []) {
        if (!isObject(c) || c.image === undefined) continue;
        seen.add(c);
        const image = typeof c.image === "string" ? c.image : JSON.stringify(c.image);
        found.push({ object, container: `${what} ${String(c.name)}`, image });
      }
    }
    for (const field of fields) {
      if (!fieldApplies(field, object.apiVersion, object.kind)) continue;
      const parent = field.path.includes("/")
        ? field.path.slice(0, field.path.lastIndexOf("/"))
        : "";
      const key = field.path.slice(field.path.lastIndexOf("/") + 1);
      // A field whose parent is a container already read (spec/containers[]/image) adds nothing.
      const parents = parent === "" ? [{ value: raw }] : valuesAt(raw, parent);
      if (!key.endsWith("[]") && parents.every((p) => seen.has(p.value))) continue;
      for (const { path, value } of valuesAt(raw, field.path)) {
        if (value === undefined || value === null) continue;
        const image = typeof value === "string" ? value : JSON.stringify(value);
        found.push({ object, container: `field ${path}`, image });
      }
    }
  }
  return found;
}

/** True when `image` names its image by digest (`name[:tag]@sha256:<64 hex>`). */
export function isByDigest(image: string): boolean {
  return /@sha256:[a-f0-9]{64}$/.test(image);
}

/** The rules a site sets for images no service builds (site config `images`). */
export interface ImageRules {
  /**
   * Registries (`host[:port]`, or `host[:port]/path` for part of one) these images may come
   * from, by tag or by digest. @default any registry
   */
  readonly allowedRegistries?: readonly string[];
  /**
   * `true`: these images must be written by digest; a list: images from these registries must
   * (tags from them are refused). @default false
   */
  readonly requireDigest: boolean | readonly string[];
}

/** Docker Hub's other names, so that a rule may name it any way. */
const DOCKER_HUB_NAMES = ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];

/** Whether the image `ref` is in `registry` (`host[:port]` or `host[:port]/path`). */
export function inRegistry(ref: ImageReference, registry: string): boolean {
  const slash = registry.indexOf("/");
  let host = slash < 0 ? registry : registry.slice(0, slash);
  if (DOCKER_HUB_NAMES.includes(host)) host = DOCKER_HUB;
  const prefix = slash < 0 ? "" : registry.slice(slash + 1);
  if (host !== ref.registry) return false;
  return prefix === "" || ref.repository === prefix || ref.repository.startsWith(`${prefix}/`);
}

/**
 * What a site's rules say about one reference: undefined when it may be deployed, else why not.
 * @param ref the parsed reference.
 * @param written the reference as written, for the message.
 * @param rules the site's rules.
 * @param where the stack config file, named in the message with the key.
 * @returns e.g. `"redis:7.4" is by tag, and stacks/Pulumi.x.yaml: gitops-rings:images.requireDigest
 *   is true: write it by digest (redis:7.4@sha256:…)`.
 */
export function ruleViolation(
  ref: ImageReference,
  written: string,
  rules: ImageRules,
  where: string,
): string | undefined {
  const allowed = rules.allowedRegistries;
  if (allowed !== undefined && !allowed.some((r) => inRegistry(ref, r))) {
    return (
      `${JSON.stringify(written)} is from ${ref.registry}/${ref.repository}, which ${where}: ` +
      `gitops-rings:images.allowedRegistries does not list (${allowed.join(", ") || "none"})`
    );
  }
  if (ref.digest !== undefined) return undefined;
  const require = rules.requireDigest;
  if (require === true) {
    return (
      `${JSON.stringify(written)} is by tag, and ${where}: gitops-rings:images.requireDigest is ` +
      `true: write it by digest (<name>@sha256:…)`
    );
  }
  if (Array.isArray(require)) {
    const registry = require.find((r) => inRegistry(ref, r));
    if (registry !== undefined) {
      return (
        `${JSON.stringify(written)} is by tag, and ${where}: gitops-rings:images.requireDigest ` +
        `lists ${registry}: write it by digest (<name>@sha256:…)`
      );
    }
  }
  return undefined;
}

/**
 * The name part of a reference as written: without `@digest` and without `:tag`
 * (`127.0.0.1:5001/x/y:1.0` gives `127.0.0.1:5001/x/y`).
 */
export function writtenName(reference: string): string {
  const at = reference.indexOf("@");
  const rest = at < 0 ? reference : reference.slice(0, at);
  const colon = rest.indexOf(":", rest.lastIndexOf("/") + 1);
  return colon < 0 ? rest : rest.slice(0, colon);
}

/** One image no service builds, resolved: what a site's outputs record (its origin). */
export interface ForeignImage {
  /** The reference as the manifests write it (after the environment's overlay), e.g. `redis:7.4`. */
  readonly reference: string;
  /** `host[:port]`; `docker.io` for a reference without a host. */
  readonly registry: string;
  /** `<registry>/<path>`, e.g. `docker.io/library/redis`. */
  readonly repository: string;
  /** The tag it was resolved from (`latest` when it has none); absent when written by digest. */
  readonly tag?: string;
  /** The digest (an index's own digest for a multi-platform image). */
  readonly digest: string;
  /** What the site deploys: the name as written `@<digest>`, e.g. `redis@sha256:…`. */
  readonly image: string;
  /** Where the manifests use it: `<Kind>/<namespace>/<name>: <container>`, sorted. */
  readonly usedBy: readonly string[];
}

/** One problem with one use of an image: the error names the object, container and reference. */
export interface ImageProblem {
  /** `<Kind>/<namespace>/<name>: <container>`. */
  readonly where: string;
  /** Starts with the reference as written. */
  readonly message: string;
}

/** Options of {@link resolveForeignImages}. */
export interface ResolveOptions {
  readonly client: RegistryClient;
  readonly rules: ImageRules;
  /** The stack config file, named in rule violations. */
  readonly stackFile: string;
  /** Platforms an index must have a manifest for (the site's services' platforms). */
  readonly platforms: readonly Platform[];
}

/** Why a registry request failed, in words: no tag, denied, unreachable, or its message. */
function registryFailure(ref: ImageReference, err: unknown): string {
  const name = `${ref.registry}/${ref.repository}`;
  if (err instanceof RegistryError) {
    if (err.status === 401 || err.status === 403) {
      return `access to ${name} denied (HTTP ${err.status}; credentials come from docker's config.json auths)`;
    }
    if (err.status === 404) return `${name} does not exist (HTTP 404)`;
    if (err.status === undefined) {
      const why = err.message.replace(/^.*no response after/, "no response after");
      return `registry ${ref.registry} unreachable (${why})`;
    }
    return err.message;
  }
  return (err as Error).message;
}

/**
 * Checks one reference and resolves it to a digest (the index's own for a multi-platform
 * image). @returns the digest, or the problem as a message starting with the reference.
 */
async function resolveOne(
  written: string,
  options: ResolveOptions,
): Promise<{ ref: ImageReference; digest: string } | { problem: string }> {
  const show = JSON.stringify(written);
  let ref: ImageReference;
  try {
    ref = parseReference(written);
  } catch (e) {
    return { problem: `${show} is not an image reference: ${(e as Error).message}` };
  }
  const violation = ruleViolation(ref, written, options.rules, options.stackFile);
  if (violation !== undefined) return { problem: violation };
  const target =
    ref.digest !== undefined ? { ...ref, tag: undefined } : { ...ref, tag: ref.tag ?? "latest" };
  try {
    const head = await options.client.headManifest(target);
    if (head === undefined) {
      return {
        problem:
          ref.digest !== undefined
            ? `${show}: ${ref.registry}/${ref.repository} has no manifest ${ref.digest}`
            : `${show}: ${ref.registry}/${ref.repository} has no tag ${target.tag}`,
      };
    }
    if (isIndexMediaType(head.mediaType) && options.platforms.length > 0) {
      const index = (
        await options.client.getManifest({ ...ref, tag: undefined, digest: head.digest })
      ).manifest as ImageIndex;
      const missing = options.platforms.filter((p) => selectPlatform(index, p) === undefined);
      if (missing.length > 0) {
        const have = index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : "?"));
        return {
          problem:
            `${show}: index ${head.digest} has no ${missing.map(formatPlatform).join(", ")} ` +
            `manifest (has: ${have.join(", ") || "none"}), and the site's services are built for it`,
        };
      }
    }
    return { ref, digest: head.digest };
  } catch (e) {
    return { problem: `${show}: ${registryFailure(ref, e)}` };
  }
}

/**
 * Resolves every image no service builds (DESIGN.md invariants 4 and 6; seed 002): each
 * distinct reference once, through `options.client` (so with its credentials), after the
 * site's rules. A reference by tag resolves to the digest the registry gives (a reference
 * without a tag is `:latest`); by digest, it must exist.
 * @param uses the uses of images no service builds (the caller leaves the services' out):
 *   every one given is checked and resolved.
 * @param options the registry client, the site's rules, its stack file and platforms.
 * @returns the resolved images keyed by reference as written, and one problem per use of a
 *   reference that could not be (a bad reference, a rule, no such tag or manifest, access
 *   denied, an unreachable registry, an index without the site's platforms).
 */
export async function resolveForeignImages(
  uses: readonly ImageUse[],
  options: ResolveOptions,
): Promise<{ images: Record<string, ForeignImage>; problems: ImageProblem[] }> {
  const references = [...new Set(uses.map((u) => u.image))].sort();
  const results = await Promise.all(references.map((r) => resolveOne(r, options)));
  const images: Record<string, ForeignImage> = {};
  const problems: ImageProblem[] = [];
  references.forEach((reference, i) => {
    const result = results[i];
    const where = uses.filter((u) => u.image === reference).map(useName);
    if ("problem" in result) {
      for (const w of where) problems.push({ where: w, message: result.problem });
      return;
    }
    const { ref, digest } = result;
    images[reference] = {
      reference,
      registry: ref.registry,
      repository: `${ref.registry}/${ref.repository}`,
      ...(ref.digest === undefined ? { tag: ref.tag ?? "latest" } : {}),
      digest,
      image: ref.digest === undefined ? `${writtenName(reference)}@${digest}` : reference,
      usedBy: [...new Set(where)].sort(),
    };
  });
  return { images, problems };
}

/** What the overlay adds for images no service builds (lib/kustomize.ts writes it). */
export interface ForeignOverlay {
  /** One `images` entry per reference by tag: exactly that reference, pinned to its digest. */
  readonly pins: readonly {
    readonly reference: string;
    readonly name: string;
    readonly digest: string;
  }[];
  /** One {@link IMAGES_ANNOTATION} per object that carries an image resolved from a tag. */
  readonly annotations: readonly { readonly object: ObjectId; readonly value: string }[];
  /** Extra image fields, added to the images transformer's configuration. */
  readonly fields: readonly ImageField[];
}

/**
 * The overlay's part for resolved images: a pin per reference by tag, and per object that uses
 * one, the annotation recording every reference as written and its image by digest.
 */
export function foreignOverlay(
  uses: readonly ImageUse[],
  images: Readonly<Record<string, ForeignImage>>,
  fields: readonly ImageField[] = [],
): ForeignOverlay {
  const byTag = Object.values(images).filter((i) => i.tag !== undefined);
  const pins = byTag
    .map((i) => ({ reference: i.reference, name: writtenName(i.reference), digest: i.digest }))
    .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
  const perObject = new Map<string, { object: ObjectId; origins: Map<string, string> }>();
  for (const use of uses) {
    const image = images[use.image];
    if (image?.tag === undefined) continue;
    const o = use.object;
    const key = `${o.apiVersion}/${o.kind}/${o.namespace ?? ""}/${o.name}`;
    const entry = perObject.get(key) ?? { object: o, origins: new Map<string, string>() };
    entry.origins.set(image.reference, image.image);
    perObject.set(key, entry);
  }
  const annotations = [...perObject.values()].map(({ object, origins }) => ({
    object,
    value: JSON.stringify(
      [...origins.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([origin, image]) => ({ origin, image })),
    ),
  }));
  return { pins, annotations, fields };
}

/** What a previous update recorded per reference (its `foreignImages` output). */
export type PreviousForeignImages = Readonly<Record<string, { readonly digest?: string }>>;

/**
 * The preview's table of images no service builds: per reference as written, its tag, the
 * digest it resolves to, and whether that changed since the site's last update (a moved tag
 * upstream changes what the site runs).
 * @returns the lines, or `[]` when there is none.
 */
export function formatForeignImages(
  images: Readonly<Record<string, ForeignImage>>,
  previous: PreviousForeignImages = {},
): string[] {
  const rows = Object.values(images)
    .sort((a, b) => (a.reference < b.reference ? -1 : 1))
    .map((i) => {
      const before = previous[i.reference]?.digest;
      const change =
        before === undefined
          ? "new"
          : before === i.digest
            ? "unchanged"
            : `digest changed (was ${before})`;
      return [i.reference, i.tag ?? "(digest)", i.digest, change];
    });
  if (rows.length === 0) return [];
  const header = ["IMAGE", "TAG", "DIGEST", "CHANGE"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c < r.length - 1 ? cell.padEnd(widths[c]) : cell)).join("  ");
  return [
    "Images no service builds (resolved in the planning step)",
    line(header),
    ...rows.map(line),
  ];
}
