/**
 * Pull-request CI end to end on the local platform: the scripts the workflows call
 * (scripts/ci/sites.ts, preview.ts, comment.ts) and `rings diff plan:<site>`, run as the
 * workflows run them, in a copy of the version repository whose rings hold real releases built
 * by `pulumi up`, against real `pulumi preview`s.
 */
import { strict as assert } from "node:assert";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import type { PreviewResult } from "../../lib/ci";
import { COMMENT_MARKER } from "../../lib/ci";
import type { ReleaseNotes } from "../../lib/notes";
import { RegistryClient } from "../../lib/registry";
import type { TestRepo } from "../integration/helpers/git";
import {
  assertPlatformEnv,
  makeSourceRepo,
  makeVersionRepo,
  type VersionRepo,
} from "./helpers/versionRepo";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

describe("pull-request CI on the local platform (end to end)", function () {
  let repo: VersionRepo;
  let source: TestRepo;
  let env: NodeJS.ProcessEnv;
  let out: string;
  const client = new RegistryClient();

  /** Runs a script of this checkout in the copy, as a workflow step does. */
  function script(
    file: string,
    args: readonly string[],
  ): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(TSX, [path.join(ROOT, file), ...args], {
      cwd: repo.dir,
      env,
      encoding: "utf8",
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** git in the copy. */
  const git = (...args: string[]) =>
    execFileSync("git", args, {
      cwd: repo.dir,
      encoding: "utf8",
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: "Dev",
        GIT_AUTHOR_EMAIL: "dev@example.invalid",
        GIT_COMMITTER_NAME: "Dev",
        GIT_COMMITTER_EMAIL: "dev@example.invalid",
      },
    }).trim();

  /** Runs the preview job of `sites` (two at a time) and reads their result files. */
  async function previews(
    sites: readonly string[],
  ): Promise<Record<string, PreviewResult & { status: number | null }>> {
    const results: Record<string, PreviewResult & { status: number | null }> = {};
    const one = (site: string) =>
      new Promise<void>((resolve) => {
        const file = path.join(out, `preview-${site}.json`);
        const child = spawn(
          TSX,
          [path.join(ROOT, "scripts/ci/preview.ts"), site, "--out", file, "--base", "main"],
          { cwd: repo.dir, env, stdio: "ignore" },
        );
        child.on("close", (status) => {
          results[site] = {
            ...(JSON.parse(fs.readFileSync(file, "utf8")) as PreviewResult),
            status,
          };
          resolve();
        });
      });
    for (let i = 0; i < sites.length; i += 2) await Promise.all(sites.slice(i, i + 2).map(one));
    return results;
  }

  before(async function () {
    assertPlatformEnv();
    repo = makeVersionRepo();
    out = fs.mkdtempSync(path.join(repo.dir, ".state", "ci-"));
    env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(repo.dir, ".state")}` };
    source = makeSourceRepo().repo;
    const config = parse(repo.read("gitops-rings.yaml"));
    config.services.worker = {
      source: "worker",
      context: ".",
      sources: [{ name: "worker", url: source.fileUrl, branch: "main" }],
    };
    repo.write("gitops-rings.yaml", stringify(config));
    await (await repo.stack("dev-developers")).up({ onOutput: () => undefined });
    const store = repo.stateStore(client);
    await store.promote("developers");
    // The scripts as a workflow checks them out: beside the copy's config.
    fs.cpSync(path.join(ROOT, "scripts"), path.join(repo.dir, "scripts"), { recursive: true });
  });

  after(function () {
    source?.remove();
    repo?.remove();
  });

  it("GIVEN promote.yml's step WHEN scripts/ci/promote.sh runs THEN the ring moves, the job summary has the release notes, and the output names the sites of the next ring", function () {
    const summary = path.join(out, "summary.md");
    const output = path.join(out, "output.txt");
    // No site of testers ran (so none verified the release): the workflow's force input.
    const promoteSh = path.join(repo.dir, "scripts/ci/promote.sh");
    const r = spawnSync("bash", [promoteSh, "testers", "--force", "--reason", "e2e"], {
      env: { ...env, GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: output },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(output, "utf8"), 'sites=["prod-users"]\n');
    const text = fs.readFileSync(summary, "utf8");
    assert.match(
      text,
      /^## Promote testers\n\nring testers: release 0\.1\.0 promoted unverified \(--force by [^)]*, recorded\)\nring users -> release 0\.1\.0/,
    );
    assert.match(
      text,
      /### Release notes: users before \(no release\) → users now \(release 0\.1\.0\)/,
    );
    assert.match(text, /\| worker \| – \| 0\.1\.0 `sha256:[0-9a-f]{12}` \| new \|/);
    assert.match(text, /Sites to update: `\["prod-users"\]`/);
  });

  it("GIVEN the last ring promoted by hand THEN every site's ring has a release", async function () {
    await repo.stateStore(client).promote("users");
    const rings = await repo.stateStore(client).readRings();
    assert.deepEqual(
      rings.map((r) => [r.ring, r.release?.version ?? "-"]),
      [
        ["ante", "-"],
        ["developers", "0.1.0"],
        ["testers", "0.1.0"],
        ["users", "0.1.0"],
        ["lts", "0.1.0"],
        ["post", "-"],
      ],
    );
  });

  it("GIVEN a pull-request-like change (a file of one service, the base's Dockerfile, a commit in a source) WHEN `rings diff <ring> plan:<site>` runs THEN the changed services show their next versions and exactly the commits since their current images", async function () {
    git("checkout", "-q", "-b", "pr");
    repo.write(
      "app/services/backend/httpd.conf",
      `${repo.read("app/services/backend/httpd.conf")}# v2\n`,
    );
    const backendCommit = git("rev-parse", "HEAD");
    repo.write(
      "app/services/base/Dockerfile",
      `${repo.read("app/services/base/Dockerfile")}ENV TZ=UTC\n`,
    );
    const baseCommit = git("rev-parse", "HEAD");
    const workerCommit = source.commit("worker: new message", { "message.txt": "v2\n" });
    const r = script("scripts/rings.ts", [
      "diff",
      "developers",
      "plan:dev-developers",
      "--json",
      "--base",
      "main",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const notes = JSON.parse(r.stdout) as ReleaseNotes;
    assert.deepEqual(notes.to, {
      name: "plan:dev-developers",
      release: "0.2.0",
      site: "dev-developers",
    });
    const by = Object.fromEntries(notes.services.map((s) => [s.service, s]));
    // Built in developers at 0.1.0 and promoted to testers: the next build bumps the minor.
    for (const service of ["base", "backend", "frontend", "worker"]) {
      assert.deepEqual(
        [
          by[service].change,
          by[service].from?.version,
          by[service].to?.version,
          by[service].to?.digest,
        ],
        ["changed", "0.1.0", "0.2.0", undefined],
        service,
      );
    }
    assert.deepEqual(by.base.why, ["revision changed"]);
    assert.deepEqual(by.backend.why, ["revision changed", "dependency base 0.1.0 -> 0.2.0"]);
    assert.deepEqual(by.frontend.why, ["dependency changed", "dependency base 0.1.0 -> 0.2.0"]);
    const commits = (service: string) =>
      by[service].versionRepository?.commits.map((c) => [c.commit, c.subject]);
    assert.deepEqual(commits("base"), [[baseCommit, "change app/services/base/Dockerfile"]]);
    assert.deepEqual(commits("backend"), [
      [backendCommit, "change app/services/backend/httpd.conf"],
    ]);
    assert.deepEqual(commits("frontend"), [], "frontend rebuilds for its base alone");
    assert.deepEqual(
      by.worker.sources.map((s) => [s.name, s.commits.map((c) => [c.commit, c.subject])]),
      [["worker", [[workerCommit, "worker: new message"]]]],
    );
    assert.equal(by.worker.versionRepository, undefined, "worker's files live in its source");
    assert.match(notes.plan ?? "", /base +build +revision changed +0\.1\.0 +0\.2\.0/);
  });

  it("GIVEN every site of stacks/ WHEN the workflow's scripts run THEN the matrix lists them, each real preview passes, and the comment body holds the marker and per site the plan and the release notes", async function () {
    const sites = script("scripts/ci/sites.ts", []);
    assert.equal(sites.status, 0, sites.stderr);
    const all = JSON.parse(sites.stdout) as string[];
    assert.deepEqual(all, ["dev-developers", "dev-testers", "prod-lts", "prod-users"]);
    assert.deepEqual(JSON.parse(script("scripts/ci/sites.ts", ["--building"]).stdout), [
      "dev-developers",
    ]);
    assert.deepEqual(JSON.parse(script("scripts/ci/sites.ts", ["--after", "users"]).stdout), [
      "prod-lts",
    ]);

    const results = await previews(all);
    for (const site of all) {
      assert.equal(results[site].status, 0, `${site}: ${results[site].error}`);
      assert.equal(results[site].ok, true);
    }
    assert.deepEqual(results["dev-developers"].release, { current: "0.1.0", next: "0.2.0" });
    assert.deepEqual(results["prod-users"].release, { current: "0.1.0", next: "0.1.0" });

    const files = all.map((s) => path.join(out, `preview-${s}.json`));
    const body = script("scripts/ci/comment.ts", ["body", ...files, "--commit", "abc1234"]);
    assert.equal(body.status, 0, body.stderr);
    // GITOPS_RINGS_KEEP_COMMENT=<file> keeps the rendered comment (the README's example).
    if (process.env.GITOPS_RINGS_KEEP_COMMENT) {
      fs.writeFileSync(process.env.GITOPS_RINGS_KEEP_COMMENT, body.stdout);
    }
    assert.ok(body.stdout.startsWith(COMMENT_MARKER));
    assert.match(body.stdout, /✅ 4 site previews passed\./);
    assert.match(
      body.stdout,
      /\| dev-developers \| developers \| ✅ passed \| 0\.1\.0 → 0\.2\.0 \|/,
    );
    assert.match(body.stdout, /Release plan for ring developers/);
    assert.match(
      body.stdout,
      /\| base \| 0\.1\.0 `sha256:[0-9a-f]{12}` \| 0\.2\.0 `\(not built yet\)` \| revision changed \|/,
    );
    assert.match(body.stdout, /`[0-9a-f]{7,}` change app\/services\/backend\/httpd\.conf \(Test\)/);
    assert.match(body.stdout, /worker: new message \(Test\)/);
  });

  it("GIVEN a site with bad config and one with an unreachable registry WHEN previewed THEN both previews fail the check and the comment names the file and key, and the registry", async function () {
    const bad = parse(repo.read("stacks/Pulumi.dev-testers.yaml"));
    bad.config["gitops-rings:pins"] = { backend: { version: "1.x" } };
    repo.write("stacks/Pulumi.dev-testers.yaml", stringify(bad));
    const away = parse(repo.read("stacks/Pulumi.prod-lts.yaml"));
    away.config["gitops-rings:registry"] = "127.0.0.1:9";
    repo.write("stacks/Pulumi.prod-lts.yaml", stringify(away));

    const results = await previews(["dev-testers", "prod-lts"]);
    assert.equal(results["dev-testers"].status, 1);
    assert.equal(results["dev-testers"].ok, false);
    assert.match(
      results["dev-testers"].error ?? "",
      /stacks\/Pulumi\.dev-testers\.yaml: gitops-rings:pins\.backend\.version: "1\.x" is not a version/,
    );
    assert.equal(results["prod-lts"].status, 1);
    assert.match(results["prod-lts"].error ?? "", /127\.0\.0\.1:9/);

    const files = ["dev-developers", "dev-testers", "prod-lts"].map((s) =>
      path.join(out, `preview-${s}.json`),
    );
    const body = script("scripts/ci/comment.ts", ["body", ...files]);
    if (process.env.GITOPS_RINGS_KEEP_COMMENT) {
      fs.writeFileSync(`${process.env.GITOPS_RINGS_KEEP_COMMENT}.failed.md`, body.stdout);
    }
    assert.match(body.stdout, /❌ 2 of 3 site previews failed\./);
    assert.match(body.stdout, /\| dev-testers \| testers \| ❌ failed \| – \|/);
    assert.match(
      body.stdout,
      /### ❌ dev-testers: preview failed\n\n```text\nstacks\/Pulumi\.dev-testers\.yaml: gitops-rings:pins\.backend\.version: "1\.x" is not a version/,
    );
    assert.match(body.stdout, /### ❌ prod-lts: preview failed[\s\S]*127\.0\.0\.1:9/);
  });
});
