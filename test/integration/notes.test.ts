/**
 * Release notes (lib/notes.ts, `rings diff`) against a real Distribution 2.8 and real git
 * source repositories: releases pushed as the build pushes them, commits read through the
 * project's git cache (a temporary one per suite).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatNotesMarkdown, formatNotesTable, readSide, releaseNotes } from "../../lib/notes";
import type { ReleaseNotes } from "../../lib/notes";
import { RegistryClient } from "../../lib/registry";
import { StateStore } from "../../lib/state-store";
import type { ImageRecord } from "../../lib/types";
import { TestRepo } from "./helpers/git";
import { pushServiceImage, recordOf } from "./helpers/images";
import { useRegistry } from "./helpers/registry";

const ROOT = path.resolve(__dirname, "../..");

describe("release notes between releases (rings diff)", function () {
  this.timeout(60_000);
  const registry = useRegistry();
  const client = new RegistryClient();
  let store: StateStore;
  let cache: string;
  let savedCache: string | undefined;
  let worker: TestRepo;
  let proto: TestRepo;
  let dir: string;
  const c: Record<string, string> = {};
  let base: ImageRecord;

  /** Pushes worker at `version` from `workerCommit` and a release naming it and base. */
  async function release(version: string, workerVersion: string, workerCommit: string) {
    const w = await pushServiceImage(client, registry().host, {
      service: "worker",
      version: workerVersion,
      revision: `v1:sha256:${workerCommit.slice(0, 40).padEnd(64, "0")}`,
      dependencies: { base: base.version },
      sources: [
        { name: "worker", url: worker.fileUrl, commit: workerCommit },
        { name: "proto", url: proto.fileUrl, commit: c.p1 },
      ],
    });
    return store.pushRelease({ version, services: { base, worker: recordOf(w) } });
  }

  /** `rings diff` as a user runs it, in a version repository naming this registry. */
  function rings(...args: string[]): string {
    return execFileSync(
      path.join(ROOT, "node_modules/.bin/tsx"),
      [path.join(ROOT, "scripts/rings.ts"), ...args],
      {
        cwd: dir,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, GITOPS_RINGS_CACHE: cache },
      },
    );
  }

  before(async function () {
    savedCache = process.env.GITOPS_RINGS_CACHE;
    cache = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-notes-cache-"));
    process.env.GITOPS_RINGS_CACHE = cache;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-notes-repo-"));
    store = new StateStore({
      registry: registry().host,
      project: "example",
      rings: ["developers", "testers"],
      client,
    });
    worker = TestRepo.create("gitops-rings-worker-");
    proto = TestRepo.create("gitops-rings-proto-");
    fs.writeFileSync(
      path.join(dir, "gitops-rings.yaml"),
      `project: example\nregistry: ${registry().host}\nrings: [developers, testers]\n` +
        `environments: { dev: { overlay: deploy, namespace: dev } }\n` +
        `services:\n  base: { context: base }\n` +
        `  worker:\n    source: worker\n    context: .\n    sources:\n` +
        `      - { name: worker, url: "${worker.fileUrl}", branch: main }\n`,
    );
    c.w1 = worker.commit("worker: first", { "message.txt": "v1\n" });
    c.p1 = proto.commit("proto: first", { "api.proto": "v1\n" });
    base = recordOf(
      await pushServiceImage(client, registry().host, { service: "base", version: "0.1.0" }),
    );
    await release("0.1.0", "0.1.0", c.w1);
    c.w2 = worker.commit("worker: say hello | loudly", { "message.txt": "hello\n" });
    c.w3 = worker.commit("worker: <b>bold</b> claims", { "message.txt": "HELLO\n" });
    await release("0.2.0", "0.1.1", c.w3);
  });

  after(function () {
    if (savedCache === undefined) delete process.env.GITOPS_RINGS_CACHE;
    else process.env.GITOPS_RINGS_CACHE = savedCache;
    for (const d of [cache, dir]) fs.rmSync(d, { recursive: true, force: true });
    worker?.remove();
    proto?.remove();
  });

  it("GIVEN two releases WHEN diffed THEN each source lists exactly the commits made between them, in order, and unchanged services and sources list none", async function () {
    const source = { store, root: dir };
    const notes = await releaseNotes(
      await readSide("0.1.0", source),
      await readSide("0.2.0", source),
    );
    assert.deepEqual(notes.from, { name: "0.1.0", release: "0.1.0" });
    assert.deepEqual(notes.to, { name: "0.2.0", release: "0.2.0" });
    const [b, w] = notes.services;
    assert.equal(b.service, "base");
    assert.equal(b.change, "unchanged");
    assert.deepEqual(b.why, ["unchanged"]);
    assert.equal(w.service, "worker");
    assert.equal(w.change, "changed");
    assert.deepEqual(w.from?.version, "0.1.0");
    assert.deepEqual(w.to?.version, "0.1.1");
    assert.deepEqual(w.why, [
      "revision changed",
      `source worker ${c.w1.slice(0, 7)} -> ${c.w3.slice(0, 7)}`,
    ]);
    const byName = Object.fromEntries(w.sources.map((s) => [s.name, s]));
    assert.deepEqual(
      byName.worker.commits.map((x) => [x.commit, x.subject, x.author]),
      [
        [c.w2, "worker: say hello | loudly", "Test"],
        [c.w3, "worker: <b>bold</b> claims", "Test"],
      ],
    );
    assert.equal(byName.worker.note, undefined);
    assert.equal(
      byName.worker.commits[0].short,
      c.w2.slice(0, byName.worker.commits[0].short.length),
    );
    assert.deepEqual(byName.proto.commits, []);
    assert.equal(byName.proto.from, byName.proto.to);

    const table = formatNotesTable(notes);
    assert.match(
      table,
      /Release notes: 0\.1\.0 \(release 0\.1\.0\) -> 0\.2\.0 \(release 0\.2\.0\)/,
    );
    assert.ok(
      table.indexOf("worker: say hello") < table.indexOf("worker: <b>bold"),
      "oldest first",
    );
    const md = formatNotesMarkdown(notes);
    assert.match(
      md,
      /\| worker \| 0\.1\.0 `sha256:[0-9a-f]{12}` \| 0\.1\.1 `sha256:[0-9a-f]{12}` \|/,
    );
    assert.match(md, /worker: say hello \\\| loudly \(Test\)/, "a | in a subject is escaped");
    assert.match(md, /\\<b>bold\\<\/b> claims/, "HTML in a subject is escaped");
  });

  it("GIVEN a ring and a release WHEN `rings diff` runs THEN --json, --markdown and the table say the same, and a ring without a release diffs as empty", async function () {
    await store.moveRing("developers", "0.1.0");
    const json = JSON.parse(rings("diff", "developers", "0.2.0", "--json")) as ReleaseNotes;
    assert.deepEqual(json.from, { name: "developers", release: "0.1.0" });
    const w = json.services.find((s) => s.service === "worker");
    assert.deepEqual(
      w?.sources.find((s) => s.name === "worker")?.commits.map((x) => x.commit),
      [c.w2, c.w3],
    );
    const md = rings("diff", "developers", "0.2.0", "--markdown");
    assert.match(md, /^### Release notes: developers \(release 0\.1\.0\) → 0\.2\.0/);
    const table = rings("diff", "testers", "developers");
    assert.match(table, /testers \(no release\) -> developers \(release 0\.1\.0\)/);
    assert.match(table, /worker +- +0\.1\.0 sha256:[0-9a-f]{12} +new/);
    assert.throws(
      () => rings("diff", "nope", "0.2.0"),
      /"nope" is not a ring \(ante, developers, testers, post\)/,
    );
  });

  it("GIVEN `rings promote` THEN it prints the notes of the ring it moved", async function () {
    await store.moveRing("developers", "0.2.0");
    // No site of developers verified 0.2.0 (these releases were pushed by hand): --force.
    const out = rings("promote", "developers", "--force", "--reason", "test");
    assert.match(out, /release 0\.2\.0 promoted unverified \(--force by /);
    assert.match(out, /ring testers -> release 0\.2\.0/);
    assert.match(
      out,
      /Release notes: testers before \(no release\) -> testers now \(release 0\.2\.0\)/,
    );
    const json = JSON.parse(
      rings("promote", "developers", "--json", "--force", "--reason", "test"),
    ) as ReleaseNotes[];
    assert.deepEqual(json, [], "nothing moved the second time");
  });

  it("GIVEN a force-pushed source WHEN diffed THEN the source shows a history-rewritten note and the commits of the new history, instead of failing; with a fresh cache the old commit is gone and the note says so", async function () {
    worker.git("reset", "-q", "--hard", c.w1);
    c.w4 = worker.commit("worker: rewritten", { "message.txt": "rewritten\n" });
    await release("0.3.0", "0.1.2", c.w4);
    const source = { store, root: dir };
    const diff = async () =>
      releaseNotes(await readSide("0.2.0", source), await readSide("0.3.0", source));

    // The cache still holds w3 (fetched by the first test): not an ancestor of w4.
    const stale = (await diff()).services.find((s) => s.service === "worker");
    const src = stale?.sources.find((s) => s.name === "worker");
    assert.match(
      src?.note ?? "",
      new RegExp(
        `history rewritten: ${c.w3.slice(0, 7)} is not an ancestor of ${c.w4.slice(0, 7)} \\(2 commits`,
      ),
    );
    assert.deepEqual(
      src?.commits.map((x) => x.commit),
      [c.w4],
    );

    // A fresh cache clones the rewritten repository: w3 is not in it at all.
    process.env.GITOPS_RINGS_CACHE = fs.mkdtempSync(
      path.join(os.tmpdir(), "gitops-rings-notes-fresh-"),
    );
    try {
      const fresh = (await diff()).services.find((s) => s.service === "worker");
      const note = fresh?.sources.find((s) => s.name === "worker")?.note ?? "";
      assert.match(
        note,
        new RegExp(`history rewritten: commit ${c.w3.slice(0, 7)} is not in file://`),
      );
      const text = formatNotesTable(await diff());
      assert.match(text, /! history rewritten/);
    } finally {
      fs.rmSync(process.env.GITOPS_RINGS_CACHE, { recursive: true, force: true });
      process.env.GITOPS_RINGS_CACHE = cache;
    }
  });
});
