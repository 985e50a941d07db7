/**
 * The revision of a service image: a hash over what the image is built from (DESIGN.md,
 * "revision"; GitOps seed 001: "A sha256 hash of the container file and sources extracted from
 * COPY commands"). Same revision: same image, no rebuild (invariant 3).
 *
 * The revision is `v1:sha256:<hex>`, computed in two steps so that a plan can re-derive it
 * without I/O when a dependency's digest is known:
 *
 * 1. the *content digest* (`sha256:<hex>`): sha256 over the versioned, sorted-key serialization
 *    of the Dockerfile (git blob id of its bytes), each file COPY/ADD read (context-relative posix
 *    path, type and permission bits as {@link FileMode}, git blob id of the content, or of the
 *    link target), the directories they copy that the files do not imply (empty ones, and
 *    those whose mode is not 0755), the build args, the target and the platforms (sorted). See
 *    {@link contentDigest}. A context of 0644/0755 files without such directories hashes as
 *    it did before modes and directories counted, so the format stays v1.
 * 2. the *revision*: sha256 over the versioned serialization of the content digest and the
 *    digests of the dependency images by service name. See {@link revisionOf}.
 *
 * No mtimes, no absolute paths, no machine-specific data: the same on every machine. Content
 * hashes are git blob ids (sha1 of `blob <size>\0` + bytes), so that files of a clean git
 * worktree can take their ids from the index (`git ls-files -s`) instead of being read: the
 * fast path, which gives the same revision as reading every byte.
 */
import { canonicalJson } from "./canonical";
import { mapLimit } from "./limit";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Digest, Revision } from "./types";
import { readBuild, type BuildRead, type ReadBuildOptions } from "./dockerfile";

/** Version of the serialization; part of every hash and of the revision's prefix. */
export const REVISION_FORMAT = 1;

/**
 * How an entry enters an image, with the permission bits BuildKit keeps: `regular` for a file
 * with permissions 0644, `executable` for 0755 (git's 100644 and 100755), `symlink` for a link,
 * `directory` for a directory with 0755; any other permissions as octal type and permission
 * bits, as git writes modes: `100600`, `100664`, `104755` for files, `40700` for directories.
 */
export type FileMode = "regular" | "executable" | "symlink" | "directory" | `${number}`;

/** One context entry as the revision sees it. */
export interface RevisionFile {
  /** Context-relative posix path. */
  readonly path: string;
  /** Its type and permission bits, see {@link FileMode}. */
  readonly mode: FileMode;
  /**
   * Git blob id (40 hex) of the content, or of the link target for a symlink; absent for a
   * directory.
   */
  readonly blob?: string;
}

/** Everything a revision covers except the dependency digests. */
export interface RevisionInput {
  /** Git blob id of the Dockerfile bytes. */
  readonly dockerfile: string;
  /** The files COPY/ADD read and the directories they copy that count, sorted by path. */
  readonly files: readonly RevisionFile[];
  /** Build args, sorted by name. */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Target stage, when given. */
  readonly target?: string;
  /** Platforms, sorted, unique. */
  readonly platforms: readonly string[];
  /** {@link contentDigest} of the fields above. */
  readonly content: Digest;
}

/** How the content of the files was found, for reports and tests. */
export interface RevisionStats {
  /** Entries in the revision: files, symlinks and the directories that count. */
  readonly files: number;
  /** Files whose blob id came from the git index (fast path). */
  readonly fromGit: number;
  /** Files read and hashed. */
  readonly hashed: number;
  /** Bytes read and hashed. */
  readonly bytesHashed: number;
}

/** Options of {@link readRevisionInput}. */
export interface RevisionOptions {
  /** Use git blob ids for clean tracked files. @default true */
  readonly git?: boolean;
  /** Files read at once. @default 16 */
  readonly concurrency?: number;
  /**
   * What git says of each repository, read once for every context in it ({@link GitSnapshot}).
   * Share one across the services of one plan; a new plan takes a new one. @default one per call
   */
  readonly gitSnapshot?: GitSnapshot;
}

/**
 * Git's blob id of some bytes: sha1 of `blob <length>\0` followed by the bytes.
 * @param bytes the content.
 * @returns 40 hex digits, as `git hash-object` prints.
 */
