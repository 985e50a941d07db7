import * as pulumi from "@pulumi/pulumi";

/**
 * Renders a Kustomize directory with the kubernetes provider's kustomize, the one
 * `kustomize.v2.Directory` applies with: the planning step checks the objects the provider
 * path deploys (lib/site.ts), and the provider path splits them into phases (lib/jobs.ts).
 * The local platform renders with `kubectl kustomize` and never calls this.
 * @returns the rendered objects, in the provider's order.
 */
export async function renderWithProvider(directory: string): Promise<readonly unknown[]> {
  // Imported here: the local platform has no kubernetes provider.
  const { yaml } = await import("@pulumi/kubernetes");
  const out = await pulumi.runtime.invoke(
    "kubernetes:kustomize:directory",
    { directory },
    yaml.getInvokeOpts(),
  );
  return (out as { result?: unknown[] }).result ?? [];
}
