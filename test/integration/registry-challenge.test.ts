/**
 * The parts of lib/registry.ts that CNCF Distribution 2.8 cannot be made to exercise, against
 * a tiny HTTP server on 127.0.0.1 written here:
 * - the bearer-token flow (Distribution's `token` auth needs a separate token service with
 *   signing certificates; the server below plays registry and token service);
 * - retries on 429 (with Retry-After) and 503: Distribution does not throttle and has no way
 *   to fail on demand;
 * - `Link` pagination of tags/list: Distribution 2.8 ignores `n` and `last` there (the catalog
 *   pagination is tested against the real registry in registry.test.ts).
 * Everything else is tested against the real registry.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { RegistryClient, RegistryError } from "../../lib/registry";

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly authorization?: string;
}

describe("registry client: bearer tokens, retries and tag pagination (local stand-in server)", function () {
  this.timeout(30_000);
  let server: http.Server;
  let host: string;
  const seen: Seen[] = [];
  const tokenRequests: string[] = [];
  const failures = new Map<string, number>();
  const tags = ["a", "b", "c", "d", "e"];

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", `http://${host}`);
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        authorization: req.headers.authorization,
      });
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "Content-Type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === "/token") {
        const scope = url.searchParams.get("scope") ?? "";
        tokenRequests.push(
          `${url.searchParams.get("service")} ${scope} ${req.headers.authorization ?? "-"}`,
        );
        if (req.headers.authorization !== `Basic ${Buffer.from("robot:pw").toString("base64")}`) {
          return json(401, { errors: [{ code: "UNAUTHORIZED", message: "bad robot" }] });
        }
        return json(200, { token: `tok:${scope}`, expires_in: 300 });
      }
      const m = /^\/v2\/([a-z/]+)\/tags\/list$/.exec(url.pathname);
      const repo = m?.[1] ?? "";
      const scope = `repository:${repo}:pull`;
      if (req.headers.authorization !== `Bearer tok:${scope}`) {
        return json(
          401,
          { errors: [{ code: "UNAUTHORIZED", message: "token required" }] },
          {
            "WWW-Authenticate": `Bearer realm="http://${host}/token",service="stand-in",scope="${scope}"`,
          },
        );
      }
      const fail = failures.get(repo) ?? 0;
      if (repo.startsWith("throttled") && fail > 0) {
        failures.set(repo, fail - 1);
        return json(
          429,
          { errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] },
          { "Retry-After": "1" },
        );
      }
      if (repo.startsWith("flaky") && fail > 0) {
        failures.set(repo, fail - 1);
        return json(503, { errors: [{ code: "UNAVAILABLE", message: "try later" }] });
      }
      const n = Number(url.searchParams.get("n") ?? tags.length);
      const last = url.searchParams.get("last");
      const start = last === null ? 0 : tags.indexOf(last) + 1;
      const page = tags.slice(start, start + n);
      const headers: Record<string, string> =
        start + n < tags.length
          ? { Link: `</v2/${repo}/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"` }
          : {};
      return json(200, { name: repo, tags: page }, headers);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  beforeEach(() => {
    seen.length = 0;
    tokenRequests.length = 0;
  });

  const client = (options: ConstructorParameters<typeof RegistryClient>[0] = {}) =>
    new RegistryClient({
      dockerConfig: false,
      retryBaseMs: 10,
      credentials: { [host]: { username: "robot", password: "pw" } },
      ...options,
    });

  it("GIVEN a bearer challenge WHEN tags are listed twice THEN one token is fetched, with basic credentials, and reused", async () => {
    const c = client();
    assert.deepEqual(await c.listTags(`${host}/team/app`), tags);
    assert.deepEqual(await c.listTags(`${host}/team/app`), tags);
    assert.deepEqual(tokenRequests, [
      `stand-in repository:team/app:pull Basic ${Buffer.from("robot:pw").toString("base64")}`,
    ]);
    assert.deepEqual(
      seen.filter((s) => s.url.startsWith("/v2/")).map((s) => s.authorization ?? "-"),
      ["-", "Bearer tok:repository:team/app:pull", "Bearer tok:repository:team/app:pull"],
    );
  });

  it("GIVEN a known challenge WHEN another repository is read THEN its scope gets its own token without a 401 first", async () => {
    const c = client();
    await c.listTags(`${host}/team/app`);
    seen.length = 0;
    await c.listTags(`${host}/team/other`);
    assert.equal(tokenRequests.length, 2);
    assert.equal(tokenRequests[1].split(" ")[1], "repository:team/other:pull");
    assert.deepEqual(
      seen.map((s) => `${s.url.split("?")[0]} ${s.authorization?.split(" ")[0] ?? "-"}`),
      ["/token Basic", "/v2/team/other/tags/list Bearer"],
    );
  });

  it("GIVEN credentials the token service refuses WHEN tags are listed THEN the error says 401 at the token step", async () => {
    const c = client({ credentials: { [host]: { username: "robot", password: "nope" } } });
    await assert.rejects(c.listTags(`${host}/team/app`), (e: RegistryError) => {
      assert.equal(e.status, 401);
      assert.equal(
        e.message,
        `registry ${host}, repository team/app: list tags: get token: HTTP 401 (UNAUTHORIZED: bad robot)`,
      );
      return true;
    });
  });

  it("GIVEN pages of 2 tags WHEN tags are listed THEN the Link header is followed over 3 pages", async () => {
    assert.deepEqual(await client().listTags(`${host}/team/app`, 2), ["a", "b", "c", "d", "e"]);
    assert.deepEqual(
      seen.filter((s) => s.authorization?.startsWith("Bearer")).map((s) => s.url),
      [
        "/v2/team/app/tags/list?n=2",
        "/v2/team/app/tags/list?n=2&last=b",
        "/v2/team/app/tags/list?n=2&last=d",
      ],
    );
  });

  it("GIVEN two 503s WHEN tags are listed THEN the third attempt succeeds after backoff", async () => {
    failures.set("flaky/one", 2);
    const lines: string[] = [];
    const c = client({ log: (l) => lines.push(l) });
    await c.listTags(`${host}/team/app`); // learn the token first
    assert.deepEqual(await c.listTags(`${host}/flaky/one`), tags);
    assert.equal(lines.filter((l) => l.startsWith("retry")).length, 2);
    assert.match(
      lines.filter((l) => l.startsWith("retry"))[0],
      /^retry 1\/4 in \d+ ms: .*: HTTP 503$/,
    );
  });

  it("GIVEN a 429 with Retry-After: 1 WHEN tags are listed THEN the client waits a second and succeeds", async () => {
    failures.set("throttled/one", 1);
    const c = client();
    const started = Date.now();
    assert.deepEqual(await c.listTags(`${host}/throttled/one`), tags);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1000, `waited ${elapsed} ms`);
    assert.ok(elapsed < 5000, `waited ${elapsed} ms`);
  });

  it("GIVEN 503s beyond the attempt limit WHEN tags are listed THEN the error names the status and attempts", async () => {
    failures.set("flaky/two", 100);
    const c = client({ maxAttempts: 3 });
    await assert.rejects(c.listTags(`${host}/flaky/two`), (e: RegistryError) => {
      assert.equal(e.status, 503);
      assert.equal(
        e.message,
        `registry ${host}, repository flaky/two: list tags: HTTP 503 after 3 attempts (UNAVAILABLE: try later)`,
      );
      return true;
    });
    assert.equal(failures.get("flaky/two"), 97);
  });
});