export function gitBlobId(bytes: Buffer | string): string {
  const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

const SMALL_FILE = 1 << 20;

const GIT_MODES: Readonly<Record<string, FileMode>> = {
  "100644": "regular",
  "100755": "executable",
  "120000": "symlink",
};

/**
 * The {@link FileMode} of an entry: its type and the permission bits (0o7777) that BuildKit
 * copies into the image.
 * @param stat what `lstat` gave.
 */
export function fileMode(
  stat: Pick<fs.Stats, "mode" | "isDirectory" | "isSymbolicLink">,
): FileMode {
  if (stat.isSymbolicLink()) return "symlink";
  const permissions = stat.mode & 0o7777;
  if (stat.isDirectory()) {
    return permissions === 0o755
      ? "directory"
      : (`${(0o40000 | permissions).toString(8)}` as FileMode);
  }
  if (permissions === 0o644) return "regular";
  if (permissions === 0o755) return "executable";
  return `${(0o100000 | permissions).toString(8)}` as FileMode;
}

/**
 * The directories a revision lists: those whose presence or mode the files do not imply,
 * that is, empty ones (nothing listed below them) and those whose mode is not `directory`.
 * A directory with 0755 that holds a listed entry is implied by that entry's path, so a
 * context without empty or unusual directories hashes as it did before directories counted.
 */
function listedDirectories(
  directories: readonly RevisionFile[],
  files: readonly RevisionFile[],
): RevisionFile[] {
  const parents = new Set<string>();
  for (const entry of [...directories, ...files]) {
    for (let at = entry.path.lastIndexOf("/"); at > 0; at = entry.path.lastIndexOf("/", at - 1)) {
      parents.add(entry.path.slice(0, at));
    }
  }
  return directories.filter((d) => d.mode !== "directory" || !parents.has(d.path));
}

/**
 * Git's blob id of a file on disk, reading large files as a stream.
 * @param file the path.
 * @param size the size `lstat` gave, checked against the bytes read.
 * @returns 40 hex digits.
 * @throws {Error} when the file changes size while it is read.
 */
export async function hashFile(file: string, size: number): Promise<string> {
  if (size <= SMALL_FILE) {
    const bytes = await fs.promises.readFile(file);
    if (bytes.length !== size) throw new Error(`${file} changed while it was read`);
    return gitBlobId(bytes);
  }
  const hash = createHash("sha1").update(`blob ${size}\0`);
  let read = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: SMALL_FILE })) {
    read += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  if (read !== size) throw new Error(`${file} changed while it was read`);
  return hash.digest("hex");
}

/**
 * The content digest: sha256 over `gitops-rings revision v1\n` and the canonical JSON of
 * `{buildArgs, dockerfile, files: [{blob, mode, path}], platforms, target}` (target `null`
 * when not given, `blob` left out for a directory), files sorted by path, platforms sorted.
 * @param parts the revision input without its content digest.
 * @returns `sha256:<64 hex>`.
 */
