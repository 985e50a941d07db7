/**
 * lib/buildkit.ts without a daemon: the exact buildctl arguments of a build, which
 * repositories count as loopback (pushed over plain HTTP), and the bound on concurrent builds.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  buildctlArgs,
  buildWithBuildkit,
  isLoopbackRegistry,
  limitBuilds,
  type BuildkitBuild,
} from "../../lib/buildkit";
import { isLoopback } from "../../lib/registry";

const D = `sha256:${"a".repeat(64)}`;

const minimal: BuildkitBuild = {
  addr: "tcp://127.0.0.1:1234",
  context: "/src/app/services/backend",
  dockerfile: "/src/app/services/backend/Dockerfile",
  repository: "registry.example.com/example/backend",
};

describe("buildctlArgs", () => {
  it("GIVEN only the required fields WHEN the args are made THEN they build linux/amd64 with provenance mode=max and push by digest over HTTPS", () => {
    assert.deepEqual(buildctlArgs(minimal, "/tmp/m.json"), [
      "--addr",
      "tcp://127.0.0.1:1234",
      "build",
      "--progress",
      "plain",
      "--frontend",
      "dockerfile.v0",
      "--local",
      "context=/src/app/services/backend",
      "--local",
      "dockerfile=/src/app/services/backend",
      "--opt",
      "filename=Dockerfile",
      "--opt",
      "platform=linux/amd64",
      "--opt",
      "attest:provenance=mode=max",
      "--output",
      "type=image,name=registry.example.com/example/backend,push=true,push-by-digest=true",
      "--metadata-file",
      "/tmp/m.json",
    ]);
  });

  it("GIVEN every field WHEN the args are made THEN target, build args, named contexts and labels follow, each sorted by key", () => {
    const args = buildctlArgs(
      {
        addr: "unix:///run/buildkit/buildkitd.sock",
        context: "/src/ctx",
        dockerfile: "/src/docker/backend.Dockerfile",
        buildArgs: { VERSION: "1.2.3", A_FIRST: "x=y,z" },
        namedContexts: { tools: `docker-image://127.0.0.1:5001/p/tools@${D}`, base: "/src/base" },
        labels: {
          "org.opencontainers.image.version": "0.4.0",
          "a+b": "plus",
          a: "plain",
        },
        target: "runtime",
        platforms: ["linux/amd64", "linux/arm64"],
        repository: "127.0.0.1:5001/example/backend",
      },
      "/tmp/meta.json",
    );
    assert.deepEqual(args, [
      "--addr",
      "unix:///run/buildkit/buildkitd.sock",
      "build",
      "--progress",
      "plain",
      "--frontend",
      "dockerfile.v0",
      "--local",
      "context=/src/ctx",
      "--local",
      "dockerfile=/src/docker",
      "--opt",
      "filename=backend.Dockerfile",
      "--opt",
      "platform=linux/amd64,linux/arm64",
      "--opt",
      "target=runtime",
      "--opt",
      "build-arg:A_FIRST=x=y,z",
      "--opt",
      "build-arg:VERSION=1.2.3",
      "--opt",
      "context:base=/src/base",
      "--opt",
      `context:tools=docker-image://127.0.0.1:5001/p/tools@${D}`,
      "--opt",
      "label:a=plain",
      "--opt",
      "label:a+b=plus",
      "--opt",
      "label:org.opencontainers.image.version=0.4.0",
      "--opt",
      "attest:provenance=mode=max",
      "--output",
      "type=image,name=127.0.0.1:5001/example/backend,push=true,push-by-digest=true,registry.insecure=true",
      "--metadata-file",
      "/tmp/meta.json",
    ]);
  });

  it("GIVEN a loopback repository and insecure: false WHEN the args are made THEN registry.insecure is not set", () => {
    const args = buildctlArgs(
      { ...minimal, repository: "127.0.0.1:5001/example/backend", insecure: false },
      "/m",
    );
    assert.equal(
      args[args.indexOf("--output") + 1],
      "type=image,name=127.0.0.1:5001/example/backend,push=true,push-by-digest=true",
    );
  });

  it("GIVEN a remote repository and insecure: true WHEN the args are made THEN registry.insecure is set", () => {
    const args = buildctlArgs({ ...minimal, insecure: true }, "/m");
    assert.equal(
      args[args.indexOf("--output") + 1],
      "type=image,name=registry.example.com/example/backend,push=true,push-by-digest=true,registry.insecure=true",
    );
  });

  it("GIVEN provenance min or off WHEN the args are made THEN the attestation is asked for in that mode, or not at all", () => {
    const attest = (provenance: BuildkitBuild["provenance"]) =>
      buildctlArgs({ ...minimal, provenance }, "/m").filter((a) => a.startsWith("attest:"));
    assert.deepEqual(attest("min"), ["attest:provenance=mode=min"]);
    assert.deepEqual(attest("off"), []);
  });

  it("GIVEN an empty target WHEN the args are made THEN no target option is passed", () => {
    assert.deepEqual(buildctlArgs({ ...minimal, target: "" }, "/m"), buildctlArgs(minimal, "/m"));
  });
});

describe("isLoopbackRegistry", () => {
  const cases: [string, boolean][] = [
    ["127.0.0.1:5001/example/backend", true],
    ["127.0.0.1/example/backend", true],
    ["127.45.3.9:80/x", true],
    ["localhost:5000/example/backend", true],
    ["localhost/x", true],
    ["k3d-registry.localhost:5000/example/backend", true],
    ["[::1]:5000/example/backend", true],
    ["[::1]/x", true],
    ["registry.example.com/example/backend", false],
    ["registry.example.com:5000/example/backend", false],
    ["127.0.0.1.nip.io:5000/x", false],
    ["localhost.example.com/x", false],
    ["10.0.0.1:5000/x", false],
    ["[::2]:5000/x", false],
    ["example/backend", false],
    ["backend", false],
  ];
  for (const [repository, expected] of cases) {
    it(`GIVEN ${repository} WHEN checked THEN ${expected}, as the registry client decides`, () => {
      assert.equal(isLoopbackRegistry(repository), expected);
      assert.equal(isLoopback(repository.split("/")[0]), expected);
    });
  }
});

describe("limitBuilds", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-limit-"));
    // A stand-in for buildctl that records when it runs and writes the metadata file buildctl
    // would: the bound is the caller's, so no BuildKit is needed to see it hold.
    fs.writeFileSync(
      path.join(dir, "buildctl"),
      [
        "#!/bin/sh",
        `echo "start $$" >> '${dir}/log'`,
        "sleep 0.2",
        `echo "end $$" >> '${dir}/log'`,
        'while [ $# -gt 0 ]; do [ "$1" = --metadata-file ] && meta="$2"; shift; done',
        `printf '{"containerimage.digest":"sha256:${"c".repeat(64)}"}' > "$meta"`,
      ].join("\n"),
      { mode: 0o755 },
    );
  });
  after(() => {
    limitBuilds(undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The most builds the log shows running at once. */
  function peak(): number {
    let running = 0;
    let most = 0;
    for (const line of fs.readFileSync(path.join(dir, "log"), "utf8").trim().split("\n")) {
      running += line.startsWith("start") ? 1 : -1;
      most = Math.max(most, running);
    }
    return most;
  }

  it("GIVEN a bound of 2 WHEN six builds start together THEN at most two run at once and all six finish; without a bound all six run at once", async () => {
    for (const [limit, expected] of [
      [2, 2],
      [undefined, 6],
    ] as const) {
      fs.rmSync(path.join(dir, "log"), { force: true });
      limitBuilds(limit);
      const results = await Promise.all(
        Array.from({ length: 6 }, () =>
          buildWithBuildkit({ ...minimal, buildctl: path.join(dir, "buildctl") }),
        ),
      );
      assert.equal(results.length, 6);
      assert.equal(peak(), expected, `limit ${limit}`);
    }
  });
});
