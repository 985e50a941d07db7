/**
 * Benchmark of lib/revision.ts and lib/plan.ts, all figures from one run:
 *
 * - the revision of a generated context (BENCH_FILES files, BENCH_MB MB in all) read byte by
 *   byte, the first read after writing (no cache dropped);
 * - `sha256sum` over the same files through `xargs`: the floor for reading and hashing them;
 * - the revision through the git fast path, with the same context committed as a clean worktree
 *   (checked to equal the read-every-byte revision);
 * - the plan of a build for 1,000 services in each of 7 rings (ante, 5 rings, post).
 *
 * Files go under os.tmpdir() and are deleted afterwards. Quick run:
 * `BENCH_FILES=2000 BENCH_MB=50 npm run bench`.
 */
import { execFileSync, execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RepositoryConfig, ServiceConfig, SiteConfig } from "../lib/config";
import { formatPlan, planRelease, type PlanServiceInput } from "../lib/plan";
import { computeRevisionInput, revisionOf } from "../lib/revision";
import type { ImageRecord, ReleaseRecord, RingState } from "../lib/types";
import { allRings, nextRing } from "../lib/version";

/** One row of the result table. */
export interface BenchRow {
  readonly what: string;
  readonly seconds: number;
  readonly files?: number;
  /** MB the step covers (the context's size). */
  readonly megabytes?: number;
  /** MB the step read from disk, when it differs. */
  readonly read?: number;
  readonly note?: string;
}

const MIB = 1 << 20;

/** Writes `files` files of `megabytes` MB in all under `dir`, sizes varying, content random. */
function generateContext(dir: string, files: number, megabytes: number): number {
  const pool = randomBytes(4 * MIB);
  const total = megabytes * MIB;
  // Sizes: most files small, a few large, summing to `total` (a deterministic spread).
  const weights = Array.from({ length: files }, (_, i) => (i % 100 === 0 ? 200 : 1 + (i % 7)));
  const sum = weights.reduce((a, b) => a + b, 0);
  let written = 0;
  for (let i = 0; i < files; i++) {
    const size = i === files - 1 ? total - written : Math.floor((weights[i] / sum) * total);
    const rel = path.join(`d${String(i % 97).padStart(2, "0")}`, `s${i % 13}`, `f${i}.bin`);
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(file, "w");
    const header = Buffer.from(`file ${i}\n`);
    fs.writeSync(fd, header);
    let left = Math.max(0, size - header.length);
    let offset = (i * 7919) % pool.length;
    while (left > 0) {
      const n = Math.min(left, pool.length - offset);
      fs.writeSync(fd, pool, offset, n);
      left -= n;
      offset = 0;
    }
    fs.closeSync(fd);
    written += Math.max(size, header.length);
  }
  fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\nCOPY d* /data/\n");
  return written;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function git(cwd: string, args: string[]): void {
  execFileSync("git", args, {
    cwd,
    stdio: "ignore",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "bench",
      GIT_AUTHOR_EMAIL: "bench@example.com",
      GIT_COMMITTER_NAME: "bench",
      GIT_COMMITTER_EMAIL: "bench@example.com",
    },
  });
}

/** A repository config, ring states and revision inputs for `count` services in 5+2 rings. */
function planFixture(count: number) {
  const rings = ["r1", "r2", "r3", "r4", "r5"];
  const services: Record<string, ServiceConfig> = {};
  const inputs: Record<string, PlanServiceInput> = {};
  const names = Array.from({ length: count }, (_, i) => `svc-${String(i).padStart(4, "0")}`);
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  names.forEach((name, i) => {
    services[name] = {
      name,
      image: name,
      context: name,
      buildArgs: {},
      platforms: ["linux/amd64"],
      sources: [],
      labels: {},
    };
    const deps = new Set<string>();
    const n = i === 0 ? 0 : Math.floor(random() * 4);
    for (let k = 0; k < n; k++) deps.add(names[Math.floor(random() * i)]);
    const hex = i.toString(16).padStart(64, "0");
    inputs[name] = { content: `sha256:${hex}`, dependencies: [...deps] };
  });
  const repository: RepositoryConfig = {
    file: "gitops-rings.yaml",
    project: "bench",
    registry: "127.0.0.1:5001",
    initialVersion: "0.1.0",
    rings,
    environments: { dev: { name: "dev", overlay: "o", namespace: "dev" } },
    services,
  };
  /** A ring's release, consistent with `inputs` at version x.y.0 per service. */
  const release = (minor: number): ReleaseRecord => {
    const records: Record<string, ImageRecord> = {};
    names.forEach((name, i) => {
      const deps: Record<string, string> = {};
      for (const d of inputs[name].dependencies) {
        deps[typeof d === "string" ? d : d.service] =
          records[typeof d === "string" ? d : d.service].digest;
      }
      records[name] = {
        service: name,
        repository: `127.0.0.1:5001/bench/${name}`,
        version: `0.${minor}.0`,
        digest: `sha256:${(i + minor * 100000).toString(16).padStart(64, "0")}`,
        revision: revisionOf(inputs[name], deps),
        dependencies: {},
        sources: [],
      };
    });
    return { version: `1.${minor}.0`, digest: `sha256:${"e".repeat(64)}`, services: records };
  };
  const states: Record<string, RingState> = {};
  allRings(rings).forEach((ring, i) => (states[ring] = { ring, release: release(10 - i) }));
  // One service in ten has changed files since the rings were built.
  const changed: Record<string, PlanServiceInput> = { ...inputs };
  names.forEach((name, i) => {
    if (i % 10 === 5)
      changed[name] = { ...inputs[name], content: `sha256:${"f".repeat(63)}${i % 10}` };
  });
  return { repository, states, services: changed };
}

