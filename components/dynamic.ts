import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

/**
 * Loads a module of lib/ from inside a dynamic provider. The engine serializes a dynamic
 * provider's functions and runs them in its own Node.js process, which knows nothing of
 * TypeScript; tsx's CommonJS hook (a dependency of this project) compiles lib/ there.
 * `GITOPS_RINGS_LIB_DIR` overrides where lib/ is; by default it is `lib/` under the
 * project directory, the working directory of the engine's processes.
 */
export function loadLib<T>(module: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require("tsx/cjs/api").register();
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
