import * as pulumi from "@pulumi/pulumi";
import {
  configureRegistryAuth,
  loadLib,
  outputsOf,
  providerByName,
  registryAuth,
} from "../dynamic";
import type { VerifiedJob } from "../../lib/verification";

/** Inputs of {@link SiteVerification} once resolved. */
export interface SiteVerificationInputs {
  /** `<registry>/<project>/release`. */
  readonly releaseRepository: string;
  readonly site: string;
  readonly ring: string;
  /** The release version the site deployed. */
  readonly release: string;
  /** The release's digest. */
  readonly digest: string;
  /** The post-deploy Jobs that passed (none: the rollout completed). */
  readonly jobs: VerifiedJob[];
}

type Outs = SiteVerificationInputs & { readonly time: string; readonly record: string };

const verification = () => loadLib<typeof import("../../lib/verification")>("verification");

async function record(inputs: SiteVerificationInputs): Promise<Outs> {
  const time = new Date().toISOString();
  const digest = await verification().recordVerification(
    registryAuth().providerClient(),
    inputs.releaseRepository,
    { ...inputs, time },
  );
  return outputsOf({ ...inputs, time, record: digest });
}

/** SiteVerification's provider (the engine runs it through components/dynamic.ts `providerByName`). */
export const siteVerificationProvider: pulumi.dynamic.ResourceProvider = {
  configure: configureRegistryAuth,
  async create(inputs: SiteVerificationInputs) {
    const outs = await record(inputs);
    return { id: `${inputs.site}-${inputs.digest}`, outs };
  },
  async diff(_id: string, olds: Outs, news: SiteVerificationInputs) {
    const key = (v: SiteVerificationInputs) =>
      JSON.stringify([v.releaseRepository, v.site, v.ring, v.release, v.digest, v.jobs]);
    return { changes: key(olds) !== key(news) };
  },
  async update(_id: string, _olds: Outs, news: SiteVerificationInputs) {
    return { outs: await record(news) };
  },
  // Deleting the resource keeps the record: it is history, like stack history.
};

/** What the engine serializes for SiteVerification: a loader of {@link siteVerificationProvider} by name. */
const ENGINE_PROVIDER = providerByName("SiteVerification", siteVerificationProvider);

/**
 * The verification a site records in the registry once its deployment, post-deploy Jobs
 * included, succeeded (lib/verification.ts: the tag `sha256-<hex>.verify.<site>` on the release
 * repository). Declared after the deployment, it runs only when every phase passed, and again
 * whenever the site deploys another release. Type token
 * `pulumi-nodejs:dynamic/site:SiteVerification`.
 */
export class SiteVerification extends pulumi.dynamic.Resource {
  /** When the record was pushed (ISO 8601). */
  declare public readonly time: pulumi.Output<string>;
  /** The record's digest. */
  declare public readonly record: pulumi.Output<string>;

  constructor(
    name: string,
    args: { readonly [K in keyof SiteVerificationInputs]: pulumi.Input<SiteVerificationInputs[K]> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      ENGINE_PROVIDER,
      name,
      { ...args, time: undefined, record: undefined },
      opts,
      "site",
      "SiteVerification",
    );
  }
}
