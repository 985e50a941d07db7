/**
 * The program: one stack is one site (environment + ring). It reads the version repository's
 * config and the site's stack config, computes the site plan in one explicit async step (no
 * resources, nothing changed), then creates one Site, which builds, releases and deploys.
 */
import * as pulumi from "@pulumi/pulumi";
import { Site } from "./components/site/site";
import { prepareSite, type BuiltImages } from "./lib/site";

export = async () => {
  const stack = pulumi.getStack();
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
