/**
 * Dynamic providers across steps and across versions of this program. components/dynamic.ts
 * loadLib, as a provider process calls it once per step: tsx's CommonJS hook is registered once
 * per process, however many steps load lib/ (a first up of 500 services loads it about 1,500
 * times; a hook per call overflowed the stack, issue 10). BuildkitImage's diff: a new version
 * of the provider's code (the SDK's `__provider` input) builds nothing again. providerByName:
 * what the engine serializes is a loader of the provider by name, not the provider.
 */
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { loadLib, providerByName } from "../../components/dynamic";
import { PROVIDERS, type ProviderName } from "../../components/providers";
import { buildkitImageProvider } from "../../components/service/buildkitImage";

describe("loadLib", () => {
  it("GIVEN a process that has not loaded lib/ WHEN it loads modules of lib/ many times THEN tsx's hook is registered once and each load returns the module", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const api = require("tsx/cjs/api") as { register: () => unknown };
    const register = api.register;
    const flag = globalThis as Record<string, unknown>;
    const registered = flag.__gitopsRingsTsxRegistered;
    let calls = 0;
    api.register = () => {
      calls++;
      return undefined;
    };
    delete flag.__gitopsRingsTsxRegistered;
    try {
      for (let i = 0; i < 50; i++) {
        const limit = loadLib<typeof import("../../lib/limit")>("limit");
        assert.equal(typeof limit.mapLimit, "function");
      }
      assert.equal(calls, 1);
    } finally {
      api.register = register;
      flag.__gitopsRingsTsxRegistered = registered;
    }
  });
});

describe("BuildkitImage diff", () => {
  const inputs = {
    repository: "127.0.0.1:5001/example/backend",
    tag: "0.1.0",
    context: "/repo/app/services/backend",
    labels: { "org.opencontainers.image.version": "0.1.0" },
    __provider: "exports.handler = /* gitops-rings 0.1.0 */ …",
  };
  const olds = { ...inputs, built: `sha256:${"1".repeat(64)}`, digest: `sha256:${"2".repeat(64)}` };
  const diff = (news: object) =>
    buildkitImageProvider.diff!("id", olds, news as typeof inputs) as Promise<{
      changes: boolean;
    }>;

  it("GIVEN the same inputs from a new version of the provider's code WHEN diffed THEN nothing changed (no image is built again)", async () => {
    assert.equal(
      (await diff({ ...inputs, __provider: "exports.handler = /* 0.2.0 */ …" })).changes,
      false,
    );
  });

  it("GIVEN a changed label or tag WHEN diffed THEN it changed", async () => {
    assert.equal((await diff({ ...inputs, tag: "0.1.1" })).changes, true);
    assert.equal((await diff({ ...inputs, labels: { a: "b" } })).changes, true);
  });
});

describe("providerByName", () => {
  const entries = Object.entries(PROVIDERS) as [ProviderName, pulumi.dynamic.ResourceProvider][];

  it("GIVEN each provider of components/providers.ts WHEN wrapped THEN the engine sees the same methods", () => {
    for (const [name, provider] of entries) {
      assert.deepEqual(
        Object.keys(providerByName(name, provider)).sort(),
        Object.keys(provider).sort(),
        name,
      );
    }
  });

  it("GIVEN the wrapper WHEN serialized as the SDK does THEN it carries none of the provider's code and is a fraction of its size", async () => {
    const serialize = async (p: pulumi.dynamic.ResourceProvider) =>
      (await pulumi.runtime.serializeFunction(() => p, { isFactoryFunction: true })).text;
    const full = await serialize(buildkitImageProvider);
    const thin = await serialize(providerByName("BuildkitImage", buildkitImageProvider));
    assert.match(full, /buildWithBuildkit/);
    assert.doesNotMatch(thin, /buildWithBuildkit|publishImage|NOT_COMPARED/);
    assert.match(thin, /components\/engine-entry\.cjs/);
    assert.ok(thin.length * 3 < full.length, `${thin.length} bytes against ${full.length}`);
  });

  it("GIVEN the wrapper WHEN the engine calls diff THEN the provider loaded from the checkout answers", async () => {
    const shim = providerByName("BuildkitImage", buildkitImageProvider);
    const olds = { repository: "r", tag: "0.1.0", built: "sha256:1", digest: "sha256:2" };
    assert.deepEqual(await shim.diff!("id", olds, { repository: "r", tag: "0.1.0" }), {
      changes: false,
    });
    assert.deepEqual(await shim.diff!("id", olds, { repository: "r", tag: "0.1.1" }), {
      changes: true,
    });
  });
});
