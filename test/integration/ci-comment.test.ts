/**
 * lib/ci.ts upsertComment (scripts/ci/comment.ts post) against a local HTTP server that
 * answers GitHub's issue-comment endpoints: one comment per pull request, found by its hidden
 * marker across pages and updated in place; the token only in the Authorization header.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { COMMENT_MARKER, upsertComment } from "../../lib/ci";

interface Comment {
  id: number;
  body: string;
}

/** A fake of GitHub's REST API for issue comments of `owner/repo` pull request 7. */
function fakeGitHub() {
  const comments: Comment[] = [];
  const requests: string[] = [];
  const auth: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (d: Buffer) => (data += d.toString()));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      auth.push(req.headers.authorization);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method === "GET" && url.pathname === "/repos/owner/repo/issues/7/comments") {
        const page = Number(url.searchParams.get("page"));
        const per = Number(url.searchParams.get("per_page"));
        return send(200, comments.slice((page - 1) * per, page * per));
      }
      if (req.method === "POST" && url.pathname === "/repos/owner/repo/issues/7/comments") {
        const c = { id: 1000 + comments.length, body: JSON.parse(data).body as string };
        comments.push(c);
        return send(201, c);
      }
      const m = /^\/repos\/owner\/repo\/issues\/comments\/(\d+)$/.exec(url.pathname);
      if (req.method === "PATCH" && m) {
        const c = comments.find((x) => x.id === Number(m[1]));
        if (!c) return send(404, { message: "Not Found" });
        c.body = JSON.parse(data).body as string;
        return send(200, c);
      }
      return send(404, { message: "Not Found" });
    });
  });
  return { server, comments, requests, auth };
}

describe("the pull request's comment, created once and updated in place", function () {
  const gh = fakeGitHub();
  let api: string;

  before(async function () {
    await new Promise<void>((r) => gh.server.listen(0, "127.0.0.1", r));
    api = `http://127.0.0.1:${(gh.server.address() as AddressInfo).port}`;
  });

  after(function () {
    gh.server.close();
  });

  it("GIVEN 150 comments by others WHEN posted twice THEN the first post creates one comment and the second finds it on page 2 by its marker and updates it", async function () {
    for (let i = 0; i < 150; i++) gh.comments.push({ id: i, body: `LGTM ${i}` });
    const target = { api, repository: "owner/repo", pullRequest: 7, token: "s3cret" };
    const first = await upsertComment(target, `${COMMENT_MARKER}\nfirst`);
    assert.deepEqual(first, { action: "created", id: 1150 });
    const second = await upsertComment(target, `${COMMENT_MARKER}\nsecond`);
    assert.deepEqual(second, { action: "updated", id: 1150 });
    const mine = gh.comments.filter((c) => c.body.includes(COMMENT_MARKER));
    assert.deepEqual(mine, [{ id: 1150, body: `${COMMENT_MARKER}\nsecond` }]);
    assert.deepEqual(gh.requests.slice(-3), [
      "GET /repos/owner/repo/issues/7/comments?per_page=100&page=1",
      "GET /repos/owner/repo/issues/7/comments?per_page=100&page=2",
      "PATCH /repos/owner/repo/issues/comments/1150",
    ]);
    assert.ok(gh.auth.every((a) => a === "Bearer s3cret"));
  });

  it("GIVEN the script as the workflow runs it THEN it updates the comment and never prints the token", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-comment-"));
    try {
      const body = path.join(dir, "comment.md");
      fs.writeFileSync(body, `${COMMENT_MARKER}\nthird`);
      const root = path.resolve(__dirname, "../..");
      // Asynchronously: the fake API answers from this process.
      const r = await promisify(execFile)(
        path.join(root, "node_modules/.bin/tsx"),
        [path.join(root, "scripts/ci/comment.ts"), "post", "--body", body, "--pr", "7"],
        {
          encoding: "utf8",
          env: {
            ...process.env,
            GITHUB_API_URL: api,
            GITHUB_REPOSITORY: "owner/repo",
            GITHUB_TOKEN: "s3cret",
          },
        },
      );
      assert.equal(r.stdout.trim(), "comment 1150 updated");
      assert.ok(!`${r.stdout}${r.stderr}`.includes("s3cret"));
      assert.equal(gh.comments.find((c) => c.id === 1150)?.body, `${COMMENT_MARKER}\nthird`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("GIVEN the API refuses THEN the error names the request and status", async function () {
    await assert.rejects(
      upsertComment({ api, repository: "owner/other", pullRequest: 7, token: "t" }, "x"),
      /GET http:\/\/127\.0\.0\.1:\d+\/repos\/owner\/other\/issues\/7\/comments\?per_page=100&page=1: 404 Not Found/,
    );
  });
});
