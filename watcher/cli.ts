#!/usr/bin/env -S node --import tsx
/**
 * `gitops-rings watch` (`npm run watch`): the watcher service (DESIGN.md flow 6; README, "The
 * watcher"). Run it from the version repository's root, like `pulumi`, with the Pulumi
 * backend and passphrase of the sites in the environment. It logs one JSON line per event and
 * per update, and on SIGTERM or SIGINT stops taking work, lets a running update finish, then
 * exits 0.
 */
import * as path from "node:path";
import pino from "pino";
import { USAGE, parseWatchOptions, type WatchOptions } from "./options";
import { AutomationSiteOps } from "./pulumi";
import { createServer } from "./server";
import { Watcher } from "./watcher";

/**
 * Runs the watcher until SIGTERM or SIGINT.
 * @returns when it has stopped (the running updates finished).
 */
export async function watch(options: WatchOptions): Promise<void> {
  // Synchronous writes: few lines, and none lost or reordered when the process exits.
  const logger = pino(
    { level: options.logLevel, base: { service: "gitops-rings-watch" } },
    pino.destination({ dest: 1, sync: true }),
  );
  const root = path.resolve(options.dir);
  const watcher = new Watcher({
    root,
    ops: new AutomationSiteOps(root),
    logger,
    pollIntervalMs: options.pollIntervalMs,
    concurrency: options.concurrency,
    backoff: { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs },
    includeBuilding: options.includeBuilding,
  });
  // Fails here, before listening, when gitops-rings.yaml is missing or bad.
  watcher.repository();
  const app = createServer(watcher, { token: options.token });
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  logger.info(
    {
      event: "listening",
      address:
        typeof address === "object" && address ? `${address.address}:${address.port}` : address,
      root,
      pollIntervalSeconds: options.pollIntervalMs / 1000,
      includeBuilding: options.includeBuilding,
    },
    "watcher started",
  );
  watcher.start();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ event: "signal", signal }, "already stopping: waiting for running updates");
        return;
      }
      stopping = true;
      logger.info(
        { event: "stopping", signal, running: watcher.queue.running },
        "stopping: letting running updates finish",
      );
      void (async () => {
        await app.close();
        await watcher.stop();
        logger.info({ event: "stopped" }, "watcher stopped");
        resolve();
      })();
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

/** `gitops-rings <command> [flags]`. */
async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "watch") {
    console.error(USAGE);
    return 2;
  }
  let options: WatchOptions;
  try {
    options = parseWatchOptions(rest);
  } catch (e) {
    console.error(`gitops-rings watch: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  await watch(options);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`gitops-rings watch: ${(e as Error).stack ?? e}`);
      process.exit(1);
    },
  );
}
