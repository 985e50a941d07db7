/**
 * The invariant checker after an end-to-end step (issue 7): runs lib/check.ts over a version
 * repository copy's registry project, its sites' stack outputs and the cluster
 * ($KUBECONFIG), and fails with the violations' table when any invariant is broken.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import {
  checkInvariants,
  formatViolations,
  kubectlCluster,
  siteOfStack,
  type CheckResult,
} from "../../../lib/check";
import { loadRepositoryConfig } from "../../../lib/config";
import type { ProvenanceRequirement } from "../../../lib/provenance";
import { REPOSITORY_FILE } from "../../../lib/site";

/** What {@link assertInvariantsHold} checks. */
export interface InvariantsArgs {
  /** The version repository copy (its gitops-rings.yaml gives rings and environments). */
  readonly dir: string;
  /** The copy's registry, `host[:port]`. */
  readonly registry: string;
  /** The copy's project. */
  readonly project: string;
  /** The sites whose outputs and workloads are checked; a stack without outputs is skipped. */
  readonly stacks: readonly Pick<Stack, "name" | "outputs">[];
  /**
   * The provenance every image must carry; images pushed by a test rather than built need
   * `off`. @default "max" (what the buildctl backend attests)
   */
  readonly provenance?: ProvenanceRequirement;
}

/**
 * Checks invariants 1, 2, 4 and 5 on the copy's registry project, its stacks' outputs and,
 * when $KUBECONFIG is set, their namespaces' workloads; and the provenance of every image.
 * @returns the check's result when every invariant holds.
 * @throws AssertionError whose message is the violations' table otherwise.
 */
export async function assertInvariantsHold(args: InvariantsArgs): Promise<CheckResult> {
  const repo = loadRepositoryConfig(path.join(args.dir, REPOSITORY_FILE));
  const kubeconfig = process.env.KUBECONFIG;
  const result = await checkInvariants({
    repository: { ...repo, registry: args.registry, project: args.project },
    sites: await Promise.all(args.stacks.map(siteOfStack)),
    cluster: kubeconfig ? kubectlCluster({ kubeconfig }) : undefined,
    provenance: args.provenance,
  });
  if (!result.ok) {
    assert.fail(`invariants broken:\n${formatViolations(result.violations)}`);
  }
  return result;
}
