/**
 * The config model: the version repository file `gitops-rings.yaml` and a site's stack config
 * (the Pulumi config namespace `gitops-rings`), validated with zod into plain, readonly values.
 *
 * Rules come from ../shared/DESIGN.md ("Vocabulary", "Invariants" 6, "The version rule") and
 * the seeds: Version Repository seed 000 (per-service build params, source repositories pinned
 * to commits) and GitOps seed 001 (rings with the pseudo-rings `ante` and `post`, site =
 * environment + ring, the registry as state store).
 *
 * Every problem is reported, not just the first, in one {@link ConfigError} whose lines name
 * the file, the key path and the value, e.g.
 * `stacks/Pulumi.eu-testers.yaml: gitops-rings:pins.backend.version: "1.x" is not a version`.
 *
 * No I/O at import time; {@link loadRepositoryConfig} is the only function that reads a file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as semver from "semver";
import * as YAML from "yaml";
import { z } from "zod";
import { IMAGE_FIELD_PATH, type ImageField, type ImageRules } from "./images";
import { compilePattern, patternGroups, templateReferences } from "./policies";
import type { Digest, RingName, Version } from "./types";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** One problem with an input file: where it is and what is wrong. */
export interface ConfigProblem {
  /** The file, as the caller named it, e.g. `stacks/Pulumi.eu-testers.yaml`. */
  readonly file: string;
  /** 1-based line in the file, when known. */
  readonly line?: number;
  /** Key path inside the file, e.g. `gitops-rings:pins.backend.version`, when there is one. */
  readonly key?: string;
  /** What is wrong, usually starting with the offending value, e.g. `"1.x" is not a version`. */
  readonly message: string;
}

/**
 * Bad input (config, semver, ranges, Dockerfiles, unknown rings or services, cycles): thrown
 * before any resource is created (DESIGN.md, invariant 6). The message has one line per
 * problem, `<file>[:<line>]: [<key>: ]<message>`, and {@link ConfigError.problems} keeps them
 * as values.
 */
export class ConfigError extends Error {
  /** Every problem found, in the order found. */
  readonly problems: readonly ConfigProblem[];

