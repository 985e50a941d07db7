/**
 * Starts a real registry for a test suite: Debian's `docker-registry` (CNCF Distribution 2.8)
 * with filesystem storage in a temporary directory, deletes enabled, on a free 127.0.0.1 port;
 * optionally behind htpasswd basic auth (bcrypt hash made by `htpasswd -B` from apache2-utils).
 */

/**
 * `htpasswd -nbB ci 's3cret pass'` (apache2-utils), run once: used for that user only when
 * `htpasswd` is not installed, so the basic-auth suite needs no extra package on a fresh machine.
 */
const FALLBACK_HTPASSWD: Readonly<Record<string, string>> = {
  "ci:s3cret pass": "ci:$2y$05$9tLEC9hTK9eDH1th0T26B.rAjKXjkNmhV2fVHFUhCY69u0uvjhC7m",
};
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** A running registry. */
export interface TestRegistry {
  /** `127.0.0.1:<port>`: the registry part of references. */
  readonly host: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The temporary directory (config, storage, log). */
  readonly dir: string;
  /** The basic-auth user, when started with one. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Stops the registry and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** Protect the registry with htpasswd basic auth for this user. */
  readonly basicAuth?: { readonly username: string; readonly password: string };
  /**
   * Send Distribution's webhook notifications (manifest events; blob events ignored) to `url`
   * with `Authorization: Bearer <token>`, as scripts/platform.sh configures the platform's
   * registry for the watcher.
   */
  readonly notifications?: { readonly url: string; readonly token: string };
}

/** The `notifications:` section of a Distribution config for {@link StartRegistryOptions.notifications}. */
export function notificationsConfig(url: string, token: string): string {
  return `notifications:
  endpoints:
    - name: gitops-rings-watch
      url: ${url}
      headers:
        Authorization: [Bearer ${token}]
      timeout: 2s
      threshold: 5
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        actions: [pull]
`;
}

function which(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const p = path.join(dir, binary);
    if (dir && existsSync(p)) return p;
  }
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/local/bin"]) {
    if (existsSync(path.join(dir, binary))) return path.join(dir, binary);
  }
  return undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`docker-registry exited ${child.exitCode}: ${await readFile(log, "utf8")}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry at ${url} not ready in 20 s: ${await readFile(log, "utf8")}`);
}

/** Starts Distribution; retries on another port if the chosen one was taken meanwhile. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const binary = which("docker-registry");
  if (!binary) {
    throw new Error("docker-registry is not installed: apt-get install -y docker-registry");
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "gitops-rings-registry-"));
  let auth = "";
  if (options.basicAuth) {
    const htpasswd = which("htpasswd");
    const { username, password } = options.basicAuth;
    const line = htpasswd
      ? execFileSync(htpasswd, ["-nbB", username, password], { encoding: "utf8" })
      : FALLBACK_HTPASSWD[`${username}:${password}`];
    if (line === undefined) {
      throw new Error("htpasswd is not installed: apt-get install -y apache2-utils");
    }
    await writeFile(path.join(dir, "htpasswd"), line.trim() + "\n");
    auth = `auth:\n  htpasswd:\n    realm: gitops-rings-test\n    path: ${path.join(dir, "htpasswd")}\n`;
  }
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = path.join(dir, "config.yml");
    await writeFile(
      config,
      `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, "data")}
  delete:
    enabled: true
http:
  addr: ${host}
  secret: gitops-rings-test-secret
${auth}${
        options.notifications
          ? notificationsConfig(options.notifications.url, options.notifications.token)
          : ""
      }`,
    );
    const log = path.join(dir, `registry-${attempt}.log`);
    const fd = openSync(log, "w");
    const child = spawn(binary, ["serve", config], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const kill = () => child.kill("SIGKILL");
    process.once("exit", kill);
    try {
      await waitReady(`http://${host}`, child, log);
    } catch (e) {
      child.kill("SIGKILL");
      process.removeListener("exit", kill);
      if (attempt < 3) continue;
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    return {
      host,
      url: `http://${host}`,
      dir,
      credentials: options.basicAuth,
      async stop() {
        process.removeListener("exit", kill);
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
          if (child.exitCode === null) child.kill("SIGKILL");
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * Mocha hooks: a registry started before the suite's tests and stopped after them.
 * @returns a getter for the running registry.
 */
export function useRegistry(options: StartRegistryOptions = {}): () => TestRegistry {
  let registry: TestRegistry | undefined;
  before(async function () {
    this.timeout(60_000);
    registry = await startRegistry(options);
  });
  after(async () => {
    await registry?.stop();
  });
  return () => {
    if (!registry) throw new Error("registry not started");
    return registry;
  };
}
