import assert from "node:assert/strict";
import {
  backoffDelay,
  credentialsFromDockerConfig,
  formatReference,
  isLoopback,
  parseChallenge,
  parseNextLink,
  parsePlatform,
  parseReference,
  parseRetryAfter,
  RegistryClient,
  selectPlatform,
  Semaphore,
  type ImageReference,
} from "../../lib/registry";

const D = `sha256:${"0123456789abcdef".repeat(4)}`;

describe("registry: references", () => {
  const table: [string, ImageReference][] = [
    [
      "127.0.0.1:5000/example/backend:1.2.3",
      {
        registry: "127.0.0.1:5000",
        repository: "example/backend",
        tag: "1.2.3",
        digest: undefined,
      },
    ],
    [
      `127.0.0.1:5000/example/backend@${D}`,
      { registry: "127.0.0.1:5000", repository: "example/backend", tag: undefined, digest: D },
    ],
    [
      `localhost:5000/a/b/c:ring-users@${D}`,
      { registry: "localhost:5000", repository: "a/b/c", tag: "ring-users", digest: D },
    ],
    [
      "localhost/app",
      { registry: "localhost", repository: "app", tag: undefined, digest: undefined },
    ],
    [
      "registry.example.com/team/app",
      {
        registry: "registry.example.com",
        repository: "team/app",
        tag: undefined,
        digest: undefined,
      },
    ],
    [
      "[::1]:5000/app:v1",
      { registry: "[::1]:5000", repository: "app", tag: "v1", digest: undefined },
    ],
    [
      "nginx",
      { registry: "docker.io", repository: "library/nginx", tag: undefined, digest: undefined },
    ],
    [
      "nginx:1.27-alpine",
      { registry: "docker.io", repository: "library/nginx", tag: "1.27-alpine", digest: undefined },
    ],
    [
      "bitnami/redis:7",
      { registry: "docker.io", repository: "bitnami/redis", tag: "7", digest: undefined },
    ],
    [
      "my-registry:5000/app",
      { registry: "my-registry:5000", repository: "app", tag: undefined, digest: undefined },
    ],
    [
      "ghcr.io/org/a__b.c-d:x_Y.z",
      { registry: "ghcr.io", repository: "org/a__b.c-d", tag: "x_Y.z", digest: undefined },
    ],
  ];
  for (const [input, expected] of table) {
    it(`GIVEN ${JSON.stringify(input)} WHEN parsed THEN host, path, tag and digest are exact`, () => {
      assert.deepEqual(parseReference(input), expected);
    });
  }

  it("GIVEN a parsed reference with host WHEN formatted THEN the input comes back", () => {
    for (const input of [
      `127.0.0.1:5000/example/backend:1.2.3@${D}`,
      "localhost/app",
      "[::1]:5000/app:v1",
    ]) {
      assert.equal(formatReference(parseReference(input)), input);
    }
  });

  const bad: [string, string][] = [
    [
      "127.0.0.1:5000/Example/app",
      'image reference "127.0.0.1:5000/Example/app": path component "Example" must be lowercase [a-z0-9._-]',
    ],
    [
      "app@sha256:abc",
      'image reference "app@sha256:abc": digest "sha256:abc" is not <algorithm>:<hex>',
    ],
    ["app:-x", 'image reference "app:-x": tag "-x" is not [A-Za-z0-9_][A-Za-z0-9_.-]*'],
    ["", 'image reference "": no repository'],
    [
      "host:5000//app",
      'image reference "host:5000//app": path component "" must be lowercase [a-z0-9._-]',
    ],
  ];
  for (const [input, message] of bad) {
    it(`GIVEN ${JSON.stringify(input)} WHEN parsed THEN the error names the reference and the fault`, () => {
      assert.throws(() => parseReference(input), { message });
    });
  }

  it("GIVEN registry hosts WHEN asked if loopback THEN only localhost, 127/8 and [::1] are", () => {
    assert.deepEqual(
      [
        "localhost:5000",
        "127.0.0.1:5001",
        "127.9.9.9",
        "[::1]:5000",
        "x.localhost",
        "10.0.0.1:5000",
        "ghcr.io",
        "localhost.example.com",
      ].map(isLoopback),
      [true, true, true, true, true, false, false, false],
    );
  });

  it("GIVEN a client WHEN base URLs are made THEN loopback and insecure registries use http", () => {
    const client = new RegistryClient({ insecure: ["registry.lan:5000"], dockerConfig: false });
    assert.equal(client.baseUrl("127.0.0.1:5000"), "http://127.0.0.1:5000");
    assert.equal(client.baseUrl("registry.lan:5000"), "http://registry.lan:5000");
    assert.equal(client.baseUrl("ghcr.io"), "https://ghcr.io");
    assert.equal(client.baseUrl("docker.io"), "https://registry-1.docker.io");
  });
});