  /** @param problems at least one problem; the message lists them all, one per line. */
  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Formats one problem as a message line.
 * @param problem the problem.
 * @returns `<file>[:<line>]: [<key>: ]<message>`.
 */
export function formatProblem(problem: ConfigProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return problem.key === undefined
    ? `${where}: ${problem.message}`
    : `${where}: ${problem.key}: ${problem.message}`;
}

/**
 * Shows a value in an error message: JSON, cut at 80 characters.
 * @param value any value from a config file.
 * @returns its JSON text, e.g. `"1.x"` or `42`.
 */
export function showValue(value: unknown): string {
  const text = value === undefined ? "undefined" : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Formats a key path: identifiers joined with `.`, list indices as `[i]`, other keys as
 * `["a.b"]`.
 * @param segments the path from the root of the file (or of the config namespace).
 * @returns e.g. `services.backend.sources[0].url`.
 */
export function keyPath(segments: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(String(segment)))
      out += out ? `.${String(segment)}` : String(segment);
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Plain types
// ---------------------------------------------------------------------------------------------

/**
 * One source repository of a service, pinned to a commit or following a branch head
 * (Version Repository seed 000: `repo_dependencies`).
 */
export interface SourceConfig {
  /** Name, unique within the service; used in labels and in `sourceCommits` keys. */
  readonly name: string;
  /** Clone URL (https, ssh, `git@host:path`, `file://` or a local path). */
  readonly url: string;
  /** Branch whose head is built, unless the site pins a commit. Exactly one of branch, commit. */
  readonly branch?: string;
  /** Full 40-hex (or 64-hex) commit that is always built. Exactly one of branch, commit. */
  readonly commit?: string;
  /**
   * Where the checkout goes, relative to the service's build context. Not allowed for the source
   * that the service's `source` names (its checkout is the root of the context).
   * @default the source's name
   */
  readonly path: string;
}

/** One service: an image built from a Dockerfile and a build context (DESIGN.md, "service"). */
export interface ServiceConfig {
  /** Service name: the key in `services`, a DNS label. */
  readonly name: string;
  /**
   * Repository name under `<registry>/<project>/`.
   * @default the service name
   */
  readonly image: string;
  /**
   * Build context directory (posix, relative): to the version repository root, or to the
   * checkout of {@link ServiceConfig.source} when that is set.
   */
  readonly context: string;
  /** Name of one of {@link ServiceConfig.sources} whose checkout holds the context. */
  readonly source?: string;
  /**
   * Dockerfile, relative to the version repository root. When absent: `Dockerfile` in the
   * context (so in the source checkout when `source` is set). See {@link servicePaths}.
   */
  readonly dockerfile?: string;
  /** Build args, passed to the build and part of the revision. @default {} */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Stage to build. @default the last stage */
  readonly target?: string;
  /** Platforms to build, `os/arch[/variant]`. @default ["linux/amd64"] */
  readonly platforms: readonly string[];
  /**
   * Source repositories. Dependencies (`dependsOn`) are never given by hand: they are
   * discovered from FROM lines (lib/dockerfile.ts). @default []
   */
  readonly sources: readonly SourceConfig[];
  /** Extra image labels (DESIGN.md, "Labels on every image"). @default {} */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Further names by which the manifests name this service's image, without tag or digest
   * (e.g. `ledger/api`, `registry.example.com/ledger/api`), beside those every service has
   * (see {@link serviceImageNames}). No name may belong to two services. Absent when not given.
   */
  readonly aliases?: readonly string[];
}

/** An environment: a Kustomize overlay and the namespace it is applied in (DESIGN.md). */
export interface EnvironmentConfig {
  /** Environment name: the key in `environments`. */
  readonly name: string;
  /** Overlay directory, posix, relative to the version repository root. */
  readonly overlay: string;
  /** Kubernetes namespace of the site's resources, a DNS label. */
  readonly namespace: string;
}

/**
 * The version repository's `gitops-rings.yaml` (Version Repository seed 000; GitOps seed 001).
 *
 * ```yaml
 * project: example            # may contain slashes
 * registry: 127.0.0.1:5001    # host[:port][/prefix]
 * vendor: Example Inc.        # optional
 * initialVersion: 0.1.0       # optional
 * rings: [developers, testers, users, lts]   # ante and post are added around them
 * environments:
 *   dev: { overlay: app/deploy/overlays/dev, namespace: example-dev }
 * services:
 *   base: { context: app/services/base }
 *   backend:
 *     context: app/services/backend
 *     sources: [{ name: backend, url: https://example.com/backend.git, branch: main }]
 *     aliases: [ledger/api]   # optional: further names the manifests use for the image
 * ```
 */
export interface RepositoryConfig {
  /** The file the config was read from, as the caller named it (for error messages). */
  readonly file: string;
  /** Project: the path under the registry, may contain slashes (GitOps seed 001). */
  readonly project: string;
  /** Default registry, `host[:port][/prefix]`; a site may override it. */
  readonly registry: string;
  /** `org.opencontainers.image.vendor`, when set. */
  readonly vendor?: string;
  /** Version of a service or release that has no version anywhere yet. @default "0.1.0" */
  readonly initialVersion: Version;
  /** The configured rings in order, without `ante` and `post` (see lib/version.ts allRings). */
  readonly rings: readonly RingName[];
  /** Environments by name. */
  readonly environments: Readonly<Record<string, EnvironmentConfig>>;
  /** Services by name. */
  readonly services: Readonly<Record<string, ServiceConfig>>;
}

/** A site pins one service to an exact version tag (DESIGN.md, flow 4). */
export interface VersionPin {
  readonly version: Version;
}
/** A site pins one service to a tag (DESIGN.md, flow 4). */
export interface TagPin {
  readonly tag: string;
}
/** A site pins one service to a digest (DESIGN.md, flow 4). */
export interface DigestPin {
  readonly digest: Digest;
}
/** How a site pins one service: exactly one of version, tag, digest. */
export type Pin = VersionPin | TagPin | DigestPin;

/**
 * Flux ImagePolicy's `filterTags`: only tags that `pattern` matches are candidates, and the
 * value a policy orders is `extract` expanded against the first match (lib/policies.ts).
 */
export interface TagFilterConfig {
  /** A regular expression (Go's `(?P<name>…)` groups accepted), unanchored. */
  readonly pattern: string;
  /** `$1`, `${1}`, `$name`, `${name}` of the pattern's groups. @default the tag itself */
  readonly extract?: string;
}
/** Highest version tag in a semver range (DESIGN.md, flow 5; Flux ImagePolicy `semver`). */
export interface SemverPolicy {
  readonly semver: {
    /** A range as `semver` reads it, e.g. `^1.2.0`. */
    readonly range: string;
    /**
     * Whether prerelease versions match: `true` any prerelease in range, `false` none.
     * @default prereleases match only when the range names one (`>=1.0.0-0`)
     */
    readonly prerelease?: boolean;
  };
  readonly filterTags?: TagFilterConfig;
}
/** Tag order of the alphabetical and numerical policies: `asc` takes the last, `desc` the first. */
export type TagOrderConfig = "asc" | "desc";
/** The last tag in alphabetical order (Flux ImagePolicy `alphabetical`). */
export interface AlphabeticalPolicy {
  /** @default { order: "asc" } */
  readonly alphabetical: { readonly order: TagOrderConfig };
  readonly filterTags?: TagFilterConfig;
}
/** The last tag in numerical order (Flux ImagePolicy `numerical`). */
export interface NumericalPolicy {
  /** @default { order: "asc" } */
  readonly numerical: { readonly order: TagOrderConfig };
  readonly filterTags?: TagFilterConfig;
}
/** Image built from the most recent commit on a branch (seed 003, DESIGN.md flow 5). */
export interface GitRevisionPolicy {
  readonly gitRevision: {
    /** Branch whose commits are walked from its head. */
    readonly branch: string;
    /** Match images by a tag `<tagPrefix><commit>` instead of by the commit label. */
    readonly tagPrefix?: string;
  };
}
/** A followed mutable tag: redeploy when its digest changes (seed 004, DESIGN.md flow 5). */
export interface TagPolicy {
  readonly tag: string;
}
/** An exact digest (DESIGN.md, flow 5). */
export interface DigestPolicy {
  readonly digest: Digest;
}
/** How a site selects one service's image when it does not follow its ring. */
export type Policy =
  | SemverPolicy
  | AlphabeticalPolicy
  | NumericalPolicy
  | GitRevisionPolicy
  | TagPolicy
  | DigestPolicy;

/**
 * A site's stack config: the values of the Pulumi config namespace `gitops-rings`
 * (DESIGN.md, "site" and flows 1, 4, 5, 6).
 *
 * ```yaml
 * config:
 *   gitops-rings:ring: testers
 *   gitops-rings:environment: eu
 *   gitops-rings:pins: { backend: { version: 1.4.2 } }
 * ```
 */
export interface SiteConfig {
  /** The stack config file, as the caller named it (for error messages). */
  readonly file: string;
  /** The ring the site follows: a configured ring, `ante` or `post`. */
  readonly ring: RingName;
  /** The environment (Kustomize overlay and namespace). */
  readonly environment: string;
  /** Whether `pulumi up` on this site builds. @default true on the first configured ring */
  readonly build: boolean;
  /** Pins the site's release to this version instead of the ring's. */
  readonly release?: Version;
  /** Per-service pins, by service name. @default {} */
  readonly pins: Readonly<Record<string, Pin>>;
  /** Per-service policies, by service name. A service has a pin or a policy, not both. */
  readonly policies: Readonly<Record<string, Policy>>;
  /**
   * The major version requested per service (and/or `release`): a build gives `<major>.0.0`
   * when the version it bumps from has a lower major, once; later builds follow the ring rule
   * (lib/version.ts nextVersion). @default {}
   */
  readonly majorBump: Readonly<Record<string, number>>;
  /** Registry override for this site, `host[:port][/prefix]`. */
  readonly registry?: string;
  /** Whether the watcher runs `pulumi up` on this site when images change. @default false */
  readonly autoDeploy: boolean;
  /**
   * How long the deploy waits for all of the site's rollouts together, in seconds; past it the
   * update fails naming every Deployment not ready and why. @default 300
   */
  readonly rolloutTimeout?: number;
  /**
   * At most this many BuildKit builds of the site at once (buildctl path; the docker-build path
   * runs as many as `pulumi up --parallel` allows). @default no limit but `--parallel`
   */
  readonly buildConcurrency?: number;
  /** Source commits pinned by `<service>/<source>` key. @default {} */
  readonly sourceCommits: Readonly<Record<string, string>>;
  /**
   * Rules and extra image fields for the images the site deploys that no service builds
   * (lib/images.ts; README, "Images a site does not build"). @default `{ requireDigest: false, fields: [] }`
   */
  readonly images: SiteImagesConfig;
  /**
   * Registry credentials by registry `host[:port]` (README, "Registry credentials"): the
   * planning step, the dynamic providers, BuildKit's push and the site's image pull secret use
   * them. The password is a Pulumi secret; read from a stack file without the passphrase it is
   * absent (the file only holds its ciphertext). @default {} (docker's config.json, or anonymous)
   */
  readonly registryAuth?: Readonly<Record<string, RegistryAuthEntry>>;
  /**
   * Whether the site deploys as its own identity (README, "A deploy identity per site"): the
   * ServiceAccount `npm run rings -- bootstrap <site>` made, with a short-lived token requested
   * at plan time. @default false (the caller's kubeconfig)
   */
  readonly identity?: boolean;
}

/** One registry's credentials in {@link SiteConfig.registryAuth}. */
export interface RegistryAuthEntry {
  readonly username: string;
  /** The decrypted password; absent when only its ciphertext was read (a stack file). */
  readonly password?: string;
}

/**
 * A site's `images` config: which registries images no service builds may come from, whether
 * they must be written by digest, and where custom resources keep images (seed 002, kbld's
 * search rules).
 *
 * ```yaml
 * gitops-rings:images:
 *   allowedRegistries: [127.0.0.1:5001, docker.io/library]
 *   requireDigest: [docker.io]      # or true: every such image by digest
 *   fields: [{ kind: Runner, group: ci.example.com, path: spec/steps[]/image }]
 * ```
 */
export interface SiteImagesConfig extends ImageRules {
  /** Extra image fields of custom resources, as Kustomize's images configuration writes them. @default [] */
  readonly fields: readonly ImageField[];
}

// ---------------------------------------------------------------------------------------------
// Value rules
// ---------------------------------------------------------------------------------------------

/** The pseudo-rings that are always added before and after the configured rings (seed 001). */
export const PSEUDO_RINGS: readonly RingName[] = ["ante", "post"];

/** Reserved word in `majorBump` for the release; no service may have this name. */
export const RELEASE = "release";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const HOST =
  "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?";
const REGISTRY = new RegExp(`^${HOST}(?:/${PATH_COMPONENT})*$`);
/** An image name without tag or digest: `[host[:port]/]path`, as manifests write it. */
const IMAGE_NAME = new RegExp(`^(?:${HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const COMMIT = /^(?:[a-f0-9]{40}|[a-f0-9]{64})$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
const BRANCH = /^(?!\/|.*(?:\.\.|\/\/|@\{|\\|\/\.))[^\x00-\x20~^:?*[\x7f]+(?<!\.lock|\/|\.)$/;
const RESERVED_LABELS = [
  "org.opencontainers.image.version",
  "org.opencontainers.image.revision",
  "org.opencontainers.image.ref.name",
];

/**
 * Whether a string is a semver version exactly as written (no `v`, no spaces).
 * @param value any string.
 * @returns true for e.g. `1.2.3` and `1.2.3-rc.1`, false for `v1.2.3` or `1.x`.
 */
export function isVersion(value: string): boolean {
  return semver.valid(value) === value;
}

/**
 * Whether a string is a semver range as the `semver` package reads it.
 * @param value any string.
 * @returns true for e.g. `^1.2.0`, `1.x`, `>=1 <2`.
 */
export function isRange(value: string): boolean {
  return semver.validRange(value) !== null;
}

/**
 * Whether a relative path stays below its base: not absolute, no `..` escape, posix separators.
 * @param value any string.
 * @returns true for `app/services/base` and `.`, false for `/x`, `../x` or `a\b`.
 */
export function isRelativePath(value: string): boolean {
  if (value === "" || value.includes("\\") || value.includes("\0")) return false;
  if (path.posix.isAbsolute(value)) return false;
  const normal = path.posix.normalize(value);
  return normal !== ".." && !normal.startsWith("../");
}

const text = (check: (v: string) => boolean, message: string) =>
  z.string().refine(check, { message });
const nameSchema = text((v) => NAME.test(v), "is not a name (lowercase letters, digits and '-')");
const versionSchema = text(isVersion, "is not a version (semver, e.g. 1.2.3)");
const rangeSchema = text(isRange, "is not a semver range (e.g. ^1.2.0)");
const digestSchema = text((v) => DIGEST.test(v), "is not a digest (sha256:<64 hex>)");
const tagSchema = text((v) => TAG.test(v), "is not a tag");
const registrySchema = text((v) => REGISTRY.test(v), "is not a registry (host[:port][/prefix])");
const repositorySchema = text(
  (v) => REPOSITORY.test(v),
  "is not a repository path (lowercase letters, digits, '.', '_', '-', separated by '/')",
);
const imageNameSchema = text(
  (v) => IMAGE_NAME.test(v),
  "is not an image name without tag or digest (e.g. ledger/api, registry.example.com/ledger/api)",
);
const relativePathSchema = text(isRelativePath, "is not a relative path inside the repository");
const branchSchema = text((v) => BRANCH.test(v), "is not a branch name");
const commitSchema = text((v) => COMMIT.test(v), "is not a full commit id (40 or 64 hex)");
const platformSchema = text((v) => PLATFORM.test(v), "is not a platform (os/arch[/variant])");
const booleanSchema = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean(),
);

/** A strict object whose unknown-key issue lists the known keys. */
function strictObject<T extends z.ZodRawShape>(shape: T) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) => (issue.code === "unrecognized_keys" ? `known keys: ${known}` : undefined),
  });
}

function exactlyOne(keys: readonly string[], label: string) {
  return (value: Record<string, unknown>, ctx: z.core.$RefinementCtx) => {
    const given = keys.filter((k) => value[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: "custom",
        input: value,
        message: `${given.length === 0 ? "has none" : `has ${given.join(" and ")}`}: ${label} needs exactly one of ${keys.join(", ")}`,
      });
    }
  };
}

const sourceSchema = strictObject({
  name: nameSchema,
  url: text((v) => /^\S+$/.test(v), "is not a URL"),
  branch: branchSchema.optional(),
  commit: commitSchema.optional(),
  path: relativePathSchema.optional(),
}).superRefine(exactlyOne(["branch", "commit"], "a source"));

const serviceSchema = strictObject({
  image: repositorySchema.optional(),
  context: relativePathSchema,
  source: nameSchema.optional(),
  dockerfile: relativePathSchema.optional(),
  buildArgs: z.record(z.string(), z.string()).optional(),
  target: z.string().min(1).optional(),
  platforms: z.array(platformSchema).min(1).optional(),
  sources: z.array(sourceSchema).optional(),
  labels: z.record(z.string().min(1), z.string()).optional(),
  aliases: z.array(imageNameSchema).optional(),
});

const environmentSchema = strictObject({ overlay: relativePathSchema, namespace: nameSchema });

const repositorySchemaRoot = strictObject({
  project: repositorySchema,
  registry: registrySchema,
  vendor: z.string().min(1).optional(),
  initialVersion: versionSchema.optional(),
  rings: z.array(nameSchema).min(1),
  environments: z.record(nameSchema, environmentSchema),
  services: z.record(nameSchema, serviceSchema),
});

const pinSchema = strictObject({
  version: versionSchema.optional(),
  tag: tagSchema.optional(),
  digest: digestSchema.optional(),
}).superRefine(exactlyOne(["version", "tag", "digest"], "a pin"));

const tagFilterSchema = strictObject({
  pattern: z.string().min(1),
  extract: z.string().optional(),
}).superRefine((filter, ctx) => {
  let groups: ReturnType<typeof patternGroups>;
  try {
    groups = patternGroups(compilePattern(filter.pattern));
  } catch (e) {
    const cause = (e as Error).message.replace(/^filterTags pattern "(?:[^"\\]|\\.)*": /, "");
    ctx.addIssue({
      code: "custom",
      path: ["pattern"],
      input: filter.pattern,
      message: `is not a regular expression: ${cause}`,
    });
    return;
  }
  const have = [...Array.from({ length: groups.count + 1 }, (_, i) => String(i)), ...groups.names];
  for (const ref of templateReferences(filter.extract ?? "")) {
    if (!have.includes(ref)) {
      ctx.addIssue({
        code: "custom",
        path: ["extract"],
        input: filter.extract,
        message: `names group ${showValue(ref)}, which the pattern does not have (groups: ${have.join(", ")})`,
      });
    }
  }
});

const orderSchema = strictObject({
  order: text((v) => v === "asc" || v === "desc", 'is not "asc" or "desc"').optional(),
});

const POLICY_KINDS = ["semver", "alphabetical", "numerical", "gitRevision", "tag", "digest"];

const policySchema = strictObject({
  semver: z
    .preprocess(
      (v) => (typeof v === "string" ? { range: v } : v),
      strictObject({ range: rangeSchema, prerelease: booleanSchema.optional() }),
    )
    .optional(),
  alphabetical: orderSchema.optional(),
  numerical: orderSchema.optional(),
  filterTags: tagFilterSchema.optional(),
  prerelease: z.unknown().optional(),
  gitRevision: strictObject({
    branch: branchSchema,
    tagPrefix: tagSchema.optional(),
  }).optional(),
  tag: tagSchema.optional(),
  digest: digestSchema.optional(),
}).superRefine((value, ctx) => {
  exactlyOne(POLICY_KINDS, "a policy")(value, ctx);
  if (value.prerelease !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["prerelease"],
      input: value.prerelease,
      message: `belongs in semver: write semver: { range: ${showValue(value.semver?.range ?? "<range>")}, prerelease: ${showValue(value.prerelease)} }`,
    });
  }
  const ordered = ["semver", "alphabetical", "numerical"] as const;
  if (value.filterTags !== undefined && !ordered.some((k) => value[k] !== undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["filterTags"],
      input: value.filterTags,
      message: `is only allowed with ${ordered.join(", ")}`,
    });
  }
});

/**
 * A whole number of at least 1, given as a number or a string of digits (stack config values
 * arrive as strings); `message` says what it is when it is not.
 */
function positiveIntSchema(message: string) {
  return z.preprocess(
    (v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v),
    z
      .unknown()
      .refine((v) => Number.isSafeInteger(v) && (v as number) >= 1, { message })
      .transform((v) => v as number),
  );
}

const majorSchema = positiveIntSchema(
  "is not a major version (a whole number of at least 1, e.g. 2)",
);

/**
 * `majorBump`: the major version to reach, per service or `release`. The old list form
 * (`[backend]`) bumped the major again on every build, so it is refused with what to write.
 */
const majorBumpSchema = z
  .unknown()
  .superRefine((v, ctx) => {
    if (!Array.isArray(v)) return;
    const names = v.filter((x): x is string => typeof x === "string");
    const example = `{ ${(names.length > 0 ? names : ["<service>"]).map((n) => `${n}: <major>`).join(", ")} }`;
    ctx.addIssue({
      code: "custom",
      input: v,
      message:
        `is the old list form, which bumped the major version again on every build; write the ` +
        `major version each should reach once instead: ${example} ` +
        `(pulumi config set --path gitops-rings:majorBump.${names[0] ?? "<service>"} <major>)`,
    });
  })
  .pipe(z.record(z.string(), majorSchema));

const countSchema = positiveIntSchema("is not a count (a whole number of at least 1, e.g. 4)");
const secondsSchema = positiveIntSchema(
  "is not a duration in seconds (a whole number of at least 1, e.g. 600)",
);

const registryRuleSchema = text(
  (v) => REGISTRY.test(v),
  "is not a registry (host[:port], or host[:port]/path for part of one)",
);

const imageFieldSchema = strictObject({
  path: text(
    (v) => IMAGE_FIELD_PATH.test(v),
    "is not a field path (keys separated by '/', key[] for every item of a list, e.g. spec/steps[]/image)",
  ),
  kind: z.string().min(1).optional(),
  group: z.string().optional(),
  version: z.string().min(1).optional(),
});

const imagesSchema = strictObject({
  allowedRegistries: z.array(registryRuleSchema).optional(),
  requireDigest: z
    .preprocess(
      (v) => (v === "true" ? true : v === "false" ? false : v),
      z.union([z.boolean(), z.array(registryRuleSchema)], {
        error: "is not true, false or a list of registries",
      }),
    )
    .optional(),
  fields: z.array(imageFieldSchema).optional(),
});

const siteSchema = strictObject({
  ring: nameSchema,
  environment: nameSchema,
  build: booleanSchema.optional(),
  release: versionSchema.optional(),
  pins: z.record(z.string(), pinSchema).optional(),
  policies: z.record(z.string(), policySchema).optional(),
  majorBump: majorBumpSchema.optional(),
  registry: registrySchema.optional(),
  autoDeploy: booleanSchema.optional(),
  rolloutTimeout: secondsSchema.optional(),
  buildConcurrency: countSchema.optional(),
  sourceCommits: z
    .record(
      text((v) => /^[^/]+\/[^/]+$/.test(v), "is not a <service>/<source> key"),
      commitSchema,
    )
    .optional(),
  images: imagesSchema.optional(),
  // Validated by registryAuthProblems, whose messages never show a password.
  registryAuth: z.unknown().optional(),
  identity: booleanSchema.optional(),
});

const NOUNS: Record<string, string> = {
  string: "a string",
  object: "a map",
  array: "a list",
  boolean: "true or false",
  number: "a number",
  record: "a map",
};

/** Turns zod issues into problems; unknown keys become one problem per key. */
function problemsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  file: string,
  prefix: string,
  lineOf: (segments: readonly PropertyKey[]) => number | undefined,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (segments: readonly PropertyKey[], message: string) =>
    problems.push({
      file,
      line: lineOf(segments),
      key: prefix + (keyPath(segments) || "(root)"),
      message,
    });
  for (const issue of issues) {
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys) {
          const at = [...issue.path, key];
          if (key === "dependsOn" && issue.path[0] === "services") {
            add(at, "is not given by hand: dependencies are discovered from FROM lines");
          } else {
            add(at, `unknown key (${issue.message})`);
          }
        }
        break;
      case "invalid_type":
        add(
          issue.path,
          input === undefined
            ? "is required"
            : `${showValue(input)} is not ${NOUNS[issue.expected] ?? issue.expected}`,
        );
        break;
      case "too_small":
        add(issue.path, `${showValue(input)} must not be empty`);
        break;
      case "invalid_key":
        add(
          issue.path,
          `${showValue(issue.path[issue.path.length - 1])} ${issue.issues.map((i) => i.message).join("; ")}`,
        );
        break;
      default:
        add(issue.path, `${showValue(input)} ${issue.message}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Repository config
// ---------------------------------------------------------------------------------------------

/**
 * Reads and validates the version repository file.
 * @param file path of `gitops-rings.yaml`; error messages name it as given.
 * @returns the validated config, defaults filled in.
 * @throws {ConfigError} when the file cannot be read, is not YAML, or breaks a rule of
 *   {@link parseRepositoryConfig}.
 */
export function loadRepositoryConfig(file: string): RepositoryConfig {
  let content: string;
  try {
    content = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([{ file, message: `cannot read: ${(err as Error).message}` }]);
  }
  return parseRepositoryConfig(content, file);
}

/**
 * Validates the text of a version repository file (DESIGN.md; seeds 000 and 001): the shape of
 * {@link RepositoryConfig}, strict (unknown keys are errors); ring names are unique and never
 * `ante` or `post`; no service is named `release`; image names are unique, and so is every
 * name by which manifests name a service's image ({@link serviceImageNames}); a service's
 * `source` names one of its sources, whose `path` is then not allowed; source names and paths
 * are unique within a service; image labels do not set the labels the program owns.
 * @param content the YAML text.
 * @param file the file name used in error messages.
 * @returns the validated config, defaults filled in (image = service name, platforms =
 *   `[linux/amd64]`, initialVersion = `0.1.0`, empty buildArgs, sources and labels).
 * @throws {ConfigError} listing every problem, each naming the file, line, key and value.
 */
export function parseRepositoryConfig(content: string, file: string): RepositoryConfig {
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(content, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        line: lineCounter.linePos(e.pos[0]).line,
        message: e.message.split("\n")[0],
      })),
    );
  }
  const lineOf = (segments: readonly PropertyKey[]): number | undefined => {
    for (let n = segments.length; n >= 0; n--) {
      const node = doc.getIn(segments.slice(0, n) as unknown[], true) as
        { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) {
        // For a map entry, point at the key rather than at the value when the value is a
        // block on the next lines.
        return lineCounter.linePos(node.range[0]).line;
      }
    }
    return undefined;
  };
  const data: unknown = doc.toJS() ?? {};
  const parsed = repositorySchemaRoot.safeParse(data, { reportInput: true });
  const problems: ConfigProblem[] = parsed.success
    ? []
    : problemsFromIssues(parsed.error.issues, file, "", lineOf);
  // Cross-checks run on whatever parts are well-formed, so that every problem is reported.
  problems.push(...crossCheckRepository(data, file, lineOf));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const raw = parsed.data;

  const services: Record<string, ServiceConfig> = {};
  for (const name of Object.keys(raw.services).sort()) {
    const s = raw.services[name];
    services[name] = {
      name,
      image: s.image ?? name,
      context: path.posix.normalize(s.context),
      ...(s.source !== undefined ? { source: s.source } : {}),
      ...(s.dockerfile !== undefined ? { dockerfile: path.posix.normalize(s.dockerfile) } : {}),
      buildArgs: sortedRecord(s.buildArgs ?? {}),
      ...(s.target !== undefined ? { target: s.target } : {}),
      platforms: [...new Set(s.platforms ?? ["linux/amd64"])],
      sources: (s.sources ?? []).map((src) => ({
        name: src.name,
        url: src.url,
        ...(src.branch !== undefined ? { branch: src.branch } : {}),
        ...(src.commit !== undefined ? { commit: src.commit } : {}),
        path: path.posix.normalize(src.path ?? src.name),
      })),
      labels: sortedRecord(s.labels ?? {}),
      ...(s.aliases !== undefined ? { aliases: [...new Set(s.aliases)] } : {}),
    };
  }
  const claims = nameClaimProblems(services, raw.project, [raw.registry]);
  if (claims.length > 0) {
    throw new ConfigError(
      claims.map((c) => ({ file, line: lineOf(c.key), key: keyPath(c.key), message: c.message })),
    );
  }

  const environments: Record<string, EnvironmentConfig> = {};
  for (const name of Object.keys(raw.environments).sort()) {
    const e = raw.environments[name];
    environments[name] = { name, overlay: path.posix.normalize(e.overlay), namespace: e.namespace };
  }
  return {
    file,
    project: raw.project,
    registry: raw.registry,
    ...(raw.vendor !== undefined ? { vendor: raw.vendor } : {}),
    initialVersion: raw.initialVersion ?? "0.1.0",
    rings: raw.rings,
    environments,
    services,
  };
}

