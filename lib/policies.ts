/**
 * Image policies: how a site selects one service's image when it does not simply take it from
 * its ring's release (DESIGN.md, flow 5). Every policy answers with a reference by digest
 * (invariant 4) and says why.
 *
 * | kind | selects |
 * |---|---|
 * | `ring` | the service's image in the ring's release (the default) |
 * | `semver` | the highest tag in a semver range; prereleases only when the range names one |
 * | `alphabetical`, `numerical` | the last (`asc`, default) or first (`desc`) tag in that order |
 * | `gitRevision` | the image of the newest commit on a branch that has one (Flux issue seed 003) |
 * | `tag` | whatever a mutable tag points at now: a new digest shows as a new selection |
 * | `digest` | exactly this digest, after checking it exists |
 *
 * `semver`, `alphabetical` and `numerical` take Flux's `filterTags`: tags that `pattern`
 * matches are kept, and the value that is ordered is `extract` (Go template syntax: `$1`,
 * `${1}`, `$name`, `${name}`) expanded against the pattern's first match, or the tag itself
 * without `extract`, as Flux's image-reflector-controller does (`FindStringSubmatchIndex`,
 * then `ExpandString`).
 *
 * Every selection also records what the image's own labels say it is (lib/labels.ts): its
 * version, revision and source commits, so a site's outputs record what it runs (DESIGN.md
 * invariant 5). An image this program did not build records the labels it has, without error.
 */
import * as semver from "semver";
import { walkCommits } from "./git";
import { DEPENDENCY_PREFIX, parseImageLabels, sourceCommitLabel, type Labels } from "./labels";
import { mapLimit } from "./limit";
import { DEFAULT_PLATFORM, RegistryClient, type Platform } from "./registry";
import type { Digest, RingState, SourceCommit, Version } from "./types";

/** Flux's `filterTags`: keep tags matching `pattern`, order by the `extract`ed value. */
export interface TagFilter {
  /** A regular expression; Go's `(?P<name>…)` groups are accepted. Unanchored, like Go's. */
  readonly pattern: string;
  /**
   * The value ordered: this template expanded against the pattern's first match in the tag
   * (Go `Regexp.ExpandString`), the rest of the tag dropped.
   * @default the tag itself
   */
  readonly extract?: string;
}

/** `asc`: the last value in ascending order wins (Flux's default); `desc`: the first. */
export type TagOrder = "asc" | "desc";

/** A policy; see the module documentation. */
export type Policy =
  | { readonly kind: "ring" }
  | {
      readonly kind: "semver";
      readonly range: string;
      /**
       * `true`: any prerelease in range matches; `false`: none does.
       * @default prereleases match only when the range names one ({@link rangeWantsPrerelease})
       */
      readonly prerelease?: boolean;
      readonly filterTags?: TagFilter;
    }
  | {
      readonly kind: "alphabetical" | "numerical";
      /** @default "asc" */
      readonly order?: TagOrder;
      readonly filterTags?: TagFilter;
    }
  | {
      readonly kind: "gitRevision";
      /** The source's name: the label matched is `io.gitops-rings.source.<source>.commit`. */
      readonly source: string;
      /** The source repository's clone URL or path. */
      readonly url: string;
      readonly branch: string;
      /** Also match tags `<tagPrefix><short sha>` (at least 7 hex digits). */
      readonly tagPrefix?: string;
      /**
       * First-parent commits walked from the branch head.
       * @default 100
       */
      readonly depth?: number;
      /**
       * Version tags whose config labels are read, newest first.
       * @default 50
       */
      readonly scanLimit?: number;
    }
  | { readonly kind: "tag"; readonly tag: string }
  | { readonly kind: "digest"; readonly digest: Digest };

/** What a policy selected. */
export interface Selection {
  /** `host/path@sha256:…`: what manifests use. */
  readonly reference: string;
  /** The image's semver, when known: its version label, else the semver its tag gives. */
  readonly version?: Version;
  readonly digest: Digest;
  /** The image's revision label (lib/revision.ts for images this program built), when it has one. */
  readonly revision?: string;
  /** The source commits its labels record (`io.gitops-rings.source.*`); [] when none. */
  readonly sources: readonly SourceCommit[];
  /** The tag that led to the image, when one did. */
  readonly tag?: string;
  /** One line for humans (the preview's plan, the watcher's log). */
  readonly why: string;
}

