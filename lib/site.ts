/**
 * The site plan: everything a site's update does, computed up front as plain values before
 * any resource exists (STYLE.md rule 5; DESIGN.md flows 1, 2, 4, 5, 7). The program entry
 * computes it with {@link prepareSite} in an explicit async step, then hands it to the Site
 * component, which only wires resources.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import {
  CONFIG_NAMESPACE,
  ConfigError,
  RELEASE,
  parseRepositoryConfig,
  parseSiteConfig,
  servicePaths,
  siteValuesFromConfigMap,
  type Policy as ConfigPolicy,
  type Pin,
  type RepositoryConfig,
  type ServiceConfig,
  type SiteConfig,
  type SiteConfigOptions,
} from "./config";
import { assembleContext } from "./context";
import { GitSnapshot, computeRevisionInput } from "./revision";
import {
  ServiceTriggers,
  imageNameOwners,
  referencePins,
  serviceImagesOf,
  type DockerfileInfo,
} from "./dockerfile";
import {
  findImages,
  foreignOverlay,
  formatForeignImages,
  isByDigest,
  resolveForeignImages,
  useName,
  writtenName,
  type ForeignImage,
  type ForeignOverlay,
  type PreviousForeignImages,
} from "./images";
import { splitPhases } from "./jobs";
import {
  imagesNotByDigest,
  imagesNotByDigestMessage,
  kustomizeSiteOverlay,
  manifestObjects,
} from "./kubectl";
import { objectsRenderer, pinnedImages, renderSiteOverlay, type ServiceDigest } from "./kustomize";
import { cacheRoot, checkout, resolveBranch } from "./git";
import type { ImageLabelInput } from "./labels";
import { formatPlan, planRelease, type PlanReason, type PlanServiceInput } from "./plan";
import { selectImage, type Policy } from "./policies";
import { RegistryClient, parsePlatform } from "./registry";
import { credentialsOf, registryClientWith, type RegistryAuth } from "./registry-auth";
import { StateStore } from "./state-store";
import type { ImageRecord, ReleaseRecord, SourceCommit, Version } from "./types";
import { nextRing } from "./version";

/** What an update does with one image. */
export type ImageAction = "build" | "keep" | "reuse";

/** Why an image is built or reused (DESIGN.md flow 7): lib/plan.ts decides it. */
export type ImageReason = PlanReason;

/** Which builder makes images (README, "The local platform"). */
export type ImageBuilder =
  | { readonly kind: "docker-build"; readonly name?: string }
  | { readonly kind: "buildctl"; readonly addr: string };

/** How a site applies its manifests. */
export type Deployer =
  { readonly kind: "kubernetes" } | { readonly kind: "kubectl"; readonly kubeconfig?: string };

/** One service's step in a building site. */
export interface ServiceStep {
  readonly service: string;
  /** `<registry>/<project>/<image>`. */
  readonly repository: string;
  readonly action: ImageAction;
  readonly reason: ImageReason;
  /** The version in the ring now, if any. */
  readonly currentVersion?: string;
  /** The version this update gives the image (the current one when not building). */
  readonly version: string;
  /**
   * The revision, when known up front; absent when a dependency rebuilds in this update, as
   * the revision covers the dependency's new digest (the Site computes it from `content`).
   */
  readonly revision?: string;
  /** The content digest of the revision (lib/revision.ts), without dependency digests. */
  readonly content: string;
  /** The existing image's digest, for `reuse` (and `keep`, where it is the expected result). */
  readonly digest?: string;
  /** Everything lib/labels.ts `imageLabels` needs but the revision. */
  readonly labelInput: Omit<ImageLabelInput, "revision">;
  /** Versions of the dependency images, by service name (the `dependency.*` labels). */
  readonly dependencies: Readonly<Record<string, string>>;
  /** Build args whose value is a dependency image (`FROM ${BASE}`), mapped to that dependency's service name. */
  readonly dependencyArgs: Readonly<Record<string, string>>;
  /**
   * Image names the Dockerfile uses for a dependency as written (`FROM base`, `COPY
   * --from=base`, `RUN --mount=from=base`), mapped to that dependency's service name; the build
   * passes each as a named context (`docker-image://<repo>@<digest>`), which BuildKit
   * substitutes for the name in every instruction (lib/dockerfile.ts referencePins).
   */
  readonly namedContexts: Readonly<Record<string, string>>;
  /**
   * The service whose image the built stage is FROM (through any chain of stages), when it is
   * one: its labels are not inherited by this image (lib/publish.ts; DESIGN.md invariant 7).
   */
  readonly baseService?: string;
  readonly build: {
    /** Absolute path. */
    readonly context: string;
    /** Absolute path. */
    readonly dockerfile: string;
    readonly buildArgs: Readonly<Record<string, string>>;
    readonly target?: string;
    readonly platforms: readonly string[];
  };
  readonly sources: readonly SourceCommit[];
}