/**
 * Every name by which manifests (and Dockerfiles) may name a service's image, without tag or
 * digest: the service name, the image name, `<project>/<image>`, `<registry>/<project>/<image>`
 * for each registry, and the service's {@link ServiceConfig.aliases}. README, "The version
 * repository"; lib/dockerfile.ts matchServiceImage and lib/kustomize.ts pinnedImages use them.
 * @param service the service (its name, image and aliases).
 * @param project the project: the path under the registry.
 * @param registries the repository's registry and a site's override, `host[:port][/prefix]`.
 * @returns the names, unique, in the order above.
 */
export function serviceImageNames(
  service: Pick<ServiceConfig, "name" | "image" | "aliases">,
  project: string,
  registries: readonly string[],
): string[] {
  const repository = `${project}/${service.image}`;
  return [
    ...new Set([
      service.name,
      service.image,
      repository,
      ...registries.map((registry) => `${registry}/${repository}`),
      ...(service.aliases ?? []),
    ]),
  ];
}

/**
 * Names of images that two services claim (one name, one service: a manifest's image must
 * say which service it is), each at the key that gives the name: an alias when one side has it
 * as an alias, else the later service's `image`.
 */
function nameClaimProblems(
  services: Readonly<Record<string, ServiceConfig>>,
  project: string,
  registries: readonly string[],
): { key: PropertyKey[]; message: string }[] {
  const owners = new Map<string, ServiceConfig>();
  const problems: { key: PropertyKey[]; message: string }[] = [];
  for (const service of Object.values(services)) {
    for (const name of serviceImageNames(service, project, registries)) {
      const owner = owners.get(name);
      if (owner === undefined) {
        owners.set(name, service);
        continue;
      }
      const alias = [service, owner].find((s) => s.aliases?.includes(name));
      problems.push({
        key: alias
          ? ["services", alias.name, "aliases", (alias.aliases ?? []).indexOf(name)]
          : ["services", service.name, "image"],
        message:
          `${showValue(name)} names the images of both ${owner.name} and ${service.name}; ` +
          `a name in the manifests must name one service`,
      });
    }
  }
  return problems;
}

