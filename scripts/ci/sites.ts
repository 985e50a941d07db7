/**
 * The sites a workflow runs on, as a JSON array for a job matrix (lib/ci.ts selectSites):
 *
 *   tsx scripts/ci/sites.ts                 every site of stacks/ (preview.yml)
 *   tsx scripts/ci/sites.ts --building      the sites whose `pulumi up` builds (up.yml)
 *   tsx scripts/ci/sites.ts --after <ring>  the sites of the ring after <ring> (promote.yml)
 *
 * Run in the version repository's root. In GitHub Actions:
 * `echo "sites=$(npx tsx scripts/ci/sites.ts)" >> "$GITHUB_OUTPUT"`.
 */
import { parseArgs } from "node:util";
import { selectSites, type SiteFilter } from "../../lib/ci";

const { values } = parseArgs({
  options: { building: { type: "boolean" }, after: { type: "string" } },
});
try {
  const filter: SiteFilter = values.building
    ? { kind: "building" }
    : values.after !== undefined
      ? { kind: "after", ring: values.after }
      : { kind: "all" };
  console.log(JSON.stringify(selectSites(process.cwd(), filter)));
} catch (e) {
  console.error(`sites: ${(e as Error).message}`);
  process.exit(1);
}
