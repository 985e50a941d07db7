/**
 * Source repositories: resolve a branch to a commit, keep one bare mirror per URL, check a
 * commit out into a worktree, and walk the first-parent history of a branch (the git revision
 * policy, Flux issue seed 003). Runs the `git` binary through simple-git.
 *
 * Cache layout, under `${GITOPS_RINGS_CACHE:-~/.cache/gitops-rings}/git/<sha256(url)>/`:
 * `mirror.git` (a `git clone --mirror`) and `worktrees/<commit>` (a detached worktree of the
 * mirror per commit, reused across runs). Worktrees are shared: read them, never write them.
 *
 * URLs: anything git clones (`https://…`, `ssh://…`, `git@host:path`, `file:///…`) and local
 * paths; a relative path is made absolute first so that its cache key does not depend on the
 * working directory.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";

/** A full commit id. */
const COMMIT = /^[0-9a-f]{40}$/;

/** The cache root: `$GITOPS_RINGS_CACHE`, else `~/.cache/gitops-rings`. */
export function cacheRoot(): string {
  return process.env.GITOPS_RINGS_CACHE || path.join(os.homedir(), ".cache", "gitops-rings");
}

/** `url` as the cache keys it: a local path made absolute, anything else unchanged. */
export function normalizeUrl(url: string): string {
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/:]+@[^/:]+:/.test(url);
  return isUrl ? url : path.resolve(url);
}

/** `<cache>/git/<sha256(url)>`: the directory of one source repository's mirror and worktrees. */
export function repoCacheDir(url: string): string {
  const key = createHash("sha256").update(normalizeUrl(url)).digest("hex");
  return path.join(cacheRoot(), "git", key);
}

/** The bare mirror's directory for `url`. */
export function mirrorDir(url: string): string {
  return path.join(repoCacheDir(url), "mirror.git");
}

/**
 * Interactive helpers none of our git commands may start (an editor, a pager): dropped from the
 * environment, which is also what simple-git's unsafe-operation guard asks for.
 */
const INTERACTIVE = new Set(["editor", "git_editor", "git_sequence_editor", "pager", "git_pager"]);

/**
 * The environment git runs with: the caller's (so `GIT_SSH_COMMAND`, `GIT_ASKPASS`, proxies
 * and config paths the user set keep working) without editors and pagers, and with
 * `GIT_TERMINAL_PROMPT=0` so a missing credential fails instead of waiting for a terminal.
 */
function gitEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !INTERACTIVE.has(key.toLowerCase())) env[key] = value;
  }
  env.GIT_TERMINAL_PROMPT = "0";
  return env;
}

function git(baseDir?: string): SimpleGit {
  return simpleGit({
    baseDir,
    maxConcurrentProcesses: 2,
    trimmed: true,
    // The environment is the user's own: let simple-git pass what they configured.
    unsafe: {
      allowUnsafeSshCommand: true,
      allowUnsafeAskPass: true,
      allowUnsafeConfigPaths: true,
      allowUnsafeConfigEnvCount: true,
      allowUnsafeGitProxy: true,
      allowUnsafeTemplateDir: true,
      allowUnsafeDiffExternal: true,
    },
  }).env(gitEnv());
}

function fail(url: string, what: string, e: unknown): Error {
  const msg = (e as Error).message?.trim() ?? String(e);
  return new Error(`git ${url}: ${what}: ${msg}`, { cause: e });
}

/** Serializes work per mirror within this process (git's own locks guard across processes). */
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(key: string, task: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(task, task);
  queues.set(
    key,
    next.catch(() => undefined),
  );
  return next;
}

/**
 * The commit at the head of `branch` on the remote, by `git ls-remote` (no clone needed).
 * @param branch a branch name (`main`) or a full ref (`refs/heads/main`).
 * @throws an error naming the URL and branch when the branch does not exist.
 */
export async function resolveBranch(url: string, branch: string): Promise<string> {
  const remote = normalizeUrl(url);
  const ref = branch.startsWith("refs/") ? branch : `refs/heads/${branch}`;
  let out: string;
  try {
    out = await git().listRemote([remote, ref]);
  } catch (e) {
    throw fail(url, `ls-remote ${ref}`, e);
  }
  for (const line of out.split("\n")) {
    const [commit, name] = line.split("\t");
    if (name === ref && COMMIT.test(commit)) return commit;
  }
  throw new Error(`git ${url}: branch ${JSON.stringify(branch)} does not exist (no ${ref})`);
}