const isMap = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/** The rules of the repository file that span several keys; tolerant of malformed parts. */
function crossCheckRepository(
  data: unknown,
  file: string,
  lineOf: (segments: readonly PropertyKey[]) => number | undefined,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (segments: PropertyKey[], message: string) =>
    problems.push({ file, line: lineOf(segments), key: keyPath(segments), message });
  if (!isMap(data)) return problems;
  if (Array.isArray(data.rings)) {
    const rings = data.rings as unknown[];
    rings.forEach((ring, i) => {
      if (typeof ring !== "string") return;
      if (PSEUDO_RINGS.includes(ring)) {
        add(["rings", i], `${showValue(ring)} is a pseudo-ring that is always added; remove it`);
      } else if (rings.indexOf(ring) !== i) {
        add(["rings", i], `${showValue(ring)} is listed twice`);
      }
    });
  }
  if (isMap(data.environments) && Object.keys(data.environments).length === 0) {
    add(["environments"], "{} must not be empty");
  }
  if (!isMap(data.services)) return problems;
  if (Object.keys(data.services).length === 0) add(["services"], "{} must not be empty");
  const imageOwner = new Map<string, string>();
  for (const name of Object.keys(data.services).sort()) {
    if (name === RELEASE) {
      add(["services", name], `${showValue(name)} is reserved for the release`);
    }
    const s = data.services[name];
    if (!isMap(s)) continue;
    const image = typeof s.image === "string" ? s.image : name;
    const owner = imageOwner.get(image);
    if (owner !== undefined) {
      add(["services", name, "image"], `${showValue(image)} is already the image of ${owner}`);
    } else {
      imageOwner.set(image, name);
    }
    const sources = (Array.isArray(s.sources) ? s.sources : []).filter(isMap);
    const names = sources.map((src) => src.name);
    const seenPaths = new Map<string, unknown>();
    sources.forEach((src, i) => {
      if (names.indexOf(src.name) !== i) {
        add(["services", name, "sources", i, "name"], `${showValue(src.name)} is listed twice`);
      }
      if (s.source !== undefined && s.source === src.name) {
        if (src.path !== undefined) {
          add(
            ["services", name, "sources", i, "path"],
            `${showValue(src.path)} is not allowed: this source's checkout is the context`,
          );
        }
        return;
      }
      const where = src.path ?? src.name;
      if (typeof where !== "string") return;
      const normal = path.posix.normalize(where);
      if (seenPaths.has(normal)) {
        add(
          ["services", name, "sources", i, "path"],
          `${showValue(normal)} is already the path of source ${String(seenPaths.get(normal))}`,
        );
      } else {
        seenPaths.set(normal, src.name);
      }
    });
    if (typeof s.source === "string" && !names.includes(s.source)) {
      add(
        ["services", name, "source"],
        `${showValue(s.source)} is not one of the service's sources (${names.map(String).join(", ") || "none"})`,
      );
    }
    if (isMap(s.labels)) {
      for (const label of Object.keys(s.labels)) {
        if (RESERVED_LABELS.includes(label) || label.startsWith("dependency.")) {
          add(["services", name, "labels", label], "is set by gitops-rings and cannot be given");
        }
      }
    }
  }
  return problems;
}

