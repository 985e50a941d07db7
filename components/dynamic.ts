import type * as pulumi from "@pulumi/pulumi";
import type { ProviderName } from "./providers";

/** components/engine-entry.cjs, which both the program and the provider process load. */
interface EngineEntry {
  load(file: string): unknown;
  call(name: ProviderName, method: string, args: unknown[]): unknown;
}

/**
 * Loads a TypeScript module of this checkout, by its path under the project directory (the
 * working directory of the engine's processes), from inside a dynamic provider. The engine
 * serializes a dynamic provider's functions and runs them in its own Node.js process, which
 * knows nothing of TypeScript; components/engine-entry.cjs registers tsx's CommonJS hook there,
 * once per process, and loads the module.
 */
export function loadModule<T>(file: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("./engine-entry.cjs") as EngineEntry).load(file) as T;
}

/**
 * Loads a module of lib/ (its name without `.ts`) from inside a dynamic provider, through
 * {@link loadModule}.
 */
export function loadLib<T>(module: string): T {
  return loadModule<T>(`lib/${module}.ts`);
}

/** The methods of a dynamic provider that the SDK calls when the provider has them. */
const METHODS = ["configure", "check", "diff", "create", "read", "update", "delete"] as const;

/**
 * The provider a dynamic resource passes to the engine: for each method that `provider` has, a
 * one-line function that requires components/engine-entry.cjs from the project directory and
 * calls the method of the provider named `name` there. Each captures nothing but the name and
 * the method's name.
 *
 * Why so small: the engine keeps a dynamic provider's serialized code (the SDK's `__provider`)
 * in the inputs and again in the outputs of every resource, and the DIY backend writes the
 * whole checkpoint twice for each step, one write at a time (issue 10: at 500 services those
 * writes set the pace of a first up). The provider itself serialized to about 6 KB; a loader
 * that carried tsx's registration to about 2.5 KB; this one is about 1.5 KB. Old state keeps
 * working: a delete or diff with an older `__provider` runs that code, which loads
 * components/providers.ts from this checkout.
 *
 * @param name Key of the provider in components/providers.ts `PROVIDERS`; stable across
 *   versions, since the state of every resource of that type names it.
 * @param provider The provider itself: its methods are the ones the engine may call (the SDK
 *   calls check, diff, read, update and delete only when the provider has them).
 */
export function providerByName(
  name: ProviderName,
  provider: pulumi.dynamic.ResourceProvider,
): pulumi.dynamic.ResourceProvider {
  const shim: Record<string, unknown> = {};
  for (const method of METHODS.filter((m) => provider[m] !== undefined)) {
    // The path is a literal, not a constant, so that the function captures no more than it
    // needs; comments stay outside it, since its text is what the state keeps.
    /* eslint-disable @typescript-eslint/no-require-imports */
    shim[method] = (...args: unknown[]) =>
      (require(process.cwd() + "/components/engine-entry.cjs") as EngineEntry).call(
        name,
        method,
        args,
      );
    /* eslint-enable @typescript-eslint/no-require-imports */
  }
  return shim as unknown as pulumi.dynamic.ResourceProvider;
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