async function hasCommit(dir: string, commit: string): Promise<boolean> {
  try {
    await git(dir).raw(["cat-file", "-e", `${commit}^{commit}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the bare mirror of `url` exists and, when `commit` is given, contains it: clones
 * (`--mirror`, into a temporary name then renamed, so a half clone is never used) when missing,
 * fetches (`--prune`) when the commit is not there yet or when no commit is given.
 * @returns the mirror's directory.
 */
export async function ensureMirror(url: string, commit?: string): Promise<string> {
  const dir = mirrorDir(url);
  return serialized(dir, async () => {
    if (!existsSync(path.join(dir, "HEAD"))) {
      await mkdir(path.dirname(dir), { recursive: true });
      const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
      try {
        await git().mirror(normalizeUrl(url), tmp);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        throw fail(url, "clone --mirror", e);
      }
      try {
        await rename(tmp, dir);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        if (!existsSync(path.join(dir, "HEAD"))) throw fail(url, "rename mirror", e);
      }
    } else if (commit === undefined || !(await hasCommit(dir, commit))) {
      try {
        await git(dir).fetch(["--prune", "origin"]);
      } catch (e) {
        throw fail(url, "fetch", e);
      }
    }
    if (commit !== undefined && !(await hasCommit(dir, commit))) {
      throw new Error(`git ${url}: commit ${commit} does not exist (fetched ${dir})`);
    }
    return dir;
  });
}

/**
 * A worktree of `url` at `commit` (detached), created once and reused: `<cache>/git/<sha256(url)>/worktrees/<commit>`.
 * @param commit a full 40-hex commit id.
 * @returns the worktree's directory. Do not modify it: other builds read the same one.
 */
export async function checkout(url: string, commit: string): Promise<string> {
  if (!COMMIT.test(commit)) {
    throw new Error(`git ${url}: ${JSON.stringify(commit)} is not a full 40-hex commit id`);
  }
  const mirror = await ensureMirror(url, commit);
  const dir = path.join(repoCacheDir(url), "worktrees", commit);
  return serialized(mirror, async () => {
    if (existsSync(dir)) {
      try {
        const head = await git(dir).revparse(["HEAD"]);
        if (head === commit) return dir;
      } catch {
        // broken worktree: recreated below
      }
      await rm(dir, { recursive: true, force: true });
      await git(mirror).raw(["worktree", "prune"]);
    }
    await mkdir(path.dirname(dir), { recursive: true });
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await git(mirror).raw(["worktree", "add", "--detach", tmp, commit]);
      await git(mirror).raw(["worktree", "move", tmp, dir]);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      await git(mirror).raw(["worktree", "prune"]);
      if (existsSync(dir) && (await git(dir).revparse(["HEAD"])) === commit) return dir;
      throw fail(url, `worktree add ${commit}`, e);
    }
    return dir;
  });
}

/** Options of {@link walkCommits}. */
export interface WalkOptions {
  /**
   * How many commits to return at most, the head included.
   * @default 100
   */
  readonly depth?: number;
  /** Start here instead of resolving the branch head (e.g. a commit already resolved). */
  readonly head?: string;
}

/**
 * The first-parent history of `branch`, newest first, starting at its head on the remote: the
 * commits the branch itself moved through (merged-in side branches are skipped).
 * @returns up to `depth` full commit ids; `[0]` is the head.
 */
export async function walkCommits(
  url: string,
  branch: string,
  options: WalkOptions = {},
): Promise<string[]> {
  const depth = options.depth ?? 100;
  if (!Number.isInteger(depth) || depth < 1) {
    throw new Error(`git ${url}: walk depth ${depth} must be a positive integer`);
  }
  const head = options.head ?? (await resolveBranch(url, branch));
  const mirror = await ensureMirror(url, head);
  try {
    const out = await git(mirror).raw([
      "log",
      "--first-parent",
      "--format=%H",
      "-n",
      `${depth}`,
      head,
    ]);
    return out.split("\n").filter((l) => COMMIT.test(l));
  } catch (e) {
    throw fail(url, `log ${branch}`, e);
  }
}

/** One commit as release notes show it (lib/notes.ts). */
export interface CommitInfo {
  /** The full 40-hex commit id. */
  readonly commit: string;
  /** The abbreviated id git prints (`%h`, at least 7 characters). */
  readonly short: string;
  /** The first line of the message. */
  readonly subject: string;
  /** The author's name. */
  readonly author: string;
}

/** What {@link commitsBetween} found between two commits of one repository. */
export interface CommitRange {
  /**
   * The commits reachable from `to` and not from `from`, in the order they were made (oldest
   * first, git's default order reversed); at most `limit` of the newest.
   */
  readonly commits: readonly CommitInfo[];
  /** How many commits of the range were left out by `limit`. */
  readonly omitted: number;
  /**
   * Set when the range is not a plain history from `from` to `to`, saying why: `from` is not in
   * the repository any more, `from` is not an ancestor of `to` (history rewritten, e.g. a
   * force push), or `to` is unreachable.
   */
  readonly note?: string;
}

const FIELD = "\x1f";
const RECORD = "\x1e";

/** `git log` of `range` (and `paths`, when given) in the mirror or checkout `dir`, oldest first. */
async function logRange(
  dir: string,
  range: readonly string[],
  limit: number,
  paths: readonly string[] = [],
): Promise<{ commits: CommitInfo[]; omitted: number }> {
  const pathspec = paths.length > 0 ? ["--", ...paths] : [];
  const count = Number(await git(dir).raw(["rev-list", "--count", ...range, ...pathspec]));
  const out = await git(dir).raw([
    "log",
    `--format=%H${FIELD}%h${FIELD}%an${FIELD}%s${RECORD}`,
    "-n",
    `${limit}`,
    ...range,
    ...pathspec,
  ]);
  const commits = out
    .split(RECORD)
    .map((r) => r.trim())
    .filter((r) => r.length > 0)
    .map((r) => {
      const [commit, short, author, subject] = r.split(FIELD);
      return { commit, short, author, subject };
    })
    .reverse();
  return { commits, omitted: Math.max(0, count - commits.length) };
}

/** `commit` abbreviated to 7 characters, for messages. */
function abbrev(commit: string): string {
  return commit.slice(0, 7);
}

/**
 * The commits of source repository `url` between the commit `from` (exclusive) and `to`
 * (inclusive), read from the project's git cache (the mirror, fetched when a commit is
 * missing). Never throws for a rewritten history: when `from` is gone or is not an ancestor of
 * `to`, the range says so in {@link CommitRange.note} and lists what it can (the commits of
 * `to` that `from` lacks); when `to` cannot be found, no commits and a note.
 * @param options.limit how many commits to list at most @default 50
 */
export async function commitsBetween(
  url: string,
  from: string,
  to: string,
  options: { readonly limit?: number } = {},
): Promise<CommitRange> {
  const limit = options.limit ?? 50;
  const empty = { commits: [], omitted: 0 };
  if (!COMMIT.test(from) || !COMMIT.test(to)) {
    throw new Error(
      `git ${url}: ${JSON.stringify(from)}..${JSON.stringify(to)}: not full commit ids`,
    );
  }
  if (from === to) return empty;
  let mirror: string;
  try {
    mirror = await ensureMirror(url, to);
  } catch (e) {
    return { ...empty, note: `commit ${abbrev(to)} is unreachable: ${(e as Error).message}` };
  }
  if (!(await hasCommit(mirror, from))) {
    // Fetched already when `to` was missing; fetch once more in case `to` was cached and `from`
    // is newer than the mirror (a range read backwards).
    await ensureMirror(url).catch(() => undefined);
  }
  if (!(await hasCommit(mirror, from))) {
    return {
      ...empty,
      note:
        `history rewritten: commit ${abbrev(from)} is not in ${url} any more (a force push?), ` +
        `so the commits since it cannot be listed`,
    };
  }
  try {
    const listed = await logRange(mirror, [`${from}..${to}`], limit);
    // `merge-base --is-ancestor` answers by exit code alone, which simple-git does not report.
    const bases = await git(mirror).raw(["merge-base", "--all", from, to]);
    const ancestor = bases.split("\n").includes(from);
    if (ancestor) return listed;
    const dropped = Number(await git(mirror).raw(["rev-list", "--count", `${to}..${from}`]));
    return {
      ...listed,
      note:
        `history rewritten: ${abbrev(from)} is not an ancestor of ${abbrev(to)} ` +
        `(${dropped} commit${dropped === 1 ? "" : "s"} of ${abbrev(from)} are not in ${abbrev(to)}'s history, ` +
        `a force push?); listed: the commits of ${abbrev(to)} since they diverged`,
    };
  } catch (e) {
    return { ...empty, note: fail(url, `log ${abbrev(from)}..${abbrev(to)}`, e).message };
  }
}

/**
 * The commits of the local repository `dir` in `base..head` that touch `paths` (relative to
 * `dir`), oldest first: what a change of the version repository brings to a service whose
 * files live in it.
 * @param options.limit how many commits to list at most @default 50
 * @throws when `dir` is not a git repository or `base`/`head` do not resolve.
 */
export async function localCommits(
  dir: string,
  base: string,
  head: string,
  paths: readonly string[],
  options: { readonly limit?: number } = {},
): Promise<{ commits: CommitInfo[]; omitted: number }> {
  try {
    return await logRange(dir, [`${base}..${head}`], options.limit ?? 50, paths);
  } catch (e) {
    throw fail(dir, `log ${base}..${head}`, e);
  }
}
