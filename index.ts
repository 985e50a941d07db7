/**
 * The program: one stack is one site (environment + ring). It reads the version repository's
 * config and the site's stack config, computes the site plan in one explicit async step (no
 * resources, nothing changed), then creates one Site, which builds, releases and deploys.
 */
import * as pulumi from "@pulumi/pulumi";
import { Site } from "./components/site/site";
import { prepareSite, readConfig, type BuiltImages } from "./lib/site";

const stack = pulumi.getStack();

// Bad config fails here, synchronously and before anything is read from the registry or
// created (DESIGN.md invariant 6); a synchronous failure also ends the preview at once.
readConfig(process.cwd(), stack, pulumi.runtime.allConfig());

export = async () => {
  // What this stack's previous update declared, so that unchanged images stay declared.
  const self = new pulumi.StackReference(
    `${pulumi.getOrganization()}/${pulumi.getProject()}/${stack}`,
  );
  const previous = ((await self.getOutputValue("builtImages")) ?? {}) as BuiltImages;

  const plan = await prepareSite({
    root: process.cwd(),
    stack,
    config: pulumi.runtime.allConfig(),
    previous,
  });
  await pulumi.log.info(`\n${plan.table}`);

  const site = new Site(stack, { plan });
  return {
    ring: plan.ring,
    environment: plan.environment.name,
    release: site.release,
    services: site.services,
    plan: site.plan,
    builtImages: site.builtImages,
  };
};
