/**
 * Ring operations on the registry (DESIGN.md flow 3), through lib/state-store.ts and with
 * its checks: a ring pointer moves only after the release and every image it names exist;
 * and the invariant checker (lib/check.ts).
 *
 *   npm run rings -- status              every ring's release and every service's version in it
 *   npm run rings -- promote <ring> [to] [--force [--reason <text>]]
 *                                        copy ring <ring>'s release to the next ring (or <to>), once a
 *                                        site of <ring> verified it (--force: anyway, recorded)
 *   npm run rings -- shift               the whole train one step (the last ring's release to post)
 *   npm run rings -- unshift             the whole train one step back
 *   npm run rings -- check [--stack <site>]... [--outputs <file.json>]... [--kubeconfig <path>]
 *                          [--provenance max|min|off] [--json]
 *                                        every violation of invariants 1, 2, 4 and 5, and every image
 *                                        without provenance (default: mode=max); exit 1 if any
 *   npm run rings -- diff <from> <to> [--markdown|--json] [--base <ref>]
 *                                        release notes between two sides: a ring, a release version,
 *                                        or plan:<site> (what the site's next `pulumi up` releases)
 *
 * `promote`, `shift` and `unshift` print the release notes of every ring they moved (table,
 * or with `--markdown` / `--json`).
 *
 *   npm run rings -- bootstrap <site> [--kubeconfig <path>]
 *                                        the site's namespace and deploy identity: a ServiceAccount,
 *                                        a Role with what its manifests need, a RoleBinding
 *
 * Reads gitops-rings.yaml in the working directory; `--registry host[:port]` overrides its registry.
 * `check` reads the registry; with `--stack` (the stack's outputs, through the Automation API)
 * or `--outputs` (outputs as JSON, e.g. `pulumi stack output --json`) also the sites, and with
 * a kubeconfig (`--kubeconfig`, else $KUBECONFIG) the workloads in each site's namespace.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import type { ProvenanceRequirement } from "../lib/provenance";
import {
  checkInvariants,
  formatTable,
  formatViolations,
  kubectlCluster,
  type CheckResult,
  type SiteInput,
} from "../lib/check";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import {
  parseRepositoryConfig,
  parseSiteConfig,
  siteValuesFromConfigMap,
  type RepositoryConfig,
} from "../lib/config";
import { bootstrapIdentity, IDENTITY_NAME } from "../lib/identity";
import { renderOverlay } from "../lib/kubectl";
import { mapLimit } from "../lib/limit";
import {
  formatNotesMarkdown,
  formatNotesTable,
  readSide,
  releaseNotes,
  releaseSide,
  type NotesOptions,
  type ReleaseNotes,
} from "../lib/notes";
import { REPOSITORY_FILE, siteNamespace, stackFile } from "../lib/site";
import { StateStore } from "../lib/state-store";
import type { RingState } from "../lib/types";
import {
  formatVerification,
  readRecords,
  recordOverride,
  requireVerified,
  type ReleaseRecords,
} from "../lib/verification";

const USAGE =
  "usage: rings status | promote <ring> [to-ring] [--force [--reason <text>]] | shift | unshift | " +
  "check [--stack <site>]... [--outputs <file.json>]... [--kubeconfig <path>] " +
  "[--provenance max|min|off] [--json] | " +
  "diff <from> <to> [--markdown|--json] [--base <ref>] | bootstrap <site> [--kubeconfig <path>]" +
  " (all take --registry host[:port]; promote, shift and unshift take --markdown|--json)";

/**
 * The status table: one row per ring, one column per service, and with `records` (by ring) a
 * VERIFIED column: the sites of the ring that verified its release, and forced promotions.
 */
export function formatRings(
  states: readonly RingState[],
  services: readonly string[],
  records?: ReadonlyMap<string, ReleaseRecords>,
): string {
  return formatTable([
    ["RING", "RELEASE", ...services, ...(records ? ["VERIFIED"] : [])],
    ...states.map((s) => [
      s.ring,
      s.release?.version ?? "-",
      ...services.map((name) => s.release?.services[name]?.version ?? "-"),
      ...(records ? [recordsOf(s, records)] : []),
    ]),
  ]);
}

