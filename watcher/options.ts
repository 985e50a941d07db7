/**
 * The watcher's command line and environment: `gitops-rings watch [flags]`, every flag with a
 * documented default and an environment variable (README, "The watcher").
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";

/** What `gitops-rings watch` runs with. */
export interface WatchOptions {
  /** Address to listen on. @default 127.0.0.1:8787 */
  readonly host: string;
  readonly port: number;
  /** The shared token of mutating routes and of Distribution's notifications. Required. */
  readonly token: string;
  /** The version repository's root. @default the working directory */
  readonly dir: string;
  /** Every site is checked this often. @default 60 s */
  readonly pollIntervalMs: number;
  /** Sites reconciled at once. @default 2 */
  readonly concurrency: number;
  /** First retry delay after a failed reconcile, doubling up to `retryMaxMs`. @default 10 s */
  readonly retryInitialMs: number;
  /** @default 300 s */
  readonly retryMaxMs: number;
  /** Reconcile building sites too. @default false */
  readonly includeBuilding: boolean;
  /** pino level. @default info */
  readonly logLevel: string;
}

/** The usage line of `gitops-rings watch`. */
export const USAGE = `usage: gitops-rings watch [--listen host:port] [--token-file path] [--dir path]
  [--poll-interval 60s] [--concurrency 2] [--retry-initial 10s] [--retry-max 5m]
  [--include-building] [--log-level info]
The token comes from GITOPS_RINGS_WATCH_TOKEN or --token-file; every flag also has an
environment variable GITOPS_RINGS_WATCH_<FLAG> (e.g. GITOPS_RINGS_WATCH_POLL_INTERVAL).`;

/**
 * A duration: `250ms`, `30s`, `5m`, `1h`, or a number of seconds.
 * @throws naming the flag and the value.
 */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new Error(`${flag}: "${value}" is not a duration (e.g. 500ms, 30s, 5m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"] as number;
  const ms = Number(m[1]) * unit;
  if (!(ms > 0)) throw new Error(`${flag}: "${value}" must be more than zero`);
  return ms;
}

/**
 * `host:port` (`[::1]:8787` for IPv6).
 * @throws naming the flag and the value.
 */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) {
    throw new Error(`--listen: "${value}" is not host:port (e.g. 127.0.0.1:8787)`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ""), port };
}

/**
 * Parses `gitops-rings watch`'s flags over its environment variables over the defaults.
 * @param args the arguments after `watch`.
 * @throws naming the flag and value, or saying where the token comes from when there is none.
 */
export function parseWatchOptions(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): WatchOptions {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      listen: { type: "string" },
      "token-file": { type: "string" },
      dir: { type: "string" },
      "poll-interval": { type: "string" },
      concurrency: { type: "string" },
      "retry-initial": { type: "string" },
      "retry-max": { type: "string" },
      "include-building": { type: "boolean" },
      "log-level": { type: "string" },
    },
  });
  const pick = (flag: keyof typeof values, fallback: string): string => {
    const v = values[flag];
    if (typeof v === "string") return v;
    const name = `GITOPS_RINGS_WATCH_${flag.toUpperCase().replace(/-/g, "_")}`;
    return env[name] !== undefined && env[name] !== "" ? (env[name] as string) : fallback;
  };
  const tokenFile = pick("token-file", "");
  const token = tokenFile
    ? fs.readFileSync(tokenFile, "utf8").trim()
    : (env.GITOPS_RINGS_WATCH_TOKEN ?? "").trim();
  if (token === "") {
    throw new Error(
      "no API token: set GITOPS_RINGS_WATCH_TOKEN or pass --token-file <path> " +
        "(mutating routes and registry notifications are authenticated with it)",
    );
  }
  const concurrency = Number(pick("concurrency", "2"));
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`--concurrency: "${pick("concurrency", "2")}" is not a positive integer`);
  }
  const building = values["include-building"] ?? /^(1|true)$/i.test(pick("include-building", ""));
  return {
    ...parseListen(pick("listen", "127.0.0.1:8787")),
    token,
    dir: pick("dir", cwd),
    pollIntervalMs: parseDuration(pick("poll-interval", "60s"), "--poll-interval"),
    concurrency,
    retryInitialMs: parseDuration(pick("retry-initial", "10s"), "--retry-initial"),
    retryMaxMs: parseDuration(pick("retry-max", "5m"), "--retry-max"),
    includeBuilding: building,
    logLevel: pick("log-level", "info"),
  };
}