function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key];
  return out;
}

/**
 * Where a service's Dockerfile and build context are on disk (Version Repository seed 000:
 * `docker_build_context`, `dockerfile_path`).
 * @param root the version repository root directory.
 * @param service the service.
 * @param checkouts directory of each source checkout, by source name; needed only when the
 *   service sets `source`.
 * @returns absolute `context` and `dockerfile` paths.
 * @throws {Error} when `source` is set and its checkout is not given.
 */
export function servicePaths(
  root: string,
  service: ServiceConfig,
  checkouts: Readonly<Record<string, string>> = {},
): { readonly context: string; readonly dockerfile: string } {
  let base = root;
  if (service.source !== undefined) {
    const checkout = checkouts[service.source];
    if (checkout === undefined) {
      throw new Error(`service ${service.name}: no checkout for source ${service.source}`);
    }
    base = checkout;
  }
  const context = path.resolve(base, service.context);
  const dockerfile =
    service.dockerfile !== undefined
      ? path.resolve(root, service.dockerfile)
      : path.join(context, "Dockerfile");
  return { context, dockerfile };
}

// ---------------------------------------------------------------------------------------------
// Site config
// ---------------------------------------------------------------------------------------------

/** The Pulumi config namespace of the site config. */
export const CONFIG_NAMESPACE = "gitops-rings";

