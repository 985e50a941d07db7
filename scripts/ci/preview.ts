/**
 * One site's preview job (preview.yml): `pulumi preview` of the site, then its release plan
 * and release notes, written as JSON for the comment job (lib/ci.ts previewSite).
 *
 *   tsx scripts/ci/preview.ts <site> --out <result.json> [--base <commit>]
 *
 * Run in the version repository's root, logged in to the Pulumi backend. Prints the preview's
 * output; exits 1 when the preview failed (the result file says why), so the check fails.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { previewSite } from "../../lib/ci";

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { out: { type: "string" }, base: { type: "string" } },
  });
  const [site] = positionals;
  if (!site || !values.out || positionals.length !== 1) {
    throw new Error("usage: preview.ts <site> --out <result.json> [--base <commit>]");
  }
  const result = await previewSite({
    root: process.cwd(),
    site,
    ...(values.base ? { base: values.base } : {}),
    onOutput: (text) => process.stdout.write(text),
  });
  fs.writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  if (!result.ok) console.error(`preview of ${site} failed:\n${result.error ?? ""}`);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (e: Error) => {
    console.error(`preview: ${e.message}`);
    process.exit(1);
  },
);
