/**
 * Ring operations on the registry (DESIGN.md flow 3), through lib/state-store.ts and with
 * its checks: a ring pointer moves only after the release and every image it names exist.
 *
 *   npm run rings -- status              every ring's release and every service's version in it
 *   npm run rings -- promote <ring> [to] copy ring <ring>'s release to the next ring (or <to>)
 *   npm run rings -- shift               the whole train one step (the last ring's release to post)
 *   npm run rings -- unshift             the whole train one step back
 *
 * Reads gitops-rings.yaml in the working directory; `--registry host[:port]` overrides its registry.
 */
import * as fs from "node:fs";
import { parseRepositoryConfig } from "../lib/config";
import { REPOSITORY_FILE } from "../lib/site";
import { StateStore } from "../lib/state-store";
import type { RingState } from "../lib/types";

/** The status table: one row per ring, one column per service. */
export function formatRings(states: readonly RingState[], services: readonly string[]): string {
  const rows = [["RING", "RELEASE", ...services]];
  for (const s of states) {
    rows.push([
      s.ring,
      s.release?.version ?? "-",
      ...services.map((name) => s.release?.services[name]?.version ?? "-"),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function main(argv: string[]): Promise<void> {
  const registryFlag = argv.indexOf("--registry");
  const registryOverride = registryFlag >= 0 ? argv.splice(registryFlag, 2)[1] : undefined;
  const [command, ...rest] = argv;
  const repo = parseRepositoryConfig(fs.readFileSync(REPOSITORY_FILE, "utf8"), REPOSITORY_FILE);
  const store = new StateStore({
    registry: registryOverride ?? repo.registry,
    project: repo.project,
    rings: repo.rings,
    vendor: repo.vendor,
  });
  const services = Object.keys(repo.services).sort();
  const show = async () => console.log(formatRings(await store.readRings(), services));
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
    default:
      throw new Error(
        `usage: rings status | promote <ring> [to-ring] | shift | unshift (got ${command ?? "nothing"})`,
      );
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`rings: ${err.message}`);
    process.exit(1);
  });
}
