/**
 * `npm run bench:site`: a site of N services on the local platform, each figure against its
 * floor measured in the same run (issue 10). For each size it generates a version repository
 * (a base chain three deep, leaves FROM it, a few files each, one Deployment each) and measures:
 *
 * - first `pulumi up`: time, builds and registry requests; floor: `buildctl` building the same
 *   images with the same parallelism, no Pulumi (lib/buildkit.ts, in dependency order); and
 *   where its time went, from the engine's events: the program until the first image step, the
 *   images' steps (build and publish, first to last, against the same floor), the deploy step;
 * - no-op `pulumi preview` (the CLI, as the changed leaf's `pulumi up`): time, registry requests
 *   per service, git processes, peak RSS of the language host; floor: a program that declares
 *   the same resources with the same inputs (the site plan, saved) and does no registry or git
 *   I/O, run by the same language host;
 * - one changed leaf: time and builds (1 + the release); bound: the no-op preview + 1 build + 5 s;
 * - deploy: lib/kubectl.ts applyManifests of the site's rendered manifests into a new namespace,
 *   apply to all rollouts complete; floor: `kubectl apply`, then `kubectl get deployments` once a
 *   second until every Deployment is Available.
 *
 * Registry requests are the registry's own access log lines for the bench's project; git
 * processes are counted by a `git` wrapper first on the engine's PATH; peak RSS is the highest
 * VmHWM of the language host's node process (`@pulumi/pulumi/cmd/run`).
 *
 * Usage: `npm run bench:site -- [--sizes 3,50,200,500] [--parallel 8] [--out bench/results.md]`
 * on the local platform (`eval "$(bash scripts/platform.sh env)"`).
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs, promisify } from "node:util";
import {
  LocalWorkspace,
  type EngineEvent,
  type OutputMap,
  type Stack,
} from "@pulumi/pulumi/automation";
import { stringify } from "yaml";
import { buildWithBuildkit } from "../lib/buildkit";
import { applyManifests, deleteObjects, kubectl } from "../lib/kubectl";
import { mapLimit } from "../lib/limit";
import { RegistryClient } from "../lib/registry";
import { prepareSite, readConfig, type BuiltImages } from "../lib/site";
import { PROGRAM_FILES } from "../test/e2e/helpers/versionRepo";

const ROOT = path.resolve(__dirname, "..");
const STACK = "bench-developers";
const BASES = ["base0", "base1", "base2"];

/** One row of the results table. */
interface Row {
  readonly size: number;
  readonly figure: string;
  readonly value: number;
  readonly unit: string;
  readonly floor?: number;
  /** The target the ratio (or the value, when there is no floor) must meet, as text. */
  readonly target?: string;
  readonly ok?: boolean;
}

/** A generated version repository of `size` leaf services. */
export interface BenchRepo {
  readonly dir: string;
  readonly project: string;
  readonly registry: string;
  readonly namespace: string;
  readonly leaves: readonly string[];
  readonly gitLog: string;
  readonly env: Record<string, string>;
}

function leafName(i: number): string {
  return `svc-${String(i).padStart(3, "0")}`;
}

function git(dir: string, ...args: string[]): void {
  execFileSync("git", args, { cwd: dir, stdio: "pipe" });
}

