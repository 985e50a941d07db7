/**
 * The file the engine's provider process requires for every dynamic provider of gitops-rings
 * (components/dynamic.ts `providerByName`). It is plain CommonJS so that it loads before any
 * TypeScript hook exists; it registers tsx's CommonJS hook (a dependency of this project) once
 * per process and then loads TypeScript modules of this checkout.
 *
 * Its path, `components/engine-entry.cjs` under the project directory, is written into the state
 * of every dynamic resource: it must never move or go away.
 */
"use strict";
const path = require("node:path");

/** Marks the process whose hook {@link load} registered (shared with older serialized code). */
const TSX_REGISTERED = "__gitopsRingsTsxRegistered";

/**
 * Loads a TypeScript module of this checkout by its path under the project directory (the
 * working directory of the engine's processes). The hook is registered once per process: each
 * `register()` adds a layer of resolve hooks that every later `require` goes through, and a
 * provider that registered once per call (1,500 calls in a first up of 500 services) slowed
 * every require and then overflowed the stack (issue 10).
 * @param {string} file e.g. `lib/buildkit.ts`
 */
function load(file) {
  if (!globalThis[TSX_REGISTERED]) {
    require("tsx/cjs/api").register();
    globalThis[TSX_REGISTERED] = true;
  }
  return require(path.resolve(file));
}

/**
 * Calls `method` of the provider named `name` in components/providers.ts `PROVIDERS`.
 * @param {string} name e.g. `BuildkitImage`
 * @param {string} method e.g. `create`
 * @param {unknown[]} args the arguments the SDK's dynamic provider passed
 */
function call(name, method, args) {
  return load("components/providers.ts").PROVIDERS[name][method](...args);
}

module.exports = { load, call };
