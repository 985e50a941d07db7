import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { ProviderName } from "./providers";

/** Marks the provider process whose tsx hook {@link loadModule} registered. */
const TSX_REGISTERED = "__gitopsRingsTsxRegistered";

/**
 * Loads a TypeScript module of this checkout, by its path under the project directory (the
 * working directory of the engine's processes), from inside a dynamic provider. The engine
 * serializes a dynamic provider's functions and runs them in its own Node.js process, which
 * knows nothing of TypeScript; tsx's CommonJS hook (a dependency of this project) compiles the
 * module there. The hook is registered once per process: each `register()` adds a layer of
 * resolve hooks that every later `require` goes through, and a provider that registered once
 * per call (1,500 calls in a first up of 500 services) slowed every require and then overflowed
 * the stack (issue 10).
 */
export function loadModule<T>(file: string): T {
  const providerProcess = globalThis as { [TSX_REGISTERED]?: boolean };
  if (!providerProcess[TSX_REGISTERED]) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require("tsx/cjs/api").register();
    providerProcess[TSX_REGISTERED] = true;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.resolve(file)) as T;
}

/**
 * Loads a module of lib/ (its name without `.ts`) from inside a dynamic provider, through
 * {@link loadModule}.
 */
export function loadLib<T>(module: string): T {
  return loadModule<T>(`lib/${module}.ts`);
}

/**
 * The provider a dynamic resource passes to the engine: for each method of `provider`, one line
 * that loads the provider named `name` from this checkout's components/providers.ts and calls
 * it. The engine keeps a dynamic provider's serialized code (the SDK's `__provider`) in the
 * inputs and again in the outputs of every resource, and the DIY backend writes the whole
 * checkpoint after each step: carrying the provider itself made `__provider` about 6 KB, 12 KB
 * of each image's 18 KB in the state (issue 10). Old state keeps working: a delete or diff with
 * an older `__provider` runs that code, which loads lib/ from this checkout the same way.
 *
 * @param name Key of the provider in components/providers.ts `PROVIDERS`; stable across
 *   versions, since the state of every resource of that type names it.
 * @param provider The provider itself, whose methods the engine may call (the SDK asks which
 *   of check, diff, read, update and delete a provider has).
 */
export function providerByName(
  name: ProviderName,
  provider: pulumi.dynamic.ResourceProvider,
): pulumi.dynamic.ResourceProvider {
  const load = (): pulumi.dynamic.ResourceProvider =>
    loadModule<typeof import("./providers")>("components/providers.ts").PROVIDERS[name];
  return {
    create: (inputs) => load().create(inputs),
    ...(provider.configure && { configure: (req) => load().configure!(req) }),
    ...(provider.check && { check: (olds, news) => load().check!(olds, news) }),
    ...(provider.diff && { diff: (id, olds, news) => load().diff!(id, olds, news) }),
    ...(provider.read && { read: (id, props) => load().read!(id, props) }),
    ...(provider.update && { update: (id, olds, news) => load().update!(id, olds, news) }),
    ...(provider.delete && { delete: (id, props) => load().delete!(id, props) }),
  };
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