/** What {@link selectImage} needs. */
export interface SelectInput {
  /** The service name, for errors and the ring lookup. */
  readonly service: string;
  /** The service's repository, `host[:port]/path`. */
  readonly repository: string;
  readonly policy: Policy;
  /** The site's ring, for the `ring` policy. */
  readonly ring?: RingState;
  readonly client: RegistryClient;
  /**
   * The platform whose labels are read when an image is an index.
   * @default linux/amd64
   */
  readonly platform?: Platform;
}

/** The policy as its config would say it, for messages: `semver ">=1.2.0"`. */
export function describePolicy(policy: Policy): string {
  const filter = (f?: TagFilter) =>
    f
      ? ` (filterTags ${JSON.stringify(f.pattern)}${f.extract ? ` extract ${JSON.stringify(f.extract)}` : ""})`
      : "";
  switch (policy.kind) {
    case "ring":
      return "ring";
    case "semver": {
      const pre = policy.prerelease === undefined ? "" : ` prerelease ${policy.prerelease}`;
      return `semver ${JSON.stringify(policy.range)}${pre}${filter(policy.filterTags)}`;
    }
    case "alphabetical":
    case "numerical":
      return `${policy.kind} ${policy.order ?? "asc"}${filter(policy.filterTags)}`;
    case "gitRevision":
      return `gitRevision ${policy.branch} of ${policy.url}`;
    case "tag":
      return `tag ${JSON.stringify(policy.tag)}`;
    case "digest":
      return `digest ${policy.digest}`;
  }
}

/** A tag and the value a policy orders it by. */
export interface Candidate {
  readonly tag: string;
  readonly value: string;
}

/** The `$…` references of a Go template: `$$`, `$1`, `${1}`, `$name`, `${name}`. */
const TEMPLATE_REFERENCE = /\$(?:(\$)|\{(\w+)\}|(\w+))/g;

/** Go reads a reference as a group number when it is digits without a leading zero, below 1e8. */
const GROUP_NUMBER = /^(?:0|[1-9]\d{0,7})$/;

/**
 * Go's `Regexp.Expand` of `template` for one match: `$1`, `${1}`, `$name`, `${name}`, `$$`.
 * As in Go, `$name` takes the longest run of word characters, and an unknown group is empty.
 */
export function expandTemplate(template: string, match: RegExpExecArray): string {
  return template.replace(TEMPLATE_REFERENCE, (_all, dollar, braced, bare) => {
    if (dollar) return "$";
    const name: string = braced ?? bare;
    if (GROUP_NUMBER.test(name)) return match[Number(name)] ?? "";
    return match.groups?.[name] ?? "";
  });
}

/**
 * The groups a Go template names, in order: `["1", "version"]` for `$1-${version}`; `$$` is a
 * literal dollar and names none.
 */
export function templateReferences(template: string): string[] {
  return [...template.matchAll(TEMPLATE_REFERENCE)].filter((m) => !m[1]).map((m) => m[2] ?? m[3]);
}

