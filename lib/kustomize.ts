/**
 * The Kustomize overlay a site generates on top of its environment's overlay
 * (DESIGN.md flow 2): it sets the namespace, pins every service's image by digest
 * with the `images` transformer (under every name the manifests may use for it: the service
 * name, `<project>/<image>`, `<registry>/<project>/<image>`, aliases; any tag), labels every
 * object with site and ring, and the site's Namespace with the release too (a new release then
 * changes only the objects whose images or config changed, issue 10). The planning step
 * renders it once before anything is built (lib/site.ts), with placeholder digests for images
 * not built yet.
 * Both deploy paths apply it: `@pulumi/kubernetes`' `kustomize.v2.Directory` and,
 * on the local platform, `kubectl apply --server-side -k` (lib/kubectl.ts).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { IMAGES_ANNOTATION, groupVersion, type ForeignOverlay } from "./images";
import { mapLimit } from "./limit";

/** Label keys the site puts on every object it applies: site and ring. */
export const SITE_LABEL = "gitops-rings.io/site";
export const RING_LABEL = "gitops-rings.io/ring";
/** The release's label key, on the site's Namespace only (see siteOverlayFiles). */
export const RELEASE_LABEL = "gitops-rings.io/release";

/** One image the overlay pins: Kustomize `images` entry, by digest only (invariant 4). */
export interface PinnedImage {
  /**
   * A name the manifests use for the image, without tag or digest (`backend`, `example/backend`);
   * Kustomize replaces it with any tag or digest or none (`image: example/backend:1.4`).
   */
  readonly name: string;
  /** Repository, e.g. `127.0.0.1:5001/example/backend`. */
  readonly newName: string;
  /** `sha256:<64 hex>`. */
  readonly digest: string;
}

/** What the generated overlay contains. */
export interface SiteOverlay {
  /** Absolute path of the environment's overlay (the `resources` entry). */
  readonly environmentOverlay: string;
  /** Namespace every namespaced object goes to; the overlay also creates it. */
  readonly namespace: string;
  readonly site: string;
  readonly ring: string;
  /** Release version the site runs. */
  readonly release: string;
  readonly images: readonly PinnedImage[];
  /**
   * When set, every Deployment, StatefulSet, DaemonSet and Job gets the annotation
   * `pulumi.com/timeoutSeconds` with this value: how long the `@pulumi/kubernetes` provider
   * waits for it to become ready (its await logic; the kubectl path waits for all rollouts
   * together and needs none). Only the object's own metadata: its pods are not restarted.
   */
  readonly awaitTimeoutSeconds?: number;
  /**
   * Images no service builds, resolved by the planning step (lib/images.ts): their pins, the
   * annotation recording their origins, and extra image fields. @default none
   */
  readonly foreign?: ForeignOverlay;
}

/** The workload kinds whose readiness `@pulumi/kubernetes` awaits. */
const AWAITED_KINDS = [
  ["apps/v1", "Deployment"],
  ["apps/v1", "StatefulSet"],
  ["apps/v1", "DaemonSet"],
  ["batch/v1", "Job"],
] as const;

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Where an image pinned by digest comes from: a service's repository and digest. */
export interface ServiceDigest {
  /** `<registry>/<project>/<image>`. */
  readonly repository: string;
  /** `sha256:<64 hex>`. */
  readonly digest: string;
}

/**
 * The `images` entries that pin each service's image by digest under every name the manifests
 * may use for it (README, "The version repository"): one entry per name, all of a service's
 * with the same `newName` and `digest`, as Kustomize matches an entry's name against the image
 * without its tag or digest.
 * @param images each service's repository and digest, by service name.
 * @param names every accepted name mapped to its service (lib/dockerfile.ts imageNameOwners);
 *   a service's own name is always accepted.
 * @returns the entries, names unique; names of services not in `images` are left out.
 */
export function pinnedImages(
  images: Readonly<Record<string, ServiceDigest>>,
  names: Readonly<Record<string, string>> = {},
): PinnedImage[] {
  const entries = new Map<string, PinnedImage>();
  const pairs = [...Object.keys(images).map((s) => [s, s]), ...Object.entries(names)];
  for (const [name, service] of pairs) {
    const image = images[service];
    if (image && !entries.has(name)) {
      entries.set(name, { name, newName: image.repository, digest: image.digest });
    }
  }
  return [...entries.values()];
}

/**
 * Kustomize's images transformer replaces `containers` and `initContainers` wherever they are;
 * this configuration adds `ephemeralContainers`, so that every container a pod can have is pinned.
 */
