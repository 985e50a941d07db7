/**
 * Pull-request CI (issue 9; `.github/workflows/`): the sites the workflows run on, one site's
 * `pulumi preview` with its release plan and release notes, and the one pull-request comment
 * that shows them, found by a hidden marker and updated in place on every push. The workflows
 * are thin YAML over scripts/ci/*.ts, which call these functions; the test suite runs them on
 * the local platform against real previews.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseRepositoryConfig, parseSiteConfig, siteValuesFromConfigMap } from "./config";
import {
  escapeMarkdown,
  formatNotesMarkdown,
  readSide,
  readStackConfig,
  releaseNotes,
} from "./notes";
import { REPOSITORY_FILE, readConfig } from "./site";
import { StateStore } from "./state-store";
import { nextRing } from "./version";

/**
 * Every site of the version repository at `root`: the `<site>` of each
 * `stacks/Pulumi.<site>.yaml`, sorted. Reads file names only, so a site whose config is bad
 * still gets its preview job (which then fails naming the file and key).
 */
export function listSites(root: string): string[] {
  const dir = path.join(root, "stacks");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => /^Pulumi\.(.+)\.ya?ml$/.exec(name)?.[1])
    .filter((site): site is string => site !== undefined)
    .sort();
}

/** Which sites {@link selectSites} keeps. */
export type SiteFilter =
  | { readonly kind: "all" }
  /** The sites whose `pulumi up` builds (`build`, by default the sites of the first ring). */
  | { readonly kind: "building" }
  /** The sites of the ring after `ring`: where a promotion of `ring` lands. */
  | { readonly kind: "after"; readonly ring: string };

/**
 * The sites of `root` that `filter` keeps, sorted.
 * @throws {ConfigError} naming the file and key of a site whose config is bad (not for `all`);
 *   Error for a ring that is not configured.
 */
export function selectSites(root: string, filter: SiteFilter): string[] {
  const sites = listSites(root);
  if (filter.kind === "all") return sites;
  const repo = parseRepositoryConfig(
    fs.readFileSync(path.join(root, REPOSITORY_FILE), "utf8"),
    REPOSITORY_FILE,
  );
  const configs = sites.map((site) => ({
    site,
    config: parseSiteConfig(
      siteValuesFromConfigMap(readStackConfig(root, site)),
      `stacks/Pulumi.${site}.yaml`,
      repo,
    ),
  }));
  if (filter.kind === "building") {
    return configs.filter((c) => c.config.build).map((c) => c.site);
  }
  if (![...repo.rings, "ante"].includes(filter.ring)) {
    throw new Error(
      `ring ${JSON.stringify(filter.ring)} is not a ring of ${REPOSITORY_FILE} that can be promoted (ante, ${repo.rings.join(", ")})`,
    );
  }
  const target = nextRing(repo.rings, filter.ring) ?? "post";
  return configs.filter((c) => c.config.ring === target).map((c) => c.site);
}

/** What one site's preview job found: the input of {@link commentBody}. */
export interface PreviewResult {
  readonly site: string;
  /** Whether `pulumi preview` succeeded (the check's status). */
  readonly ok: boolean;
  /** Why the preview failed: its error lines (file, key and value for bad config). */
  readonly error?: string;
  /** The site's ring, when its config could be read. */
  readonly ring?: string;
  /** The release plan (lib/site.ts `SitePlan.table`). */
  readonly plan?: string;
  /** The release notes from the ring's release to the plan, as Markdown. */
  readonly notes?: string;
  /** How many services the notes show as changed, added or removed. */
  readonly changed?: number;
  /** Why the notes could not be computed, when the preview passed but they failed. */
  readonly notesError?: string;
  /** The current and next release version, for the summary table. */
  readonly release?: { readonly current?: string; readonly next?: string };
}

/**
 * The error of a failed `pulumi preview` from its output: the `error:` messages of its
 * Diagnostics section (with their continuation lines), else every `error:` line, else the
 * last lines of the output.
 */
export function previewError(output: string): string {
  const lines = output.replace(/\r/g, "").split("\n");
  const start = lines.findIndex((l) => /^Diagnostics:\s*$/.test(l));
  if (start >= 0) {
    const block: string[] = [];
    for (const line of lines.slice(start + 1)) {
      if (line !== "" && !line.startsWith(" ")) break;
      block.push(line);
    }
    const messages: string[] = [];
    let inError = false;
    for (const line of block) {
      const m = /^ {4}(\w+): (.*)$/.exec(line);
      if (m) {
        inError = m[1] === "error";
        if (inError) messages.push(m[2]);
      } else if (inError && /^ {4}\S/.test(line)) {
        messages.push(line.slice(4));
      } else if (/^ {2}\S/.test(line) || line.trim() === "") {
        inError = false;
      } else if (inError) {
        messages.push(line.trim());
      }
    }
    if (messages.length > 0) return messages.join("\n");
  }
  const errors = lines.filter((l) => /^\s*error: /.test(l)).map((l) => l.trim().slice(7));
  if (errors.length > 0) return [...new Set(errors)].join("\n");
  return lines
    .filter((l) => l.trim() !== "")
    .slice(-20)
    .join("\n");
}