/** Writes the version repository of `size` leaves and commits it. */
export function generate(size: number, registry: string, id: string): BenchRepo {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gitops-rings-bench-${size}-`));
  const project = `bench-${id}-${size}`;
  const namespace = `${project}-dev`;
  for (const entry of PROGRAM_FILES) {
    fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  const leaves = Array.from({ length: size }, (_, i) => leafName(i));
  const services: Record<string, { context: string }> = {};
  for (const [i, base] of BASES.entries()) {
    services[base] = { context: `app/services/${base}` };
    write(
      `app/services/${base}/Dockerfile`,
      `FROM ${i === 0 ? "scratch" : BASES[i - 1]}\nCOPY layer.txt /${base}/layer.txt\n`,
    );
    write(`app/services/${base}/layer.txt`, `${base}\n`);
  }
  const deployments: string[] = [];
  for (const leaf of leaves) {
    services[leaf] = { context: `app/services/${leaf}` };
    write(`app/services/${leaf}/Dockerfile`, `FROM base2\nCOPY *.txt /srv/${leaf}/\n`);
    for (const f of ["a", "b", "c"]) write(`app/services/${leaf}/${f}.txt`, `${leaf} ${f}\n`);
    write(`app/services/${leaf}/README.md`, `${leaf}: docs no COPY reads\n`);
    write(
      `app/deploy/base/${leaf}.yaml`,
      stringify({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: leaf },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: leaf } },
          template: {
            metadata: { labels: { app: leaf } },
            spec: { containers: [{ name: leaf, image: leaf }] },
          },
        },
      }),
    );
    deployments.push(`${leaf}.yaml`);
  }
  write("app/deploy/base/kustomization.yaml", stringify({ resources: deployments }));
  write("app/deploy/overlays/dev/kustomization.yaml", stringify({ resources: ["../../base"] }));
  write(
    "gitops-rings.yaml",
    stringify({
      project,
      registry,
      rings: ["developers", "testers"],
      environments: { dev: { overlay: "app/deploy/overlays/dev", namespace } },
      services,
    }),
  );
  write(
    `stacks/Pulumi.${STACK}.yaml`,
    stringify({
      config: {
        "gitops-rings:ring": "developers",
        "gitops-rings:environment": "dev",
        "gitops-rings:rolloutTimeout": 1800,
      },
    }),
  );
  write(".gitignore", "node_modules\n.gitops-rings/\n.state/\nfloor/\n.bench/\n");
  git(dir, "init", "-q", "-b", "main");
  git(dir, "add", "-A");
  git(dir, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "v1");

  // A git wrapper first on the engine's PATH counts the git processes the program starts.
  const bin = path.join(dir, ".bench", "bin");
  const gitLog = path.join(dir, ".bench", "git.log");
  fs.mkdirSync(bin, { recursive: true });
  const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
  fs.writeFileSync(
    path.join(bin, "git"),
    `#!/bin/sh\necho "$*" >> '${gitLog}'\nexec '${realGit}' "$@"\n`,
    { mode: 0o755 },
  );
  fs.writeFileSync(gitLog, "");
  const state = path.join(dir, ".state");
  fs.mkdirSync(state);
  return {
    dir,
    project,
    registry,
    namespace,
    leaves,
    gitLog,
    env: {
      PULUMI_BACKEND_URL: `file://${state}`,
      PATH: `${bin}:${process.env.PATH}`,
      // Each size is its own cache: the first up of a size reads nothing cached by another.
      GITOPS_RINGS_CACHE: path.join(dir, ".bench", "cache"),
    },
  };
}

/** The stack's checkpoint in the DIY backend: its resources, its size, the applied manifests. */
function checkpointOf(repo: BenchRepo): {
  resources: number;
  mib: number;
  /** The manifests the site's KubectlApply applied last. */
  manifests: string;
} {
  const file = path.join(repo.env.PULUMI_BACKEND_URL.slice("file://".length), ".pulumi", "stacks");
  const [project] = fs.readdirSync(file);
  const json = path.join(file, project, `${STACK}.json`);
  const checkpoint = JSON.parse(fs.readFileSync(json, "utf8"));
  const all = (checkpoint.checkpoint?.latest?.resources ?? []) as {
    type: string;
    outputs?: { manifests?: string };
  }[];
  const apply = all.find((r) => r.type.endsWith(":KubectlApply"));
  return {
    resources: all.length,
    mib: fs.statSync(json).size / 1024 / 1024,
    manifests: apply?.outputs?.manifests ?? "",
  };
}

/** Registry access-log lines for `project` appended while `fn` ran. */
async function counted<T>(
  project: string,
  fn: () => Promise<T>,
): Promise<{ result: T; requests: number; seconds: number }> {
  const log = path.join(
    process.env.GITOPS_RINGS_PLATFORM_DIR ?? path.join(ROOT, ".platform"),
    "logs",
    "registry.log",
  );
  const start = fs.statSync(log).size;
  const t0 = process.hrtime.bigint();
  const result = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Distribution writes the access line when the response completes; let it flush.
  await new Promise((r) => setTimeout(r, 300));
  const fd = fs.openSync(log, "r");
  const size = fs.statSync(log).size - start;
  const buf = Buffer.alloc(size);
  fs.readSync(fd, buf, 0, size, start);
  fs.closeSync(fd);
  const needle = ` /v2/${project}/`;
  const requests = buf
    .toString("utf8")
    .split("\n")
    .filter((l) => l.startsWith("127.0.0.1 - ") && l.includes(needle)).length;
  return { result, requests, seconds };
}

