/**
 * A throwaway copy of this version repository for end-to-end tests: the program, the example
 * application and its stacks, under a project name and namespaces of its own so that runs do
 * not share registry repositories or cluster objects, with its own Pulumi state backend.
 * It is a git repository (so the revision's git fast path is exercised too).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";

const ROOT = path.resolve(__dirname, "../../..");
const COPIED = [
  "Pulumi.yaml",
  "index.ts",
  "package.json",
  "tsconfig.json",
  "components",
  "lib",
  "app",
  "stacks",
  "gitops-rings.yaml",
];

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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gitops-rings-${id}-`));
  for (const entry of COPIED) {
    fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  fs.rmSync(path.join(dir, ".gitops-rings"), { recursive: true, force: true });
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  fs.writeFileSync(
    path.join(dir, ".gitignore"),
    "node_modules\n.gitops-rings/\napp/services/base/rootfs/\n",
  );

  const config = parse(fs.readFileSync(path.join(dir, "gitops-rings.yaml"), "utf8"));
  config.project = id;
  for (const env of Object.values(config.environments) as { namespace: string }[]) {
    env.namespace = `${id}-${env.namespace}`;
  }
  fs.writeFileSync(path.join(dir, "gitops-rings.yaml"), stringify(config));
  const git = (...args: string[]) =>
    execFileSync("git", args, {
      cwd: dir,
      stdio: "pipe",
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: "e2e",
        GIT_AUTHOR_EMAIL: "e2e@example.com",
        GIT_COMMITTER_NAME: "e2e",
        GIT_COMMITTER_EMAIL: "e2e@example.com",
      },
    });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "version repository");

  const state = path.join(dir, ".state");
  fs.mkdirSync(state);
  const stacks = new Map<string, Promise<Stack>>();
  return {
    dir,
    project: id,
    registry: config.registry,
    namespace: (environment, ring) => `${config.environments[environment].namespace}-${ring}`,
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
    write(file, content) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), content);
      git("add", "-A");
      git("commit", "-q", "-m", `change ${file}`);
    },
    read: (file) => fs.readFileSync(path.join(dir, file), "utf8"),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** A source repository of a service (Version Repository seed 000), in a temp dir. */
export interface SourceRepo {
  /** `file://` URL of the repository. */
  readonly url: string;
  /** The first commit (a Dockerfile and `message.txt` saying v1). */
  readonly first: string;
  /** Commits a new `message.txt` on main; returns the commit id. */
  commit(message: string): string;
  remove(): void;
}

/** Creates a git repository holding a small service built FROM the base service. */
export function makeSourceRepo(): SourceRepo {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-source-"));
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "e2e",
    GIT_AUTHOR_EMAIL: "e2e@example.com",
    GIT_COMMITTER_NAME: "e2e",
    GIT_COMMITTER_EMAIL: "e2e@example.com",
  };
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: dir, env, encoding: "utf8" }).trim();
  git("init", "-q", "-b", "main");
  fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM base\nCOPY message.txt /www/message.txt\n");
  const commit = (message: string) => {
    fs.writeFileSync(path.join(dir, "message.txt"), message);
    git("add", "-A");
    git("commit", "-q", "-m", message.trim());
    return git("rev-parse", "HEAD");
  };
  const first = commit("v1\n");
  return {
    url: `file://${dir}`,
    first,
    commit,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
