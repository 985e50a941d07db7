import * as pulumi from "@pulumi/pulumi";

/** The resolved inputs of a dynamic resource: each input may be given as a Pulumi Input. */
export type DynamicArgs<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };

/**
 * A dynamic resource whose outputs are one image in a registry: its `digest` (`sha256:…`) and
 * `ref` (`<repository>@<digest>`) once published. BuildkitImage (which builds and publishes)
 * and VersionTag (which publishes what docker-build built) share it, so both paths expose the
 * published image the same way.
 */
export class RegistryImageResource<T extends object> extends pulumi.dynamic.Resource {
  declare public readonly digest: pulumi.Output<string>;
  declare public readonly ref: pulumi.Output<string>;

  protected constructor(
    provider: pulumi.dynamic.ResourceProvider,
    name: string,
    args: DynamicArgs<T>,
    opts: pulumi.CustomResourceOptions | undefined,
    type: string,
    /** Further outputs that are not inputs, besides `digest` and `ref`. @default [] */
    outputs: readonly string[] = [],
  ) {
    const unknown = Object.fromEntries(["digest", "ref", ...outputs].map((k) => [k, undefined]));
    super(provider, name, { ...args, ...unknown }, opts, "service", type);
  }
}
