/**
 * lib/git.ts against real repositories made with `git init`, reached by path and by file://.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  cacheRoot,
  checkout,
  ensureMirror,
  mirrorDir,
  normalizeUrl,
  resolveBranch,
  walkCommits,
} from "../../lib/git";
import { TestRepo } from "./helpers/git";

describe("git: sources as the build and the git revision policy read them", function () {
  this.timeout(60_000);
  let cache: string;
  let saved: string | undefined;
  let repo: TestRepo;
  let c1: string;
  let c2: string;

  before(() => {
    saved = process.env.GITOPS_RINGS_CACHE;
    cache = mkdtempSync(path.join(os.tmpdir(), "gitops-rings-cache-"));
    process.env.GITOPS_RINGS_CACHE = cache;
    repo = TestRepo.create();
    c1 = repo.commit("first", { "src/app.txt": "one\n" });
    c2 = repo.commit("second", { "src/app.txt": "two\n" });
  });

  after(() => {
    if (saved === undefined) delete process.env.GITOPS_RINGS_CACHE;
    else process.env.GITOPS_RINGS_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
    repo.remove();
  });

  it("GIVEN GITOPS_RINGS_CACHE WHEN the mirror path is asked THEN it is <cache>/git/<sha256(url)>/mirror.git", () => {
    assert.equal(cacheRoot(), cache);
    const key = createHash("sha256").update(repo.fileUrl).digest("hex");
    assert.equal(mirrorDir(repo.fileUrl), path.join(cache, "git", key, "mirror.git"));
  });

  it("GIVEN a relative path WHEN normalized THEN it is absolute, and URLs are unchanged", () => {
    assert.equal(normalizeUrl("some/dir"), path.resolve("some/dir"));
    assert.equal(normalizeUrl("file:///x/y"), "file:///x/y");
    assert.equal(normalizeUrl("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
  });

  it("GIVEN a repository by path and by file:// WHEN main is resolved THEN both give the head commit", async () => {
    assert.equal(await resolveBranch(repo.dir, "main"), c2);
    assert.equal(await resolveBranch(repo.fileUrl, "refs/heads/main"), c2);
  });

  it("GIVEN a branch that does not exist WHEN resolved THEN the error names URL and branch", async () => {
    await assert.rejects(resolveBranch(repo.fileUrl, "nope"), {
      message: `git ${repo.fileUrl}: branch "nope" does not exist (no refs/heads/nope)`,
    });
  });

  it("GIVEN a commit WHEN checked out THEN the worktree has that commit's files and is reused", async () => {
    const wt1 = await checkout(repo.fileUrl, c1);
    assert.equal(wt1, path.join(path.dirname(mirrorDir(repo.fileUrl)), "worktrees", c1));
    assert.equal(readFileSync(path.join(wt1, "src/app.txt"), "utf8"), "one\n");
    const wt2 = await checkout(repo.fileUrl, c2);
    assert.equal(readFileSync(path.join(wt2, "src/app.txt"), "utf8"), "two\n");
    const inode = statSync(wt1).ino;
    assert.equal(await checkout(repo.fileUrl, c1), wt1);
    assert.equal(statSync(wt1).ino, inode);
    assert.ok(existsSync(path.join(mirrorDir(repo.fileUrl), "HEAD")));
  });

  it("GIVEN a commit pushed after the mirror was made WHEN checked out THEN the mirror fetches it", async () => {
    await ensureMirror(repo.fileUrl);
    const c3 = repo.commit("third", { "src/app.txt": "three\n" });
    const wt = await checkout(repo.fileUrl, c3);
    assert.equal(readFileSync(path.join(wt, "src/app.txt"), "utf8"), "three\n");
  });

  it("GIVEN a commit that does not exist WHEN checked out THEN the error names it", async () => {
    const missing = "f".repeat(40);
    await assert.rejects(checkout(repo.fileUrl, missing), (e: Error) => {
      assert.match(e.message, new RegExp(`^git ${repo.fileUrl}: commit ${missing} does not exist`));
      return true;
    });
    await assert.rejects(checkout(repo.fileUrl, "abc1234"), {
      message: `git ${repo.fileUrl}: "abc1234" is not a full 40-hex commit id`,
    });
  });

  it("GIVEN two checkouts of one commit at once WHEN they finish THEN both get the same worktree", async () => {
    const other = TestRepo.create();
    try {
      const c = other.commit("only", { f: "x" });
      const [a, b] = await Promise.all([checkout(other.dir, c), checkout(other.dir, c)]);
      assert.equal(a, b);
      assert.equal(readFileSync(path.join(a, "f"), "utf8"), "x");
    } finally {
      other.remove();
    }
  });

  describe("GIVEN main with a merged feature branch", () => {
    let merged: TestRepo;
    let m1: string;
    let m2: string;
    let f1: string;
    let merge: string;

    before(() => {
      merged = TestRepo.create();
      m1 = merged.commit("m1", { a: "1" });
      merged.git("checkout", "-q", "-b", "feature");
      f1 = merged.commit("f1", { b: "1" });
      merged.git("checkout", "-q", "main");
      m2 = merged.commit("m2", { a: "2" });
      merged.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature");
      merge = merged.head();
    });

    after(() => merged.remove());

    it("WHEN walked THEN the first-parent history comes newest first, without the feature commit", async () => {
      const commits = await walkCommits(merged.fileUrl, "main");
      assert.deepEqual(commits, [merge, m2, m1]);
      assert.ok(!commits.includes(f1));
    });

    it("WHEN walked with depth 2 THEN only the two newest come", async () => {
      assert.deepEqual(await walkCommits(merged.fileUrl, "main", { depth: 2 }), [merge, m2]);
    });

    it("WHEN the feature branch is walked THEN its own history comes", async () => {
      assert.deepEqual(await walkCommits(merged.fileUrl, "feature"), [f1, m1]);
    });

    it("WHEN walked with depth 0 THEN the error names the depth", async () => {
      await assert.rejects(walkCommits(merged.fileUrl, "main", { depth: 0 }), {
        message: `git ${merged.fileUrl}: walk depth 0 must be a positive integer`,
      });
    });
  });
});
