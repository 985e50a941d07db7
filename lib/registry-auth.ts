/**
 * Registry credentials from the site's stack config (`gitops-rings:registryAuth`, lib/config.ts;
 * README, "Registry credentials") where the program and its dynamic providers need them:
 *
 * - a {@link RegistryClient} that answers the registry's challenge with them, and whose error
 *   for a registry without credentials names the config keys to set;
 * - a docker `config.json` (`auths`) written to a private temporary directory for the one
 *   BuildKit build that pushes, and removed after it ({@link withDockerConfig});
 * - the `.dockerconfigjson` of the site's image pull secret ({@link dockerConfigJson}).
 *
 * Dynamic providers run in the engine's own Node.js process: they read the credentials from
 * the stack config the engine hands every dynamic provider (`configure`), never from resource
 * inputs, so that no password reaches the state (see {@link configureProvider}).
 *
 * No function here logs a credential, and no error message contains one.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ConfigError,
  REGISTRY_AUTH_KEY,
  registryAuthCommands,
  validateRegistryAuth,
  type RegistryAuthEntry,
} from "./config";
import { RegistryClient, type Credentials, type RegistryClientOptions } from "./registry";

/** Credentials by registry `host[:port]`. */
export type RegistryAuth = Readonly<Record<string, Credentials>>;

/**
 * The usable credentials of a validated `registryAuth` (entries whose password was decrypted).
 * @param config `SiteConfig.registryAuth`.
 */
export function credentialsOf(config: Readonly<Record<string, RegistryAuthEntry>>): RegistryAuth {
  const out: Record<string, Credentials> = {};
  for (const [registry, entry] of Object.entries(config)) {
    if (entry.password !== undefined) {
      out[registry] = { username: entry.username, password: entry.password };
    }
  }
  return out;
}

/**
 * What the registry client says when a registry asks for credentials and none are configured:
 * the registry and the config keys that give them.
 * @param registry `host[:port]`.
 */
export function missingCredentialsMessage(registry: string): string {
  return (
    `registry ${registry} requires credentials and none are configured for it ` +
    `(stack config ${REGISTRY_AUTH_KEY}["${registry}"]); set them with: ` +
    registryAuthCommands(registry)
  );
}

/**
 * A registry client that uses `auth` (over docker's config.json) and names the config keys to
 * set when a registry asks for credentials it has none for.
 * @param auth credentials by registry. @default {}
 * @param options further client options.
 */
export function registryClientWith(
  auth: RegistryAuth = {},
  options: Omit<RegistryClientOptions, "credentials" | "missingCredentials"> = {},
): RegistryClient {
  return new RegistryClient({
    ...options,
    credentials: auth,
    missingCredentials: missingCredentialsMessage,
  });
}

/**
 * The docker `config.json` document for `auth`: `{ "auths": { host: { "auth": base64(user:password) } } }`,
 * what BuildKit's client and the kubelet (a `kubernetes.io/dockerconfigjson` Secret) read.
 * @param auth credentials by registry.
 * @returns the JSON text, keys sorted.
 */
export function dockerConfigJson(auth: RegistryAuth): string {
  const auths: Record<string, { auth: string }> = {};
  for (const registry of Object.keys(auth).sort()) {
    const { username, password } = auth[registry];
    auths[registry] = { auth: Buffer.from(`${username}:${password}`).toString("base64") };
  }
  return JSON.stringify({ auths });
}

/**
 * Runs `fn` with a private temporary directory holding a docker `config.json` for `auth`
 * (directory mode 0700, file 0600), removed when `fn` settles. With no credentials, `fn` gets
 * `undefined` and nothing is written: the caller's own docker config applies, as before.
 * @param auth credentials by registry.
 * @param fn receives the directory to use as `DOCKER_CONFIG`.
 */
export async function withDockerConfig<T>(
  auth: RegistryAuth,
  fn: (dockerConfigDir: string | undefined) => Promise<T>,
): Promise<T> {
  if (Object.keys(auth).length === 0) return fn(undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-docker-config-"));
  try {
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, "config.json"), dockerConfigJson(auth), { mode: 0o600 });
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Inside dynamic providers

/** The credentials the engine's stack config gave this provider process. */
let providerAuth: RegistryAuth = {};

/**
 * Reads `gitops-rings:registryAuth` from the stack config a dynamic provider's `configure`
 * receives (the engine gives dynamic providers every config key, secrets decrypted) and keeps
 * it for {@link providerClient} and {@link providerCredentials}. Call it from `configure`.
 * @param value the config value: a JSON string, an object, or undefined (none configured).
 * @throws {ConfigError} naming the key, when it does not validate (no password in the message).
 */
export function configureProvider(value: unknown): void {
  if (value === undefined || value === "") {
    providerAuth = {};
    return;
  }
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new ConfigError([
        { file: "stack config", key: REGISTRY_AUTH_KEY, message: "is not a map (JSON)" },
      ]);
    }
  }
  // The program validated the key, secrecy included, before any resource was declared.
  providerAuth = credentialsOf(validateRegistryAuth(parsed, "stack config", () => true));
}

/** The credentials {@link configureProvider} kept (empty when none are configured). */
export function providerCredentials(): RegistryAuth {
  return providerAuth;
}

/** A registry client with the credentials {@link configureProvider} kept. */
export function providerClient(): RegistryClient {
  return registryClientWith(providerAuth);
}

// ---------------------------------------------------------------------------------------------
// The site's image pull secret

/** The name of a site's image pull secret, in the site's namespace. */
export const PULL_SECRET_NAME = "gitops-rings-registry";

/**
 * Field manager of the pull secret's server-side applies: its own, so that it owns only the
 * Secret and the `default` ServiceAccount's `imagePullSecrets`, never what the overlay applies.
 */
export const PULL_SECRET_FIELD_MANAGER = "gitops-rings-pull-secret";

/**
 * The objects of a site's image pull secret: its Namespace (so the secret can exist before the
 * overlay is applied), the `kubernetes.io/dockerconfigjson` Secret, and the namespace's
 * `default` ServiceAccount naming it in `imagePullSecrets`, so that every Pod that runs as
 * `default` pulls with it (README, "Registry credentials").
 * @param namespace the site's namespace.
 * @param dockerConfig the `.dockerconfigjson` ({@link dockerConfigJson}); `undefined` for the
 *   ServiceAccount without the reference (what delete applies to release it).
 */
export function pullSecretObjects(
  namespace: string,
  dockerConfig: string | undefined,
  name: string = PULL_SECRET_NAME,
): Record<string, unknown>[] {
  const serviceAccount = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "default", namespace },
    ...(dockerConfig !== undefined ? { imagePullSecrets: [{ name }] } : {}),
  };
  if (dockerConfig === undefined) return [serviceAccount];
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace },
      type: "kubernetes.io/dockerconfigjson",
      data: { ".dockerconfigjson": Buffer.from(dockerConfig).toString("base64") },
    },
    serviceAccount,
  ];
}
