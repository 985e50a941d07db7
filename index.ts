/**
 * The program: one stack is one site (environment + ring). It reads the version repository's
 * config and the site's stack config, computes the site plan in one explicit async step (no
 * resources, nothing changed), then creates one Site, which builds, releases and deploys.
 */
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { renderWithProvider } from "./components/site/render";
import { Site } from "./components/site/site";
import type { PreviousForeignImages } from "./lib/images";
import { prepareSite, readConfig, type BuiltImages, type SitePlan } from "./lib/site";

const stack = pulumi.getStack();

/**
 * The SDK records a stack trace on every promise it makes (`debuggablePromise`, printed only
 * with `PULUMI_DEBUG_PROMISE_LEAKS`), and the CLI's entry point formats every stack trace
 * through source-map-support. At 500 services those traces took 10 to 15 s of the language
 * host's CPU in each preview and update (issue 10, measured with `--cpu-prof`). They keep
 * V8's own format; every other stack trace (errors, resources' source positions) is mapped as
 * before.
 */
function plainPromiseStackTraces(): void {
  const mapped = Error.prepareStackTrace;
  if (!mapped) return;
  Error.prepareStackTrace = (error, frames) =>
    frames[0]?.getFunctionName() === "debuggablePromise"
      ? [Error.prototype.toString.call(error), ...frames.map((f) => `    at ${f}`)].join("\n")
      : mapped(error, frames);
}
plainPromiseStackTraces();

/**
 * The exit code that tells the nodejs language host the error was logged already. Errors of
 * the planning step (bad config, a ring without a release, a dependency cycle) end the process
 * with it at once: an error thrown from the async entry keeps the language host waiting about
 * 30 s before the update fails.
 */
const EXIT_AFTER_LOGGED_ERROR = 32;

/**
 * Whether a stack config key holds a secret. The SDK keeps the list (`isConfigSecret`, marked
 * internal, exported at run time); without it every key counts as plain, so a registry password
 * is refused rather than trusted to be encrypted.
 */
function isConfigSecret(key: string): boolean {
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
  return runtime.isConfigSecret?.(key) ?? false;
}

async function planSite(): Promise<SitePlan> {
  try {
    // Bad config fails first, before anything is read from the registry or created
    // (DESIGN.md invariant 6).
    const config = readConfig(process.cwd(), stack, pulumi.runtime.allConfig(), {
      isSecret: isConfigSecret,
    });
    // What this stack's previous update declared, so that unchanged images stay declared.
    const self = new pulumi.StackReference(
      `${pulumi.getOrganization()}/${pulumi.getProject()}/${stack}`,
    );
    const previous = ((await self.getOutputValue("builtImages")) ?? {}) as BuiltImages;
    // What it deployed of the images no service builds, so the plan marks moved tags.
    const previousImages = ((await self.getOutputValue("foreignImages")) ??
      {}) as PreviousForeignImages;
    return await prepareSite({
      root: process.cwd(),
      stack,
      config,
      previous,
      previousImages,
      renderOverlay: renderWithProvider,
    });
  } catch (err) {
    await pulumi.log.error(err instanceof Error ? err.message : String(err));
    process.exit(EXIT_AFTER_LOGGED_ERROR);
  }
}

/**
 * bench/site.ts only: the floor of a no-op preview is this program declaring the same resources
 * from a plan saved as JSON, without the planning step's registry and git I/O.
 */
const BENCH_FLOOR_PLAN = process.env.GITOPS_RINGS_BENCH_FLOOR_PLAN;

export = async () => {
  const sitePlan = BENCH_FLOOR_PLAN
    ? (JSON.parse(fs.readFileSync(BENCH_FLOOR_PLAN, "utf8")) as SitePlan)
    : await planSite();
  await pulumi.log.info(`\n${sitePlan.table}`);

  const site = new Site(stack, { plan: sitePlan });
  return {
    ring: sitePlan.ring,
    environment: sitePlan.environment.name,
    release: site.release,
    services: site.services,
    plan: site.plan,
    builtImages: site.builtImages,
    foreignImages: site.foreignImages,
  };
};