const IMAGE_FIELDS = {
  images: [
    { path: "spec/ephemeralContainers[]/image" },
    { path: "spec/template/spec/ephemeralContainers[]/image" },
    { path: "spec/jobTemplate/spec/template/spec/ephemeralContainers[]/image" },
  ],
};

/**
 * The `images` entry name that matches exactly one reference as written. Kustomize matches an
 * entry's name as the start of a regular expression, `^<name>(:<tag>)?(@sha256…)?$`, so that
 * `redis` would also match `redis:7.4` and a value already pinned (`redis@sha256:…`); the name
 * is escaped and closed with `$`, which ends the match there (kustomize api/image
 * IsImageMatched, v4 and v5).
 */
export function exactImageName(reference: string): string {
  return `${reference.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&")}$`;
}

/** A Kustomize patch target naming exactly one object (its name too is a regular expression). */
function exactTarget(o: { apiVersion: string; kind: string; name: string }) {
  const { group, version } = groupVersion(o.apiVersion);
  return { group, version, kind: o.kind, name: `^${exactImageName(o.name)}` };
}

/**
 * Kustomize reads kustomization.yaml with YAML 1.1 rules, where `yes`, `on`, `n`, `1_000` are
 * booleans and numbers: quote such strings (a namespace `no`, a ring `on`) so they stay strings.
 */
const YAML_FOR_KUSTOMIZE = { version: "1.1" } as const;

/**
 * The files of the generated overlay, as plain text keyed by file name, for the
 * overlay directory `dir` (the `resources` path is made relative to it, as Kustomize's
 * load restrictor requires for portability).
 *
 * @throws Error when an image has no digest or two images share a name.
 */
export function siteOverlayFiles(dir: string, overlay: SiteOverlay): Record<string, string> {
  const names = new Set<string>();
  for (const image of overlay.images) {
    if (!DIGEST.test(image.digest)) {
      throw new Error(
        `site ${overlay.site}: image ${image.name}: "${image.digest}" is not a sha256 digest; ` +
          `a site deploys images by digest only`,
      );
    }
    if (names.has(image.name))
      throw new Error(`site ${overlay.site}: image ${image.name} is pinned twice`);
    names.add(image.name);
  }
  const foreign = overlay.foreign ?? { pins: [], annotations: [], fields: [] };
  for (const pin of foreign.pins) {
    if (!DIGEST.test(pin.digest)) {
      throw new Error(
        `site ${overlay.site}: image ${pin.reference}: "${pin.digest}" is not a sha256 digest; ` +
          `a site deploys images by digest only`,
      );
    }
  }
  const resource = path.relative(dir, overlay.environmentOverlay).split(path.sep).join("/");
  const patches = [
    ...foreign.annotations.map((a) => ({
      target: exactTarget(a.object),
      patch: stringify(
        {
          apiVersion: a.object.apiVersion,
          kind: a.object.kind,
          metadata: { name: a.object.name, annotations: { [IMAGES_ANNOTATION]: a.value } },
        },
        YAML_FOR_KUSTOMIZE,
      ),
    })),
    ...(overlay.awaitTimeoutSeconds === undefined
      ? []
      : AWAITED_KINDS.map(([apiVersion, kind]) => ({
          target: { kind },
          patch: stringify(
            {
              apiVersion,
              kind,
              metadata: {
                name: "any",
                annotations: { "pulumi.com/timeoutSeconds": String(overlay.awaitTimeoutSeconds) },
              },
            },
            YAML_FOR_KUSTOMIZE,
          ),
        }))),
  ];
  const kustomization = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    namespace: overlay.namespace,
    resources: ["namespace.yaml", resource],
    configurations: ["image-fields.yaml"],
    images: imagesEntries(overlay),
    ...(patches.length > 0 ? { patches } : {}),
    labels: [
      {
        pairs: { [SITE_LABEL]: overlay.site, [RING_LABEL]: overlay.ring },
        includeSelectors: false,
        includeTemplates: false,
      },
    ],
  };
  // The release on one object, not on all: a label on every object made each release re-apply
  // every object (500 at N = 500) and show each one as changed in a preview.
  const namespace = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: overlay.namespace, labels: { [RELEASE_LABEL]: overlay.release } },
  };
  return {
    "kustomization.yaml":
      "# Generated by gitops-rings for one site; do not edit (it is rewritten on every update).\n" +
      stringify(kustomization, YAML_FOR_KUSTOMIZE),
    "namespace.yaml": stringify(namespace, YAML_FOR_KUSTOMIZE),
    "image-fields.yaml": stringify(
      {
        images: [
          ...IMAGE_FIELDS.images,
          ...foreign.fields.map((f) => ({
            path: f.path,
            ...(f.group !== undefined ? { group: f.group } : {}),
            ...(f.version !== undefined ? { version: f.version } : {}),
            ...(f.kind !== undefined ? { kind: f.kind } : {}),
          })),
        ],
      },
      YAML_FOR_KUSTOMIZE,
    ),
  };
}

