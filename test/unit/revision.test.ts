import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  canonicalJson,
  GitSnapshot,
  computeRevisionInput,
  contentDigest,
  gitBlobId,
  hashFile,
  revisionOf,
  type RevisionInput,
} from "../../lib/revision";

const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;

function tree(files: Record<string, string | Buffer>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-revision-"));
  write(dir, files);
  return dir;
}

function write(dir: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
}

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_CONFIG_NOSYSTEM: "1",
    },
  });
}

const APP = {
  Dockerfile: "FROM base\nCOPY src/ /app/src/\nCOPY run.sh /app/\n",
  "src/index.js": "console.log(1)\n",
  "src/lib/util.js": "module.exports = 2\n",
  "run.sh": "#!/bin/sh\nexec node /app/src/index.js\n",
  "README.md": "not copied\n",
};

async function revisionIn(dir: string, options: Parameters<typeof computeRevisionInput>[2] = {}) {
  const result = await computeRevisionInput(dir, path.join(dir, "Dockerfile"), options);
  return { ...result, revision: revisionOf(result.input, { base: DIGEST_A }) };
}

describe("lib/revision", () => {
  const dirs: string[] = [];
  const track = (d: string) => (dirs.push(d), d);
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  describe("hashing and serialization", () => {
    it("GIVEN any bytes THEN gitBlobId equals git hash-object", () => {
      const dir = track(tree({ "f.bin": Buffer.from([0, 1, 2, 255, 10]), "e.txt": "" }));
      for (const f of ["f.bin", "e.txt"]) {
        const expected = git(dir, "hash-object", f).trim();
        assert.equal(gitBlobId(fs.readFileSync(path.join(dir, f))), expected);
      }
    });

    it("GIVEN a file larger than the read chunk THEN the streamed hash equals git hash-object", async () => {
      const big = Buffer.alloc(3 * (1 << 20) + 17, 7);
      const dir = track(tree({ big: big }));
      assert.equal(
        await hashFile(path.join(dir, "big"), big.length),
        git(dir, "hash-object", "big").trim(),
      );
    });

    it("GIVEN objects with keys in any order THEN canonicalJson sorts them at every level", () => {
      assert.equal(
        canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: "x" } }),
        '{"a":{"c":"x","d":[2,{"y":null,"z":1}]},"b":1}',
      );
    });

    it("GIVEN a fixed input THEN the content digest and revision are the v1 values (stable across releases)", () => {
      const parts: Omit<RevisionInput, "content"> = {
        dockerfile: gitBlobId("FROM scratch\n"),
        files: [
          { path: "b.txt", mode: "executable", blob: gitBlobId("b") },
          { path: "a.txt", mode: "regular", blob: gitBlobId("a") },
        ],
        buildArgs: { B: "2", A: "1" },
        target: "runtime",
        platforms: ["linux/arm64", "linux/amd64"],
      };
      const document =
        "gitops-rings revision v1\n" +
        '{"buildArgs":{"A":"1","B":"2"},"dockerfile":"c35f1b5f5e29f0e2942c58a7e82005733977ebdd",' +
        '"files":[{"blob":"2e65efe2a145dda7ee51d1741299f848e5bf752e","mode":"regular","path":"a.txt"},' +
        '{"blob":"63d8dbd40c23542e740659a7168a0ce3138ea748","mode":"executable","path":"b.txt"}],' +
        '"platforms":["linux/amd64","linux/arm64"],"target":"runtime"}';
      const content = contentDigest(parts);
      assert.equal(content, `sha256:${createHash("sha256").update(document).digest("hex")}`);
      assert.equal(
        content,
        "sha256:2936221b75f658beea3b208c378616badb172614a2771768c6bc90f57247ff30",
      );
      const revisionDocument =
        "gitops-rings revision v1\n" +
        `{"content":"${content}","dependencies":{"base":"${DIGEST_A}"}}`;
      const revision = revisionOf({ content }, { base: DIGEST_A });
      assert.equal(
        revision,
        `v1:sha256:${createHash("sha256").update(revisionDocument).digest("hex")}`,
      );
      assert.equal(
        revision,
        "v1:sha256:ebc10115cdc73b615328eae7518dde430a956804c4cb8797f4382be3dc679102",
      );
    });
  });

  describe("what the revision covers", () => {
    it("GIVEN the same context in two places with other mtimes THEN the revision is the same", async () => {
      const one = track(tree(APP));
      const two = track(tree(APP));
      fs.utimesSync(path.join(two, "run.sh"), new Date(0), new Date(0));
      assert.equal((await revisionIn(one)).revision, (await revisionIn(two)).revision);
    });

    it("GIVEN a change to a file no COPY reads THEN the revision is the same", async () => {
      const dir = track(tree(APP));
      const before = await revisionIn(dir);
      write(dir, { "README.md": "changed\n", "other/new.txt": "new\n" });
      assert.equal((await revisionIn(dir)).revision, before.revision);
      assert.equal(before.stats.files, 3);
    });

    const changes: [string, (dir: string) => void][] = [
      ["a copied file's content", (d) => write(d, { "src/index.js": "console.log(2)\n" })],
      ["a new file in a copied directory", (d) => write(d, { "src/new.js": "x" })],
      [
        "a copied file's name",
        (d) => fs.renameSync(path.join(d, "src/lib/util.js"), path.join(d, "src/lib/utils.js")),
      ],
      ["the executable bit of a copied file", (d) => fs.chmodSync(path.join(d, "run.sh"), 0o755)],
      [
        "permission bits other than the executable bit",
        (d) => fs.chmodSync(path.join(d, "src/index.js"), 0o600),
      ],
      [
        "the group write bit of a copied file",
        (d) => fs.chmodSync(path.join(d, "src/index.js"), 0o664),
      ],
      [
        "the mode of a directory under a copied directory",
        (d) => fs.chmodSync(path.join(d, "src/lib"), 0o700),
      ],
      [
        "a new empty directory under a copied directory",
        (d) => fs.mkdirSync(path.join(d, "src/empty")),
      ],
      [
        "a new empty directory inside an empty directory",
        (d) => fs.mkdirSync(path.join(d, "src/empty/inner"), { recursive: true }),
      ],
      ["the Dockerfile", (d) => write(d, { Dockerfile: `${APP.Dockerfile}ENV X=1\n` })],
    ];
    for (const [what, change] of changes) {
      it(`GIVEN a change to ${what} THEN the revision changes`, async () => {
        const dir = track(tree(APP));
        const before = await revisionIn(dir);
        change(dir);
        assert.notEqual((await revisionIn(dir)).revision, before.revision);
      });
    }

    it("GIVEN other build args, target, platforms or dependency digests THEN the revision changes; platform order does not", async () => {
      const dir = track(tree({ ...APP, Dockerfile: "FROM base AS runtime\nCOPY run.sh /\n" }));
      const base = await revisionIn(dir, {
        buildArgs: { A: "1" },
        platforms: ["linux/amd64", "linux/arm64"],
      });
      const same = await revisionIn(dir, {
        buildArgs: { A: "1" },
        platforms: ["linux/arm64", "linux/amd64"],
      });
      assert.equal(same.revision, base.revision);
      const others = [
        await revisionIn(dir, { buildArgs: { A: "2" }, platforms: ["linux/amd64", "linux/arm64"] }),
        await revisionIn(dir, { buildArgs: { A: "1" }, platforms: ["linux/amd64"] }),
        await revisionIn(dir, {
          buildArgs: { A: "1" },
          platforms: ["linux/amd64", "linux/arm64"],
          target: "runtime",
        }),
      ].map((r) => r.revision);
      others.push(revisionOf(base.input, { base: DIGEST_B }));
      for (const other of others) assert.notEqual(other, base.revision);
      assert.equal(new Set(others).size, others.length);
    });

    it("GIVEN a copied directory with an empty directory THEN its content digest covers it; a 0755 directory with files is implied", async () => {
      const dir = track(tree({ Dockerfile: "FROM scratch\nCOPY src/ /app/\n", "src/a/f": "x" }));
      fs.mkdirSync(path.join(dir, "src/empty"));
      fs.mkdirSync(path.join(dir, "src/private"), { mode: 0o700 });
      fs.chmodSync(path.join(dir, "src/private"), 0o700);
      write(dir, { "src/private/key": "k" });
      fs.chmodSync(path.join(dir, "src/private/key"), 0o600);
      const { input } = await computeRevisionInput(dir, path.join(dir, "Dockerfile"), {
        git: false,
      });
      assert.deepEqual(input.files, [
        { path: "src/a/f", mode: "regular", blob: gitBlobId("x") },
        { path: "src/empty", mode: "directory" },
        { path: "src/private", mode: "40700" },
        { path: "src/private/key", mode: "100600", blob: gitBlobId("k") },
      ]);
    });

    it("GIVEN 0644 and 0755 files in 0755 directories THEN only the files are listed, as before directories and modes counted (format v1 kept)", async () => {
      const dir = track(tree(APP));
      fs.chmodSync(path.join(dir, "run.sh"), 0o755);
      const { input } = await computeRevisionInput(dir, path.join(dir, "Dockerfile"), {
        git: false,
      });
      assert.deepEqual(
        input.files.map((f) => [f.path, f.mode]),
        [
          ["run.sh", "executable"],
          ["src/index.js", "regular"],
          ["src/lib/util.js", "regular"],
        ],
      );
    });

    it("GIVEN a symlink a wildcard matches THEN a change to what it points to changes the revision", async () => {
      const dir = track(
        tree({ Dockerfile: "FROM scratch\nCOPY conf/*.conf /etc/\n", "shared/app.conf": "v1" }),
      );
      fs.mkdirSync(path.join(dir, "conf"));
      fs.symlinkSync("../shared/app.conf", path.join(dir, "conf/app.conf"));
      const before = await revisionIn(dir);
      write(dir, { "shared/app.conf": "v2" });
      assert.notEqual((await revisionIn(dir)).revision, before.revision);
    });

    it("GIVEN COPY --exclude THEN a change to an excluded file changes nothing, to a copied one changes the revision", async () => {
      const dir = track(
        tree({
          Dockerfile: "FROM scratch\nCOPY --exclude=*.md docs/ /d/\n",
          "docs/a.md": "1",
          "docs/a.txt": "1",
        }),
      );
      const before = await revisionIn(dir);
      write(dir, { "docs/a.md": "2", "docs/b.md": "new" });
      assert.equal((await revisionIn(dir)).revision, before.revision);
      write(dir, { "docs/a.txt": "2" });
      assert.notEqual((await revisionIn(dir)).revision, before.revision);
    });

    it("GIVEN a FROM service whose Dockerfile has ONBUILD COPY THEN the child's revision covers what the trigger reads", async () => {
      const services = { registries: ["127.0.0.1:5001"], project: "p", images: { base: "base" } };
      const dir = track(tree({ Dockerfile: "FROM base\n", "app/main.js": "1", "other.txt": "x" }));
      const options = { services, onbuild: { base: ["COPY app/ /srv/"] } };
      const before = await revisionIn(dir, options);
      write(dir, { "other.txt": "not read" });
      assert.equal((await revisionIn(dir, options)).revision, before.revision);
      write(dir, { "app/main.js": "2" });
      assert.notEqual((await revisionIn(dir, options)).revision, before.revision);
    });

    it("GIVEN a symlink that is copied THEN its target text is hashed as git does", async () => {
      const dir = track(
        tree({ Dockerfile: "FROM scratch\nCOPY conf/ /conf/\n", "conf/real.conf": "x" }),
      );
      fs.symlinkSync("real.conf", path.join(dir, "conf/link.conf"));
      const { input } = await computeRevisionInput(dir, path.join(dir, "Dockerfile"), {
        git: false,
      });
      assert.deepEqual(input.files, [
        { path: "conf/link.conf", mode: "symlink", blob: gitBlobId("real.conf") },
        { path: "conf/real.conf", mode: "regular", blob: gitBlobId("x") },
      ]);
    });
  });

  describe("the git fast path", () => {
    function committed(files: Record<string, string>, sub = "svc"): { repo: string; dir: string } {
      const repo = track(fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-git-")));
      git(repo, "init", "-q");
      write(path.join(repo, sub), files);
      fs.chmodSync(path.join(repo, sub, "run.sh"), 0o755);
      fs.symlinkSync("index.js", path.join(repo, sub, "src/alias.js"));
      git(repo, "add", "-A");
      git(repo, "commit", "-q", "-m", "init");
      return { repo, dir: path.join(repo, sub) };
    }

    it("GIVEN a clean worktree THEN git blob ids give the same revision as reading every byte", async () => {
      const { dir } = committed(APP);
      const fast = await revisionIn(dir);
      const slow = await revisionIn(dir, { git: false });
      assert.deepEqual(fast.stats, { files: 4, fromGit: 4, hashed: 0, bytesHashed: 0 });
      assert.equal(slow.stats.fromGit, 0);
      assert.equal(slow.stats.hashed, 4);
      assert.deepEqual(fast.input, slow.input);
      assert.equal(fast.revision, slow.revision);
    });

    it("GIVEN two contexts of one repository and one snapshot THEN git is read once for both, and each revision is the one read alone", async () => {
      const { repo, dir } = committed(APP);
      write(path.join(repo, "other"), { ...APP, "src/index.js": "other\n" });
      fs.chmodSync(path.join(repo, "other", "run.sh"), 0o755);
      fs.symlinkSync("index.js", path.join(repo, "other", "src/alias.js"));
      git(repo, "add", "-A");
      git(repo, "commit", "-q", "-m", "other");
      write(dir, { "src/index.js": "modified after commit\n" });
      const snapshot = new GitSnapshot();
      const other = path.join(repo, "other");
      const [a, b] = await Promise.all([
        revisionIn(dir, { gitSnapshot: snapshot }),
        revisionIn(other, { gitSnapshot: snapshot }),
      ]);
      assert.equal(
        await snapshot.of(dir),
        await snapshot.of(other),
        "one state for the repository",
      );
      assert.equal(a.revision, (await revisionIn(dir)).revision);
      assert.equal(b.revision, (await revisionIn(other)).revision);
      assert.equal(a.revision, (await revisionIn(dir, { git: false })).revision);
      assert.deepEqual([a.stats.fromGit, a.stats.hashed], [3, 1], "the modified file is read");
      assert.deepEqual([b.stats.fromGit, b.stats.hashed], [4, 0]);
    });

    it("GIVEN a modified, an untracked and an ignored copied file THEN those are read and the result still matches", async () => {
      const { repo, dir } = committed(APP);
      write(repo, { ".gitignore": "*.gen.js\n" });
      write(dir, {
        "src/index.js": "changed\n",
        "src/untracked.js": "u\n",
        "src/out.gen.js": "g\n",
      });
      const fast = await revisionIn(dir);
      const slow = await revisionIn(dir, { git: false });
      assert.deepEqual(fast.stats, {
        files: 6,
        fromGit: 3,
        hashed: 3,
        bytesHashed: "changed\n".length + 2 + 2,
      });
      assert.equal(fast.revision, slow.revision);
    });

    it("GIVEN a file with a text attribute THEN it is read rather than trusted to git", async () => {
      const { repo, dir } = committed(APP);
      write(repo, { ".gitattributes": "*.sh text eol=crlf\n" });
      git(repo, "add", ".gitattributes");
      git(repo, "commit", "-q", "-m", "attrs");
      const fast = await revisionIn(dir);
      assert.equal(fast.stats.hashed, 1);
      assert.equal(fast.revision, (await revisionIn(dir, { git: false })).revision);
    });

    it("GIVEN a file marked assume-unchanged and then edited THEN it is read, not taken from the index", async () => {
      const { dir } = committed(APP);
      git(dir, "update-index", "--assume-unchanged", "src/index.js");
      write(dir, { "src/index.js": "edited behind git's back\n" });
      const fast = await revisionIn(dir);
      assert.equal(fast.stats.hashed, 1);
      assert.equal(fast.revision, (await revisionIn(dir, { git: false })).revision);
    });

    it("GIVEN a changed executable bit THEN the fast path sees it as the slow path does", async () => {
      const { dir } = committed(APP);
      fs.chmodSync(path.join(dir, "run.sh"), 0o644);
      const fast = await revisionIn(dir);
      assert.equal(fast.stats.hashed, 1);
      assert.equal(fast.revision, (await revisionIn(dir, { git: false })).revision);
    });

    it("GIVEN permission bits git does not record THEN the file is read and the result matches the slow path", async () => {
      const { dir } = committed(APP);
      const before = await revisionIn(dir);
      fs.chmodSync(path.join(dir, "src/index.js"), 0o664);
      const fast = await revisionIn(dir);
      assert.equal(fast.stats.hashed, 1);
      assert.equal(fast.stats.fromGit, 3);
      assert.equal(fast.revision, (await revisionIn(dir, { git: false })).revision);
      assert.notEqual(fast.revision, before.revision);
    });

    it("GIVEN core.fileMode false THEN modes come from the worktree and blob ids still from git", async () => {
      const { dir } = committed(APP);
      git(dir, "config", "core.fileMode", "false");
      fs.chmodSync(path.join(dir, "run.sh"), 0o644);
      const fast = await revisionIn(dir);
      assert.equal(fast.stats.fromGit, 4);
      assert.equal(fast.revision, (await revisionIn(dir, { git: false })).revision);
    });

    it("GIVEN a context outside any git worktree THEN every file is read", async () => {
      const dir = track(tree(APP));
      const { stats } = await revisionIn(dir);
      assert.equal(stats.fromGit, 0);
      assert.equal(stats.hashed, 3);
    });
  });
});