/** One image a non-building site deploys, resolved to a digest. */
export interface DeployImage extends Pick<ImageRecord, "repository" | "digest" | "sources"> {
  readonly version?: string;
  readonly revision?: string;
  /** `ring testers`, `pin version 0.1.0`, `policy semver ^0.2`, … */
  readonly why: string;
}

/** The whole plan of one site's update. */
export interface SitePlan {
  /** The stack name. */
  readonly site: string;
  readonly project: string;
  readonly vendor?: string;
  /** Registry `host[:port][/prefix]`. */
  readonly registry: string;
  readonly ring: string;
  /** The configured rings in order, without `ante` and `post`. */
  readonly rings: readonly string[];
  /** The ring after `ring` (`post` after the last configured ring). */
  readonly nextRing: string;
  readonly environment: {
    readonly name: string;
    /** Absolute path of the environment's Kustomize overlay. */
    readonly overlay: string;
    readonly namespace: string;
  };
  /** Whether this update builds (then `services` and `release` say what). */
  readonly build: boolean;
  readonly builder: ImageBuilder;
  readonly deployer: Deployer;
  /** How long the deploy waits for all rollouts together, in seconds (site config). */
  readonly rolloutTimeout: number;
  /** Building sites: one step per service in dependency order. Empty otherwise. */
  readonly services: readonly ServiceStep[];
  /** Building sites: the release step. */
  readonly release: {
    readonly repository: string;
    readonly action: ImageAction;
    readonly currentVersion?: string;
    /** The digest of the release the ring pointed at when planned (the ring pointer's `expected`). */
    readonly currentDigest?: string;
    readonly version: string;
    readonly digest?: string;
    /** The release version of the next ring, if it has one (what the version rule read). */
    readonly nextRingVersion?: string;
  };
  /** Non-building sites: the release version and the images they deploy, by service. */
  readonly deploy: {
    readonly release?: string;
    /** The digest of that release (what the site's verification names). */
    readonly releaseDigest?: string;
    readonly images: Readonly<Record<string, DeployImage>>;
  };
  /** The release plan as a table (lib/plan.ts formatPlan). */
  readonly table: string;
  /**
   * Every name the manifests may use for a service's image (service name, `<project>/<image>`,
   * `<registry>/<project>/<image>`, aliases) mapped to the service (lib/dockerfile.ts
   * imageNameOwners). @default each service's own name only
   */
  readonly imageNames?: Readonly<Record<string, string>>;
  /**
   * The images the site deploys that no service builds, resolved to digests by the planning
   * step, keyed by reference as the manifests write it (lib/images.ts; seed 002). @default {}
   */
  readonly foreignImages?: Readonly<Record<string, ForeignImage>>;
  /**
   * What the site's overlay adds for them (their pins, the annotation recording their origins,
   * the site's extra image fields); both deploy paths write it (lib/kustomize.ts). @default none
   */
  readonly foreign?: ForeignOverlay;
  /**
   * Registry credentials from the stack config (`gitops-rings:registryAuth`; README, "Registry
   * credentials"), by registry: the docker-build backend's `registries` and the site's image
   * pull secret, both as Pulumi secrets. Plain values: never log a plan's credentials.
   * @default {} (no pull secret, builders use the caller's docker config)
   */
  readonly registryAuth?: RegistryAuth;
  /**
   * The kubeconfig of the site's deploy identity, with its short-lived token (lib/identity.ts),
   * when `gitops-rings:identity` is true: the deploy applies with it, as a Pulumi secret.
   * Plain values: never log it. @default none (the caller's kubeconfig)
   */
  readonly identityKubeconfig?: string;
}

/** Where a previous update of this stack left its image resources (the `builtImages` output). */
export type BuiltImages = Readonly<
  Record<string, { readonly version: string; readonly digest: string }>
>;

