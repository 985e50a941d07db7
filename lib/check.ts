/**
 * The invariant checker (`npm run rings -- check`; issue 7): reads the registry, and where
 * given the sites' stack outputs and the cluster, and reports every object that breaks one of
 * DESIGN.md's invariants 1, 2, 4 and 5:
 *
 * 1. a version tag whose digest differs from the digest a release recorded for that version
 *    (the release repository's version tags are the ledger of what every version tag pointed
 *    at), two releases that record different digests for one version, and a release version
 *    tag that is not the release its ring tags point at;
 * 2. a ring tag pointing at something that is not a released release, and a release (or the
 *    release of a ring) naming an image that is not in the registry;
 * 4. a container of a site's workloads whose image is not by digest, or whose digest is not
 *    the one the site's outputs record for that repository;
 * 5. a site output whose version, revision or source commits disagree with the labels of the
 *    image it names, or that names an image the registry lacks.
 *
 * It also reports, as rule `provenance` (issue 11), every service image a release, a ring or a
 * site names whose manifests lack BuildKit's SLSA provenance attestation in the mode required
 * (lib/provenance.ts; `max` unless told otherwise).
 *
 * Two halves: `read*` gather a snapshot (registry requests, kubectl), and `*Violations` are
 * pure functions over it, unit tested without I/O.
 */
import * as semver from "semver";
import { z } from "zod";
import type { Stack } from "@pulumi/pulumi/automation";
import { keyPath, showValue, type RepositoryConfig } from "./config";
import { kubectl, type KubectlOptions } from "./kubectl";
import { LABEL_REVISION, LABEL_VERSION, parseImageLabels } from "./labels";
import { mapLimit } from "./limit";
import {
  provenanceProblem,
  readProvenance,
  type ManifestProvenance,
  type ProvenanceRequirement,
} from "./provenance";
import {
  isDigest,
  parseReference,
  RegistryClient,
  RegistryError,
  repositoryName,
  type ImageReference,
} from "./registry";
import { siteNamespace } from "./site";
import { ringTag, StateStore } from "./state-store";
import type { Digest, ReleaseRecord, RingName, Version } from "./types";

// ---------------------------------------------------------------------------------------------
// Violations

/** The DESIGN.md invariants the checker verifies. */
export type CheckedInvariant = 1 | 2 | 4 | 5;

/** What a violation breaks: a DESIGN.md invariant, or the provenance rule of issue 11. */
export type CheckedRule = CheckedInvariant | "provenance";

/** One object that breaks an invariant (or the provenance rule). */
export interface Violation {
  readonly invariant: CheckedRule;
  /**
   * The object that breaks it: a tag (`127.0.0.1:5001/example/backend:0.1.0`), a ring tag,
   * a site output key (`dev-developers: services.backend.version`) or a container
   * (`Deployment/example-dev-developers/backend: container app`).
   */
  readonly object: string;
  /** What the invariant demands of it, with where that comes from. */
  readonly expected: string;
  /** What it is. */
  readonly found: string;
}

const MISSING = "not in the registry";

/**
 * Rows as a table: columns padded to their widest cell, two spaces apart, no trailing blanks.
 * @param rows the header row first; every row has as many cells as the header.
 */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The violations as a table, one row per violation: invariant, object, expected, found. */