/**
 * The machine's CPU time from /proc/stat, in clock ticks: all of it, and the part the host
 * gave to other guests (steal). On a shared VM a figure measured while the host takes a large
 * share is slower for reasons outside this program, so each size reports its share.
 */
function cpuTimes(): { total: number; steal: number } {
  const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1);
  const ticks = fields.slice(0, 8).map(Number);
  return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] };
}

/**
 * Runs the `pulumi` CLI in the bench's repository on its stack, as a platform team runs it:
 * the timed no-op preview and one changed leaf (`up --yes --skip-preview`). The Automation
 * API's `up` also reads the stack's outputs twice and its history once the update is done (at
 * 500 services about 2.3 s, measured) that its `preview` does not; a user of the CLI waits for
 * neither.
 * @throws Error with the CLI's output when it exits non-zero.
 */
async function pulumiCli(
  repo: BenchRepo,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<void> {
  await promisify(execFile)("pulumi", [...args, "--stack", STACK, "--non-interactive"], {
    cwd: repo.dir,
    env: { ...process.env, ...repo.env, ...env },
    maxBuffer: 256 * 1024 * 1024,
  }).catch((e: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`pulumi ${args.join(" ")}: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  });
}

/** Samples the peak RSS (VmHWM) of the language host's node process while `fn` runs. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; mib: number }> {
  let peak = 0;
  const sample = () => {
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (!cmd.includes("pulumi/cmd/run")) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
        if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
      } catch {
        // the process ended between the listing and the read
      }
    }
  };
  const timer = setInterval(sample, 100);
  try {
    const result = await fn();
    return { result, mib: peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * When each kind of step ran in an update, from the engine's events: per resource type (the
 * last part of its token, `BuildkitImage`), the first step's start and the last step's end, in
 * seconds since the update started; "same" steps are left out. With it the first up's time is
 * told apart into the program (start to the first image step), builds and publishes, and the
 * deploy.
 */
function phases(): {
  onEvent: (e: EngineEvent) => void;
  span: (type: string) => { start: number; end: number } | undefined;
} {
  const t0 = Date.now();
  const spans = new Map<string, { start: number; end: number }>();
  return {
    onEvent: (e) => {
      const now = (Date.now() - t0) / 1000;
      const step = e.resourcePreEvent?.metadata ?? e.resOutputsEvent?.metadata;
      if (!step || step.op === "same") return;
      const type = step.type.split(":").pop() as string;
      const span = spans.get(type) ?? { start: now, end: now };
      spans.set(type, { start: span.start, end: now });
    },
    span: (type) => spans.get(type),
  };
}

function builtCount(outputs: OutputMap): number {
  const services = outputs.services?.value as Record<string, { why: string }> | undefined;
  return Object.values(services ?? {}).filter((s) => s.why.startsWith("built")).length;
}

function gitProcesses(repo: BenchRepo): number {
  const n = fs.readFileSync(repo.gitLog, "utf8").split("\n").filter(Boolean).length;
  fs.writeFileSync(repo.gitLog, "");
  return n;
}

/** The floor of the first up: the same images built by buildctl alone, same parallelism. */
async function buildFloor(repo: BenchRepo, parallel: number): Promise<number> {
  const addr = process.env.BUILDKIT_HOST as string;
  const project = `${repo.project}-floor`;
  let base: string | undefined;
  // Its own copy of every context, one line longer per file, so BuildKit's cache (warm from the
  // Pulumi run, or the other way round) serves neither of them.
  const contexts = path.join(repo.dir, ".bench", "floor-services");
  fs.cpSync(path.join(repo.dir, "app/services"), contexts, { recursive: true });
  for (const service of fs.readdirSync(contexts)) {
    for (const f of fs.readdirSync(path.join(contexts, service))) {
      if (f.endsWith(".txt")) fs.appendFileSync(path.join(contexts, service, f), "floor\n");
    }
  }
  const t0 = Date.now();
  const one = (service: string, from?: { name: string; ref: string }) => {
    const context = path.join(contexts, service);
    return buildWithBuildkit({
      addr,
      context,
      dockerfile: path.join(context, "Dockerfile"),
      repository: `${repo.registry}/${project}/${service}`,
      labels: { "org.opencontainers.image.version": "0.1.0" },
      ...(from ? { namedContexts: { [from.name]: `docker-image://${from.ref}` } } : {}),
    });
  };
  for (const [i, service] of BASES.entries()) {
    const built = await one(
      service,
      i > 0 ? { name: BASES[i - 1], ref: base as string } : undefined,
    );
    base = built.ref;
  }
  await mapLimit([...repo.leaves], parallel, (leaf) =>
    one(leaf, { name: "base2", ref: base as string }),
  );
  return (Date.now() - t0) / 1000;
}

