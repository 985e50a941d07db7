/**
 * Builds one image with BuildKit's own client, `buildctl`, and pushes it by digest.
 *
 * This is the build path of the local platform, where the `docker-build` provider plugin
 * cannot be built (see README, "The local platform"). It builds exactly what the
 * docker-build path builds: the same Dockerfile frontend, context, build args, labels,
 * target and platforms, plus BuildKit's provenance attestation in `mode=max` (which the
 * docker-build provider cannot ask for: lib/provenance.ts). The version tag is put afterwards
 * by the caller through the registry client, which refuses to move an existing version tag
 * (DESIGN.md invariant 1).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { Semaphore } from "./limit";
import type { ProvenanceMode } from "./provenance";
import { isLoopback } from "./registry";
import { missingCredentialsMessage, withDockerConfig, type RegistryAuth } from "./registry-auth";

const run = promisify(execFile);

/** One BuildKit build. Paths are absolute. */
export interface BuildkitBuild {
  /** BuildKit address, e.g. `tcp://127.0.0.1:1234` (buildctl `--addr`, env BUILDKIT_HOST). */
  readonly addr: string;
  readonly context: string;
  readonly dockerfile: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Named contexts by the image name the Dockerfile uses, e.g. `base` → `docker-image://…@sha256:…`. */
  readonly namedContexts?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly target?: string;
  /** @default ["linux/amd64"] */
  readonly platforms?: readonly string[];
  /**
   * BuildKit's SLSA provenance attestation (`attest:provenance=mode=…`), stored in the pushed
   * index next to each manifest (lib/provenance.ts); `off` builds a bare manifest.
   * @default "max"
   */
  readonly provenance?: ProvenanceMode | "off";
  /** Repository pushed to by digest, e.g. `127.0.0.1:5001/example/backend`. */
  readonly repository: string;
  /** Push over plain HTTP (loopback registries). @default true for 127.0.0.0/8 and localhost */
  readonly insecure?: boolean;
  /** `buildctl` binary. @default "buildctl" on PATH */
  readonly buildctl?: string;
  /**
   * Registry credentials for the push and for pulling named contexts: written to a private
   * temporary `DOCKER_CONFIG` for this build only, removed after it, never on the command line.
   * @default {} (buildctl reads the caller's docker config)
   */
  readonly credentials?: RegistryAuth;
}

/** What a build pushed. */
export interface BuildkitResult {
  /** Digest of the pushed manifest or index, `sha256:…`. */
  readonly digest: string;
  /** `<repository>@<digest>`. */
  readonly ref: string;
}

/**
 * True when the registry part of `repository` is on loopback (`localhost`, `*.localhost`,
 * `127.0.0.0/8`, `[::1]`): the local platform serves those over plain HTTP. The same rule as the
 * registry client's ({@link isLoopback}), so that BuildKit pushes over HTTP exactly where
 * the registry client tags over HTTP (lib/publish.ts).
 */
export function isLoopbackRegistry(repository: string): boolean {
  return isLoopback(repository.split("/")[0]);
}

/** Entries sorted by key (code points, not locale), so equal builds give equal arguments. */
function sortedEntries(record: Readonly<Record<string, string>> | undefined): [string, string][] {
  return Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The buildctl arguments of a build; exported for tests. */
export function buildctlArgs(build: BuildkitBuild, metadataFile: string): string[] {
  const insecure = build.insecure ?? isLoopbackRegistry(build.repository);
  const args = [
    "--addr",
    build.addr,
    "build",
    "--progress",
    "plain",
    "--frontend",
    "dockerfile.v0",
    "--local",
    `context=${build.context}`,
    "--local",
    `dockerfile=${path.dirname(build.dockerfile)}`,
    "--opt",
    `filename=${path.basename(build.dockerfile)}`,
    "--opt",
    `platform=${(build.platforms ?? ["linux/amd64"]).join(",")}`,
  ];
  if (build.target) args.push("--opt", `target=${build.target}`);
  for (const [k, v] of sortedEntries(build.buildArgs)) args.push("--opt", `build-arg:${k}=${v}`);
  for (const [k, v] of sortedEntries(build.namedContexts)) args.push("--opt", `context:${k}=${v}`);
  for (const [k, v] of sortedEntries(build.labels)) args.push("--opt", `label:${k}=${v}`);
  const provenance = build.provenance ?? "max";
  if (provenance !== "off") args.push("--opt", `attest:provenance=mode=${provenance}`);
  const output = [`type=image`, `name=${build.repository}`, `push=true`, `push-by-digest=true`];
  if (insecure) output.push("registry.insecure=true");
  args.push("--output", output.join(","), "--metadata-file", metadataFile);
  return args;
}

/** The process-wide bound on concurrent builds, when one is set. */
let builds: Semaphore | undefined;

/**
 * Bounds how many {@link buildWithBuildkit} calls of this process run buildctl at once (site
 * config `gitops-rings:buildConcurrency`, applied by the BuildkitImage provider, which runs
 * every build of an update in one process); the others wait their turn.
 * @param limit at least 1; undefined removes the bound.
 */
export function limitBuilds(limit: number | undefined): void {
  builds = limit === undefined ? undefined : new Semaphore(limit);
}

/**
 * Runs the build and returns the pushed digest, within the bound of {@link limitBuilds}.
 * @throws Error with the last 40 lines of BuildKit's progress when the build fails.
 */
export async function buildWithBuildkit(build: BuildkitBuild): Promise<BuildkitResult> {
  return builds ? builds.run(() => runBuild(build)) : runBuild(build);
}

async function runBuild(build: BuildkitBuild): Promise<BuildkitResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-buildctl-"));
  const metadataFile = path.join(dir, "metadata.json");
  const credentials = build.credentials ?? {};
  const registry = build.repository.split("/")[0];
  try {
    await withDockerConfig(credentials, (dockerConfig) =>
      run(build.buildctl ?? "buildctl", buildctlArgs(build, metadataFile), {
        maxBuffer: 64 * 1024 * 1024,
        ...(dockerConfig ? { env: { ...process.env, DOCKER_CONFIG: dockerConfig } } : {}),
      }),
    ).catch((err: { stderr?: string; message: string }) => {
      const tail = (err.stderr ?? "").trim().split("\n").slice(-40).join("\n");
      const unauthorized =
        credentials[registry] === undefined && /\b401\b|unauthorized|authorization/i.test(tail)
          ? `\n${missingCredentialsMessage(registry)}`
          : "";
      throw new Error(
        `building ${build.repository} from ${build.dockerfile} failed:\n${tail || err.message}${unauthorized}`,
      );
    });
    const metadata = JSON.parse(fs.readFileSync(metadataFile, "utf8"));
    const digest: string | undefined = metadata["containerimage.digest"];
    if (!digest) throw new Error(`building ${build.repository}: BuildKit reported no image digest`);
    return { digest, ref: `${build.repository}@${digest}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