function recordsOf(s: RingState, records: ReadonlyMap<string, ReleaseRecords>): string {
  const r = records.get(s.ring);
  return s.release && r ? formatVerification(s.ring, r) : "-";
}

/** What `check` prints by hand: the violations' table, or that all hold; then what it read. */
export function formatCheck(result: CheckResult): string {
  const c = result.checked;
  const sites = c.sites.length > 0 ? c.sites.join(", ") : "none";
  const lines = [
    result.ok ? "all invariants hold" : formatViolations(result.violations),
    "",
    `checked: ${c.releases} releases, ${c.rings} ring pointers, ${c.versionTags} version tags; ` +
      `sites: ${sites}; cluster: ${c.cluster ? `${c.containers} containers` : "not read"}; ` +
      `provenance (${c.provenance.required}): ${c.provenance.images} images`,
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
  readonly provenance?: string;
  readonly json?: boolean;
}

const PROVENANCE_REQUIREMENTS: readonly ProvenanceRequirement[] = ["max", "min", "off"];

/** `rings check`: prints the violations and returns the exit code (0: all hold, 1: not). */
async function check(repo: RepositoryConfig, registry: string, flags: CheckFlags) {
  const sites = [...fileSites(flags.outputs ?? []), ...(await stackSites(flags.stack ?? []))];
  const kubeconfig = flags.kubeconfig ?? process.env.KUBECONFIG;
  const provenance = (flags.provenance ?? "max") as ProvenanceRequirement;
  if (!PROVENANCE_REQUIREMENTS.includes(provenance)) {
    throw new Error(
      `--provenance ${JSON.stringify(flags.provenance)}: expected one of ${PROVENANCE_REQUIREMENTS.join(", ")}`,
    );
  }
  const result = await checkInvariants({
    repository: { ...repo, registry },
    sites,
    cluster: kubeconfig ? kubectlCluster({ kubeconfig }) : undefined,
    provenance,
  });
  console.log(flags.json ? JSON.stringify(result, null, 2) : formatCheck(result));
  return result.ok ? 0 : 1;
}

/** Output format of release notes. */
type NotesFormat = "table" | "markdown" | "json";

/** Prints release notes in `format`; JSON as one document of every move's notes. */
function printNotes(notes: readonly ReleaseNotes[], format: NotesFormat): void {
  if (format === "json") {
    console.log(JSON.stringify(notes.length === 1 ? notes[0] : notes, null, 2));
    return;
  }
  const render = format === "markdown" ? formatNotesMarkdown : formatNotesTable;
  console.log(notes.map((n) => render(n)).join("\n\n"));
}

/** The notes of every ring whose release changed between `before` and `after`. */
async function movedNotes(
  before: readonly RingState[],
  after: readonly RingState[],
): Promise<ReleaseNotes[]> {
  const notes: ReleaseNotes[] = [];
  for (const b of before) {
    const a = after.find((s) => s.ring === b.ring);
    if (!a || a.release?.digest === b.release?.digest) continue;
    notes.push(
      await releaseNotes(
        releaseSide(`${b.ring} before`, b.release),
        releaseSide(`${a.ring} now`, a.release),
      ),
    );
  }
  return notes;
}

/**
 * `bootstrap <site>`: creates or updates the site's namespace and deploy identity
 * (lib/identity.ts) with the caller's kubeconfig, its Role granting the kinds the site's
 * environment overlay renders and what a deploy reads.
 */
async function bootstrap(repo: RepositoryConfig, site: string, kubeconfig?: string) {
  const file = stackFile(site);
  const doc = parseYaml(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
  const config = parseSiteConfig(siteValuesFromConfigMap(doc?.config ?? {}), file, repo);
  const environment = repo.environments[config.environment];
  const namespace = siteNamespace(environment.namespace, config.ring);
  const opts = kubeconfig ? { kubeconfig } : {};
  const { yaml } = await renderOverlay(path.resolve(environment.overlay), opts);
  const rules = await bootstrapIdentity(namespace, yaml, opts);
  console.log(
    `site ${site}: namespace ${namespace}, ServiceAccount, Role and RoleBinding ${IDENTITY_NAME}`,
  );
  for (const r of rules) {
    console.log(`  ${r.apiGroups[0] || "core"}: ${r.resources.join(", ")}: ${r.verbs.join(", ")}`);
  }
  console.log(`deploy as it: pulumi config set --stack ${site} gitops-rings:identity true`);
  return 0;
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
      provenance: { type: "string" },
      json: { type: "boolean" },
      markdown: { type: "boolean" },
      base: { type: "string" },
      force: { type: "boolean" },
      reason: { type: "string" },
    },
  });
  if (values.json && values.markdown) throw new Error("--json and --markdown: choose one");
  const format: NotesFormat = values.json ? "json" : values.markdown ? "markdown" : "table";
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
  /** Prints the status table (after a move, below the notes: `lead` adds a blank line). */
  const show = async (lead = true) => {
    const states = await store.readRings();
    const records = new Map<string, ReleaseRecords>();
    for (const st of states) {
      if (st.release) {
        records.set(
          st.ring,
          await readRecords(store.client, store.releaseRepository, st.release.digest),
        );
      }
    }
    const table = formatRings(states, services, records);
    // With --json the notes are the whole output, so that it parses.
    if (format === "markdown") console.log(`\n\`\`\`\n${table}\n\`\`\``);
    else if (format === "table") console.log(lead ? `\n${table}` : table);
    return 0;
  };
  /** Runs a ring move and prints the notes of what moved, then the rings. */
  const move = async (run: () => Promise<unknown>) => {
    const before = await store.readRings();
    await run();
    printNotes(await movedNotes(before, await store.readRings()), format);
    return show();
  };
  switch (command) {
    case "status":
      return show(false);
    case "promote": {
      if (!rest[0]) throw new Error("usage: rings promote <ring> [to-ring] [--force]");
      // With --json, what is said besides the notes goes to stderr, so that stdout parses.
      const say = (line: string) => (format === "json" ? console.error(line) : console.log(line));
      return move(async () => {
        const from = (await store.readRing(rest[0])).release;
        if (from) {
          // Verified promotion: a site of the ring verified its release (lib/verification.ts).
          const records = await readRecords(store.client, store.releaseRepository, from.digest);
          try {
            requireVerified(rest[0], from, records);
          } catch (err) {
            if (!values.force) throw err;
            const by = process.env.GITOPS_RINGS_USER ?? process.env.USER ?? "unknown";
            await recordOverride(store.client, store.releaseRepository, {
              ring: rest[0],
              release: from.version,
              digest: from.digest,
              time: new Date().toISOString(),
              by,
              reason: values.reason ?? "promote --force",
            });
            say(
              `ring ${rest[0]}: release ${from.version} promoted unverified (--force by ${by}, recorded)`,
            );
          }
        }
        const state = await store.promote(rest[0], rest[1]);
        say(`ring ${state.ring} -> release ${state.release?.version}\n`);
      });
    }
    case "shift":
      return move(() => store.shift());
    case "unshift":
      return move(() => store.unshift());
    case "diff": {
      if (rest.length !== 2)
        throw new Error("usage: rings diff <from> <to> [--markdown|--json] [--base <ref>]");
      const source = { store, root: process.cwd() };
      const [from, to] = await Promise.all(rest.map((name) => readSide(name, source)));
      const options: NotesOptions = values.base
        ? { versionRepository: { root: process.cwd(), repo, base: values.base } }
        : {};
      printNotes([await releaseNotes(from, to, options)], format);
      return 0;
    }
    case "check":
      return check(repo, registry, values);
    case "bootstrap":
      if (!rest[0]) throw new Error("usage: rings bootstrap <site> [--kubeconfig <path>]");
      return bootstrap(repo, rest[0], values.kubeconfig ?? process.env.KUBECONFIG);
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
