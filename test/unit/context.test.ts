import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, type ServiceConfig } from "../../lib/config";
import { assembleContext } from "../../lib/context";
import { computeRevisionInput } from "../../lib/revision";

describe("assembleContext (lib/context.ts): a service built from several repositories", () => {
  let tmp: string;
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
    fs.writeFileSync(path.join(tmp, file), text);
  };
  const service = (sources: ServiceConfig["sources"], source?: string): ServiceConfig => ({
    name: "ledger",
    image: "ledger",
    context: "services/ledger",
    ...(source !== undefined ? { source } : {}),
    buildArgs: {},
    platforms: ["linux/amd64"],
    sources,
    labels: {},
  });
  const src = (name: string, p = name) => ({
    name,
    url: `file:///${name}`,
    branch: "main",
    path: p,
  });

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "context-test-"));
    write(
      "repo/services/ledger/Dockerfile",
      "FROM scratch\nCOPY app.txt /\nCOPY lib/core.txt /\nCOPY proto/api.proto /\n",
    );
    write("repo/services/ledger/app.txt", "app\n");
    write("lib/core.txt", "core v1\n");
    write("lib/.git", "gitdir: /somewhere\n");
    write("lib/README.md", "docs no COPY reads\n");
    write("proto/api.proto", "syntax v1\n");
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const assemble = (s: ServiceConfig) =>
    assembleContext({
      root: path.join(tmp, "repo"),
      service: s,
      context: path.join(tmp, "repo/services/ledger"),
      checkouts: { lib: path.join(tmp, "lib"), proto: path.join(tmp, "proto") },
    });
  const revision = async (dir: string) =>
    (
      await computeRevisionInput(dir, path.join(tmp, "repo/services/ledger/Dockerfile"), {
        buildArgs: {},
        platforms: ["linux/amd64"],
        services: { registries: [], project: "example", images: {} },
      })
    ).input.content;

  it("GIVEN a service with no other source WHEN assembled THEN its context is used as it is", () => {
    assert.equal(assemble(service([])), path.join(tmp, "repo/services/ledger"));
  });

  it("GIVEN two sources WHEN assembled THEN each checkout is at its path (without .git) beside the context's own files", () => {
    const dir = assemble(service([src("lib"), src("proto", "proto")]));
    assert.equal(dir, path.join(tmp, "repo/.gitops-rings/contexts/ledger"));
    assert.equal(fs.readFileSync(path.join(dir, "app.txt"), "utf8"), "app\n");
    assert.equal(fs.readFileSync(path.join(dir, "lib/core.txt"), "utf8"), "core v1\n");
    assert.equal(fs.readFileSync(path.join(dir, "proto/api.proto"), "utf8"), "syntax v1\n");
    assert.equal(fs.existsSync(path.join(dir, "lib/.git")), false);
  });

  it("GIVEN a file of another source that a COPY reads WHEN it changes THEN the revision changes; a file no COPY reads changes nothing", async () => {
    const s = service([src("lib"), src("proto")]);
    const first = await revision(assemble(s));
    write("lib/README.md", "docs changed\n");
    assert.equal(await revision(assemble(s)), first);
    write("lib/core.txt", "core v2\n");
    assert.notEqual(await revision(assemble(s)), first);
  });

  it("GIVEN a file removed from a source WHEN assembled again THEN it is gone from the context", () => {
    const s = service([src("lib"), src("proto")]);
    assemble(s);
    fs.rmSync(path.join(tmp, "lib/README.md"));
    assert.equal(fs.existsSync(path.join(assemble(s), "lib/README.md")), false);
  });

  it("GIVEN a source path the context already has WHEN assembled THEN a ConfigError names the key and path", () => {
    write("repo/services/ledger/lib/mine.txt", "mine\n");
    assert.throws(
      () => assemble(service([src("proto"), src("lib")])),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.startsWith(
          'gitops-rings.yaml: services.ledger.sources[1].path: "lib" exists in the context',
        ),
    );
  });
});
