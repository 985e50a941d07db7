/**
 * Ring operations on the registry (DESIGN.md flow 3), through lib/state-store.ts and with
 * its checks: a ring pointer moves only after the release and every image it names exist;
 * and the invariant checker (lib/check.ts).
 *
 *   npm run rings -- status              every ring's release and every service's version in it
 *   npm run rings -- promote <ring> [to] copy ring <ring>'s release to the next ring (or <to>)
 *   npm run rings -- shift               the whole train one step (the last ring's release to post)
 *   npm run rings -- unshift             the whole train one step back
 *   npm run rings -- check [--stack <site>]... [--outputs <file.json>]... [--kubeconfig <path>] [--json]
 *                                        every violation of invariants 1, 2, 4 and 5; exit 1 if any
 *
 * Reads gitops-rings.yaml in the working directory; `--registry host[:port]` overrides its registry.
 * `check` reads the registry; with `--stack` (the stack's outputs, through the Automation API)
 * or `--outputs` (outputs as JSON, e.g. `pulumi stack output --json`) also the sites, and with
 * a kubeconfig (`--kubeconfig`, else $KUBECONFIG) the workloads in each site's namespace.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import {
  checkInvariants,
  formatTable,
  formatViolations,
  kubectlCluster,
  type CheckResult,
  type SiteInput,
} from "../lib/check";
import { parseRepositoryConfig, type RepositoryConfig } from "../lib/config";
import { mapLimit } from "../lib/limit";
import { REPOSITORY_FILE } from "../lib/site";
import { StateStore } from "../lib/state-store";
import type { RingState } from "../lib/types";

const USAGE =
  "usage: rings status | promote <ring> [to-ring] | shift | unshift | " +
  "check [--stack <site>]... [--outputs <file.json>]... [--kubeconfig <path>] [--json]" +
  " (all take --registry host[:port])";

/** The status table: one row per ring, one column per service. */
export function formatRings(states: readonly RingState[], services: readonly string[]): string {
  return formatTable([
    ["RING", "RELEASE", ...services],
    ...states.map((s) => [
      s.ring,
      s.release?.version ?? "-",
      ...services.map((name) => s.release?.services[name]?.version ?? "-"),
    ]),
  ]);
}

/** What `check` prints by hand: the violations' table, or that all hold; then what it read. */
export function formatCheck(result: CheckResult): string {
  const c = result.checked;
  const sites = c.sites.length > 0 ? c.sites.join(", ") : "none";
  const lines = [
    result.ok ? "all invariants hold" : formatViolations(result.violations),
    "",
    `checked: ${c.releases} releases, ${c.rings} ring pointers, ${c.versionTags} version tags; ` +
      `sites: ${sites}; cluster: ${c.cluster ? `${c.containers} containers` : "not read"}`,
  ];
  if (c.sitesWithoutOutputs.length > 0) {
    lines.push(`sites without outputs (never deployed): ${c.sitesWithoutOutputs.join(", ")}`);
  }
  return lines.join("\n");
}

/** The outputs of each stack of the working directory's project, through the Automation API. */
async function stackSites(stacks: readonly string[]): Promise<SiteInput[]> {
  if (stacks.length === 0) return [];
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  // stackOutputs (not selectStack) leaves the workspace's selected stack as it was.
  const workspace = await LocalWorkspace.create({ workDir: process.cwd() });
  return mapLimit(stacks, 2, async (site) => {
    try {
      return { site, outputs: await workspace.stackOutputs(site) };
    } catch (e) {
      // The Automation API's message repeats the command's output; the CLI's own line says it.
      const message = (e as Error).message;
      const said = /^error: (.*)$/m.exec(message)?.[1] ?? message.trim();
      throw new Error(`--stack ${site}: ${said}`, { cause: e });
    }
  });
}

/** The sites of `--outputs` files: each file holds one site's outputs as JSON. */
function fileSites(files: readonly string[]): SiteInput[] {
  return files.map((file) => {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new Error(`--outputs ${file}: cannot read: ${(e as Error).message}`, { cause: e });
    }
    try {
      return { site: file, outputs: JSON.parse(text) as unknown };
    } catch (e) {
      throw new Error(`${file}: not JSON: ${(e as Error).message}`, { cause: e });
    }
  });
}

interface CheckFlags {
  readonly stack?: string[];
  readonly outputs?: string[];
  readonly kubeconfig?: string;
  readonly json?: boolean;
}

/** `rings check`: prints the violations and returns the exit code (0: all hold, 1: not). */
async function check(repo: RepositoryConfig, registry: string, flags: CheckFlags) {
  const sites = [...fileSites(flags.outputs ?? []), ...(await stackSites(flags.stack ?? []))];
  const kubeconfig = flags.kubeconfig ?? process.env.KUBECONFIG;
  const result = await checkInvariants({
    repository: { ...repo, registry },
    sites,
    cluster: kubeconfig ? kubectlCluster({ kubeconfig }) : undefined,
  });
  console.log(flags.json ? JSON.stringify(result, null, 2) : formatCheck(result));
  return result.ok ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      registry: { type: "string" },
      stack: { type: "string", multiple: true },
      outputs: { type: "string", multiple: true },
      kubeconfig: { type: "string" },
      json: { type: "boolean" },
    },
  });
  const [command, ...rest] = positionals;
  const repo = parseRepositoryConfig(fs.readFileSync(REPOSITORY_FILE, "utf8"), REPOSITORY_FILE);
  const registry = values.registry ?? repo.registry;
  const store = new StateStore({
    registry,
    project: repo.project,
    rings: repo.rings,
    vendor: repo.vendor,
  });
  const services = Object.keys(repo.services).sort();
  const show = async () => {
    console.log(formatRings(await store.readRings(), services));
    return 0;
  };
  switch (command) {
    case "status":
      return show();
    case "promote": {
      if (!rest[0]) throw new Error("usage: rings promote <ring> [to-ring]");
      const state = await store.promote(rest[0], rest[1]);
      console.log(`ring ${state.ring} -> release ${state.release?.version}`);
      return show();
    }
    case "shift":
      await store.shift();
      return show();
    case "unshift":
      await store.unshift();
      return show();
    case "check":
      return check(repo, registry, values);
    default:
      throw new Error(`${USAGE} (got ${command ?? "nothing"})`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      console.error(`rings: ${err.message}`);
      process.exit(1);
    },
  );
}
