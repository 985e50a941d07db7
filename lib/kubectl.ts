/**
 * Applies a site's generated Kustomize overlay with `kubectl apply --server-side -k`,
 * waits for its Deployments to roll out, and deletes the objects a previous apply made
 * that the overlay no longer has.
 *
 * This is the deploy path of the local platform, where the `kubernetes` provider plugin
 * cannot be built (see README, "The local platform"). The `@pulumi/kubernetes` path applies
 * the same overlay with `kustomize.v2.Directory`.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { findImages, isByDigest, useName, type ImageField } from "./images";
import { ImagesPassCache, renderSiteOverlay, type SiteOverlay } from "./kustomize";
import { awaitRollouts, type RolloutOptions } from "./rollout";

const run = promisify(execFile);

/** Identity of one applied object. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/** Options shared by every kubectl call. */
export interface KubectlOptions {
  /** Path of the kubeconfig. @default $KUBECONFIG */
  readonly kubeconfig?: string;
  /** kubectl binary. @default "kubectl" on PATH */
  readonly kubectl?: string;
  /** How long to wait for the Deployments' rollouts, all together, in seconds. @default 300 */
  readonly timeoutSeconds?: number;
}

/** Field manager of every server-side apply this project makes. */
export const FIELD_MANAGER = "gitops-rings";

/**
 * Runs kubectl with `args` (and `input` on stdin).
 * @returns its stdout.
 * @throws Error naming the command and kubectl's message.
 */
export async function kubectl(
  opts: KubectlOptions,
  args: string[],
  input?: string,
): Promise<string> {
  const all = opts.kubeconfig ? ["--kubeconfig", opts.kubeconfig, ...args] : args;
  try {
    const child = run(opts.kubectl ?? "kubectl", all, { maxBuffer: 64 * 1024 * 1024 });
    if (input !== undefined) child.child.stdin?.end(input);
    const { stdout } = await child;
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    // stderr is "" (not undefined) when kubectl was killed or printed nothing.
    throw new Error(`kubectl ${args.join(" ")}: ${e.stderr?.trim() || e.message.trim()}`);
  }
}

/** Renders a Kustomize directory with `kubectl kustomize <dir>`: a multi-document YAML stream. */
export async function kustomize(dir: string, opts: KubectlOptions = {}): Promise<string> {
  return kubectl(opts, ["kustomize", dir]);
}

/** The images passes {@link kustomizeSiteOverlay} rendered in this process. */
const KUSTOMIZE_PASSES = new ImagesPassCache();

/**
 * Renders a site's overlay with `kubectl kustomize` (lib/kustomize.ts `renderSiteOverlay`), its
 * images passes cached for the process: the Site's render of an update reuses the planning
 * step's, all but the passes whose images changed (issue 10).
 * @returns the rendered objects as one multi-document YAML stream.
 */
export function kustomizeSiteOverlay(dir: string, overlay: SiteOverlay): Promise<string> {
  return renderSiteOverlay(dir, overlay, (d) => kustomize(d), { passes: KUSTOMIZE_PASSES });
}

/** Renders an overlay (`kubectl kustomize <dir>`) and returns its objects' identities. */
export async function renderOverlay(
  dir: string,
  opts: KubectlOptions = {},
): Promise<{ yaml: string; objects: ObjectRef[] }> {
  const yaml = await kustomize(dir, opts);
  return { yaml, objects: objectRefs(yaml) };
}

/** Identities of the objects in a multi-document YAML stream. */
export function objectRefs(yaml: string): ObjectRef[] {
  return manifestObjects(yaml).map(objectRef);
}

/** The members of a rendered Kubernetes object that this program reads. */
export interface ManifestObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

/**
 * Parses a multi-document YAML stream (a render, a KubectlApply state's manifests) into its
 * objects, as YAML 1.2 reads them; empty documents and documents without a kind are left out.
 */
export function manifestObjects(manifests: string): ManifestObject[] {
  return parseAllDocuments(manifests)
    .map((d) => d.toJS() as ManifestObject | null)
    .filter((o): o is ManifestObject => !!o && typeof o === "object" && !!o.kind);
}

/**
 * The identity of one parsed object (apiVersion, kind, namespace when it has one, name), so
 * that a caller holding parsed objects does not write them out and parse them again.
 */
export function objectRef(o: ManifestObject): ObjectRef {
  return {
    apiVersion: o.apiVersion as string,
    kind: o.kind as string,
    // Cluster-scoped objects have no namespace member.
    ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
    name: o.metadata?.name as string,
  };
}

/**
 * What makes two refs the same object on the API server: group, kind, namespace and name. Not
 * the version: `autoscaling/v1` and `autoscaling/v2` HorizontalPodAutoscaler `x` are one object,
 * which an overlay moving to the newer version must not prune.
 */
