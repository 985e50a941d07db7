import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

/** Marks the provider process whose tsx hook {@link loadLib} registered. */
const TSX_REGISTERED = "__gitopsRingsTsxRegistered";

/**
 * Loads a module of lib/ from inside a dynamic provider. The engine serializes a dynamic
 * provider's functions and runs them in its own Node.js process, which knows nothing of
 * TypeScript; tsx's CommonJS hook (a dependency of this project) compiles lib/ there.
 * `GITOPS_RINGS_LIB_DIR` overrides where lib/ is; by default it is `lib/` under the
 * project directory, the working directory of the engine's processes.
 */
export function loadLib<T>(module: string): T {
  // Once per process: each register() adds a layer of resolve hooks that every later require
  // goes through, and a provider that registered once per call (1,500 calls in a first up of
  // 500 services) slowed every require and then overflowed the stack (issue 10).
  const providerProcess = globalThis as { [TSX_REGISTERED]?: boolean };
  if (!providerProcess[TSX_REGISTERED]) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require("tsx/cjs/api").register();
    providerProcess[TSX_REGISTERED] = true;
  }
  const dir = process.env.GITOPS_RINGS_LIB_DIR ?? path.resolve("lib");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(dir, `${module}.ts`)) as T;
}

/**
 * The `configure` of every dynamic provider that talks to a registry: keeps the stack config's
 * `gitops-rings:registryAuth` (secrets arrive decrypted) in the provider process, for
 * lib/registry-auth.ts `providerClient` and `providerCredentials`. The credentials never pass
 * through resource inputs, so the state never holds them.
 */
export async function configureRegistryAuth(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
  loadLib<typeof import("../lib/registry-auth")>("registry-auth").configureProvider(
    req.config.get("gitops-rings:registryAuth"),
  );
}

/** lib/registry-auth.ts, loaded in the provider process. */
export function registryAuth(): typeof import("../lib/registry-auth") {
  return loadLib<typeof import("../lib/registry-auth")>("registry-auth");
}

/**
 * The outputs of a dynamic provider's create or update as the engine can carry them: its
 * protobuf structs have no `undefined`, so members whose value is undefined are left out
 * (at every level) instead of failing the step with "Unexpected struct type".
 */
export function outputsOf<T extends object>(outs: T): T {
  return JSON.parse(JSON.stringify(outs)) as T;
}