/** Runs a command, resolving with its exit code and combined output (never rejects on exit). */
function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** The stack file's config, or none when it cannot be read. */
function readStackConfigSafe(root: string, site: string): Record<string, unknown> {
  try {
    return readStackConfig(root, site);
  } catch {
    return {};
  }
}

/** Options of {@link previewSite}. */
export interface PreviewOptions {
  /** The version repository root. */
  readonly root: string;
  readonly site: string;
  /** The pull request's base commit: the version repository's commits are listed from it. */
  readonly base?: string;
  /** @default process.env (the Pulumi backend, passphrase, GITOPS_RINGS_PLATFORM, …) */
  readonly env?: NodeJS.ProcessEnv;
  /** @default `pulumi` on PATH */
  readonly pulumi?: string;
  /** Receives the preview's output as it is (for the job log). */
  readonly onOutput?: (text: string) => void;
}

/**
 * One site's preview job: selects (or creates, with the passphrase secrets provider) the
 * site's stack, runs `pulumi preview`, and when it passes computes the release plan and the
 * release notes from the site's ring to `plan:<site>` (lib/notes.ts). A failed preview gives
 * `ok: false` and its error (bad config names the file and key; an unreachable registry its
 * address); notes that fail do not fail the preview.
 */
export async function previewSite(options: PreviewOptions): Promise<PreviewResult> {
  const env = options.env ?? process.env;
  const pulumi = options.pulumi ?? "pulumi";
  const { root, site } = options;
  const cli = (args: string[]) => run(pulumi, [...args, "--non-interactive"], { cwd: root, env });
  const select = await cli([
    "stack",
    "select",
    "--create",
    "--stack",
    site,
    "--secrets-provider",
    "passphrase",
  ]);
  options.onOutput?.(select.output);
  if (select.code !== 0) return { site, ok: false, error: previewError(select.output) };
  const preview = await cli(["preview", "--stack", site, "--color", "never"]);
  options.onOutput?.(preview.output);
  let ring: string | undefined;
  try {
    ring = readConfig(root, site, readStackConfig(root, site)).site.ring;
  } catch {
    // The preview reports the config error; the summary still shows the ring the file names.
    const raw = readStackConfigSafe(root, site)["gitops-rings:ring"];
    if (typeof raw === "string") ring = raw;
  }
  const base = { site, ...(ring !== undefined ? { ring } : {}) };
  if (preview.code !== 0) return { ...base, ok: false, error: previewError(preview.output) };
  try {
    const { repo, site: config } = readConfig(root, site, readStackConfig(root, site));
    // The ring's release in the site's registry: what the plan starts from.
    const store = new StateStore({
      registry: config.registry ?? repo.registry,
      project: repo.project,
      rings: repo.rings,
    });
    const to = await readSide(`plan:${site}`, { store, root, env });
    const from = await readSide(config.ring, { store, root });
    const notes = await releaseNotes(from, to, {
      ...(options.base ? { versionRepository: { root, repo, base: options.base } } : {}),
    });
    return {
      ...base,
      ok: true,
      ...(to.plan ? { plan: to.plan } : {}),
      notes: formatNotesMarkdown(notes, { heading: 4 }),
      changed: notes.services.filter((s) => s.change !== "unchanged").length,
      release: {
        ...(from.release ? { current: from.release } : {}),
        ...(to.release ? { next: to.release } : {}),
      },
    };
  } catch (e) {
    return { ...base, ok: true, notesError: (e as Error).message };
  }
}

/** The hidden marker that identifies this program's comment on a pull request. */
export const COMMENT_MARKER = "<!-- gitops-rings:preview -->";

/** GitHub refuses comment bodies longer than this. */
const MAX_BODY = 65_000;