/**
 * The overlay's Kustomize `images` entries: each service's names (sorted), then each image no
 * service builds, by its exact reference as written, pinned to what its tag resolved to.
 */
function imagesEntries(overlay: SiteOverlay): PinnedImage[] {
  return [
    ...[...overlay.images]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((i) => ({ name: i.name, newName: i.newName, digest: i.digest })),
    ...(overlay.foreign?.pins ?? []).map((p) => ({
      name: exactImageName(p.reference),
      newName: p.name,
      digest: p.digest,
    })),
  ];
}

/**
 * Writes the generated overlay into `dir` (created if missing) and returns `dir`.
 * Files are rewritten only when their content differs, so mtimes stay put.
 */
export function writeSiteOverlay(dir: string, overlay: SiteOverlay): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(siteOverlayFiles(dir, overlay))) {
    const target = path.join(dir, file);
    const old = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : undefined;
    if (old !== text) fs.writeFileSync(target, text);
  }
  return dir;
}

/**
 * Renders one Kustomize directory to a multi-document YAML stream: `kubectl kustomize <dir>`
 * on the local platform, the kubernetes provider's kustomize on the provider path.
 */
export type KustomizeRenderer = (dir: string) => Promise<string>;

/**
 * Objects per images pass of {@link renderSiteOverlay}. Kustomize's images transformer walks
 * every object once per `images` entry, so one pass over a whole site costs entries x objects:
 * 1,509 entries over 503 objects took 190 s at N = 500 (issue 10). Passes of this many objects,
 * each with only the entries that can match them, cost about N x 40 instead (8 s at 500).
 */
export const IMAGES_PASS_OBJECTS = 40;

/** Options of {@link renderSiteOverlay}. */
export interface RenderSiteOptions {
  /** Objects per images pass. @default {@link IMAGES_PASS_OBJECTS} */
  readonly objectsPerPass?: number;
  /** Images passes rendered at once. @default the machine's available parallelism */
  readonly concurrency?: number;
  /**
   * Images passes already rendered by the same renderer, reused when a pass's input is the
   * same. @default none
   */
  readonly passes?: ImagesPassCache;
}

/**
 * The output of images passes by their whole input: the slice's objects, the image fields
 * and the entries, as the renderer that made it saw them (so one cache per renderer: the
 * YAML of `kubectl kustomize` and the provider's JSON are not interchangeable). A pass is a
 * pure function of that input, so a hit is the output Kustomize would give again. An update
 * renders the overlay in its planning step and again once every digest is known, and one
 * changed leaf changes one slice of the second render: at N = 500 the Site's render, which
 * the deploy step waits for, took 7.8 s with 13 passes (issue 10). Holds at most `limit`
 * passes, dropping the oldest.
 */
export class ImagesPassCache {
  private readonly outputs = new Map<string, string[]>();

  /** @param limit Passes kept. @default 4096 */
  constructor(private readonly limit = 4096) {}

  /** The output of the pass whose input is `input`, rendering it on a miss. */
  async get(input: string, render: () => Promise<string[]>): Promise<string[]> {
    const key = createHash("sha256").update(input).digest("hex");
    const hit = this.outputs.get(key);
    if (hit) return hit;
    const docs = await render();
    if (this.outputs.size >= this.limit) this.outputs.delete(this.outputs.keys().next().value!);
    this.outputs.set(key, docs);
    return docs;
  }
}