/**
 * Runs the benchmark.
 * @param env `BENCH_FILES` (default 20000) and `BENCH_MB` (default 500).
 * @returns the rows of the table, in order.
 */
export async function benchRevisionPlan(env: NodeJS.ProcessEnv = process.env): Promise<BenchRow[]> {
  const files = Number(env.BENCH_FILES ?? 20000);
  const megabytes = Number(env.BENCH_MB ?? 500);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-bench-"));
  const rows: BenchRow[] = [];
  try {
    const context = path.join(root, "context");
    fs.mkdirSync(context);
    let start = process.hrtime.bigint();
    const bytes = generateContext(context, files, megabytes);
    const mb = bytes / MIB;
    rows.push({
      what: "generate the context (setup)",
      seconds: seconds(start),
      files,
      megabytes: mb,
    });

    const dockerfile = path.join(context, "Dockerfile");
    start = process.hrtime.bigint();
    const cold = await computeRevisionInput(context, dockerfile, { git: false });
    const coldRevision = revisionOf(cold.input, {});
    rows.push({
      what: "revision, reading every byte (first read)",
      seconds: seconds(start),
      files: cold.stats.files,
      megabytes: mb,
      read: cold.stats.bytesHashed / MIB,
    });

    start = process.hrtime.bigint();
    execSync("find . -type f -name 'f*.bin' -print0 | xargs -0 sha256sum > /dev/null", {
      cwd: context,
    });
    rows.push({
      what: "sha256sum via xargs (the floor)",
      seconds: seconds(start),
      files,
      megabytes: mb,
    });

    start = process.hrtime.bigint();
    git(context, ["init", "-q"]);
    git(context, ["-c", "core.compression=0", "-c", "core.looseCompression=0", "add", "-A"]);
    git(context, ["commit", "-q", "-m", "bench"]);
    // A user's index is older than their files; refresh once so no entry is racily clean.
    execSync("sleep 1.1");
    git(context, ["status", "--porcelain"]);
    rows.push({
      what: "git add + commit + status (setup)",
      seconds: seconds(start),
      files,
      megabytes: mb,
    });

    start = process.hrtime.bigint();
    const fast = await computeRevisionInput(context, dockerfile);
    const fastRevision = revisionOf(fast.input, {});
    rows.push({
      what: "revision, git fast path (clean worktree)",
      seconds: seconds(start),
      files: fast.stats.files,
      megabytes: mb,
      read: fast.stats.bytesHashed / MIB,
      note: `${fast.stats.fromGit} blob ids from git; same revision: ${fastRevision === coldRevision ? "yes" : "NO"}`,
    });
    if (fastRevision !== coldRevision) throw new Error("the git fast path gave another revision");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }

  const fixture = planFixture(1000);
  const rings = allRings(fixture.repository.rings);
  const plan = (ring: string) =>
    planRelease({
      repository: fixture.repository,
      site: {
        file: "bench.yaml",
        ring,
        environment: "dev",
        build: true,
        pins: {},
        policies: {},
        majorBump: {},
        autoDeploy: false,
        sourceCommits: {},
        images: { requireDigest: false, fields: [] },
      } satisfies SiteConfig,
      current: fixture.states[ring],
      next: nextRing(fixture.repository.rings, ring)
        ? fixture.states[nextRing(fixture.repository.rings, ring) as string]
        : undefined,
      services: fixture.services,
    });
  rings.forEach(plan); // warm up
  const rounds = 5;
  let start = process.hrtime.bigint();
  let built = 0;
  for (let r = 0; r < rounds; r++)
    for (const ring of rings)
      built = plan(ring).services.filter((s) => s.action === "build").length;
  const perRing = seconds(start) / (rounds * rings.length);
  rows.push({
    what: "plan, 1,000 services, per ring",
    seconds: perRing,
    note: `${rings.length} rings x ${rounds} rounds; ${built} of 1000 rebuild`,
  });
  start = process.hrtime.bigint();
  const text = formatPlan(plan("r1"));
  rows.push({
    what: "plan + formatPlan, 1,000 services",
    seconds: seconds(start),
    note: `${text.split("\n").length} lines`,
  });
  return rows;
}

/**
 * Formats rows as one markdown table.
 * @param rows the measurements.
 * @returns the table text.
 */
export function formatBench(rows: readonly BenchRow[]): string {
  const header = ["what", "files", "MB", "MB read", "seconds", "MB/s", "note"];
  const body = rows.map((r) => [
    r.what,
    r.files === undefined ? "" : String(r.files),
    r.megabytes === undefined ? "" : r.megabytes.toFixed(1),
    r.read === undefined ? "" : r.read.toFixed(1),
    r.seconds < 0.1 ? r.seconds.toFixed(4) : r.seconds.toFixed(2),
    r.megabytes && r.seconds > 0 ? (r.megabytes / r.seconds).toFixed(0) : "",
    r.note ?? "",
  ]);
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...body.map(line),
  ].join("\n");
}
