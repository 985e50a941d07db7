/**
 * The build context of a service built from several repositories (Version Repository seed 000:
 * a service's `docker_build_context` plus its `repo_dependencies`, each checked out where the
 * config says). Every source other than the one that holds the context is checked out at its
 * `path` inside the context, so that its files reach the build and, through the files the
 * Dockerfile's COPY/ADD read, the revision (DESIGN.md, "revision"; invariant 3).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { ConfigError, type ServiceConfig } from "./config";

/** Options of {@link assembleContext}. */
export interface AssembleOptions {
  /** The version repository root; the assembled context goes under `<root>/.gitops-rings/contexts/`. */
  readonly root: string;
  /** The service, as lib/config.ts validated it. */
  readonly service: ServiceConfig;
  /** The service's context directory (lib/config.ts `servicePaths`), absolute. */
  readonly context: string;
  /** The checkout directory of each source, by source name (lib/git.ts `checkout`). */
  readonly checkouts: Readonly<Record<string, string>>;
  /** Named in errors. @default "gitops-rings.yaml" */
  readonly file?: string;
}

/**
 * The directory to build a service from: its context as it is when every source is the
 * context's own (or there is none); otherwise a fresh copy of the context with each other
 * source's checkout (without `.git`) at its `path`, in `<root>/.gitops-rings/contexts/<service>`
 * (replaced as a whole, so no file of an earlier assembly stays). Modes, symlinks and
 * timestamps are copied as they are.
 * @returns the absolute directory.
 * @throws {ConfigError} naming `services.<name>.sources[i].path` when the context already has
 *   something at that path (the checkout would overwrite the context's own files).
 */
export function assembleContext(options: AssembleOptions): string {
  const { service, context } = options;
  const others = service.sources
    .map((source, i) => ({ source, i }))
    .filter(({ source }) => source.name !== service.source);
  if (others.length === 0) return context;
  const file = options.file ?? "gitops-rings.yaml";
  for (const { source, i } of others) {
    if (fs.existsSync(path.join(context, source.path))) {
      throw new ConfigError([
        {
          file,
          key: `services.${service.name}.sources[${i}].path`,
          message: `"${source.path}" exists in the context ${context} already; the checkout of source ${source.name} goes there`,
        },
      ]);
    }
  }
  const dir = path.join(options.root, ".gitops-rings", "contexts", service.name);
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    copyTree(context, tmp);
    for (const { source } of others) {
      const checkout = options.checkouts[source.name];
      if (checkout === undefined) {
        throw new Error(`service ${service.name}: no checkout for source ${source.name}`);
      }
      copyTree(checkout, path.join(tmp, source.path));
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Copies a directory tree, leaving out its own `.git` (a checkout's worktree link). */
function copyTree(from: string, to: string): void {
  const top = path.join(from, ".git");
  fs.cpSync(from, to, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
    filter: (src) => src !== top,
  });
}
