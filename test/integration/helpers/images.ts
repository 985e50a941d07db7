/**
 * Real image content for tests: ustar archives built in memory (what a layer is), pushed
 * through lib/registry.ts's blob and manifest calls.
 */
import { imageLabels } from "../../../lib/labels";
import type { PushedManifest, RegistryClient } from "../../../lib/registry";
import type { ImageRecord, SourceCommit } from "../../../lib/types";

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

/**
 * A POSIX ustar archive holding `files` (path to content), regular files with mode 0644,
 * uid/gid 0 and mtime 0, so equal inputs give equal bytes (and equal layer digests).
 */
export function tarOf(files: Readonly<Record<string, string>>): Buffer {
  const blocks: Buffer[] = [];
  for (const name of Object.keys(files).sort()) {
    const data = Buffer.from(files[name], "utf8");
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, "utf8");
    header.write(octal(0o644, 8), 100, "ascii");
    header.write(octal(0, 8), 108, "ascii");
    header.write(octal(0, 8), 116, "ascii");
    header.write(octal(data.length, 12), 124, "ascii");
    header.write(octal(0, 12), 136, "ascii");
    header.write("        ", 148, "ascii");
    header.write("0", 156, "ascii");
    header.write("ustar\0", 257, "ascii");
    header.write("00", 263, "ascii");
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(octal(sum, 7) + " ", 148, "ascii");
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** What {@link pushServiceImage} pushes. */
export interface ServiceImageSpec {
  readonly service: string;
  readonly version: string;
  readonly revision?: string;
  readonly sources?: readonly SourceCommit[];
  readonly dependencies?: Readonly<Record<string, string>>;
  /** Files of the one layer. @default `{ "app/<service>.txt": "<service> <version>" }` */
  readonly files?: Readonly<Record<string, string>>;
  /** Tag. @default `version` */
  readonly tag?: string;
  readonly format?: "oci" | "docker";
}

/**
 * Pushes a service image as the build would: one layer, the labels of lib/labels.ts
 * (project `example`), tagged with its version.
 * @returns its {@link ImageRecord}.
 */
export async function pushServiceImage(
  client: RegistryClient,
  registry: string,
  spec: ServiceImageSpec,
): Promise<ImageRecord & { readonly pushed: PushedManifest }> {
  const repository = `${registry}/example/${spec.service}`;
  const revision = spec.revision ?? `v1:sha256:${spec.service.padEnd(64, "0").slice(0, 64)}`;
  const pushed = await client.pushImage(repository, {
    labels: imageLabels({
      project: "example",
      image: spec.service,
      version: spec.version,
      revision,
      sources: spec.sources,
      dependencies: spec.dependencies,
    }),
    layers: [
      tarOf(spec.files ?? { [`app/${spec.service}.txt`]: `${spec.service} ${spec.version}` }),
    ],
    tag: spec.tag ?? spec.version,
    format: spec.format,
  });
  return {
    service: spec.service,
    repository,
    version: spec.version,
    digest: pushed.descriptor.digest,
    revision,
    dependencies: spec.dependencies ?? {},
    sources: [...(spec.sources ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1)),
    pushed,
  };
}

/** `record` without the `pushed` detail, as the state store reads it back. */
export function recordOf(record: ImageRecord & { pushed?: unknown }): ImageRecord {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { pushed, ...rest } = record;
  return rest;
}