/** Options of {@link prepareSite}. */
export interface PrepareOptions {
  /** The version repository root (holds `gitops-rings.yaml`). */
  readonly root: string;
  /** The stack name: the site. */
  readonly stack: string;
  /** The repository and site config, as {@link readConfig} validated them. */
  readonly config: { readonly repo: RepositoryConfig; readonly site: SiteConfig };
  /** What this stack's previous update built (its `builtImages` output). @default {} */
  readonly previous?: BuiltImages;
  /**
   * The images no service builds that this stack's previous update deployed (its
   * `foreignImages` output), so that the plan marks those whose digest changed. @default {}
   */
  readonly previousImages?: PreviousForeignImages;
  /** Environment: `GITOPS_RINGS_PLATFORM`, `BUILDKIT_HOST`, `KUBECONFIG`, `GITOPS_RINGS_BUILDX_BUILDER`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly client?: RegistryClient;
  /**
   * How the planning step renders the site's overlay on the `kubernetes` deployer (index.ts
   * passes the kubernetes provider's kustomize). The local platform's `kubectl` deployer always
   * uses `kubectl kustomize`. @default `kubectl kustomize`
   */
  readonly renderOverlay?: OverlayRenderer;
}

/** Renders a Kustomize directory into its objects. */
export type OverlayRenderer = (dir: string) => Promise<readonly unknown[]>;

/** The file names used in error messages, relative to the repository root. */
export const REPOSITORY_FILE = "gitops-rings.yaml";
export const stackFile = (stack: string) => `stacks/Pulumi.${stack}.yaml`;

/**
 * Reads and validates the repository and site config, and checks that the site's environment
 * overlay is a Kustomize directory (no other I/O).
 * @param options `isSecret` when `config` comes from the Pulumi runtime (secrets decrypted), so
 *   that a registry password stored in plain text is refused (lib/config.ts).
 * @throws {ConfigError} naming file, key and value (DESIGN.md invariant 6).
 */
export function readConfig(
  root: string,
  stack: string,
  config: Readonly<Record<string, unknown>>,
  options: SiteConfigOptions = {},
): { repo: RepositoryConfig; site: SiteConfig } {
  const text = fs.readFileSync(path.join(root, REPOSITORY_FILE), "utf8");
  const repo = parseRepositoryConfig(text, REPOSITORY_FILE);
  const site = parseSiteConfig(siteValuesFromConfigMap(config), stackFile(stack), repo, options);
  const rival = buildingRival(root, stack, repo, site);
  if (rival !== undefined) {
    throw new ConfigError([
      {
        file: stackFile(stack),
        key: `${CONFIG_NAMESPACE}:build`,
        message:
          `${rival} builds ring ${site.ring} in registry ${site.registry ?? repo.registry} too; ` +
          `two building sites of one ring would plan the same versions, so exactly one site per ring ` +
          `and registry builds (set gitops-rings:build to false on the other)`,
      },
    ]);
  }
  const overlay = repo.environments[site.environment].overlay;
  const names = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
  if (!names.some((n) => fs.existsSync(path.join(root, overlay, n)))) {
    throw new ConfigError([
      {
        file: REPOSITORY_FILE,
        key: `environments.${site.environment}.overlay`,
        message: `"${overlay}" has no kustomization.yaml`,
      },
    ]);
  }
  return { repo, site };
}

/**
 * The stack file of another site that builds the same ring in the same registry as `site`, if
 * any (issue 7, item 2: two building sites of one ring would race for the same version tags).
 * Reads every `stacks/Pulumi.<site>.yaml`; a file that does not parse is left to its own
 * stack's validation.
 */
export function buildingRival(
  root: string,
  stack: string,
  repo: RepositoryConfig,
  site: SiteConfig,
): string | undefined {
  if (!site.build) return undefined;
  const dir = path.join(root, "stacks");
  const registry = site.registry ?? repo.registry;
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  for (const name of files) {
    const m = /^Pulumi\.(.+)\.ya?ml$/.exec(name);
    if (!m || m[1] === stack) continue;
    let other: SiteConfig;
    try {
      const doc = parseYaml(fs.readFileSync(path.join(dir, name), "utf8")) as {
        config?: Record<string, unknown>;
      };
      const values = siteValuesFromConfigMap(doc?.config ?? {});
      other = parseSiteConfig(values, `stacks/${name}`, repo);
    } catch {
      continue;
    }
    if (other.build && other.ring === site.ring && (other.registry ?? repo.registry) === registry) {
      return `stacks/${name}`;
    }
  }
  return undefined;
}

