/**
 * lib/notes.ts without I/O: how two sides compare, and how notes print. The commits come from
 * a lister given in the options (test/integration/notes.test.ts reads real repositories).
 */
import assert from "node:assert/strict";
import {
  compareSides,
  escapeMarkdown,
  formatNotesMarkdown,
  formatNotesTable,
  releaseNotes,
  releaseSide,
  type Side,
} from "../../lib/notes";
import type { ReleaseRecord } from "../../lib/types";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const R = (c: string) => `v1:sha256:${c.repeat(64)}`;
const C = (c: string) => c.repeat(40);
const URL = "https://git.example.com/worker.git";

const release = (
  version: string,
  worker: { version: string; digest: string; revision: string; commit: string; base: string },
): ReleaseRecord => ({
  version,
  digest: D("f"),
  services: {
    base: {
      service: "base",
      repository: "r/base",
      version: worker.base,
      digest: D(worker.base === "0.1.0" ? "a" : "b"),
      revision: R(worker.base === "0.1.0" ? "a" : "b"),
      dependencies: {},
      sources: [],
    },
    worker: {
      service: "worker",
      repository: "r/worker",
      version: worker.version,
      digest: worker.digest,
      revision: worker.revision,
      dependencies: { base: worker.base },
      sources: [{ name: "worker", url: URL, commit: worker.commit }],
    },
  },
});

describe("release notes (lib/notes.ts)", function () {
  const old = releaseSide(
    "testers",
    release("0.1.0", {
      version: "0.1.0",
      digest: D("1"),
      revision: R("1"),
      commit: C("1"),
      base: "0.1.0",
    }),
  );
  const now = releaseSide(
    "0.2.0",
    release("0.2.0", {
      version: "0.1.1",
      digest: D("2"),
      revision: R("2"),
      commit: C("2"),
      base: "0.1.1",
    }),
  );

  it("GIVEN two releases THEN each service says why it changed: revision, dependency and source, most telling first", function () {
    const changes = compareSides(old, now);
    assert.deepEqual(
      changes.map((c) => [c.service, c.change, c.why]),
      [
        ["base", "changed", ["revision changed"]],
        [
          "worker",
          "changed",
          [
            "revision changed",
            "dependency base 0.1.0 -> 0.1.1",
            "source worker 1111111 -> 2222222",
          ],
        ],
      ],
    );
  });

  it("GIVEN a ring without a release THEN every service is new, and a side without a service lists it as removed", function () {
    const empty = releaseSide("users", undefined);
    assert.deepEqual(
      compareSides(empty, now).map((c) => [c.service, c.change, c.why]),
      [
        ["base", "added", ["new"]],
        ["worker", "added", ["new"]],
      ],
    );
    assert.deepEqual(
      compareSides(now, empty).map((c) => [c.service, c.change]),
      [
        ["base", "removed"],
        ["worker", "removed"],
      ],
    );
  });

  it("GIVEN a plan that builds a service because its dependency rebuilds THEN the plan's reason comes first, and the digest is not built yet", function () {
    const plan: Side = {
      name: "plan:dev-developers",
      release: "0.3.0",
      services: {
        worker: {
          version: "0.2.0",
          dependencies: { base: "0.1.1" },
          sources: [{ name: "worker", url: URL, commit: C("2") }],
          reason: "build: dependency changed",
        },
      },
    };
    const [, worker] = compareSides(now, plan);
    assert.deepEqual(worker.why, ["dependency changed"]);
    assert.deepEqual(worker.to, { version: "0.2.0" });
    assert.match(
      formatNotesTable({ from: now, to: plan, services: [worker] }),
      /0\.2\.0 \(not built yet\)/,
    );
  });

  it("GIVEN a deploy plan, whose images carry no dependencies, naming the ring's images THEN nothing changed", function () {
    const deploy: Side = {
      name: "plan:prod-users",
      release: "0.2.0",
      services: Object.fromEntries(
        Object.entries(now.services).map(([name, s]) => [
          name,
          { version: s.version, digest: s.digest, sources: s.sources, reason: "ring users" },
        ]),
      ),
    };
    assert.deepEqual(
      compareSides(now, deploy).map((c) => [c.service, c.change, c.why]),
      [
        ["base", "unchanged", ["unchanged"]],
        ["worker", "unchanged", ["unchanged"]],
      ],
    );
  });

  it("GIVEN a lister THEN only changed sources are listed, its notes are kept, and a lister that throws gives a note instead of failing", async function () {
    const calls: string[] = [];
    const notes = await releaseNotes(old, now, {
      commits: async (url, from, to) => {
        calls.push(`${url} ${from.slice(0, 1)}..${to.slice(0, 1)}`);
        return {
          commits: [{ commit: C("2"), short: "2222222", subject: "fix | pipe <b>", author: "Ann" }],
          omitted: 3,
          note: "history rewritten: test",
        };
      },
    });
    assert.deepEqual(calls, [`${URL} 1..2`]);
    const table = formatNotesTable(notes);
    assert.match(
      table,
      /source worker \(https:\/\/git\.example\.com\/worker\.git\) 1111111\.\.2222222/,
    );
    assert.match(table, /! history rewritten: test/);
    assert.match(table, /… 3 older commits not listed\n +2222222 {2}fix \| pipe <b> {2}\(Ann\)/);
    const md = formatNotesMarkdown(notes);
    assert.match(md, /- `2222222` fix \\\| pipe \\<b> \(Ann\)/);
    assert.match(md, /⚠️ history rewritten: test/);

    const failing = await releaseNotes(old, now, {
      commits: async () => {
        throw new Error("git https://git.example.com/worker.git: fetch: unreachable");
      },
    });
    const src = failing.services[1].sources[0];
    assert.equal(
      src.note,
      "commits not listed: git https://git.example.com/worker.git: fetch: unreachable",
    );
  });

  it("GIVEN text with Markdown and HTML THEN escapeMarkdown keeps it literal on one line", function () {
    assert.equal(
      escapeMarkdown("a|b *c* <img> `x`\n[y](z)"),
      "a\\|b \\*c\\* \\<img> \\`x\\` \\[y\\](z)",
    );
  });
});