export function objectKey(o: ObjectRef): string {
  const group = o.apiVersion.includes("/") ? o.apiVersion.slice(0, o.apiVersion.indexOf("/")) : "";
  return `${group}/${o.kind}/${o.namespace ?? ""}/${o.name}`;
}

/**
 * Applies rendered manifests server-side (exactly what was diffed, not a re-render), waits
 * for every Deployment to roll out, all at once under one timeout (lib/rollout.ts), then deletes the objects of `previous` that `manifests` no longer has.
 * @param manifests multi-document YAML, as {@link renderOverlay} returns it.
 * @returns the identities of the applied objects (to pass as `previous` next time).
 * @throws Error listing every container whose image is not pinned by digest (DESIGN.md
 *   invariant 4), before anything is applied; Error naming the kubectl command and its message
 *   when the API server refuses or a rollout does not complete in time.
 */
export async function applyManifests(
  manifests: string,
  previous: readonly ObjectRef[],
  opts: RolloutOptions = {},
): Promise<ObjectRef[]> {
  // The second line of defence of invariant 4 (the planning step checks first): refuse before
  // anything is applied. Thrown here, in the applier, the update shows this message alone.
  const byTag = imagesNotByDigest(manifests);
  if (byTag.length > 0) {
    throw new Error(`refusing to apply manifests with ${imagesNotByDigestMessage(byTag)}`);
  }
  const objects = objectRefs(manifests);
  await kubectl(
    opts,
    ["apply", "--server-side", "--force-conflicts", `--field-manager=${FIELD_MANAGER}`, "-f", "-"],
    manifests,
  );
  await awaitRollouts(
    objects.filter((x) => x.kind === "Deployment"),
    opts,
  );
  const now = new Set(objects.map(objectKey));
  await deleteObjects(
    previous.filter((o) => !now.has(objectKey(o))),
    opts,
  );
  return objects;
}

/**
 * Deletes objects (namespaced ones first, Namespaces last); missing objects are ignored, and so
 * are objects whose type the server no longer has (their CustomResourceDefinition went first).
 */
export async function deleteObjects(
  objects: readonly ObjectRef[],
  opts: KubectlOptions = {},
): Promise<void> {
  const ordered = [...objects].sort(
    (a, b) => Number(a.kind === "Namespace") - Number(b.kind === "Namespace"),
  );
  for (const o of ordered) {
    // kind.version.group is unambiguous; the core group has no group suffix.
    const [group, version] = o.apiVersion.includes("/")
      ? o.apiVersion.split("/")
      : ["", o.apiVersion];
    const resource = group ? `${o.kind}.${version}.${group}` : o.kind;
    const args = ["delete", resource, o.name, "--ignore-not-found", "--wait=false"];
    if (o.namespace) args.push("-n", o.namespace);
    await kubectl(opts, args).catch((err: Error) => {
      if (!/the server doesn't have a resource type/.test(err.message)) throw err;
    });
  }
}

/**
 * Every image that is not referenced by digest (`name@sha256:<64 hex>`), as
 * `<Kind>/<namespace>/<name>: <init |ephemeral |>container <c>: "<image>"`: containers, init
 * and ephemeral containers of Pods, PodTemplates, CronJobs' job templates and every kind with a
 * pod template (Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, custom kinds), and the
 * values at `fields` (lib/images.ts findImages). A site applies images by digest only
 * (DESIGN.md invariant 4); after the site's overlay pinned every service's image and every
 * image the planning step resolved, an image here is one that reached the deploy unresolved.
 * @param manifests a multi-document YAML stream, or the objects themselves.
 * @param fields extra image fields of custom resources (site config `images.fields`).
 * @returns one line per container or field, in stream order.
 */
export function imagesNotByDigest(
  manifests: string | readonly unknown[],
  fields: readonly ImageField[] = [],
): string[] {
  const objects =
    typeof manifests === "string"
      ? parseAllDocuments(manifests).map((d) => d.toJS() as unknown)
      : manifests;
  return findImages(objects, fields)
    .filter((use) => !isByDigest(use.image))
    .map((use) => `${useName(use)}: ${JSON.stringify(use.image)}`);
}

/**
 * The error text for containers whose image is not pinned by digest, shared by the planning
 * step (lib/site.ts) and {@link applyManifests}.
 * @param found lines as {@link imagesNotByDigest} returns them (at least one).
 * @returns what is wrong, how to name a service's image, then one line per container.
 */
export function imagesNotByDigestMessage(found: readonly string[]): string {
  return (
    `images that are neither a service's nor pinned by digest (a site applies images by digest ` +
    `only; name a service's image by its service name, <project>/<image>, ` +
    `<registry>/<project>/<image> or an alias in gitops-rings.yaml, with any tag or none):\n` +
    found.join("\n")
  );
}