const fence = (text: string) => {
  const ticks = "`".repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${ticks}text\n${text}\n${ticks}`;
};

/**
 * The pull-request comment: the marker, a summary table (site, ring, preview status, release
 * current → next), then per site its error, or its release plan and release notes.
 * @param options.commit the commit the previews ran on, shown at the end
 */
export function commentBody(
  results: readonly PreviewResult[],
  options: { readonly commit?: string } = {},
): string {
  const sorted = [...results].sort((a, b) => (a.site < b.site ? -1 : 1));
  const failed = sorted.filter((r) => !r.ok).length;
  const head = [
    COMMENT_MARKER,
    "## gitops-rings preview",
    "",
    failed > 0
      ? `❌ ${failed} of ${sorted.length} site previews failed.`
      : `✅ ${sorted.length} site previews passed.`,
    "",
    "| site | ring | preview | release |",
    "| --- | --- | --- | --- |",
    ...sorted.map((r) => {
      const release = r.release
        ? `${r.release.current ?? "none"} → ${r.release.next ?? "none"}`
        : "–";
      return `| ${escapeMarkdown(r.site)} | ${escapeMarkdown(r.ring ?? "–")} | ${r.ok ? "✅ passed" : "❌ failed"} | ${release} |`;
    }),
  ];
  const sections = sorted.map((r) => {
    if (!r.ok) {
      return [
        `### ❌ ${escapeMarkdown(r.site)}: preview failed`,
        "",
        fence(r.error ?? "(no error output)"),
      ].join("\n");
    }
    const parts = [`### ${escapeMarkdown(r.site)}`, ""];
    if (r.plan) parts.push(fence(r.plan), "");
    if (r.notes) {
      // Open when something changes; a site that deploys what it runs already stays folded.
      const open = r.changed ? " open" : "";
      const summary = r.changed
        ? `Release notes: ${r.changed} changed`
        : "Release notes: no change";
      parts.push(`<details${open}><summary>${summary}</summary>`, "", r.notes, "", "</details>");
    }
    if (r.notesError)
      parts.push(`Release notes could not be computed: ${escapeMarkdown(r.notesError)}`);
    return parts.join("\n");
  });
  const tail = options.commit ? [`<sub>Previewed at ${options.commit}.</sub>`] : [];
  let body = [...head, "", ...sections.flatMap((s) => [s, ""]), ...tail].join("\n");
  if (body.length > MAX_BODY) {
    body = `${body.slice(0, MAX_BODY - 200)}\n\n… (truncated: the job logs have the full previews)\n`;
  }
  return body;
}

/** Where {@link upsertComment} writes. */
export interface CommentTarget {
  /** The REST API root, `$GITHUB_API_URL`. @default https://api.github.com */
  readonly api?: string;
  /** `owner/name`, `$GITHUB_REPOSITORY`. */
  readonly repository: string;
  /** The pull request's number. */
  readonly pullRequest: number;
  /** A token with `pull-requests: write` (`github.token`); sent only as a header. */
  readonly token: string;
}

/**
 * Creates the pull request's comment, or updates the one whose body holds
 * {@link COMMENT_MARKER} (the first such comment, searched page by page): one comment per
 * pull request, updated in place on every push.
 * @returns what was done and the comment's id.
 * @throws naming the request and status when the API refuses.
 */
export async function upsertComment(
  target: CommentTarget,
  body: string,
): Promise<{ readonly action: "created" | "updated"; readonly id: number }> {
  const api = (target.api ?? "https://api.github.com").replace(/\/$/, "");
  const headers = {
    accept: "application/vnd.github+json",
    authorization: `Bearer ${target.token}`,
    "content-type": "application/json",
    "x-github-api-version": "2022-11-28",
  };
  const call = async (method: string, url: string, payload?: unknown) => {
    const res = await fetch(url, {
      method,
      headers,
      ...(payload !== undefined ? { body: JSON.stringify(payload) } : {}),
    });
    if (!res.ok) {
      throw new Error(
        `${method} ${url}: ${res.status} ${res.statusText}: ${(await res.text()).slice(0, 300)}`,
      );
    }
    return res.json() as Promise<unknown>;
  };
  const issue = `${api}/repos/${target.repository}/issues/${target.pullRequest}`;
  for (let page = 1; ; page++) {
    const comments = (await call("GET", `${issue}/comments?per_page=100&page=${page}`)) as {
      id: number;
      body?: string;
    }[];
    const mine = comments.find((c) => c.body?.includes(COMMENT_MARKER));
    if (mine) {
      await call("PATCH", `${api}/repos/${target.repository}/issues/comments/${mine.id}`, { body });
      return { action: "updated", id: mine.id };
    }
    if (comments.length < 100) break;
  }
  const created = (await call("POST", `${issue}/comments`, { body })) as { id: number };
  return { action: "created", id: created.id };
}