/**
 * Picks the `gitops-rings:` keys out of a flat Pulumi config map (as the runtime or
 * `pulumi config --json` gives it) and parses values that are JSON objects or lists.
 * @param config keys like `gitops-rings:pins`, values strings (JSON for structured values)
 *   or already-parsed values.
 * @returns the namespace's values by bare key, for {@link parseSiteConfig}.
 */
export function siteValuesFromConfigMap(
  config: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const prefix = `${CONFIG_NAMESPACE}:`;
  for (const [key, value] of Object.entries(config)) {
    if (!key.startsWith(prefix)) continue;
    let v = value;
    if (typeof v === "string" && /^\s*[[{]/.test(v)) {
      try {
        v = JSON.parse(v);
      } catch {
        // keep the string: the schema names the key and the value
      }
    }
    out[key.slice(prefix.length)] = v;
  }
  return out;
}

/**
 * Validates a site's stack config (DESIGN.md, "site", flows 1, 4, 5, 6) against the
 * repository config: the shape of {@link SiteConfig}, strict; `ring` is a ring of
 * `ante, <rings>, post`; `environment` is configured; every service named in `pins`,
 * `policies`, `majorBump` and `sourceCommits` exists (and in `sourceCommits`, its source); a
 * service has a pin or a policy, not both; `build` defaults to true on the first configured
 * ring (DESIGN.md flow 1). Booleans may be given as `"true"`/`"false"`, as
 * `pulumi config set` stores them.
 * @param values the namespace's values by bare key (`ring`, `pins`, ...).
 * @param file the stack config file named in error messages, e.g.
 *   `stacks/Pulumi.eu-testers.yaml`.
 * @param repo the repository config the names are checked against.
 * @returns the validated site config, defaults filled in.
 * @throws {ConfigError} listing every problem, e.g.
 *   `stacks/Pulumi.eu-testers.yaml: gitops-rings:pins.backend.version: "1.x" is not a version (semver, e.g. 1.2.3)`.
 */
export function parseSiteConfig(
  values: Readonly<Record<string, unknown>>,
  file: string,
  repo: RepositoryConfig,
  options: SiteConfigOptions = {},
): SiteConfig {
  const prefix = `${CONFIG_NAMESPACE}:`;
  const parsed = siteSchema.safeParse(values, { reportInput: true });
  const problems: ConfigProblem[] = parsed.success
    ? []
    : problemsFromIssues(parsed.error.issues, file, prefix, () => undefined);
  const add = (segments: PropertyKey[], message: string) =>
    problems.push({ file, key: prefix + keyPath(segments), message });
  // Cross-checks run on whatever parts are well-formed, so that every problem is reported.
  const v = values as Record<string, unknown>;
  const rings = [PSEUDO_RINGS[0], ...repo.rings, PSEUDO_RINGS[1]];
  const serviceNames = Object.keys(repo.services);
  const known = `(${serviceNames.join(", ")})`;
  if (typeof v.ring === "string" && NAME.test(v.ring) && !rings.includes(v.ring)) {
    add(["ring"], `${showValue(v.ring)} is not a ring (${rings.join(", ")})`);
  }
  if (
    typeof v.environment === "string" &&
    NAME.test(v.environment) &&
    repo.environments[v.environment] === undefined
  ) {
    add(
      ["environment"],
      `${showValue(v.environment)} is not an environment (${Object.keys(repo.environments).join(", ")})`,
    );
  }
  for (const key of ["pins", "policies"] as const) {
    const map = v[key];
    if (!isMap(map)) continue;
    for (const service of Object.keys(map)) {
      if (repo.services[service] === undefined) {
        add([key, service], `${showValue(service)} is not a service ${known}`);
      }
    }
  }
  if (isMap(v.pins) && isMap(v.policies)) {
    for (const service of Object.keys(v.policies)) {
      if (v.pins[service] !== undefined && repo.services[service] !== undefined) {
        add(["policies", service], "a service has a pin or a policy, not both (see pins)");
      }
    }
  }
  if (isMap(v.majorBump)) {
    for (const name of Object.keys(v.majorBump)) {
      if (name !== RELEASE && repo.services[name] === undefined) {
        add(["majorBump", name], `${showValue(name)} is not a service ${known} or "${RELEASE}"`);
      }
    }
  }
  if (isMap(v.sourceCommits)) {
    for (const key of Object.keys(v.sourceCommits)) {
      const [service, source, ...rest] = key.split("/");
      if (rest.length > 0 || source === undefined) continue; // the schema reports the key
      const s = repo.services[service];
      if (s === undefined) {
        add(["sourceCommits", key], `${showValue(service)} is not a service ${known}`);
      } else if (!s.sources.some((src) => src.name === source)) {
        add(
          ["sourceCommits", key],
          `${showValue(source)} is not a source of ${service} (${s.sources.map((x) => x.name).join(", ") || "none"})`,
        );
      }
    }
  }
  problems.push(...buildingSiteProblems(v, file, repo));
  const registryAuth = parseRegistryAuth(v.registryAuth, file, options.isSecret, problems);
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const raw = parsed.data;
  const pins: Record<string, Pin> = {};
  for (const [service, pin] of Object.entries(raw.pins ?? {}).sort(byKey)) {
    pins[service] =
      pin.version !== undefined
        ? { version: pin.version }
        : pin.tag !== undefined
          ? { tag: pin.tag }
          : { digest: pin.digest as string };
  }
  const policies: Record<string, Policy> = {};
  for (const [service, p] of Object.entries(raw.policies ?? {}).sort(byKey)) {
    policies[service] = policyFromRaw(p);
  }
  return {
    file,
    ring: raw.ring,
    environment: raw.environment,
    build: raw.build ?? raw.ring === repo.rings[0],
    ...(raw.release !== undefined ? { release: raw.release } : {}),
    pins,
    policies,
    majorBump: sortedRecord(raw.majorBump ?? {}),
    ...(raw.registry !== undefined ? { registry: raw.registry } : {}),
    autoDeploy: raw.autoDeploy ?? false,
    ...(raw.rolloutTimeout !== undefined ? { rolloutTimeout: raw.rolloutTimeout } : {}),
    ...(raw.buildConcurrency !== undefined ? { buildConcurrency: raw.buildConcurrency } : {}),
    sourceCommits: sortedRecord(raw.sourceCommits ?? {}),
    images: {
      ...(raw.images?.allowedRegistries !== undefined
        ? { allowedRegistries: raw.images.allowedRegistries }
        : {}),
      requireDigest: raw.images?.requireDigest ?? false,
      fields: (raw.images?.fields ?? []).map((f) => ({
        path: f.path,
        ...(f.kind !== undefined ? { kind: f.kind } : {}),
        ...(f.group !== undefined ? { group: f.group } : {}),
        ...(f.version !== undefined ? { version: f.version } : {}),
      })),
    },
    ...(Object.keys(registryAuth).length > 0 ? { registryAuth } : {}),
    ...(raw.identity === true ? { identity: true } : {}),
  };
}

/** Options of {@link parseSiteConfig}. */
export interface SiteConfigOptions {
  /**
   * Whether a full config key (`gitops-rings:registryAuth`) holds a Pulumi secret: given when
   * the values come from the Pulumi runtime, which hands secrets over decrypted. Without it the
   * values are a stack file's, where a secret is `{ secure: <ciphertext> }`.
   */
  readonly isSecret?: (key: string) => boolean;
}

/** The config key of the registry credentials. */
export const REGISTRY_AUTH_KEY = `${CONFIG_NAMESPACE}:registryAuth`;

/** A registry key of `registryAuth`: `host[:port]`, no path. */
const REGISTRY_HOST = new RegExp(`^${HOST}$`);

/**
 * The commands that set a registry's credentials, for error messages and the README.
 * @param registry `host[:port]`.
 * @returns `pulumi config set --path '…username' <user>` and `pulumi config set --secret --path '…password' <password>`.
 */
export function registryAuthCommands(registry: string): string {
  const key = `${REGISTRY_AUTH_KEY}[${JSON.stringify(registry)}]`;
  return (
    `pulumi config set --path '${key}.username' <user> && ` +
    `pulumi config set --secret --path '${key}.password' <password>`
  );
}

/**
 * Validates `gitops-rings:registryAuth` alone (what a dynamic provider reads from its config).
 * @param value the value as given (a map, or undefined when none is configured).
 * @param file the file named in error messages.
 * @param isSecret see {@link SiteConfigOptions.isSecret}.
 * @returns the credentials by registry.
 * @throws {ConfigError} naming file and key, never the password.
 */
export function validateRegistryAuth(
  value: unknown,
  file: string,
  isSecret?: (key: string) => boolean,
): Record<string, RegistryAuthEntry> {
  const problems: ConfigProblem[] = [];
  const auth = parseRegistryAuth(value, file, isSecret, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return auth;
}

/**
 * Validates `gitops-rings:registryAuth`: a map from registry `host[:port]` to
 * `{ username, password }`, both non-empty strings, the password a Pulumi secret. Problems are
 * appended to `problems`; no message shows a password.
 * @returns the credentials by registry (empty when there are problems or none are set).
 */
function parseRegistryAuth(
  value: unknown,
  file: string,
  isSecret: ((key: string) => boolean) | undefined,
  problems: ConfigProblem[],
): Record<string, RegistryAuthEntry> {
  if (value === undefined) return {};
  const add = (segments: PropertyKey[], message: string) =>
    problems.push({
      file,
      key: `${CONFIG_NAMESPACE}:${keyPath(["registryAuth", ...segments])}`,
      message,
    });
  if (!isMap(value)) {
    add(
      [],
      `${showValue(typeof value === "string" ? "<string>" : value)} is not a map of registry (host[:port]) to { username, password }`,
    );
    return {};
  }
  const out: Record<string, RegistryAuthEntry> = {};
  for (const [registry, entry] of Object.entries(value).sort(byKey)) {
    if (!REGISTRY_HOST.test(registry)) {
      add([registry], `${showValue(registry)} is not a registry host[:port] (no scheme, no path)`);
      continue;
    }
    if (!isMap(entry)) {
      add([registry], `is not a map { username, password }: ${registryAuthCommands(registry)}`);
      continue;
    }
    for (const key of Object.keys(entry)) {
      if (key !== "username" && key !== "password") {
        add([registry, key], "unknown key (known: username, password)");
      }
    }
    const { username, password } = entry as { username?: unknown; password?: unknown };
    if (typeof username !== "string" || username === "") {
      add(
        [registry, "username"],
        username === undefined
          ? `is required: ${registryAuthCommands(registry)}`
          : `${showValue(username)} is not a non-empty string`,
      );
    }
    let decrypted: string | undefined;
    if (password === undefined) {
      add([registry, "password"], `is required: ${registryAuthCommands(registry)}`);
    } else if (isMap(password) && typeof password.secure === "string" && isSecret === undefined) {
      // A stack file's ciphertext: valid, unreadable without the stack's secrets provider.
    } else if (typeof password !== "string" || password === "") {
      add([registry, "password"], "is not a non-empty string");
    } else if (!(isSecret?.(REGISTRY_AUTH_KEY) ?? false)) {
      add(
        [registry, "password"],
        `is stored in plain text; set it as a secret: ${registryAuthCommands(registry)}`,
      );
    } else {
      decrypted = password;
    }
    if (typeof username === "string" && username !== "") {
      out[registry] = decrypted !== undefined ? { username, password: decrypted } : { username };
    }
  }
  return out;
}

/**
 * A building site deploys the release it builds (DESIGN.md flow 1): pins, policies and a
 * `release` pin there would deploy something else than what the ring records, so they are
 * refused, not ignored (issue 7, item 4). Pin on a site with `build: false`.
 */
function buildingSiteProblems(
  v: Readonly<Record<string, unknown>>,
  file: string,
  repo: RepositoryConfig,
): ConfigProblem[] {
  const explicit = v.build === true || v.build === "true";
  const builds =
    explicit || (v.build === undefined && typeof v.ring === "string" && v.ring === repo.rings[0]);
  if (!builds) return [];
  const why = explicit
    ? "this site builds (gitops-rings:build is true)"
    : `this site builds (its ring ${v.ring} is the first ring, so gitops-rings:build defaults to true)`;
  const problems: ConfigProblem[] = [];
  for (const key of ["release", "pins", "policies"] as const) {
    const value = v[key];
    if (value === undefined || (isMap(value) && Object.keys(value).length === 0)) continue;
    problems.push({
      file,
      key: `${CONFIG_NAMESPACE}:${key}`,
      message:
        `${why}, and a building site deploys the release it builds; ` +
        `pin or set policies on a site with gitops-rings:build false`,
    });
  }
  return problems;
}

/** A validated `policies.<service>` value as a {@link Policy}, defaults filled in. */
function policyFromRaw(p: z.infer<typeof policySchema>): Policy {
  const filterTags =
    p.filterTags === undefined
      ? {}
      : {
          filterTags: {
            pattern: p.filterTags.pattern,
            ...(p.filterTags.extract !== undefined ? { extract: p.filterTags.extract } : {}),
          },
        };
  const order = (o: { order?: string }) => ({ order: (o.order ?? "asc") as TagOrderConfig });
  if (p.semver !== undefined) {
    const { range, prerelease } = p.semver;
    return {
      semver: { range, ...(prerelease !== undefined ? { prerelease } : {}) },
      ...filterTags,
    };
  }
  if (p.alphabetical !== undefined) return { alphabetical: order(p.alphabetical), ...filterTags };
  if (p.numerical !== undefined) return { numerical: order(p.numerical), ...filterTags };
  if (p.gitRevision !== undefined) {
    const { branch, tagPrefix } = p.gitRevision;
    return { gitRevision: { branch, ...(tagPrefix !== undefined ? { tagPrefix } : {}) } };
  }
  return p.tag !== undefined ? { tag: p.tag } : { digest: p.digest as string };
}

function byKey<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