/** One build of one leaf by buildctl alone: the "1 build" of the changed-leaf bound. */
async function oneBuild(repo: BenchRepo, leaf: string): Promise<number> {
  const context = path.join(repo.dir, "app/services", leaf);
  fs.appendFileSync(path.join(context, "a.txt"), "floor\n");
  const t0 = Date.now();
  await buildWithBuildkit({
    addr: process.env.BUILDKIT_HOST as string,
    context,
    dockerfile: path.join(context, "Dockerfile"),
    repository: `${repo.registry}/${repo.project}-floor/${leaf}`,
    // FROM base2 as a stage of nothing: the floor image has no base to pull.
    namedContexts: { base2: "docker-image://" + (await baseRef(repo)) },
  });
  const seconds = (Date.now() - t0) / 1000;
  execFileSync("git", ["checkout", "--", "."], { cwd: context });
  return seconds;
}

async function baseRef(repo: BenchRepo): Promise<string> {
  const repository = `${repo.registry}/${repo.project}/base2`;
  return `${repository}@${await new RegistryClient().resolveDigest(`${repository}:0.1.0`)}`;
}

/**
 * The floor of the no-op preview: the site plan saved as JSON, which the same program declares
 * the Site from (index.ts, `GITOPS_RINGS_BENCH_FLOOR_PLAN`): the same resources and inputs, run
 * by the same language host, without the planning step's registry and git I/O.
 * @returns the saved plan's path.
 */
async function saveFloorPlan(repo: BenchRepo, stack: Stack): Promise<string> {
  const outputs = await stack.outputs();
  const previous = (outputs.builtImages?.value ?? {}) as BuiltImages;
  const config = readConfig(repo.dir, STACK, {
    "gitops-rings:ring": "developers",
    "gitops-rings:environment": "dev",
    "gitops-rings:rolloutTimeout": "1800",
  });
  const plan = await prepareSite({ root: repo.dir, stack: STACK, config, previous });
  const file = path.join(repo.dir, ".bench", "plan.json");
  fs.writeFileSync(file, JSON.stringify(plan));
  return file;
}

