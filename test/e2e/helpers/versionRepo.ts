/**
 * A throwaway copy of this version repository for end-to-end tests: the program, the example
 * application and its stacks, under a project name and namespaces of its own so that runs do
 * not share registry repositories or cluster objects, with its own Pulumi state backend.
 * It is a git repository (so the revision's git fast path is exercised too).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { TestRepo } from "../../integration/helpers/git";
import type { RegistryClient } from "../../../lib/registry";
import { StateStore } from "../../../lib/state-store";

const ROOT = path.resolve(__dirname, "../../..");
/**
 * The entries of this checkout that run the program in another directory (whose node_modules
 * links to this one's): what a copy of the version repository needs besides its application,
 * and what bench/site.ts copies into each generated one.
 */
export const PROGRAM_FILES = [
  "Pulumi.yaml",
  "index.ts",
  "package.json",
  "tsconfig.json",
  "tsconfig.pulumi.json",
  "components",
  "lib",
] as const;

const COPIED = [...PROGRAM_FILES, "app", "stacks", "gitops-rings.yaml"];

/** Environment the local platform's `scripts/platform.sh env` sets; the tests need all of it. */
export const REQUIRED_ENV = [
  "KUBECONFIG",
  "BUILDKIT_HOST",
  "PULUMI_CONFIG_PASSPHRASE",
  "GITOPS_RINGS_PLATFORM",
] as const;

/** Fails with the command to run when the platform's environment is missing. */
export function assertPlatformEnv(): void {
  const missing = REQUIRED_ENV.filter((k) => !process.env[k]);
  if (missing.length > 0) {
    throw new Error(
      `end-to-end tests run on the local platform; missing ${missing.join(", ")}. ` +
        `Run: bash scripts/platform.sh up && eval "$(bash scripts/platform.sh env)"`,
    );
  }
}

export interface VersionRepo {
  readonly dir: string;
  /** The registry project of this copy, e.g. `e2e-1a2b3c`. */
  readonly project: string;
  readonly registry: string;
  /** Namespace of a site (environment namespace + ring). */
  namespace(environment: string, ring: string): string;
  /** The state store of this copy's project and rings, through `client`. */
  stateStore(client: RegistryClient): StateStore;
  /** The stack of a site, created on first use, in this copy's own state backend. */
  stack(site: string): Promise<Stack>;
  /** Writes a file of the copy (relative path) and commits it. */
  write(file: string, content: string): void;
  read(file: string): string;
  remove(): void;
}

/** Copies the version repository into a temp dir with a unique project. */
export function makeVersionRepo(): VersionRepo {
  const id = `e2e-${Math.random().toString(16).slice(2, 8)}`;
  const git = TestRepo.create(`gitops-rings-${id}-`);
  const dir = git.dir;
  for (const entry of COPIED) {
    fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  fs.rmSync(path.join(dir, ".gitops-rings"), { recursive: true, force: true });
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));

  const config = parse(fs.readFileSync(path.join(dir, "gitops-rings.yaml"), "utf8"));
  config.project = id;
  for (const env of Object.values(config.environments) as { namespace: string }[]) {
    env.namespace = `${id}-${env.namespace}`;
  }
  git.commit("version repository", {
    ".gitignore": "node_modules\n.gitops-rings/\n.state/\napp/services/base/rootfs/\n",
    "gitops-rings.yaml": stringify(config),
  });

  const state = path.join(dir, ".state");
  fs.mkdirSync(state);
  const stacks = new Map<string, Promise<Stack>>();
  return {
    dir,
    project: id,
    registry: config.registry,
    namespace: (environment, ring) => `${config.environments[environment].namespace}-${ring}`,
    stateStore: (client) =>
      new StateStore({ registry: config.registry, project: id, rings: config.rings, client }),
    stack(site) {
      let s = stacks.get(site);
      if (!s) {
        s = LocalWorkspace.createOrSelectStack(
          { stackName: site, workDir: dir },
          { envVars: { PULUMI_BACKEND_URL: `file://${state}` } },
        );
        stacks.set(site, s);
      }
      return s;
    },
    write: (file, content) => void git.commit(`change ${file}`, { [file]: content }),
    read: (file) => fs.readFileSync(path.join(dir, file), "utf8"),
    remove: () => git.remove(),
  };
}

/** `kubectl <args> -o json`, parsed (the platform's KUBECONFIG). */
export function kubectlJson(
  args: readonly string[],
): { items?: unknown[] } & Record<string, unknown> {
  return JSON.parse(execFileSync("kubectl", [...args, "-o", "json"], { encoding: "utf8" }));
}

/**
 * What an `after` hook leaves of a site: destroys its stack, deletes the cluster objects named
 * (each entry is `kubectl delete` arguments, e.g. `["namespace", ns, "--wait=false"]`) and removes
 * the copy. Each step runs whatever the test got to; a failure of one does not stop the next.
 */
export async function tearDownSite(
  stack: Stack | undefined,
  deletions: readonly (readonly string[])[],
  repo: VersionRepo | undefined,
): Promise<void> {
  try {
    await stack?.destroy({ onOutput: () => undefined });
  } catch {
    // the objects go below in any case
  }
  for (const args of deletions) {
    try {
      execFileSync("kubectl", ["delete", ...args], { stdio: "pipe" });
    } catch {
      // already gone
    }
  }
  repo?.remove();
}

/**
 * A source repository of a service (Version Repository seed 000): a Dockerfile built FROM the
 * base service and a `message.txt` it copies.
 * @returns the repository and its first commit.
 */
export function makeSourceRepo(): { readonly repo: TestRepo; readonly first: string } {
  const repo = TestRepo.create("gitops-rings-source-");
  const first = repo.commit("v1", {
    Dockerfile: "FROM base\nCOPY message.txt /www/message.txt\n",
    "message.txt": "v1\n",
  });
  return { repo, first };
}