/**
 * Renders a site's overlay as Kustomize renders {@link writeSiteOverlay}'s directory, in linear
 * time. It writes the full overlay into `dir` (what an update applies, for reading and for
 * `kubectl kustomize <dir>`), then renders it in a scratch directory in two steps:
 * 1. the overlay without its `images` entries (namespace, labels, patches, the environment's
 *    overlay): Kustomize as usual;
 * 2. the images, by Kustomize's images transformer too, over consecutive slices of
 *    `objectsPerPass` objects, each slice with only the entries whose name, read as the regular
 *    expression Kustomize makes of it, occurs in the slice's text (a superset of the entries
 *    that can match; a slice no entry can match is kept as it is).
 * The images transformer changes image fields only, each from its own value and the entries,
 * so the objects are those of the one-step render, in the same order.
 * @param render renders one directory (`kubectl kustomize`, or the provider's kustomize).
 * @returns the rendered objects as one multi-document YAML stream.
 * @throws Error from {@link siteOverlayFiles} (an image without digest, a name pinned twice),
 *   or the renderer's (a broken environment overlay).
 */
export async function renderSiteOverlay(
  dir: string,
  overlay: SiteOverlay,
  render: KustomizeRenderer,
  options: RenderSiteOptions = {},
): Promise<string> {
  writeSiteOverlay(dir, overlay);
  const perPass = options.objectsPerPass ?? IMAGES_PASS_OBJECTS;
  const concurrency = options.concurrency ?? os.availableParallelism();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-render-"));
  try {
    const foreign = overlay.foreign && { ...overlay.foreign, pins: [] };
    const unpinned = { ...overlay, images: [], ...(foreign ? { foreign } : {}) };
    const docs = yamlDocuments(await render(writeSiteOverlay(path.join(work, "site"), unpinned)));
    // Each entry's expression is compiled once, then tried on every slice.
    const entries = imagesEntries(overlay).map((entry) => ({
      entry,
      mayMatch: matcher(entry.name),
    }));
    const fields = fs.readFileSync(path.join(dir, "image-fields.yaml"), "utf8");
    const slices: string[][] = [];
    for (let i = 0; i < docs.length; i += perPass) slices.push(docs.slice(i, i + perPass));
    const rendered = await mapLimit(slices, concurrency, async (slice, i) => {
      const text = slice.join("---\n");
      const used = entries.filter((e) => e.mayMatch(text)).map((e) => e.entry);
      if (used.length === 0) return slice;
      const pass = async () => {
        const passDir = path.join(work, `images-${i}`);
        fs.mkdirSync(passDir);
        fs.writeFileSync(path.join(passDir, "objects.yaml"), text);
        fs.writeFileSync(path.join(passDir, "image-fields.yaml"), fields);
        const kustomization = {
          apiVersion: "kustomize.config.k8s.io/v1beta1",
          kind: "Kustomization",
          resources: ["objects.yaml"],
          configurations: ["image-fields.yaml"],
          images: used,
        };
        fs.writeFileSync(
          path.join(passDir, "kustomization.yaml"),
          stringify(kustomization, YAML_FOR_KUSTOMIZE),
        );
        const out = yamlDocuments(await render(passDir));
        if (out.length !== slice.length) {
          throw new Error(
            `images pass ${i} of site ${overlay.site}: ${slice.length} objects in, ${out.length} out`,
          );
        }
        return out;
      };
      return options.passes
        ? options.passes.get(JSON.stringify([text, fields, used]), pass)
        : pass();
    });
    return rendered.flat().join("---\n");
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Whether an `images` entry named `name` can match an image in a text. Kustomize compiles the
 * entry's name into `^<name>(@sha256…)?(:<tag>)?$` over each image value (api/image
 * IsImageMatched); the name unanchored, without a closing `$` of {@link exactImageName}, finds
 * every such value and maybe more. A name that is no valid JavaScript expression matches all.
 */
function matcher(name: string): (text: string) => boolean {
  try {
    const expression = new RegExp(name.replace(/\$$/, ""));
    return (text) => expression.test(text);
  } catch {
    return () => true;
  }
}

/** The documents of a YAML stream, each as its text without a `---` line, ending with "\n". */
function yamlDocuments(text: string): string[] {
  return parseAllDocuments(text)
    .filter((d) => d.contents !== null)
    .map((d) => {
      const doc = text.slice(d.range[0], d.range[2]).replace(/^---[^\n]*\n/, "");
      return doc.endsWith("\n") ? doc : `${doc}\n`;
    });
}

/**
 * A {@link KustomizeRenderer} over a renderer that returns objects (the provider's kustomize):
 * each object as one JSON document, which YAML reads back exactly.
 */
export function objectsRenderer(
  render: (dir: string) => Promise<readonly unknown[]>,
): KustomizeRenderer {
  return async (dir) => (await render(dir)).map((o) => `${JSON.stringify(o)}\n`).join("---\n");
}