export function contentDigest(parts: Omit<RevisionInput, "content">): Digest {
  const files = [...parts.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const document = canonicalJson({
    buildArgs: parts.buildArgs,
    dockerfile: parts.dockerfile,
    files: files.map((f) => ({ blob: f.blob, mode: f.mode, path: f.path })),
    platforms: [...new Set(parts.platforms)].sort(),
    target: parts.target ?? null,
  });
  return `sha256:${sha256(`gitops-rings revision v${REVISION_FORMAT}\n${document}`)}`;
}

/**
 * The revision of an image: sha256 over `gitops-rings revision v1\n` and the canonical JSON of
 * `{content, dependencies}`, where dependencies maps each dependency's service name to the
 * digest of the image built FROM. Pure and cheap: the plan calls it per service.
 * @param input the revision input (only its content digest is used).
 * @param dependencies digest of each dependency image, by service name.
 * @returns `v1:sha256:<64 hex>`.
 */
export function revisionOf(
  input: Pick<RevisionInput, "content">,
  dependencies: Readonly<Record<string, Digest>>,
): Revision {
  const document = canonicalJson({ content: input.content, dependencies });
  return `v${REVISION_FORMAT}:sha256:${sha256(`gitops-rings revision v${REVISION_FORMAT}\n${document}`)}`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Runs a git command in a directory; resolves to stdout, or undefined when git fails. */
function git(cwd: string, args: readonly string[], input?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = execFile(
      "git",
      [...args],
      {
        cwd,
        maxBuffer: 1 << 30,
        encoding: "utf8",
        env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" },
      },
      (err, stdout) => resolve(err ? undefined : stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** What the git index says of one tracked file. */
export interface GitEntry {
  /** Git's mode: `100644`, `100755` or `120000`. */
  readonly mode: string;
  /** The blob id. */
  readonly blob: string;
}

/** What {@link gitKnownBlobs} found. */
export interface GitKnownBlobs {
  /** Usable entries by context-relative path. */
  readonly entries: ReadonlyMap<string, GitEntry>;
  /**
   * Whether git tracks the executable bit here (`core.fileMode`, true by default on Linux and
   * macOS), so that a clean entry's mode is the worktree's and needs no `lstat`.
   */
  readonly fileMode: boolean;
}

/**
 * Blob ids that git already knows for files of a context: tracked, unchanged in the worktree
 * (`git status`), not marked assume-unchanged or skip-worktree, and with no attribute that
 * makes the worktree bytes differ from the blob (`filter`, `text`, `eol`, `ident`,
 * `working-tree-encoding`); none at all when `core.autocrlf` is on. The git commands run at
 * once, with optional locks off so a concurrent `git` in the same repository is not disturbed.
 * @param context the build context directory.
 * @param paths context-relative paths asked about.
 * @returns usable entries by context-relative path (none outside a git worktree), and whether
 *   their modes can be trusted.
 */
export async function gitKnownBlobs(
  context: string,
  paths: readonly string[],
  snapshot: GitSnapshot = new GitSnapshot(),
): Promise<GitKnownBlobs> {
  const entries = new Map<string, GitEntry>();
  if (paths.length === 0) return { entries, fileMode: false };
  const repo = await snapshot.of(context);
  if (!repo) return { entries, fileMode: true };
  const result = { entries, fileMode: repo.fileMode };
  if (repo.autocrlf) return result;
  const prefix = path.relative(repo.root, await fs.promises.realpath(context)).split(path.sep);
  const root = prefix[0] === "" ? "" : `${prefix.join("/")}/`;
  for (const rel of new Set(paths)) {
    const entry = repo.clean.get(`${root}${rel}`);
    if (entry) entries.set(rel, entry);
  }
  return result;
}

/** What git says of one repository's worktree, read once ({@link GitSnapshot}). */
interface GitRepoState {
  /** The worktree's top directory (real path). */
  readonly root: string;
  /** `core.autocrlf` is `true` or `input`: no blob id can be trusted. */
  readonly autocrlf: boolean;
  /** `core.fileMode` (true unless set false). */
  readonly fileMode: boolean;
  /**
   * Tracked files that are cached, unchanged in the worktree (`git status`), not marked
   * assume-unchanged or skip-worktree, and with no attribute that makes the worktree bytes
   * differ from the blob (`filter`, `text`, `eol`, `ident`, `working-tree-encoding`), by
   * top-relative posix path.
   */
  readonly clean: ReadonlyMap<string, GitEntry>;
}

/**
 * The git state of every repository a plan's contexts live in, read once per repository
 * (two `config` reads, `ls-files -s -v`, `status` and one `check-attr` over the whole worktree)
 * instead of once per context: a site of hundreds of services in one version repository starts
 * five git processes, not six per service (issue 10). A snapshot
 * is what git said when it was first asked: take a new one for each plan.
 */
export class GitSnapshot {
  private readonly repos = new Map<string, Promise<GitRepoState | undefined>>();

  /** The state of the repository `dir` is in; undefined outside a git worktree. */
  async of(dir: string): Promise<GitRepoState | undefined> {
    const top = worktreeTop(path.resolve(dir));
    if (!top) return undefined;
    let state = this.repos.get(top);
    if (state === undefined) {
      state = readRepoState(top);
      this.repos.set(top, state);
    }
    return state;
  }
}

/** The nearest directory at or above `dir` that has a `.git` (a directory, or a worktree's file). */
function worktreeTop(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, ".git"))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

async function readRepoState(top: string): Promise<GitRepoState | undefined> {
  const [autocrlf, fileMode, listing, status, root] = await Promise.all([
    git(top, ["config", "--get", "core.autocrlf"]),
    git(top, ["config", "--bool", "--get", "core.fileMode"]),
    git(top, ["ls-files", "-s", "-v", "-z"]),
    git(top, ["status", "--porcelain=v1", "-z", "--untracked-files=no", "--ignore-submodules=all"]),
    fs.promises.realpath(top),
  ]);
  if (listing === undefined || status === undefined) return undefined;
  const crlf = (autocrlf ?? "").trim();
  const clean = new Map<string, GitEntry>();
  for (const record of listing.split("\0")) {
    // "<tag> <mode> <blob> <stage>\t<path>"; tag H: cached, nothing special.
    const tab = record.indexOf("\t");
    if (tab !== 51 || record[0] !== "H" || record[50] !== "0") continue;
    clean.set(record.slice(tab + 1), { mode: record.slice(2, 8), blob: record.slice(9, 49) });
  }
  const records = status.split("\0");
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    if (record.length < 4) continue;
    const x = record[0];
    if (x === "R" || x === "C") i++; // the original path follows
    if (record[1] !== " ") clean.delete(record.slice(3));
  }
  // One check-attr for every clean file of the repository, not one per context.
  if (clean.size > 0) {
    const attrs = await git(
      top,
      ["check-attr", "-z", "--stdin", "filter", "text", "eol", "ident", "working-tree-encoding"],
      [...clean.keys()].map((n) => `${n}\0`).join(""),
    );
    if (attrs === undefined) clean.clear();
    const fields = (attrs ?? "").split("\0");
    for (let i = 0; i + 2 < fields.length; i += 3) {
      const [file, attr, value] = [fields[i], fields[i + 1], fields[i + 2]];
      if (value === "unspecified" || (attr === "text" && value === "unset")) continue;
      clean.delete(file);
    }
  }
  return {
    root,
    autocrlf: crlf === "true" || crlf === "input",
    fileMode: (fileMode ?? "true").trim() !== "false",
    clean,
  };
}

/**
 * Hashes what a build reads into a {@link RevisionInput}. Modes come from `lstat` (type and
 * permission bits, see {@link fileMode}); contents from the git index when the fast path
 * applies (see {@link gitKnownBlobs}) and the worktree's mode is the one git records (git
 * knows only 100644, 100755 and 120000; any other permissions, and so a mode git cannot tell
 * apart, make the file be read), else from the bytes, streamed, `concurrency` files at a time.
 * Directories enter as {@link listedDirectories} says.
 * @param build the build as {@link readBuild} read it.
 * @param args the build args, target and platforms of the service.
 * @param options whether to use git, and the read concurrency.
 * @returns the input (with its content digest) and how the contents were found.
 * @throws {Error} when a file disappears or changes while it is read.
 */
export async function readRevisionInput(
  build: Pick<BuildRead, "context" | "dockerfileBytes" | "files"> &
    Partial<Pick<BuildRead, "directories">>,
  args: {
    readonly buildArgs?: Readonly<Record<string, string>>;
    readonly target?: string;
    readonly platforms?: readonly string[];
  },
  options: RevisionOptions = {},
): Promise<{ input: RevisionInput; stats: RevisionStats }> {
  const known: GitKnownBlobs =
    options.git === false
      ? { entries: new Map(), fileMode: false }
      : await gitKnownBlobs(build.context, build.files, options.gitSnapshot);
  let fromGit = 0;
  let hashed = 0;
  let bytesHashed = 0;
  const concurrency = options.concurrency ?? 16;
  const absolute = (rel: string) => path.join(build.context, ...rel.split("/"));
  const files = await mapLimit(build.files, concurrency, async (rel): Promise<RevisionFile> => {
    const entry = known.entries.get(rel);
    const abs = absolute(rel);
    const stat = await fs.promises.lstat(abs);
    const mode = fileMode(stat);
    // Clean in git status: content and type, and the executable bit when core.fileMode is on
    // (when off, git's bit may be stale, and the worktree's mode is the one that counts).
    const gitMode = entry !== undefined ? GIT_MODES[entry.mode] : undefined;
    const plain = (m: FileMode | undefined) => m === "regular" || m === "executable";
    if (gitMode === mode || (!known.fileMode && plain(gitMode) && plain(mode))) {
      fromGit++;
      return { path: rel, mode, blob: (entry as GitEntry).blob };
    }
    if (stat.isSymbolicLink()) {
      const target = await fs.promises.readlink(abs, { encoding: "buffer" });
      hashed++;
      bytesHashed += target.length;
      return { path: rel, mode, blob: gitBlobId(target) };
    }
    hashed++;
    bytesHashed += stat.size;
    return { path: rel, mode, blob: await hashFile(abs, stat.size) };
  });
  const directories = await mapLimit(
    build.directories ?? [],
    concurrency,
    async (rel): Promise<RevisionFile> => ({
      path: rel,
      mode: fileMode(await fs.promises.lstat(absolute(rel))),
    }),
  );
  const entries = [...files, ...listedDirectories(directories, files)].sort((a, b) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
  );
  const buildArgs: Record<string, string> = {};
  for (const key of Object.keys(args.buildArgs ?? {}).sort()) {
    buildArgs[key] = (args.buildArgs ?? {})[key];
  }
  const parts = {
    dockerfile: gitBlobId(build.dockerfileBytes),
    files: entries,
    buildArgs,
    ...(args.target !== undefined ? { target: args.target } : {}),
    platforms: [...new Set(args.platforms ?? ["linux/amd64"])].sort(),
  };
  return {
    input: { ...parts, content: contentDigest(parts) },
    stats: { files: entries.length, fromGit, hashed, bytesHashed },
  };
}

/**
 * Reads a build and hashes it: {@link readBuild} then {@link readRevisionInput}.
 * @param context the build context directory.
 * @param dockerfile the Dockerfile path.
 * @param options build args, target, platforms, service images, git use and concurrency.
 * @returns the build as read, the revision input and how the contents were found.
 * @throws {ConfigError} for a bad Dockerfile or a missing source, naming file and line.
 */
export async function computeRevisionInput(
  context: string,
  dockerfile: string,
  options: ReadBuildOptions & RevisionOptions = {},
): Promise<{ build: BuildRead; input: RevisionInput; stats: RevisionStats }> {
  const build = await readBuild(context, dockerfile, options);
  const { input, stats } = await readRevisionInput(build, options, options);
  return { build, input, stats };
}

export { canonicalJson };
