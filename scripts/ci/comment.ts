/**
 * The pull request's one comment (preview.yml), lib/ci.ts commentBody and upsertComment:
 *
 *   tsx scripts/ci/comment.ts body <result.json>... [--commit <sha>]   print the Markdown body
 *   tsx scripts/ci/comment.ts post --body <file> --pr <number>         create or update the comment
 *
 * `post` reads GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL from the environment (set by
 * GitHub Actions); the token is sent as a header and never printed.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { commentBody, upsertComment, type PreviewResult } from "../../lib/ci";

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      commit: { type: "string" },
      body: { type: "string" },
      pr: { type: "string" },
    },
  });
  const [command, ...files] = positionals;
  if (command === "body") {
    const results = files.map((f) => JSON.parse(fs.readFileSync(f, "utf8")) as PreviewResult);
    process.stdout.write(commentBody(results, values.commit ? { commit: values.commit } : {}));
    return;
  }
  if (command === "post") {
    const env = process.env;
    const pr = Number(values.pr);
    if (!values.body || !Number.isInteger(pr) || pr <= 0) {
      throw new Error("usage: comment.ts post --body <file> --pr <number>");
    }
    for (const key of ["GITHUB_TOKEN", "GITHUB_REPOSITORY"]) {
      if (!env[key]) throw new Error(`${key} is not set`);
    }
    const done = await upsertComment(
      {
        ...(env.GITHUB_API_URL ? { api: env.GITHUB_API_URL } : {}),
        repository: env.GITHUB_REPOSITORY as string,
        pullRequest: pr,
        token: env.GITHUB_TOKEN as string,
      },
      fs.readFileSync(values.body, "utf8"),
    );
    console.log(`comment ${done.id} ${done.action}`);
    return;
  }
  throw new Error("usage: comment.ts body <result.json>... | post --body <file> --pr <number>");
}

main().catch((e: Error) => {
  console.error(`comment: ${e.message}`);
  process.exit(1);
});