/** Apply to all rollouts complete, with this project's applier and with kubectl alone. */
async function deployFigures(repo: BenchRepo): Promise<{ ours: number; floor: number }> {
  // What the site applied, as its state records it.
  const yaml = checkpointOf(repo).manifests;
  const ours = `${repo.namespace}-b1`;
  const floor = `${repo.namespace}-b2`;
  const t0 = Date.now();
  const objects = await applyManifests(namespaced(yaml, repo, ours), []);
  const oursSeconds = (Date.now() - t0) / 1000;
  const t1 = Date.now();
  await kubectl({}, ["apply", "--server-side", "-f", "-"], namespaced(yaml, repo, floor));
  // Not `kubectl wait --all`: it waits for one Deployment after another under kubectl's client
  // rate limit, 44 s for 200 Deployments that were all Available after 12 s.
  const deployments = yaml.match(/^kind: Deployment$/gm)?.length ?? 0;
  const jsonpath =
    '{range .items[*]}{.status.conditions[?(@.type=="Available")].status}{"\\n"}{end}';
  for (;;) {
    const available = (
      await kubectl({}, ["get", "deployments", "-n", floor, "-o", `jsonpath=${jsonpath}`])
    )
      .split("\n")
      .filter((line) => line === "True").length;
    if (available >= deployments) break;
    if (Date.now() - t1 > 1800_000) throw new Error(`deploy floor: ${available}/${deployments}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const floorSeconds = (Date.now() - t1) / 1000;
  await deleteObjects(objects);
  await kubectl({}, ["delete", "namespace", floor, "--wait=false"]);
  return { ours: oursSeconds, floor: floorSeconds };
}

/** The rendered manifests moved to namespace `ns` (their Namespace object included). */
function namespaced(yaml: string, repo: BenchRepo, ns: string): string {
  return yaml.replaceAll(`${repo.namespace}-developers`, ns);
}

async function benchSize(
  size: number,
  parallel: number,
  registry: string,
  id: string,
  keep: boolean,
): Promise<Row[]> {
  const repo = generate(size, registry, id);
  const rows: Row[] = [];
  const log = (line: string) => console.error(`  [${size}] ${line}`);
  try {
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: STACK, workDir: repo.dir },
      { envVars: repo.env },
    );
    log("first pulumi up");
    const timeline = phases();
    const first = await counted(repo.project, () =>
      stack.up({ parallel, onOutput: () => undefined, onEvent: timeline.onEvent }),
    );
    gitProcesses(repo);
    log(`first up ${first.seconds.toFixed(1)} s; buildctl floor`);
    const floorFirst = await buildFloor(repo, parallel);
    const builds = builtCount(first.result.outputs);
    rows.push({
      size,
      figure: "first up: time",
      value: first.seconds,
      unit: "s",
      floor: floorFirst,
      target: "<= 1.3x",
      ok: first.seconds <= 1.3 * floorFirst,
    });
    rows.push({
      size,
      figure: "first up: builds (services)",
      value: builds,
      unit: "",
      target: `= ${size + 3}`,
      ok: builds === size + 3,
    });
    rows.push({ size, figure: "first up: registry requests", value: first.requests, unit: "" });
    // Where the first up's time went: the program until the first image step (compiling it,
    // the planning step, declaring), building and publishing every image, then the deploy.
    const images = timeline.span("BuildkitImage");
    const applied = timeline.span("KubectlApply");
    if (images) {
      rows.push({
        size,
        figure: "first up: program, to the first build",
        value: images.start,
        unit: "s",
      });
      rows.push({
        size,
        figure: "first up: build and publish, first to last image",
        value: images.end - images.start,
        unit: "s",
        floor: floorFirst,
      });
    }
    if (applied) {
      rows.push({
        size,
        figure: "first up: deploy step",
        value: applied.end - applied.start,
        unit: "s",
      });
    }
    // The DIY backend rewrites the whole checkpoint after every step (pulumi/pulumi#10960), so
    // the bytes an update writes grow with resources x checkpoint size.
    const checkpoint = checkpointOf(repo);
    rows.push({
      size,
      figure: "first up: resources in state",
      value: checkpoint.resources,
      unit: "",
    });
    rows.push({ size, figure: "first up: checkpoint size", value: checkpoint.mib, unit: "MiB" });

    log("no-op preview");
    const preview = await peakRss(() =>
      counted(repo.project, () => pulumiCli(repo, ["preview", "--parallel", `${parallel}`])),
    );
    const gitOps = gitProcesses(repo);
    const services = size + 3;
    const planFile = await saveFloorPlan(repo, stack);
    log("floor preview");
    const floorPreview = await peakRss(() =>
      counted(repo.project, () =>
        pulumiCli(repo, ["preview", "--parallel", `${parallel}`], {
          GITOPS_RINGS_BENCH_FLOOR_PLAN: planFile,
        }),
      ),
    );
    rows.push({
      size,
      figure: "no-op preview: time",
      value: preview.result.seconds,
      unit: "s",
      floor: floorPreview.result.seconds,
      target: "<= 1.5x",
      ok: preview.result.seconds <= 1.5 * floorPreview.result.seconds,
    });
    const perService = preview.result.requests / services;
    rows.push({
      size,
      figure: "no-op preview: registry requests / service",
      value: perService,
      unit: "",
      floor: floorPreview.result.requests / services,
      target: "<= 1",
      ok: perService <= 1,
    });
    rows.push({ size, figure: "no-op preview: git processes", value: gitOps, unit: "" });
    rows.push({
      size,
      figure: "no-op preview: peak RSS, language host",
      value: preview.mib,
      unit: "MiB",
      floor: floorPreview.mib,
      target: "<= 1024 MiB",
      ok: preview.mib <= 1024,
    });

    log("one changed leaf");
    const leaf = repo.leaves[Math.floor(size / 2)];
    fs.appendFileSync(path.join(repo.dir, "app/services", leaf, "b.txt"), "changed\n");
    git(
      repo.dir,
      "-c",
      "user.name=bench",
      "-c",
      "user.email=bench@example.com",
      "commit",
      "-qam",
      "change one leaf",
    );
    const changed = await counted(repo.project, () =>
      pulumiCli(repo, ["up", "--yes", "--skip-preview", "--parallel", `${parallel}`]),
    );
    const changedOutputs = await stack.outputs();
    const changedBuilds = builtCount(changedOutputs);
    const one = await oneBuild(repo, repo.leaves[0]);
    const bound = preview.result.seconds + one + 5;
    rows.push({
      size,
      figure: "one changed leaf: time",
      value: changed.seconds,
      unit: "s",
      floor: bound,
      target: "<= preview + 1 build + 5 s",
      ok: changed.seconds <= bound,
    });
    rows.push({
      size,
      figure: "one changed leaf: registry requests",
      value: changed.requests,
      unit: "",
    });
    // The release is built again when its version moved.
    const releaseBuilt =
      changedOutputs.release?.value !== first.result.outputs.release?.value ? 1 : 0;
    const total = changedBuilds + releaseBuilt;
    rows.push({
      size,
      figure: "one changed leaf: builds (leaf + release)",
      value: total,
      unit: "",
      target: "= 2",
      ok: total === 2,
    });

    log("deploy");
    const deploy = await deployFigures(repo);
    rows.push({
      size,
      figure: "deploy: apply to all rollouts complete",
      value: deploy.ours,
      unit: "s",
      floor: deploy.floor,
    });
    // The first up builds and deploys; the floor above builds only. Against both floors of
    // this run, buildctl's and kubectl's, summed.
    rows.push({
      size,
      figure: "first up: time, against the build and deploy floors",
      value: first.seconds,
      unit: "s",
      floor: floorFirst + deploy.floor,
    });
    await stack
      .destroy({ onOutput: () => undefined })
      .catch((e: Error) => log(`destroy: ${e.message}`));
  } finally {
    if (keep) console.error(`  [${size}] kept ${repo.dir}`);
    else fs.rmSync(repo.dir, { recursive: true, force: true });
  }
  return rows;
}

/** The results as a Markdown table. */
export function formatRows(rows: readonly Row[]): string {
  const fmt = (n: number | undefined, unit = "") =>
    n === undefined ? "" : `${Number.isInteger(n) ? n : n.toFixed(2)}${unit ? ` ${unit}` : ""}`;
  const lines = [
    "| N | figure | value | floor | ratio | target | met |",
    "| --: | --- | --: | --: | --: | --- | :-: |",
  ];
  for (const r of rows) {
    const ratio = r.floor ? (r.value / r.floor).toFixed(2) : "";
    lines.push(
      `| ${r.size} | ${r.figure} | ${fmt(r.value, r.unit)} | ${fmt(r.floor, r.unit)} | ${ratio} | ${r.target ?? ""} | ${r.ok === undefined ? "" : r.ok ? "yes" : "**no**"} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string", default: "3,50,200,500" },
      parallel: { type: "string", default: "8" },
      out: { type: "string", default: path.join(ROOT, "bench", "results.md") },
      keep: { type: "boolean", default: false },
    },
  });
  for (const k of [
    "BUILDKIT_HOST",
    "KUBECONFIG",
    "GITOPS_RINGS_REGISTRY",
    "PULUMI_CONFIG_PASSPHRASE",
  ]) {
    if (!process.env[k]) {
      throw new Error(
        `missing ${k}: run on the local platform (eval "$(bash scripts/platform.sh env)")`,
      );
    }
  }
  const sizes = (values.sizes as string).split(",").map(Number);
  const parallel = Number(values.parallel);
  const id = Math.random().toString(16).slice(2, 8);
  const rows: Row[] = [];
  const head =
    `gitops-rings bench:site — node ${process.version}, ${os.cpus().length} cpus, ` +
    `pulumi --parallel ${parallel}, ${new Date().toISOString()}\n` +
    `command: npm run bench:site -- --sizes ${values.sizes} --parallel ${parallel}`;
  for (const size of sizes) {
    console.error(`size ${size}`);
    const before = cpuTimes();
    rows.push(
      ...(await benchSize(
        size,
        parallel,
        process.env.GITOPS_RINGS_REGISTRY as string,
        id,
        values.keep === true,
      )),
    );
    const after = cpuTimes();
    rows.push({
      size,
      figure: "machine: CPU time stolen by the host (steal), share",
      value: (100 * (after.steal - before.steal)) / (after.total - before.total),
      unit: "%",
    });
    // Written after each size, so a long run leaves what it measured so far.
    fs.writeFileSync(
      values.out as string,
      `# bench:site results\n\n${head}\n\n${formatRows(rows)}\n`,
    );
  }
  console.log(`${head}\n\n${formatRows(rows)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
