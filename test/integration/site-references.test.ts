/**
 * lib/site.ts prepareSite against a real registry (helpers/registry.ts): a service that uses
 * another service by `COPY --from` or `RUN --mount=from` (not FROM) depends on it as a FROM
 * does (DESIGN.md invariant 7): it is built after it, its revision waits for that service's
 * digest, its `dependency.<service>` label names it, and the build pins it by a named context.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseRepositoryConfig, parseSiteConfig } from "../../lib/config";
import { RegistryClient } from "../../lib/registry";
import { prepareSite } from "../../lib/site";
import { useRegistry } from "./helpers/registry";

describe("prepareSite: a service referenced by COPY --from or RUN --mount=from", function () {
  this.timeout(60_000);
  const registry = useRegistry();
  let root: string;

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-site-references-"));
  });

  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("GIVEN tool copies from base and mounts it THEN base comes first, is a dependency and is pinned by a named context", async () => {
    const files: Record<string, string> = {
      "gitops-rings.yaml": [
        `project: it-${randomBytes(4).toString("hex")}`,
        `registry: ${registry().host}`,
        "rings: [dev]",
        "environments:",
        "  e: { overlay: overlay, namespace: it-ns }",
        "services:",
        "  tool: { context: tool }",
        "  base: { context: base }",
      ].join("\n"),
      "overlay/kustomization.yaml": "resources: []\n",
      "base/Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n",
      "base/a.txt": "a\n",
      "tool/Dockerfile":
        "FROM scratch\nCOPY --from=base /a.txt /a.txt\nRUN --mount=from=base,target=/b true\n",
    };
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), text);
    }
    const repo = parseRepositoryConfig(files["gitops-rings.yaml"], "gitops-rings.yaml");
    const site = parseSiteConfig(
      { ring: "dev", environment: "e", build: true },
      "stacks/Pulumi.it.yaml",
      repo,
    );
    const plan = await prepareSite({
      root,
      stack: "it",
      config: { repo, site },
      env: {},
      client: new RegistryClient({ dockerConfig: false, retryBaseMs: 10 }),
    });
    assert.deepEqual(
      plan.services.map((s) => [s.service, s.action]),
      [
        ["base", "build"],
        ["tool", "build"],
      ],
    );
    const tool = plan.services[1];
    assert.deepEqual(tool.dependencies, { base: "0.1.0" });
    assert.deepEqual(tool.labelInput.dependencies, { base: "0.1.0" });
    assert.deepEqual(tool.namedContexts, { base: "base" });
    assert.deepEqual(tool.dependencyArgs, {});
    assert.equal(tool.revision, undefined, "the revision waits for base's new digest");
  });
});
