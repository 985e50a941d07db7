/**
 * components/dynamic.ts loadLib, as a dynamic provider process calls it once per step: tsx's
 * CommonJS hook is registered once per process, however many steps load lib/ (a first up of
 * 500 services loads it about 1,500 times; a hook per call overflowed the stack, issue 10).
 */
import assert from "node:assert/strict";
import { loadLib } from "../../components/dynamic";

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