describe("registry: HTTP details", () => {
  it("GIVEN Docker Hub's challenge WHEN parsed THEN scheme and parameters are exact", () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push"',
      ),
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/nginx:pull,push",
        },
      },
    );
  });

  it("GIVEN Distribution's basic challenge and a token-valued parameter WHEN parsed THEN both are read", () => {
    assert.deepEqual(parseChallenge('Basic realm="gitops-rings-test"'), {
      scheme: "basic",
      params: { realm: "gitops-rings-test" },
    });
    assert.deepEqual(parseChallenge('Bearer realm=x, error="insufficient_scope"'), {
      scheme: "bearer",
      params: { realm: "x", error: "insufficient_scope" },
    });
  });

  it("GIVEN Link headers WHEN parsed THEN only the rel=next target is taken", () => {
    assert.equal(parseNextLink('</v2/_catalog?last=b&n=2>; rel="next"'), "/v2/_catalog?last=b&n=2");
    assert.equal(
      parseNextLink('<https://x/prev>; rel="prev", <https://x/next?a=1>; rel=next'),
      "https://x/next?a=1",
    );
    assert.equal(parseNextLink('<https://x/prev>; rel="prev"'), undefined);
    assert.equal(parseNextLink(null), undefined);
  });

  it("GIVEN Retry-After in seconds or as a date WHEN parsed THEN milliseconds from now come out", () => {
    const now = Date.parse("2024-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("3", now), 3000);
    assert.equal(parseRetryAfter("Mon, 01 Jan 2024 00:00:05 GMT", now), 5000);
    assert.equal(parseRetryAfter("Sun, 31 Dec 2023 23:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  it("GIVEN attempts 1..6 WHEN the backoff is computed THEN it doubles, stays in the upper half, and is capped", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, 100, 1000, () => 0)),
      [50, 100, 200, 400, 500, 500],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, 100, 1000, () => 1)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it("GIVEN a semaphore of 2 WHEN 6 tasks run THEN at most 2 are active at once and all finish", async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const results = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((n) =>
        sem.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
          return n * 10;
        }),
      ),
    );
    assert.deepEqual(results, [10, 20, 30, 40, 50, 60]);
    assert.equal(peak, 2);
  });

  it("GIVEN a task that throws WHEN run in a semaphore of 1 THEN the slot is freed for the next", async () => {
    const sem = new Semaphore(1);
    await assert.rejects(
      sem.run(async () => Promise.reject(new Error("boom"))),
      { message: "boom" },
    );
    assert.equal(await sem.run(async () => "next"), "next");
  });
});

describe("registry: platforms and credentials", () => {
  const index = {
    schemaVersion: 2 as const,
    manifests: [
      {
        mediaType: "m",
        digest: "sha256:1",
        size: 1,
        platform: { os: "linux", architecture: "arm", variant: "v7" },
      },
      {
        mediaType: "m",
        digest: "sha256:2",
        size: 1,
        platform: { os: "linux", architecture: "arm64" },
      },
      {
        mediaType: "m",
        digest: "sha256:3",
        size: 1,
        platform: { os: "linux", architecture: "amd64" },
      },
      {
        mediaType: "m",
        digest: "sha256:4",
        size: 1,
        platform: { os: "unknown", architecture: "unknown" },
      },
    ],
  };

  it("GIVEN an index WHEN a platform is selected THEN os, architecture and variant decide", () => {
    assert.equal(selectPlatform(index, parsePlatform("linux/amd64"))?.digest, "sha256:3");
    assert.equal(selectPlatform(index, parsePlatform("linux/arm64/v8"))?.digest, "sha256:2");
    assert.equal(selectPlatform(index, parsePlatform("linux/arm/v7"))?.digest, "sha256:1");
    assert.equal(selectPlatform(index, parsePlatform("linux/arm/v6")), undefined);
    assert.equal(selectPlatform(index, parsePlatform("windows/amd64")), undefined);
  });

  it("GIVEN a bad platform WHEN parsed THEN the error names it", () => {
    assert.throws(() => parsePlatform("linux"), {
      message: 'platform "linux" is not os/architecture[/variant]',
    });
  });

  it("GIVEN a docker config.json WHEN credentials are looked up THEN auth, username/password and Hub aliases work", () => {
    const config = {
      auths: {
        "127.0.0.1:5000": { auth: Buffer.from("ci:p:w").toString("base64") },
        "https://registry.example.com/v2/": { username: "u", password: "p" },
        "https://index.docker.io/v1/": { auth: Buffer.from("hub:tok").toString("base64") },
      },
    };
    assert.deepEqual(credentialsFromDockerConfig(config, "127.0.0.1:5000"), {
      username: "ci",
      password: "p:w",
    });
    assert.deepEqual(credentialsFromDockerConfig(config, "registry.example.com"), {
      username: "u",
      password: "p",
    });
    assert.deepEqual(credentialsFromDockerConfig(config, "docker.io"), {
      username: "hub",
      password: "tok",
    });
    assert.equal(credentialsFromDockerConfig(config, "ghcr.io"), undefined);
    assert.equal(credentialsFromDockerConfig({}, "ghcr.io"), undefined);
  });
});