/**
 * A site's namespace: its environment's namespace suffixed with its ring, so that the sites of
 * one environment (one per ring) can share a cluster without touching each other's objects.
 * @throws Error when the result is longer than a DNS label (63 characters).
 */
export function siteNamespace(environmentNamespace: string, ring: string): string {
  const ns = `${environmentNamespace}-${ring}`;
  if (ns.length > 63) {
    throw new Error(
      `namespace ${ns} (environment namespace + "-" + ring) is longer than 63 characters`,
    );
  }
  return ns;
}

/** The builder and deployer for an environment (README, "The local platform"). */
export function platformOf(env: Readonly<Record<string, string | undefined>>): {
  builder: ImageBuilder;
  deployer: Deployer;
} {
  if (env.GITOPS_RINGS_PLATFORM === "local") {
    return {
      builder: { kind: "buildctl", addr: env.BUILDKIT_HOST ?? "tcp://127.0.0.1:1234" },
      deployer: { kind: "kubectl", ...(env.KUBECONFIG ? { kubeconfig: env.KUBECONFIG } : {}) },
    };
  }
  if (env.GITOPS_RINGS_PLATFORM !== undefined && env.GITOPS_RINGS_PLATFORM !== "") {
    throw new Error(
      `GITOPS_RINGS_PLATFORM: "${env.GITOPS_RINGS_PLATFORM}" is not "local" (or unset)`,
    );
  }
  const name = env.GITOPS_RINGS_BUILDX_BUILDER;
  return {
    builder: { kind: "docker-build", ...(name ? { name } : {}) },
    deployer: { kind: "kubernetes" },
  };
}

/**
 * The source commits of a service: pinned in stack config, pinned in the service, or the branch
 * head; sorted by source name, as lib/labels.ts reads them back from an image.
 */
