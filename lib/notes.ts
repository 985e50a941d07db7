/**
 * Release notes (issue 9): what changes between two sides, each a ring's release, a release
 * version, or a site's plan (what its next `pulumi up` would release, lib/site.ts). Per
 * service: the old and new version and digest, why it changed (revision, dependencies,
 * sources), and for every source repository the commits between the two recorded commits
 * (lib/git.ts, through the project's git cache), with a note instead of a failure when a
 * history was rewritten or a commit is unreachable. A service whose files live in the version
 * repository itself records no commit in its labels; for a plan, its notes list the version
 * repository's commits since a base (the pull request's base) that touch its files.
 *
 * {@link compareSides} is pure; {@link releaseNotes} adds the commits; {@link formatNotesTable}
 * and {@link formatNotesMarkdown} print them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as semver from "semver";
import { parse as parseYaml } from "yaml";
import type { RepositoryConfig } from "./config";
import { formatTable } from "./check";
import { commitsBetween, localCommits, type CommitInfo, type CommitRange } from "./git";
import type { RegistryClient } from "./registry";
import { prepareSite, readConfig, stackFile, type SitePlan } from "./site";
import type { StateStore } from "./state-store";
import type { ReleaseRecord, SourceCommit } from "./types";

/** One service on one side of a diff. */
export interface SideImage {
  /** Its version; absent when not known (a policy selected an image without a version label). */
  readonly version?: string;
  /** Its digest; absent when the plan builds it (known only once built). */
  readonly digest?: string;
  /** Its revision; absent when a dependency rebuilds in the plan. */
  readonly revision?: string;
  /**
   * Versions of the dependency images, by service name; absent when not known (a deploy
   * plan's images, whose dependencies their release records).
   */
  readonly dependencies?: Readonly<Record<string, string>>;
  /** Its source repositories and commits, sorted by name. */
  readonly sources: readonly SourceCommit[];
  /** Why the plan builds, reuses or selects it (`revision changed`, `ring testers`, …). */
  readonly reason?: string;
}

/** One side of a diff: a ring, a release version or a site's plan. */
export interface Side {
  /** As given on the command line: `testers`, `0.4.0`, `plan:dev-developers`. */
  readonly name: string;
  /** The release version of this side, when there is one. */
  readonly release?: string;
  /** Every service of this side, by name. */
  readonly services: Readonly<Record<string, SideImage>>;
  /** For a plan: the release plan as `pulumi preview` prints it. */
  readonly plan?: string;
  /** For a plan: the site. */
  readonly site?: string;
}

/** A ring's or a version's release as a side; `release` undefined: a ring without a release. */
export function releaseSide(name: string, release: ReleaseRecord | undefined): Side {
  const services: Record<string, SideImage> = {};
  for (const [service, r] of Object.entries(release?.services ?? {})) {
    services[service] = {
      version: r.version,
      digest: r.digest,
      revision: r.revision,
      dependencies: r.dependencies,
      sources: r.sources,
    };
  }
  return { name, ...(release ? { release: release.version } : {}), services };
}

/** A site's plan as a side: what its next `pulumi up` would release (build) or deploy. */
export function planSide(name: string, plan: SitePlan): Side {
  const services: Record<string, SideImage> = {};
  if (plan.build) {
    for (const s of plan.services) {
      services[s.service] = {
        version: s.version,
        ...(s.action !== "build" && s.digest !== undefined ? { digest: s.digest } : {}),
        ...(s.revision !== undefined ? { revision: s.revision } : {}),
        dependencies: s.dependencies,
        sources: s.sources,
        reason: s.action === "build" ? `build: ${s.reason}` : `${s.action}: ${s.reason}`,
      };
    }
  } else {
    for (const [service, d] of Object.entries(plan.deploy.images)) {
      services[service] = {
        ...(d.version !== undefined ? { version: d.version } : {}),
        digest: d.digest,
        ...(d.revision !== undefined ? { revision: d.revision } : {}),
        sources: d.sources,
        reason: d.why,
      };
    }
  }
  const release = plan.build ? plan.release.version : plan.deploy.release;
  return {
    name,
    ...(release ? { release } : {}),
    services,
    plan: plan.table,
    site: plan.site,
  };
}