export function formatViolations(violations: readonly Violation[]): string {
  return formatTable([
    ["INVARIANT", "OBJECT", "EXPECTED", "FOUND"],
    ...violations.map((v) => [String(v.invariant), v.object, v.expected, v.found]),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Invariants 1 and 2: the registry

/** One version tag of the release repository, as read. */
export interface ReleaseTagState {
  /** The version tag, e.g. `0.1.2`. */
  readonly tag: Version;
  /** What the tag points at. */
  readonly digest: Digest;
  /** The release its labels record; undefined when the image is not a release (see `error`). */
  readonly release?: ReleaseRecord;
  /** Why the image is not a release. */
  readonly error?: string;
}

/** One ring tag (`ring-<name>`) of the release repository, as read. */
export interface RingTagState {
  readonly ring: RingName;
  /** What the ring tag points at; undefined when the ring points at nothing yet. */
  readonly digest?: Digest;
  /** The release its labels record; undefined when there is none (see `error`). */
  readonly release?: ReleaseRecord;
  /** Why the image the ring points at is not a release. */
  readonly error?: string;
}

/** What the registry holds, as far as invariants 1 and 2 are concerned. */
export interface RegistrySnapshot {
  /** `<registry>/<project>/release`. */
  readonly releaseRepository: string;
  /** Every version tag of the release repository. */
  readonly releases: readonly ReleaseTagState[];
  /** Every ring of the ring order, `ante` to `post`. */
  readonly rings: readonly RingTagState[];
  /** What each `repository:version` a release names resolves to now; null: no such tag. */
  readonly tags: Readonly<Record<string, Digest | null>>;
  /** Whether the registry has each `repository@digest` a release or a ring's release names. */
  readonly manifests: Readonly<Record<string, boolean>>;
}

/** `repository:version` of a release's service. */
const versionTagOf = (s: { repository: string; version: Version }) =>
  `${s.repository}:${s.version}`;
/** `repository@digest` of a release's service. */
const imageOf = (s: { repository: string; digest: Digest }) => `${s.repository}@${s.digest}`;

/** The images `release` names that the snapshot says the registry lacks, as rows. */
function missingImages(
  snapshot: RegistrySnapshot,
  object: string,
  release: ReleaseRecord,
): Violation[] {
  return Object.values(release.services)
    .filter((s) => snapshot.manifests[imageOf(s)] !== true)
    .map((s) => ({
      invariant: 2,
      object,
      expected: `release ${release.version} names ${s.service} ${imageOf(s)}`,
      found: MISSING,
    }));
}

/**
 * Invariant 1 over the ledger: every release's version tag holds a release of that version;
 * every service version two releases record has one digest; every version tag a release
 * records still points at the digest the earliest release (in semver order) recorded for it.
 * Invariant 2: no release names an image the registry lacks.
 */
function releaseViolations(snapshot: RegistrySnapshot): Violation[] {
  const out: Violation[] = [];
  const ledger = new Map<string, { digest: Digest; release: Version }>();
  const releases = [...snapshot.releases].sort((a, b) => semver.compare(a.tag, b.tag));
  for (const r of releases) {
    const object = `${snapshot.releaseRepository}:${r.tag}`;
    if (!r.release) {
      out.push({
        invariant: 1,
        object,
        expected: `release ${r.tag}`,
        found: `${r.digest}, not a release: ${r.error}`,
      });
      continue;
    }
    if (r.release.version !== r.tag) {
      out.push({
        invariant: 1,
        object,
        expected: `release ${r.tag}`,
        found: `${r.digest}, release ${r.release.version}`,
      });
    }
    for (const s of Object.values(r.release.services)) {
      const tag = versionTagOf(s);
      const first = ledger.get(tag);
      if (!first) ledger.set(tag, { digest: s.digest, release: r.tag });
      else if (first.digest !== s.digest) {
        out.push({
          invariant: 1,
          object: tag,
          expected: `${first.digest} (release ${first.release})`,
          found: `${s.digest} (release ${r.tag})`,
        });
      }
    }
    out.push(...missingImages(snapshot, object, r.release));
  }
  for (const [tag, first] of ledger) {
    const now = snapshot.tags[tag];
    if (now !== first.digest) {
      out.push({
        invariant: 1,
        object: tag,
        expected: `${first.digest} (release ${first.release})`,
        found: now ?? "no such tag",
      });
    }
  }
  return out;
}

/**
 * Invariant 2 over the rings: a ring tag points at a release that has its version tag and
 * whose images are all in the registry. Invariant 1: that version tag points where the ring does.
 */
function ringViolations(snapshot: RegistrySnapshot): Violation[] {
  const out: Violation[] = [];
  for (const ring of snapshot.rings) {
    if (ring.digest === undefined) continue;
    const object = `${snapshot.releaseRepository}:${ringTag(ring.ring)}`;
    if (!ring.release) {
      out.push({
        invariant: 2,
        object,
        expected: "a release",
        found: `${ring.digest}, not a release: ${ring.error}`,
      });
      continue;
    }
    const version = ring.release.version;
    const tagged = snapshot.releases.find((r) => r.tag === version);
    if (!tagged) {
      out.push({
        invariant: 2,
        object,
        expected: `release ${version} (${snapshot.releaseRepository}:${version})`,
        found: `${ring.digest}, labelled ${version}, which has no version tag`,
      });
    } else if (tagged.digest !== ring.digest) {
      out.push({
        invariant: 1,
        object: `${snapshot.releaseRepository}:${version}`,
        expected: `${ring.digest} (what ${ringTag(ring.ring)} points at)`,
        found: tagged.digest,
      });
    }
    out.push(...missingImages(snapshot, object, ring.release));
  }
  return out;
}

/** Every violation of invariants 1 and 2 in `snapshot` (pure). */
export function registryViolations(snapshot: RegistrySnapshot): Violation[] {
  return [...releaseViolations(snapshot), ...ringViolations(snapshot)];
}

/** What a tag or digest reference resolves to, or null when the registry does not have it. */
async function headDigest(client: RegistryClient, ref: string): Promise<Digest | null> {
  return (await client.headManifest(ref))?.digest ?? null;
}

/**
 * Reads the snapshot of {@link registryViolations}: every version tag and ring tag of the
 * release repository, their releases' labels, and every version tag and image they name.
 * @param concurrency releases, rings or references read at once.
 * @throws {@link RegistryError} when the registry cannot be read.
 */
export async function readRegistry(store: StateStore, concurrency = 4): Promise<RegistrySnapshot> {
  const client = store.client;
  const at = (reference: string) => `${store.releaseRepository}:${reference}`;
  const versions = await store.listVersions();
  const releases = await mapLimit(versions, concurrency, async (tag) => {
    try {
      const release = await store.readRelease(tag);
      return { tag, digest: release.digest, release };
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      const digest = await headDigest(client, at(tag));
      if (digest === null) throw e;
      return { tag, digest, error: (e as Error).message };
    }
  });
  const rings = await mapLimit([...store.rings], concurrency, async (ring) => {
    try {
      const state = await store.readRing(ring);
      return state.release
        ? { ring, digest: state.release.digest, release: state.release }
        : { ring };
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      const digest = await headDigest(client, at(ringTag(ring)));
      if (digest === null) throw e;
      return { ring, digest, error: (e as Error).message };
    }
  });
  const named = [...releases, ...rings].flatMap((r) => Object.values(r.release?.services ?? {}));
  const tags = [
    ...new Set(releases.flatMap((r) => Object.values(r.release?.services ?? {})).map(versionTagOf)),
  ];
  const images = [...new Set(named.map(imageOf))];
  const tagDigests = await mapLimit(tags, concurrency, (t) => headDigest(client, t));
  const present = await mapLimit(images, concurrency, (i) => client.manifestExists(i));
  return {
    releaseRepository: store.releaseRepository,
    releases,
    rings,
    tags: Object.fromEntries(tags.map((t, i) => [t, tagDigests[i]])),
    manifests: Object.fromEntries(images.map((i, n) => [i, present[n]])),
  };
}

// ---------------------------------------------------------------------------------------------
// Invariants 4 and 5: the sites

const nullishString = z.string().nullish();
const sourceOutputSchema = z.object({
  name: z.string(),
  commit: z.string(),
  url: nullishString,
});
const serviceOutputSchema = z.object({
  version: nullishString,
  digest: z.string(),
  ref: z.string(),
  revision: nullishString,
  sources: z.array(sourceOutputSchema).nullish(),
  why: nullishString,
});
const siteOutputsSchema = z.object({
  ring: z.string().min(1),
  environment: z.string().min(1),
  release: nullishString,
  services: z.record(z.string(), serviceOutputSchema),
});

/** What a site's stack outputs record per service (components/site/site.ts `DeployedService`). */
export type ServiceOutput = z.infer<typeof serviceOutputSchema>;
/** The stack outputs of a site the checker reads (index.ts): ring, environment, services. */
export type SiteOutputs = z.infer<typeof siteOutputsSchema>;

/** A site's stack outputs, as `pulumi stack output --json` or the Automation API gives them. */
export interface SiteInput {
  /** The site (stack name) or the file the outputs came from: names the site in violations. */
  readonly site: string;
  /** Plain values, or an Automation API `OutputMap` (`{ key: { value, secret } }`). */
  readonly outputs: unknown;
}

/**
 * Validates a site's stack outputs.
 * @param values plain output values, or an Automation API `OutputMap` (unwrapped here).
 * @param where names the site or file in errors.
 * @returns the outputs, or undefined when there are none (the stack was never deployed).
 * @throws an error per bad key, naming `where`, the key and its value.
 */
export function parseSiteOutputs(values: unknown, where: string): SiteOutputs | undefined {
  if (values === null || typeof values !== "object" || Array.isArray(values)) {
    throw new Error(`${where}: outputs: ${showValue(values)} is not an object`);
  }
  const entries = Object.entries(values);
  if (entries.length === 0) return undefined;
  const isOutputMap = entries.every(([, v]) => v !== null && typeof v === "object" && "value" in v);
  const plain = isOutputMap
    ? Object.fromEntries(entries.map(([k, v]) => [k, (v as { value: unknown }).value]))
    : values;
  const parsed = siteOutputsSchema.safeParse(plain, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw new Error(
    parsed.error.issues
      .map((i) => `${where}: ${keyPath(i.path)}: ${showValue(i.input)}: ${i.message}`)
      .join("\n"),
  );
}

/** The labels of an image, as lib/registry.ts reads them. */
export type Labels = Readonly<Record<string, string>>;

interface PodSpec {
  readonly containers?: readonly { readonly name?: string; readonly image?: unknown }[];
  readonly initContainers?: readonly { readonly name?: string; readonly image?: unknown }[];
}

/** A Deployment, StatefulSet, DaemonSet, Job or CronJob as the API server returns it (JSON). */
export interface Workload {
  readonly kind?: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly spec?: {
    readonly template?: { readonly spec?: PodSpec };
    readonly jobTemplate?: { readonly spec?: { readonly template?: { readonly spec?: PodSpec } } };
  };
}

/** What the checker knows about one site. */
export interface SiteSnapshot {
  /** The site (stack name) or the outputs file. */
  readonly site: string;
  /** The site's namespace (lib/site.ts `siteNamespace`). */
  readonly namespace: string;
  readonly outputs: SiteOutputs;
  /**
   * The labels of each service's image (the repository of its `ref` at its `digest`); null
   * when the registry lacks the image; absent when `ref` or `digest` is malformed.
   */
  readonly labels: Readonly<Record<string, Labels | null>>;
  /** The workloads in the namespace; undefined when the cluster was not read. */
  readonly workloads?: readonly Workload[];
}

/** `image` parsed, or undefined when it is not a valid image reference. */
function referenceOf(image: string): ImageReference | undefined {
  try {
    return parseReference(image);
  } catch {
    return undefined;
  }
}

/** The repository and parsed reference of a service output's `ref`, or undefined. */
function refOf(o: ServiceOutput): { repository: string; ref: ImageReference } | undefined {
  const ref = referenceOf(o.ref);
  return ref && { repository: repositoryName(ref), ref };
}

/** Source commits as `name=commit`, sorted, comma-separated; `(none)` for none. */
function commitsOf(sources: readonly { name: string; commit: string }[]): string {
  const list = sources.map((s) => `${s.name}=${s.commit}`).sort();
  return list.length > 0 ? list.join(", ") : "(none)";
}

/** Invariant 5 for one service output of a site against its image's labels. */
function serviceOutputViolations(site: SiteSnapshot, service: string): Violation[] {
  const o = site.outputs.services[service];
  const key = `${site.site}: services.${service}`;
  const out: Violation[] = [];
  const image = refOf(o);
  if (image?.ref.digest !== o.digest) {
    out.push({ invariant: 5, object: `${key}.ref`, expected: `…@${o.digest}`, found: o.ref });
  }
  const labels = site.labels[service];
  if (!image || labels === undefined) return out;
  if (labels === null) {
    const where = `${image.repository}@${o.digest}`;
    return [...out, { invariant: 5, object: `${key}.digest`, expected: where, found: MISSING }];
  }
  const compare = (field: string, label: string | undefined, output: string | undefined) => {
    if ((label ?? "") !== (output ?? "")) {
      out.push({
        invariant: 5,
        object: `${key}.${field}`,
        expected: label ?? "(no label)",
        found: output ?? "(none)",
      });
    }
  };
  compare("version", labels[LABEL_VERSION], o.version ?? undefined);
  compare("revision", labels[LABEL_REVISION], o.revision ?? undefined);
  let sources: string;
  try {
    sources = commitsOf(parseImageLabels(labels, `${image.repository}@${o.digest}`).sources);
  } catch (e) {
    sources = `(unreadable: ${(e as Error).message})`;
  }
  compare("sources", sources, commitsOf(o.sources ?? []));
  return out;
}

/**
 * Invariant 5 (pure): every service output of the site agrees with its image's labels on
 * version, revision and source commits, its `ref` is its repository at its `digest`, and the
 * registry has that image. Expected is what the image's labels say, found what the output says.
 */
export function outputViolations(site: SiteSnapshot): Violation[] {
  return Object.keys(site.outputs.services)
    .sort()
    .flatMap((service) => serviceOutputViolations(site, service));
}

const BY_DIGEST = /@sha256:[a-f0-9]{64}$/;

/** The pod template's containers and init containers of a workload. */
function containersOf(w: Workload): { name?: string; image?: unknown }[] {
  const spec =
    w.kind === "CronJob" ? w.spec?.jobTemplate?.spec?.template?.spec : w.spec?.template?.spec;
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
}

/**
 * Invariant 4 (pure): every container and init container of the site's workloads names its
 * image by digest, and when its repository is one of the site's services, by the digest the
 * site's outputs record. Images of other repositories only need to be by digest.
 */
export function workloadViolations(site: SiteSnapshot): Violation[] {
  const services = new Map<string, string>();
  for (const [service, o] of Object.entries(site.outputs.services)) {
    const image = refOf(o);
    if (image) services.set(image.repository, service);
  }
  const out: Violation[] = [];
  for (const w of site.workloads ?? []) {
    const where = `${w.kind}/${w.metadata?.namespace ?? site.namespace}/${w.metadata?.name}`;
    for (const c of containersOf(w)) {
      const object = `${where}: container ${c.name}`;
      const image = String(c.image);
      const ref = BY_DIGEST.test(image) ? referenceOf(image) : undefined;
      if (!ref) {
        out.push({
          invariant: 4,
          object,
          expected: "an image by digest (…@sha256:…)",
          found: image,
        });
        continue;
      }
      const service = services.get(repositoryName(ref));
      const recorded = service === undefined ? undefined : site.outputs.services[service];
      if (recorded && recorded.digest !== ref.digest) {
        out.push({
          invariant: 4,
          object,
          expected: `${recorded.digest} (${site.site}: services.${service}.digest)`,
          found: image,
        });
      }
    }
  }
  return out;
}

/** Reads the workloads of a namespace. */
export interface ClusterReader {
  /** Deployments, StatefulSets, DaemonSets, Jobs and CronJobs in `namespace` (none: `[]`). */
  workloads(namespace: string): Promise<Workload[]>;
}

/** The kinds {@link ClusterReader.workloads} lists. */
export const WORKLOAD_KINDS = ["deployments", "statefulsets", "daemonsets", "jobs", "cronjobs"];

/** A {@link ClusterReader} that runs `kubectl get <kinds> -n <namespace> -o json`. */
export function kubectlCluster(opts: KubectlOptions = {}): ClusterReader {
  return {
    async workloads(namespace) {
      const json = await kubectl(opts, [
        "get",
        WORKLOAD_KINDS.join(","),
        "-n",
        namespace,
        "-o",
        "json",
      ]);
      return (JSON.parse(json) as { items?: Workload[] }).items ?? [];
    },
  };
}

/** Options of {@link readSite}. */
export interface ReadSiteOptions {
  readonly client: RegistryClient;
  /** The environments of gitops-rings.yaml (their namespaces). */
  readonly environments: RepositoryConfig["environments"];
  /** Where the site's workloads are read; undefined: the cluster is not checked. */
  readonly cluster?: ClusterReader;
  /** @default 4 */
  readonly concurrency?: number;
}

/**
 * Reads what {@link outputViolations} and {@link workloadViolations} check for one site: its
 * outputs, its images' labels and its namespace's workloads.
 * @returns undefined when the site has no outputs (never deployed).
 * @throws when the outputs are malformed or name an unknown environment (naming the site,
 *   key and value), or when the registry or the cluster cannot be read.
 */
export async function readSite(
  input: SiteInput,
  options: ReadSiteOptions,
): Promise<SiteSnapshot | undefined> {
  const outputs = parseSiteOutputs(input.outputs, input.site);
  if (!outputs) return undefined;
  const environment = options.environments[outputs.environment];
  if (!environment) {
    throw new Error(
      `${input.site}: environment: ${showValue(outputs.environment)} is not an environment of ` +
        `gitops-rings.yaml (${Object.keys(options.environments).join(", ")})`,
    );
  }
  const namespace = siteNamespace(environment.namespace, outputs.ring);
  const services = Object.entries(outputs.services);
  const labels = await mapLimit(services, options.concurrency ?? 4, async ([, o]) => {
    const image = refOf(o);
    if (!image || !isDigest(o.digest)) return undefined;
    try {
      return await options.client.getLabels(`${image.repository}@${o.digest}`);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return null;
      throw e;
    }
  });
  return {
    site: input.site,
    namespace,
    outputs,
    labels: Object.fromEntries(
      services.flatMap(([s], i) => (labels[i] === undefined ? [] : [[s, labels[i]]])),
    ),
    workloads: options.cluster ? await options.cluster.workloads(namespace) : undefined,
  };
}

/** The site input of an Automation API stack: its name and its outputs. */
export async function siteOfStack(stack: Pick<Stack, "name" | "outputs">): Promise<SiteInput> {
  return { site: stack.name, outputs: await stack.outputs() };
}

// ---------------------------------------------------------------------------------------------
// Provenance (issue 11): every image this program built carries BuildKit's attestation

/** What the registry holds of each image's provenance. */
export interface ProvenanceSnapshot {
  readonly required: ProvenanceRequirement;
  /** By `repository@digest`; null: the image is not in the registry (invariants 2 and 5 say so). */
  readonly images: Readonly<Record<string, readonly ManifestProvenance[] | null>>;
}

/** One violation per manifest whose provenance falls short of `snapshot.required` (pure). */
export function provenanceViolations(snapshot: ProvenanceSnapshot): Violation[] {
  const expected =
    `BuildKit SLSA provenance attestation, mode=${snapshot.required} or more, ` +
    "whose subject is the manifest (issue 11, lib/provenance.ts)";
  return Object.entries(snapshot.images).flatMap(([image, manifests]) =>
    (manifests ?? []).flatMap((m) => {
      const found = provenanceProblem(m, snapshot.required);
      if (found === undefined) return [];
      const object = m.platform === "unknown" ? image : `${image} (${m.platform})`;
      return [{ invariant: "provenance" as const, object, expected, found }];
    }),
  );
}

/**
 * Reads the provenance of each image (`repository@digest`), `required` permitting.
 * @throws {@link RegistryError} when the registry cannot be read.
 */
export async function readProvenanceSnapshot(
  client: RegistryClient,
  images: readonly string[],
  required: ProvenanceRequirement,
  concurrency = 4,
): Promise<ProvenanceSnapshot> {
  if (required === "off") return { required, images: {} };
  const read = await mapLimit(images, concurrency, async (image) => {
    try {
      return await readProvenance(client, image);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return null;
      throw e;
    }
  });
  return { required, images: Object.fromEntries(images.map((i, n) => [i, read[n]])) };
}

/**
 * Every service image a release, a ring's release or a site output names. Not the release
 * images themselves: a release is `FROM scratch` with labels only, and BuildKit attaches no
 * attestation to a build without a filesystem (checked with the platform's BuildKit), so
 * the services' attestations are the provenance a release has.
 */
function builtImages(snapshot: RegistrySnapshot, sites: readonly SiteSnapshot[]): string[] {
  const releases = [
    ...snapshot.releases.map((r) => r.release),
    ...snapshot.rings.map((r) => r.release),
  ].filter((r): r is ReleaseRecord => r !== undefined);
  const images = [
    ...releases.flatMap((r) => Object.values(r.services).map(imageOf)),
    ...sites.flatMap((s) =>
      Object.values(s.outputs.services).flatMap((o) => {
        const image = refOf(o);
        return image && isDigest(o.digest) ? [`${image.repository}@${o.digest}`] : [];
      }),
    ),
  ];
  return [...new Set(images)];
}

// ---------------------------------------------------------------------------------------------
// The whole check

/** Options of {@link checkInvariants}. */
export interface CheckOptions {
  /** From gitops-rings.yaml (registry and project possibly overridden): where the ledger is. */
  readonly repository: Pick<RepositoryConfig, "registry" | "project" | "rings" | "environments">;
  /** @default a new {@link RegistryClient} */
  readonly client?: RegistryClient;
  /** Sites whose outputs (invariant 5) and workloads (invariant 4) are checked. @default [] */
  readonly sites?: readonly SiteInput[];
  /** Where workloads are read; undefined: invariant 4 is not checked. */
  readonly cluster?: ClusterReader;
  /** Reads at once. @default 4 */
  readonly concurrency?: number;
  /**
   * The provenance every image must carry (lib/provenance.ts): `max` (the buildctl backend's),
   * `min` (the most the docker-build backend gives), or `off`. @default "max"
   */
  readonly provenance?: ProvenanceRequirement;
}

/** What {@link checkInvariants} found, and how much it looked at. */
export interface CheckResult {
  /** True when there is no violation. */
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  readonly checked: {
    /** Version tags of the release repository. */
    readonly releases: number;
    /** Rings that point at something. */
    readonly rings: number;
    /** Service version tags the releases record. */
    readonly versionTags: number;
    /** Sites with outputs. */
    readonly sites: readonly string[];
    /** Sites given without outputs (never deployed): nothing to check. */
    readonly sitesWithoutOutputs: readonly string[];
    /** Whether the cluster was read. */
    readonly cluster: boolean;
    /** Containers and init containers of the workloads read. */
    readonly containers: number;
    /** Images whose provenance was read, and the mode required of it. */
    readonly provenance: { readonly images: number; readonly required: ProvenanceRequirement };
  };
}

/**
 * Checks DESIGN.md invariants 1 and 2 on the registry, and for every site given, invariant 5
 * on its outputs and (with a cluster) invariant 4 on its namespace's workloads; then the
 * provenance of every image those name.
 * @returns every violation, in the order: registry, then site by site.
 * @throws when the registry or cluster cannot be read, or a site's outputs are malformed.
 */
export async function checkInvariants(options: CheckOptions): Promise<CheckResult> {
  const client = options.client ?? new RegistryClient();
  const { registry, project, rings, environments } = options.repository;
  const store = new StateStore({ registry, project, rings, client });
  const concurrency = options.concurrency ?? 4;
  const snapshot = await readRegistry(store, concurrency);
  const given = options.sites ?? [];
  const read = await mapLimit(given, concurrency, (site) =>
    readSite(site, { client, environments, cluster: options.cluster, concurrency }),
  );
  const sites = read.filter((s): s is SiteSnapshot => s !== undefined);
  const provenance = await readProvenanceSnapshot(
    client,
    builtImages(snapshot, sites),
    options.provenance ?? "max",
    concurrency,
  );
  const violations = [
    ...registryViolations(snapshot),
    ...sites.flatMap((s) => [...outputViolations(s), ...workloadViolations(s)]),
    ...provenanceViolations(provenance),
  ];
  return {
    ok: violations.length === 0,
    violations,
    checked: {
      releases: snapshot.releases.length,
      rings: snapshot.rings.filter((r) => r.digest !== undefined).length,
      versionTags: Object.keys(snapshot.tags).length,
      sites: sites.map((s) => s.site),
      sitesWithoutOutputs: given.filter((_, i) => read[i] === undefined).map((s) => s.site),
      cluster: options.cluster !== undefined,
      containers: sites.flatMap((s) => (s.workloads ?? []).flatMap(containersOf)).length,
      provenance: { images: Object.keys(provenance.images).length, required: provenance.required },
    },
  };
}