/** Compiles a Flux pattern: Go's `(?P<name>` becomes JavaScript's `(?<name>`. */
export function compilePattern(pattern: string): RegExp {
  try {
    return new RegExp(pattern.replace(/\(\?P</g, "(?<"));
  } catch (e) {
    throw new Error(`filterTags pattern ${JSON.stringify(pattern)}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** The capture groups of a compiled pattern: how many, and the names of the named ones. */
export function patternGroups(re: RegExp): { readonly count: number; readonly names: string[] } {
  // An empty alternative matches "", and the match lists every group, each undefined.
  const m = new RegExp(`(?:${re.source})|`, re.flags).exec("") as RegExpExecArray;
  return { count: m.length - 1, names: Object.keys(m.groups ?? {}) };
}

/**
 * Flux's filterTags: the tags `filter.pattern` matches, each with its value: `extract`
 * expanded against the pattern's first (leftmost) match in the tag, as Flux's
 * `ExpandString(nil, extract, tag, FindStringSubmatchIndex(tag))`, or the tag itself without
 * `extract`. Without a filter every tag is kept as is.
 * @throws when the pattern does not compile (the message names it).
 */
export function filterTags(tags: readonly string[], filter?: TagFilter): Candidate[] {
  if (!filter) return tags.map((tag) => ({ tag, value: tag }));
  const re = compilePattern(filter.pattern);
  const out: Candidate[] = [];
  for (const tag of tags) {
    const match = re.exec(tag);
    if (match === null) continue;
    const value = filter.extract ? expandTemplate(filter.extract, match) : tag;
    out.push({ tag, value });
  }
  return out;
}

/**
 * True when `range` as written names a prerelease (`>=1.0.0-0`, `~2.1.0-rc.1`): a digit directly
 * followed by `-` and an identifier. Read from the text, not from the parsed comparators, because
 * semver desugars `^1.0.0` into `>=1.0.0 <2.0.0-0`, whose upper bound is a prerelease.
 */
export function rangeWantsPrerelease(range: string): boolean {
  return /\d-[0-9A-Za-z]/.test(range);
}

/**
 * The candidate with the highest semver value in `range`. Values are parsed as semver (a
 * leading `v` is accepted); others are skipped. Prereleases are considered when `prerelease` is
 * true, never when it is false, and by default only when the range itself names a prerelease
 * (`>=1.0.0-0`); when considered, with semver's `includePrerelease` (any prerelease in range,
 * not only those of the same major.minor.patch).
 * Ties (`1.2.0` and `v1.2.0`) go to the alphabetically first tag.
 * @throws when `range` is not a semver range.
 */
export function selectSemver(
  candidates: readonly Candidate[],
  range: string,
  prerelease?: boolean,
): (Candidate & { readonly version: Version }) | undefined {
  let parsed: semver.Range;
  try {
    parsed = new semver.Range(range);
  } catch (e) {
    throw new Error(`${JSON.stringify(range)} is not a semver range`, { cause: e });
  }
  const includePrerelease = prerelease ?? rangeWantsPrerelease(range);
  let best: (Candidate & { version: Version }) | undefined;
  for (const c of [...candidates].sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0))) {
    const version = semver.valid(c.value);
    if (version === null) continue;
    if (semver.prerelease(version) && !includePrerelease) continue;
    if (!semver.satisfies(version, parsed, { includePrerelease })) continue;
    if (!best || semver.gt(version, best.version)) best = { ...c, version };
  }
  return best;
}

/**
 * The candidate Flux's alphabetical or numerical policy selects: the greatest value (`asc`,
 * the default) or the least (`desc`). Alphabetical compares code units, as Go's sort.Strings.
 * @throws for `numerical` when a value is not a number (the message names the tag).
 */
export function selectOrdered(
  candidates: readonly Candidate[],
  kind: "alphabetical" | "numerical",
  order: TagOrder = "asc",
): Candidate | undefined {
  const key = (c: Candidate): number | string => {
    if (kind === "alphabetical") return c.value;
    const n = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(c.value) ? Number(c.value) : NaN;
    if (Number.isNaN(n)) {
      throw new Error(
        `tag ${JSON.stringify(c.tag)}: value ${JSON.stringify(c.value)} is not a number`,
      );
    }
    return n;
  };
  let best: Candidate | undefined;
  let bestKey: number | string | undefined;
  for (const c of candidates) {
    const k = key(c);
    if (
      bestKey === undefined ||
      (order === "asc" ? k > bestKey : k < bestKey) ||
      (k === bestKey && c.tag < best!.tag)
    ) {
      best = c;
      bestKey = k;
    }
  }
  return best;
}

/**
 * The tags naming `commit` as `<prefix><short sha>`: the rest after the prefix is 7 to 40
 * lowercase hex digits and a prefix of the commit (Flux issue seed 003's TagPrefixIdentifier).
 */
export function tagsForCommit(tags: readonly string[], prefix: string, commit: string): string[] {
  return tags.filter((tag) => {
    if (!tag.startsWith(prefix)) return false;
    const short = tag.slice(prefix.length);
    return /^[0-9a-f]{7,40}$/.test(short) && commit.startsWith(short);
  });
}

function selectionError(input: SelectInput, detail: string, cause?: unknown): Error {
  return new Error(`service ${input.service}: policy ${describePolicy(input.policy)}: ${detail}`, {
    cause,
  });
}

/** What an image's own labels say it is: the part of a {@link Selection} they give. */
export type LabelledImage = Pick<Selection, "version" | "revision" | "sources">;

/**
 * Reads what an image's labels say it is (lib/labels.ts parseImageLabels): the semver version
 * label, the revision label and the `io.gitops-rings.source.*` commits (DESIGN.md invariant 5).
 * Lenient about images this program did not build: a missing or non-semver version, a missing
 * revision, and `dependency.*` labels it did not write (not read here) give no error.
 * @param where names the image in errors about malformed `io.gitops-rings.source.*` labels.
 * @throws when the image's `io.gitops-rings.source.*` labels are malformed.
 */
export function labelledImage(labels: Labels, where: string): LabelledImage {
  const own = Object.fromEntries(
    Object.entries(labels).filter(([key]) => !key.startsWith(DEPENDENCY_PREFIX)),
  );
  const parsed = parseImageLabels(own, where);
  return {
    ...(parsed.version !== undefined ? { version: parsed.version } : {}),
    ...(parsed.revision ? { revision: parsed.revision } : {}),
    sources: parsed.sources,
  };
}

/**
 * The selection of the image at `digest`: its labels' version (else `tagVersion`), revision
 * and sources.
 */
async function selected(
  input: SelectInput,
  digest: Digest,
  found: { readonly tag?: string; readonly tagVersion?: Version; readonly why: string },
  labels?: Labels,
): Promise<Selection> {
  const reference = `${input.repository}@${digest}`;
  const image = labelledImage(
    labels ?? (await input.client.getLabels(reference, input.platform ?? DEFAULT_PLATFORM)),
    reference,
  );
  const version = image.version ?? found.tagVersion;
  return {
    reference,
    ...(version !== undefined ? { version } : {}),
    digest,
    ...(found.tag !== undefined ? { tag: found.tag } : {}),
    ...(image.revision !== undefined ? { revision: image.revision } : {}),
    sources: image.sources,
    why: found.why,
  };
}

async function byTag(
  input: SelectInput,
  tag: string,
  tagVersion: Version | undefined,
  why: string,
) {
  const digest = await input.client.resolveDigest(`${input.repository}:${tag}`);
  return selected(input, digest, { tag, tagVersion, why });
}

async function selectByGitRevision(
  input: SelectInput,
  policy: Extract<Policy, { kind: "gitRevision" }>,
): Promise<Selection> {
  const label = sourceCommitLabel(policy.source);
  const commits = await walkCommits(policy.url, policy.branch, { depth: policy.depth ?? 100 });
  const tags = await input.client.listTags(input.repository);
  const versions = tags
    .filter((t) => semver.valid(t) === t)
    .sort(semver.rcompare)
    .slice(0, policy.scanLimit ?? 50);
  const configs = await mapLimit(versions, 4, (tag) =>
    input.client.getImageConfig(`${input.repository}:${tag}`, input.platform ?? DEFAULT_PLATFORM),
  );
  for (const [i, commit] of commits.entries()) {
    const below = i === 0 ? "the head" : `${i} commit${i === 1 ? "" : "s"} below the head`;
    const where = `commit ${commit.slice(0, 12)} (${below} of ${policy.branch})`;
    const labelled = versions.findIndex((_, j) => configs[j].labels[label] === commit);
    if (labelled >= 0) {
      const config = configs[labelled];
      const tag = versions[labelled];
      const why = `gitRevision: ${where} has image ${tag} (label ${label})`;
      return selected(input, config.digest, { tag, tagVersion: tag, why }, config.labels);
    }
    if (policy.tagPrefix !== undefined) {
      const matching = tagsForCommit(tags, policy.tagPrefix, commit).sort();
      if (matching.length > 0) {
        const tag = matching[matching.length - 1];
        return byTag(input, tag, undefined, `gitRevision: ${where} has image tag ${tag}`);
      }
    }
  }
  const how = [
    `label ${label} on the ${versions.length} newest version tags`,
    ...(policy.tagPrefix !== undefined
      ? [`tags ${JSON.stringify(policy.tagPrefix)}<short sha>`]
      : []),
  ].join(" or ");
  throw selectionError(
    input,
    `none of the ${commits.length} first-parent commits from ${commits[0]?.slice(0, 12)} has an image in ${input.repository} (matched by ${how})`,
  );
}

/**
 * Selects one service's image by its policy.
 * @returns the image by digest, with what its labels say (version, revision, sources; for
 *   `ring`, what the release records), and why.
 * @throws an error naming the service and the policy value when nothing matches, a tag or
 * digest does not exist, or the ring's release lacks the service.
 */
export async function selectImage(input: SelectInput): Promise<Selection> {
  const { policy, client, repository } = input;
  try {
    switch (policy.kind) {
      case "ring": {
        const release = input.ring?.release;
        if (!input.ring) throw selectionError(input, "no ring state given");
        if (!release) throw selectionError(input, `ring ${input.ring.ring} has no release yet`);
        const image = release.services[input.service];
        if (!image) {
          throw selectionError(
            input,
            `release ${release.version} of ring ${input.ring.ring} has no service ${input.service} (has: ${Object.keys(release.services).sort().join(", ") || "none"})`,
          );
        }
        return {
          reference: `${image.repository}@${image.digest}`,
          version: image.version,
          digest: image.digest,
          revision: image.revision,
          sources: image.sources,
          why: `ring ${input.ring.ring}: release ${release.version} has ${input.service} ${image.version}`,
        };
      }
      case "semver": {
        const tags = await client.listTags(repository);
        const candidates = filterTags(tags, policy.filterTags);
        let best;
        try {
          best = selectSemver(candidates, policy.range, policy.prerelease);
        } catch (e) {
          throw selectionError(input, (e as Error).message, e);
        }
        if (!best) {
          throw selectionError(
            input,
            `no tag of ${repository} is in range (${candidates.length} of ${tags.length} tags passed the filter)`,
          );
        }
        return byTag(
          input,
          best.tag,
          best.version,
          `semver ${JSON.stringify(policy.range)}: ${best.tag} is the highest of ${candidates.length} candidate tags`,
        );
      }
      case "alphabetical":
      case "numerical": {
        const tags = await client.listTags(repository);
        const candidates = filterTags(tags, policy.filterTags);
        let best;
        try {
          best = selectOrdered(candidates, policy.kind, policy.order);
        } catch (e) {
          throw selectionError(input, (e as Error).message, e);
        }
        if (!best) throw selectionError(input, `no tag of ${repository} passed the filter`);
        const v = semver.valid(best.tag) === best.tag ? best.tag : undefined;
        return byTag(
          input,
          best.tag,
          v,
          `${policy.kind} ${policy.order ?? "asc"}: ${best.tag} (value ${JSON.stringify(best.value)}) of ${candidates.length} candidate tags`,
        );
      }
      case "gitRevision":
        return await selectByGitRevision(input, policy);
      case "tag": {
        const head = await client.headManifest(`${repository}:${policy.tag}`);
        if (!head) throw selectionError(input, `${repository}:${policy.tag} does not exist`);
        return await selected(input, head.digest, {
          tag: policy.tag,
          why: `tag ${policy.tag} points at ${head.digest}`,
        });
      }
      case "digest": {
        const head = await client.headManifest(`${repository}@${policy.digest}`);
        if (!head) throw selectionError(input, `${repository}@${policy.digest} does not exist`);
        return await selected(input, policy.digest, { why: `pinned digest ${policy.digest}` });
      }
    }
  } catch (e) {
    const named = e instanceof Error && e.message.startsWith(`service ${input.service}: policy `);
    if (e instanceof Error && !named) throw selectionError(input, e.message, e);
    throw e;
  }
}