async function resolveSources(service: ServiceConfig, site: SiteConfig): Promise<SourceCommit[]> {
  const sources = await Promise.all(
    service.sources.map(async (src) => ({
      name: src.name,
      url: src.url,
      commit:
        site.sourceCommits[`${service.name}/${src.name}`] ??
        src.commit ??
        (await resolveBranch(src.url, src.branch as string)),
    })),
  );
  return sources.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Computes the whole plan of one site's update, reading the registry, git and the build
 * contexts but changing nothing (DESIGN.md flows 1, 2, 4, 5, 7; preview runs it too).
 * @throws {ConfigError} for bad config, Dockerfiles or dependency cycles, before any resource
 *   exists (invariant 6); Error naming the ring, service or policy when the registry lacks
 *   what the site asks for.
 */
export async function prepareSite(options: PrepareOptions): Promise<SitePlan> {
  const env = options.env ?? process.env;
  const { repo, site } = options.config;
  const registry = site.registry ?? repo.registry;
  // Manifests by digest and image configs are immutable: cached on disk, so a no-op plan reads
  // only tags and ring pointers from the registry (issue 10).
  const registryAuth = credentialsOf(site.registryAuth ?? {});
  const client =
    options.client ?? registryClientWith(registryAuth, { cacheDir: registryCacheDir() });
  options = { ...options, client };
  const store = new StateStore({
    registry,
    project: repo.project,
    rings: repo.rings,
    client,
    vendor: repo.vendor,
  });
  const environment = repo.environments[site.environment];
  const base = {
    site: options.stack,
    project: repo.project,
    ...(repo.vendor !== undefined ? { vendor: repo.vendor } : {}),
    registry,
    ring: site.ring,
    rings: repo.rings,
    nextRing: nextRing(repo.rings, site.ring) ?? "post",
    environment: {
      name: environment.name,
      overlay: path.resolve(options.root, environment.overlay),
      namespace: siteNamespace(environment.namespace, site.ring),
    },
    ...platformOf(env),
    rolloutTimeout: site.rolloutTimeout ?? 300,
    imageNames: Object.fromEntries(imageNameOwners(serviceImagesOf(repo, site.registry))),
    ...(Object.keys(registryAuth).length > 0 ? { registryAuth } : {}),
  };
  const identity = site.identity ? await deployIdentity(options.stack, base) : {};
  const plan = site.build
    ? await planBuild(options, repo, site, store, base)
    : await planDeploy(repo, site, store, client, base);
  const resolved = await resolveManifestImages(plan, options, client);
  const table = formatForeignImages(resolved.foreignImages, options.previousImages);
  return {
    ...plan,
    ...resolved,
    ...identity,
    table: table.length > 0 ? `${plan.table}\n\n${table.join("\n")}` : plan.table,
  };
}

/**
 * The kubeconfig of a site's deploy identity: a token requested now, with the caller's
 * kubeconfig, from the TokenRequest API (lib/identity.ts), before anything is built.
 */
async function deployIdentity(
  stack: string,
  base: Pick<SitePlan, "environment" | "deployer">,
): Promise<{ identityKubeconfig: string }> {
  if (base.deployer.kind !== "kubectl") {
    throw new ConfigError([
      {
        file: stackFile(stack),
        key: `${CONFIG_NAMESPACE}:identity`,
        message:
          "true is supported on the kubectl deployer (GITOPS_RINGS_PLATFORM=local) only; with " +
          "@pulumi/kubernetes, give the kubernetes provider the identity's kubeconfig instead",
      },
    ]);
  }
  const kubeconfig = base.deployer.kubeconfig;
  const { identityKubeconfig } = await import("./identity");
  return {
    identityKubeconfig: await identityKubeconfig(
      base.environment.namespace,
      stack,
      kubeconfig ? { kubeconfig } : {},
    ),
  };
}

/**
 * The digest the planning step gives the images this update builds: their digests are known
 * only once built, and any valid digest shows whether the manifests name them by digest.
 */
const NOT_BUILT_YET = `sha256:${"0".repeat(64)}`;

/**
 * Renders the site's overlay as the deploy will, before anything is built or pushed, and
 * resolves every image no service builds to a digest (DESIGN.md invariants 4 and 6; seed 002,
 * as kbld does over rendered manifests). First render: every service's image pinned by digest
 * under every name teams write (lib/kustomize.ts pinnedImages), images the update builds with
 * a placeholder digest; every other image (containers, init and ephemeral containers of every
 * workload kind, and the site's extra `images.fields`) is checked against the site's rules and
 * resolved through the registry client (lib/images.ts resolveForeignImages). Second render,
 * with those pinned too: every image must now be by digest, each at what it resolved to.
 * Rendered with `kubectl kustomize` on the local platform, else with
 * {@link PrepareOptions.renderOverlay}.
 * @param client the planning step's registry client (the site's credentials, the content cache).
 * @returns the resolved images by reference as written, and the overlay's part for them.
 * @throws {ConfigError} naming the environment's overlay and, per container whose image breaks
 *   a rule or cannot be resolved (no such tag or manifest, access denied, registry unreachable),
 *   its object, container and reference.
 */
async function resolveManifestImages(
  plan: SitePlan,
  options: PrepareOptions,
  client: RegistryClient,
): Promise<{ foreignImages: Record<string, ForeignImage>; foreign: ForeignOverlay }> {
  const { repo, site } = options.config;
  const images: Record<string, ServiceDigest> = plan.build
    ? Object.fromEntries(
        plan.services.map((s) => [
          s.service,
          { repository: s.repository, digest: s.digest ?? NOT_BUILT_YET },
        ]),
      )
    : { ...plan.deploy.images };
  const serviceRepositories = new Set(Object.values(images).map((i) => i.repository));
  const providerRenderer =
    plan.deployer.kind === "kubernetes" && options.renderOverlay
      ? objectsRenderer(options.renderOverlay)
      : undefined;
  const file = path.relative(options.root, plan.environment.overlay) || ".";
  const fields = site.images.fields;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-plan-"));
  const render = async (foreign: ForeignOverlay) => {
    const overlay = {
      environmentOverlay: plan.environment.overlay,
      namespace: plan.environment.namespace,
      site: plan.site,
      ring: plan.ring,
      release: plan.build ? plan.release.version : (plan.deploy.release ?? ""),
      images: pinnedImages(images, plan.imageNames),
      foreign,
    };
    return manifestObjects(
      providerRenderer
        ? await renderSiteOverlay(dir, overlay, providerRenderer)
        : await kustomizeSiteOverlay(dir, overlay),
    );
  };
  try {
    const objects = await render({ pins: [], annotations: [], fields });
    try {
      // Phase annotations are input too: a bad one fails here, before anything is created.
      splitPhases(objects, "");
    } catch (err) {
      throw new ConfigError([{ file, message: (err as Error).message }]);
    }
    const uses = findImages(objects, fields).filter(
      (u) => !(isByDigest(u.image) && serviceRepositories.has(writtenName(u.image))),
    );
    const platforms = [...new Set(Object.values(repo.services).flatMap((s) => s.platforms))].map(
      parsePlatform,
    );
    const { images: resolved, problems } = await resolveForeignImages(uses, {
      client,
      rules: site.images,
      stackFile: stackFile(plan.site),
      platforms,
    });
    if (problems.length > 0) {
      throw new ConfigError(problems.map((p) => ({ file, key: p.where, message: p.message })));
    }
    const foreign = foreignOverlay(uses, resolved, fields);
    // Nothing to pin or annotate: the overlay is the one just rendered (a render of hundreds of
    // objects takes seconds), else render it again with the foreign images pinned.
    const unchanged = foreign.pins.length === 0 && foreign.annotations.length === 0;
    const rendered = findImages(unchanged ? objects : await render(foreign), fields);
    const found = imagesNotByDigest(rendered, fields);
    if (found.length > 0) {
      throw new ConfigError([{ file, message: `names ${imagesNotByDigestMessage(found)}` }]);
    }
    // Kustomize pinned each reference exactly where it was written, and nothing else.
    const expected = new Map(uses.map((u) => [useName(u), resolved[u.image]?.image]));
    for (const use of rendered) {
      const want = expected.get(useName(use));
      if (want !== undefined && use.image !== want) {
        throw new Error(`${file}: ${useName(use)}: pinned to "${use.image}", not "${want}"`);
      }
    }
    return { foreignImages: resolved, foreign };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

type PlanBase = Omit<SitePlan, "build" | "services" | "release" | "deploy" | "table">;

async function planBuild(
  options: PrepareOptions,
  repo: RepositoryConfig,
  site: SiteConfig,
  store: StateStore,
  base: PlanBase,
): Promise<SitePlan> {
  const previous = options.previous ?? {};
  const images = serviceImagesOf(repo, site.registry);
  const triggers = new ServiceTriggers(Object.keys(repo.services));
  // One read of git per repository for all the services in it.
  const gitSnapshot = new GitSnapshot();
  const reads = Object.fromEntries(
    await Promise.all(
      Object.values(repo.services).map(async (service) => {
        const sources = await resolveSources(service, site);
        const checkouts = Object.fromEntries(
          await Promise.all(
            sources.map(async (src) => [src.name, await checkout(src.url, src.commit)] as const),
          ),
        );
        const located = servicePaths(options.root, service, checkouts);
        const paths = {
          ...located,
          context: assembleContext({
            root: options.root,
            service,
            context: located.context,
            checkouts,
            file: REPOSITORY_FILE,
          }),
        };
        triggers.locate(service.name, paths.dockerfile, service);
        const read = await computeRevisionInput(paths.context, paths.dockerfile, {
          triggers: triggers.of,
          gitSnapshot,
          buildArgs: service.buildArgs,
          target: service.target,
          platforms: service.platforms,
          services: images,
          label: path.relative(options.root, paths.dockerfile) || paths.dockerfile,
        });
        return [service.name, { service, sources, paths, ...read }] as const;
      }),
    ),
  );
  const current = await store.readRing(site.ring);
  const after = nextRing(repo.rings, site.ring);
  const next = after !== undefined ? await store.readRing(after) : undefined;
  const inputs: Record<string, PlanServiceInput> = {};
  for (const [name, r] of Object.entries(reads)) {
    inputs[name] = { content: r.input.content, dependencies: r.build.dependencies };
  }
  // The version tags taken, by service: needed only to number a build (lib/plan.ts numbers
  // the services it builds and the release, nothing else). A plan that builds nothing lists no
  // tags, and one changed leaf of 500 lists two repositories' tags, not 501.
  const taken: Record<string, Version[]> = {};
  const listTaken = async (names: readonly string[]): Promise<void> => {
    const missing = names.filter((name) => taken[name] === undefined);
    const listed = await Promise.all(
      missing.map((name) =>
        store.listVersions(
          name === RELEASE
            ? store.releaseRepository
            : store.repositoryOf(repo.services[name].image),
        ),
      ),
    );
    missing.forEach((name, i) => (taken[name] = listed[i]));
  };
  const numbered = (p: Awaited<ReturnType<typeof plan>>) => [
    ...p.services.filter((s) => s.action === "build").map((s) => s.service),
    ...(p.release.changed ? [RELEASE] : []),
  ];
  // Same revision, no rebuild and no new version (invariant 3): a service the plan would
  // build whose revision an image in the registry already has reuses that image. Reusing one
  // can make a dependent's revision known, so plan again until nothing new is found.
  const known: Record<string, ImageRecord[]> = {};
  const searched = new Set<string>();
  const plan = async () =>
    planRelease({
      repository: repo,
      site,
      current,
      ...(next ? { next } : {}),
      services: inputs,
      known,
      taken,
    });
  let planned = await plan();
  // Numbering changes no action, so the services to number are known after the first plan;
  // plan again until each has its tags (the second plan is the last).
  while (numbered(planned).some((name) => taken[name] === undefined)) {
    await listTaken(numbered(planned));
    planned = await plan();
  }
  for (;;) {
    const candidates = planned.services.filter(
      (p) =>
        p.action === "build" &&
        p.revision !== undefined &&
        !searched.has(`${p.service} ${p.revision}`),
    );
    if (candidates.length === 0) break;
    let found = false;
    for (const p of candidates) {
      searched.add(`${p.service} ${p.revision}`);
      const repository = store.repositoryOf(repo.services[p.service].image);
      const hit = await store.findByRevision(repository, p.revision as string, {
        service: p.service,
        versions: taken[p.service],
      });
      if (hit) {
        (known[p.service] ??= []).push(hit);
        found = true;
      }
    }
    if (!found) break;
    planned = await plan();
  }
  const versions = Object.fromEntries(planned.services.map((p) => [p.service, p.nextVersion]));
  const kept = (key: string, version: string, digest?: string) =>
    previous[key] !== undefined &&
    previous[key].version === version &&
    previous[key].digest === digest;

  const services: ServiceStep[] = planned.services.map((p) => {
    const r = reads[p.service];
    // A reused image was built from other commits than this checkout's, maybe: what it records
    // is what its labels say, never the sources read now (invariant 5).
    const existing =
      p.action === "reuse"
        ? [current.release?.services[p.service], ...(known[p.service] ?? [])].find(
            (record) => record?.digest === p.digest,
          )
        : undefined;
    const sources = existing?.sources ?? r.sources;
    const dependencies =
      existing?.dependencies ?? Object.fromEntries(p.dependencies.map((d) => [d, versions[d]]));
    const pins = referencePins(r.build.references);
    const action: ImageAction =
      p.action === "build" ? "build" : kept(p.service, p.nextVersion, p.digest) ? "keep" : "reuse";
    return {
      service: p.service,
      repository: store.repositoryOf(r.service.image),
      action,
      reason: p.reason,
      ...(p.currentVersion !== undefined ? { currentVersion: p.currentVersion } : {}),
      version: p.nextVersion,
      ...(p.revision !== undefined ? { revision: p.revision } : {}),
      content: r.input.content,
      ...(p.digest !== undefined ? { digest: p.digest } : {}),
      labelInput: {
        project: repo.project,
        image: r.service.image,
        version: p.nextVersion,
        dependencies,
        sources,
        ...(repo.vendor !== undefined ? { vendor: repo.vendor } : {}),
        extra: r.service.labels,
      },
      dependencies,
      dependencyArgs: pins.dependencyArgs,
      namedContexts: pins.namedContexts,
      ...baseServiceOf(r.build.info),
      build: {
        context: r.paths.context,
        dockerfile: r.paths.dockerfile,
        buildArgs: r.service.buildArgs,
        ...(r.service.target !== undefined ? { target: r.service.target } : {}),
        platforms: r.service.platforms,
      },
      sources,
    };
  });
  const currentRelease = current.release;
  const releaseAction: ImageAction = planned.release.changed
    ? "build"
    : kept("release", planned.release.nextVersion, currentRelease?.digest)
      ? "keep"
      : "reuse";
  return {
    ...base,
    build: true,
    services,
    release: {
      repository: store.releaseRepository,
      action: releaseAction,
      ...(planned.release.currentVersion !== undefined
        ? { currentVersion: planned.release.currentVersion }
        : {}),
      ...(currentRelease ? { currentDigest: currentRelease.digest } : {}),
      version: planned.release.nextVersion,
      ...(currentRelease && !planned.release.changed ? { digest: currentRelease.digest } : {}),
      ...(next?.release ? { nextRingVersion: next.release.version } : {}),
    },
    deploy: { images: {} },
    table: formatPlan(planned),
  };
}

/** The service the target stage is built FROM, following FROM-a-stage links. */
function baseServiceOf(info: DockerfileInfo): { baseService?: string } {
  let stage: DockerfileInfo["stages"][number] | undefined = info.stages[info.target];
  while (stage !== undefined && stage.service === undefined && stage.parent !== undefined) {
    stage = info.stages[stage.parent];
  }
  return stage?.service !== undefined ? { baseService: stage.service } : {};
}

/** Where the planning step's registry client keeps immutable manifests and blobs. */
export function registryCacheDir(): string {
  return path.join(cacheRoot(), "oci");
}

/** A config pin or policy as lib/policies.ts selects it. */
function policyOf(choice: Pin | ConfigPolicy, service: ServiceConfig): Policy {
  if ("version" in choice) return { kind: "semver", range: `=${choice.version}` };
  if ("digest" in choice) return { kind: "digest", digest: choice.digest };
  if ("tag" in choice) return { kind: "tag", tag: choice.tag };
  const filter =
    "filterTags" in choice && choice.filterTags ? { filterTags: choice.filterTags } : {};
  if ("semver" in choice) {
    const { range, prerelease } = choice.semver;
    return {
      kind: "semver",
      range,
      ...(prerelease !== undefined ? { prerelease } : {}),
      ...filter,
    };
  }
  if ("alphabetical" in choice) {
    return { kind: "alphabetical", order: choice.alphabetical.order, ...filter };
  }
  if ("numerical" in choice) return { kind: "numerical", order: choice.numerical.order, ...filter };
  const source = service.sources[0];
  if (source === undefined) {
    throw new Error(`service ${service.name}: a gitRevision policy needs a source repository`);
  }
  return {
    kind: "gitRevision",
    source: source.name,
    url: source.url,
    branch: choice.gitRevision.branch,
    ...(choice.gitRevision.tagPrefix !== undefined
      ? { tagPrefix: choice.gitRevision.tagPrefix }
      : {}),
  };
}

async function planDeploy(
  repo: RepositoryConfig,
  site: SiteConfig,
  store: StateStore,
  client: RegistryClient,
  base: PlanBase,
): Promise<SitePlan> {
  let release: ReleaseRecord | undefined;
  let followed: string;
  if (site.release !== undefined) {
    release = await store.readRelease(site.release);
    followed = `release ${site.release} (pinned)`;
  } else {
    release = (await store.readRing(site.ring)).release;
    followed = `ring ${site.ring}`;
  }
  const ring = { ring: site.ring, ...(release ? { release } : {}) };
  const images: Record<string, DeployImage> = {};
  await Promise.all(
    Object.values(repo.services).map(async (service) => {
      const repository = store.repositoryOf(service.image);
      const choice = site.pins[service.name] ?? site.policies[service.name];
      if (choice === undefined) {
        const record: ImageRecord | undefined = release?.services[service.name];
        if (!record) {
          throw new Error(
            release
              ? `${stackFile(base.site)}: ${followed} has no service ${service.name}`
              : `${stackFile(base.site)}: ring ${site.ring} has no release yet; ` +
                  `build one on a site of the first ring or promote one (npm run rings -- promote <ring>)`,
          );
        }
        images[service.name] = {
          repository: record.repository,
          digest: record.digest,
          version: record.version,
          revision: record.revision,
          sources: record.sources,
          why: followed,
        };
        return;
      }
      const selection = await selectImage({
        service: service.name,
        repository,
        policy: policyOf(choice, service),
        ring,
        client,
        // An index's labels are read from the manifest of the service's first platform.
        platform: parsePlatform(service.platforms[0]),
      });
      // What the image's own labels say it is (invariant 5), whichever pin or policy chose it.
      images[service.name] = {
        repository,
        digest: selection.digest,
        ...(selection.version !== undefined ? { version: selection.version } : {}),
        ...(selection.revision !== undefined ? { revision: selection.revision } : {}),
        sources: selection.sources,
        why: `${site.pins[service.name] ? "pin" : "policy"}: ${selection.why}`,
      };
    }),
  );
  const rows = Object.keys(images)
    .sort()
    .map(
      (name) =>
        `${name.padEnd(12)}  ${(images[name].version ?? "-").padEnd(10)}  ${images[name].why}`,
    );
  return {
    ...base,
    build: false,
    services: [],
    release: {
      repository: store.releaseRepository,
      action: "reuse",
      version: release?.version ?? "",
    },
    deploy: {
      ...(release ? { release: release.version, releaseDigest: release.digest } : {}),
      images,
    },
    table: [
      `Deploy plan for site ${base.site} (${followed})`,
      `${"SERVICE".padEnd(12)}  ${"VERSION".padEnd(10)}  WHY`,
      ...rows,
    ].join("\n"),
  };
}