/** The prefix of a plan side: `plan:<site>`. */
export const PLAN_PREFIX = "plan:";

/**
 * A site's stack config as the Pulumi runtime gives it (`gitops-rings:<key>` to value), read
 * from `stacks/Pulumi.<site>.yaml` under `root` without the Pulumi CLI or backend.
 * @throws naming the file when it is missing or is not YAML.
 */
export function readStackConfig(root: string, site: string): Record<string, unknown> {
  const file = stackFile(site);
  let text: string;
  try {
    text = fs.readFileSync(path.join(root, file), "utf8");
  } catch {
    throw new Error(`${file}: no such stack file (site ${JSON.stringify(site)})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`${file}: not YAML: ${(e as Error).message}`, { cause: e });
  }
  const config = (doc as { config?: unknown } | null)?.config;
  return config !== null && typeof config === "object" ? (config as Record<string, unknown>) : {};
}

/** What {@link readSide} reads from. */
export interface SideSource {
  /** The state store of the version repository's registry (rings and releases). */
  readonly store: StateStore;
  /** The version repository root (for `plan:<site>`: `gitops-rings.yaml`, `stacks/`). */
  readonly root: string;
  /** For `plan:<site>`: the environment the plan reads (`GITOPS_RINGS_PLATFORM`, …). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly client?: RegistryClient;
}

/**
 * One side of a diff from its name: a ring of the store (`testers`, `ante`, `post`), a release
 * version (`0.4.0`), or `plan:<site>`, what that site's next `pulumi up` would release, as
 * lib/site.ts prepareSite plans it from the site's stack file (nothing is built or pushed).
 * @throws naming the side when it is none of these, or the plan's error (file, key, value).
 */
export async function readSide(
  name: string,
  from: SideSource,
): Promise<Side & { sitePlan?: SitePlan }> {
  if (name.startsWith(PLAN_PREFIX)) {
    const site = name.slice(PLAN_PREFIX.length);
    const config = readConfig(from.root, site, readStackConfig(from.root, site));
    const plan = await prepareSite({
      root: from.root,
      stack: site,
      config,
      ...(from.env ? { env: from.env } : {}),
      ...(from.client ? { client: from.client } : {}),
    });
    return { ...planSide(name, plan), sitePlan: plan };
  }
  if (from.store.rings.includes(name)) {
    return releaseSide(name, (await from.store.readRing(name)).release);
  }
  if (semver.valid(name) === name) return releaseSide(name, await from.store.readRelease(name));
  throw new Error(
    `${JSON.stringify(name)} is not a ring (${from.store.rings.join(", ")}), ` +
      `a release version (e.g. 0.4.0) or plan:<site>`,
  );
}

/** How one source repository of a service moved. */
export interface SourceChange {
  readonly name: string;
  readonly url: string;
  /** The commit on the old side; absent when the source is new. */
  readonly from?: string;
  /** The commit on the new side; absent when the source was removed. */
  readonly to?: string;
  /** The commits between them, oldest first (empty when unchanged or not listed). */
  readonly commits: readonly CommitInfo[];
  /** Commits of the range left out by the limit. */
  readonly omitted: number;
  /** Why the commits are not a plain range (history rewritten, unreachable, added, removed). */
  readonly note?: string;
}

/** How one service changed between the two sides. */
export interface ServiceChange {
  readonly service: string;
  /** `added`: only on the new side; `removed`: only on the old; else changed or not. */
  readonly change: "added" | "removed" | "changed" | "unchanged";
  readonly from?: Pick<SideImage, "version" | "digest">;
  readonly to?: Pick<SideImage, "version" | "digest">;
  /**
   * Why, most telling first: the plan's reason, `revision changed`, `dependency base 0.1.0 ->
   * 0.1.1`, `source worker 1234567 -> 89abcde`, `digest changed`.
   */
  readonly why: readonly string[];
  /** Per source repository (on either side), sorted by name. */
  readonly sources: readonly SourceChange[];
  /** For a service built from the version repository: its commits in the base range. */
  readonly versionRepository?: {
    readonly paths: readonly string[];
    readonly base: string;
    readonly commits: readonly CommitInfo[];
    readonly omitted: number;
    readonly note?: string;
  };
}

/** The release notes of one diff. */
export interface ReleaseNotes {
  readonly from: Pick<Side, "name" | "release">;
  readonly to: Pick<Side, "name" | "release" | "site">;
  /** The new side's release plan, when it is a plan. */
  readonly plan?: string;
  /** Every service of either side, sorted by name. */
  readonly services: readonly ServiceChange[];
}

const short = (commit: string) => commit.slice(0, 7);

/** Why `to` differs from `from` (both present); empty when it does not. */
function reasons(from: SideImage, to: SideImage): string[] {
  const why: string[] = [];
  if (from.revision !== undefined && to.revision !== undefined && from.revision !== to.revision) {
    why.push("revision changed");
  }
  if (from.dependencies !== undefined && to.dependencies !== undefined) {
    const [x, y] = [from.dependencies, to.dependencies];
    for (const d of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
      if (x[d] !== y[d]) why.push(`dependency ${d} ${x[d] ?? "none"} -> ${y[d] ?? "none"}`);
    }
  }
  const byName = (list: readonly SourceCommit[]) => new Map(list.map((s) => [s.name, s]));
  const a = byName(from.sources);
  const b = byName(to.sources);
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(name)?.commit;
    const y = b.get(name)?.commit;
    if (x !== y) {
      why.push(`source ${name} ${x ? short(x) : "none"} -> ${y ? short(y) : "none"}`);
    }
  }
  // A plan that builds says why itself (lib/plan.ts); digest and version follow from it.
  if (to.reason?.startsWith("build: ")) return why;
  if (why.length === 0 && from.digest !== to.digest && to.digest !== undefined) {
    why.push("digest changed");
  }
  if (why.length === 0 && from.version !== to.version) why.push("version changed");
  return why;
}

/**
 * Compares two sides without I/O: per service of either side whether it was added, removed,
 * changed or not, and why; source repositories paired by name, without commits.
 */
export function compareSides(from: Side, to: Side): ServiceChange[] {
  const names = [...new Set([...Object.keys(from.services), ...Object.keys(to.services)])].sort();
  return names.map((service): ServiceChange => {
    const a = from.services[service];
    const b = to.services[service];
    const pick = (s: SideImage) => ({
      ...(s.version !== undefined ? { version: s.version } : {}),
      ...(s.digest !== undefined ? { digest: s.digest } : {}),
    });
    const sources = new Map<string, { name: string; url: string; from?: string; to?: string }>();
    for (const s of a?.sources ?? [])
      sources.set(s.name, { name: s.name, url: s.url, from: s.commit });
    for (const s of b?.sources ?? []) {
      sources.set(s.name, { ...sources.get(s.name), name: s.name, url: s.url, to: s.commit });
    }
    const sourceChanges = [...sources.values()]
      .sort((x, y) => (x.name < y.name ? -1 : 1))
      .map((s) => ({ ...s, commits: [], omitted: 0 }));
    if (!a || !b) {
      return {
        service,
        change: a ? "removed" : "added",
        ...(a ? { from: pick(a) } : {}),
        ...(b ? { to: pick(b) } : {}),
        why: [a ? "removed" : (b?.reason ?? "new")],
        sources: sourceChanges,
      };
    }
    // The same digest is the same image, whatever either side knows about it.
    const why = a.digest !== undefined && a.digest === b.digest ? [] : reasons(a, b);
    // A plan that builds says why first (a dependency rebuild has no revision to compare yet).
    const planned = b.reason?.startsWith("build: ") ? [b.reason.slice("build: ".length)] : [];
    const changed =
      why.length > 0 ||
      planned.length > 0 ||
      a.version !== b.version ||
      (a.digest !== b.digest && b.digest !== undefined);
    return {
      service,
      change: changed ? "changed" : "unchanged",
      from: pick(a),
      to: pick(b),
      why: changed ? [...new Set([...planned, ...why])] : ["unchanged"],
      sources: sourceChanges,
    };
  });
}

/** Lists the commits of a source repository between two commits (lib/git.ts commitsBetween). */
export type CommitLister = (url: string, from: string, to: string) => Promise<CommitRange>;

/** Options of {@link releaseNotes}. */
export interface NotesOptions {
  /** @default {@link commitsBetween} of lib/git.ts, through the project's git cache */
  readonly commits?: CommitLister;
  /**
   * The version repository, for services whose files live in it (no `source`): their commits
   * in `base..HEAD` that touch the service's context or Dockerfile. Used when the new side is
   * a plan (a checkout of the version repository), e.g. a pull request against its base.
   */
  readonly versionRepository?: {
    /** The checkout's root. */
    readonly root: string;
    /** The repository config (the services' contexts). */
    readonly repo: RepositoryConfig;
    /** The commit or ref to list from (exclusive), e.g. the pull request's base commit. */
    readonly base: string;
    /** @default `HEAD` */
    readonly head?: string;
  };
}

/** The version repository paths of `service`'s files, or none when they live in a source. */
function versionRepoPaths(repo: RepositoryConfig, service: string): string[] {
  const s = repo.services[service];
  if (!s) return [];
  const paths: string[] = [];
  if (s.source === undefined) paths.push(path.posix.normalize(s.context));
  if (s.dockerfile !== undefined) paths.push(path.posix.normalize(s.dockerfile));
  return paths;
}

/**
 * The release notes from side `from` to side `to`: {@link compareSides}, then for every
 * changed or added service the commits of each source repository between the two recorded
 * commits (a new source: none, with a note). A lister that throws gives a note, never a
 * failure: notes describe a move, they do not stop it.
 */
export async function releaseNotes(
  from: Side,
  to: Side,
  options: NotesOptions = {},
): Promise<ReleaseNotes> {
  const list = options.commits ?? ((url, a, b) => commitsBetween(url, a, b));
  const compared = compareSides(from, to);
  const services = await Promise.all(
    compared.map(async (c): Promise<ServiceChange> => {
      if (c.change === "unchanged" || c.change === "removed") return c;
      const sources = await Promise.all(
        c.sources.map(async (s): Promise<SourceChange> => {
          if (s.to === undefined) return { ...s, note: "source removed" };
          if (s.from === undefined) return { ...s, note: `new source at ${short(s.to)}` };
          if (s.from === s.to) return s;
          try {
            const range = await list(s.url, s.from, s.to);
            return {
              ...s,
              commits: range.commits,
              omitted: range.omitted,
              ...(range.note ? { note: range.note } : {}),
            };
          } catch (e) {
            return { ...s, note: `commits not listed: ${(e as Error).message}` };
          }
        }),
      );
      const vr = options.versionRepository;
      const paths = vr ? versionRepoPaths(vr.repo, c.service) : [];
      if (!vr || paths.length === 0) return { ...c, sources };
      try {
        const range = await localCommits(vr.root, vr.base, vr.head ?? "HEAD", paths);
        return { ...c, sources, versionRepository: { paths, base: vr.base, ...range } };
      } catch (e) {
        return {
          ...c,
          sources,
          versionRepository: {
            paths,
            base: vr.base,
            commits: [],
            omitted: 0,
            note: `commits not listed: ${(e as Error).message}`,
          },
        };
      }
    }),
  );
  return {
    from: { name: from.name, ...(from.release ? { release: from.release } : {}) },
    to: {
      name: to.name,
      ...(to.release ? { release: to.release } : {}),
      ...(to.site ? { site: to.site } : {}),
    },
    ...(to.plan ? { plan: to.plan } : {}),
    services,
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

const shortDigest = (digest: string | undefined) =>
  digest === undefined ? "(not built yet)" : digest.replace(/^(sha256:[0-9a-f]{12}).*$/, "$1");

const sideTitle = (s: Pick<Side, "name" | "release">) =>
  `${s.name} (${s.release ? `release ${s.release}` : "no release"})`;

const imageText = (image: Pick<SideImage, "version" | "digest"> | undefined) =>
  image ? `${image.version ?? "-"} ${shortDigest(image.digest)}` : "-";

/** The commits of one range, oldest first, as the table prints them. */
function commitLines(commits: readonly CommitInfo[], omitted: number, indent: string): string[] {
  const lines = commits.map((c) => `${indent}${c.short}  ${c.subject}  (${c.author})`);
  if (omitted > 0) lines.unshift(`${indent}… ${omitted} older commits not listed`);
  return lines;
}

/** The notes as text: a table of services, then the commits of each changed one. */
export function formatNotesTable(notes: ReleaseNotes): string {
  const lines = [`Release notes: ${sideTitle(notes.from)} -> ${sideTitle(notes.to)}`];
  lines.push(
    formatTable([
      ["SERVICE", "FROM", "TO", "WHY"],
      ...notes.services.map((s) => [
        s.service,
        imageText(s.from),
        imageText(s.to),
        s.why.join("; "),
      ]),
    ]),
  );
  for (const s of notes.services) {
    const detail: string[] = [];
    for (const src of s.sources) {
      if (src.from === src.to && !src.note) continue;
      const range = `${src.from ? short(src.from) : "none"}..${src.to ? short(src.to) : "none"}`;
      detail.push(`  source ${src.name} (${src.url}) ${range}`);
      if (src.note) detail.push(`    ! ${src.note}`);
      detail.push(...commitLines(src.commits, src.omitted, "    "));
    }
    const vr = s.versionRepository;
    if (vr) {
      detail.push(`  version repository ${vr.paths.join(", ")} since ${vr.base}`);
      if (vr.note) detail.push(`    ! ${vr.note}`);
      detail.push(...commitLines(vr.commits, vr.omitted, "    "));
    }
    if (detail.length > 0) {
      lines.push("", `${s.service} ${imageText(s.from)} -> ${imageText(s.to)}`, ...detail);
    }
  }
  return lines.join("\n");
}

/** Escapes text for a Markdown table cell or list item (no HTML, no table breaks). */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\\/g, "\\\\")
    .replace(/[|*_`[\]<#~]/g, (c) => `\\${c}`)
    .replace(/\r?\n/g, " ");
}

const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;

function commitItems(commits: readonly CommitInfo[], omitted: number): string[] {
  const items = commits.map(
    (c) => `  - ${code(c.short)} ${escapeMarkdown(c.subject)} (${escapeMarkdown(c.author)})`,
  );
  if (omitted > 0) items.unshift(`  - … ${omitted} older commits not listed`);
  return items;
}

const mdImage = (image: Pick<SideImage, "version" | "digest"> | undefined) =>
  image ? `${image.version ?? "-"} ${code(shortDigest(image.digest))}` : "–";

/**
 * The notes as Markdown (the pull-request comment, the job summary): a table of services,
 * then per changed service its source repositories' commits, oldest first.
 * @param options.heading the heading level of the title @default 3
 */
export function formatNotesMarkdown(
  notes: ReleaseNotes,
  options: { readonly heading?: number } = {},
): string {
  const h = "#".repeat(options.heading ?? 3);
  const lines = [
    `${h} Release notes: ${escapeMarkdown(sideTitle(notes.from))} → ${escapeMarkdown(sideTitle(notes.to))}`,
    "",
    "| service | from | to | why |",
    "| --- | --- | --- | --- |",
    ...notes.services.map(
      (s) =>
        `| ${escapeMarkdown(s.service)} | ${mdImage(s.from)} | ${mdImage(s.to)} | ${escapeMarkdown(s.why.join("; "))} |`,
    ),
  ];
  for (const s of notes.services) {
    const detail: string[] = [];
    for (const src of s.sources) {
      if (src.from === src.to && !src.note) continue;
      const range = `${src.from ? short(src.from) : "none"}..${src.to ? short(src.to) : "none"}`;
      detail.push(`- source **${escapeMarkdown(src.name)}** (${code(src.url)}) ${code(range)}`);
      if (src.note) detail.push(`  - ⚠️ ${escapeMarkdown(src.note)}`);
      detail.push(...commitItems(src.commits, src.omitted));
      if (src.commits.length === 0 && !src.note) detail.push("  - (no commits)");
    }
    const vr = s.versionRepository;
    if (vr) {
      detail.push(
        `- version repository ${vr.paths.map(code).join(", ")} since ${code(vr.base.slice(0, 12))}`,
      );
      if (vr.note) detail.push(`  - ⚠️ ${escapeMarkdown(vr.note)}`);
      detail.push(...commitItems(vr.commits, vr.omitted));
      if (vr.commits.length === 0 && !vr.note) detail.push("  - (no commits)");
    }
    if (detail.length > 0) {
      lines.push(
        "",
        `**${escapeMarkdown(s.service)}** ${mdImage(s.from)} → ${mdImage(s.to)}`,
        "",
        ...detail,
      );
    }
  }
  return lines.join("\n");
}
