/**
 * What the watcher knows of a site without Pulumi: its stack config (read from
 * `stacks/Pulumi.<site>.yaml`, validated by lib/config.ts), the registry repositories it
 * watches, how a pin set through the API maps to stack config keys, and whether what its stack
 * outputs say it runs differs from what its plan (lib/site.ts prepareSite) says it should run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import type { SiteOutputs } from "../lib/check";
import {
  CONFIG_NAMESPACE,
  RELEASE,
  isVersion,
  parseRepositoryConfig,
  parseSiteConfig,
  siteValuesFromConfigMap,
  type Pin,
  type RepositoryConfig,
  type SiteConfig,
} from "../lib/config";
import { isDigest, parseRepository } from "../lib/registry";
import { REPOSITORY_FILE, stackFile, type SitePlan } from "../lib/site";

/** A site as its stack file configures it. */
export interface SiteEntry {
  /** The stack name. */
  readonly site: string;
  /** `stacks/Pulumi.<site>.yaml`. */
  readonly file: string;
  /** The raw `config:` map of the stack file (keys `gitops-rings:*` and any others). */
  readonly raw: Readonly<Record<string, unknown>>;
  /** The validated site config, or undefined when it does not validate (see `error`). */
  readonly config?: SiteConfig;
  /** Why the stack file does not validate. */
  readonly error?: string;
}

/** Reads `gitops-rings.yaml` at the version repository's root. */
export function readRepository(root: string): RepositoryConfig {
  return parseRepositoryConfig(
    fs.readFileSync(path.join(root, REPOSITORY_FILE), "utf8"),
    REPOSITORY_FILE,
  );
}

/** The `config:` map of a stack file; `{}` when the file has none. */
export function readStackConfig(root: string, site: string): Record<string, unknown> {
  const file = path.join(root, stackFile(site));
  const doc = parseYaml(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
  return { ...(doc?.config ?? {}) };
}

/**
 * Every site of the version repository: one per `stacks/Pulumi.<site>.yaml`, sorted by name,
 * each with its validated config or the validation error.
 */
export function readSites(root: string, repo: RepositoryConfig): SiteEntry[] {
  const dir = path.join(root, "stacks");
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  return names.flatMap((name): SiteEntry[] => {
    const m = /^Pulumi\.(.+)\.ya?ml$/.exec(name);
    if (!m) return [];
    const site = m[1];
    const file = `stacks/${name}`;
    let raw: Record<string, unknown> = {};
    try {
      raw = readStackConfig(root, site);
      const config = parseSiteConfig(siteValuesFromConfigMap(raw), file, repo);
      return [{ site, file, raw, config }];
    } catch (e) {
      return [{ site, file, raw, error: (e as Error).message }];
    }
  });
}

/** The repositories a site runs images of, full names (`<registry>/<project>/<image>`), by service; `release` is the release repository. */
export function siteRepositories(
  repo: RepositoryConfig,
  site: Pick<SiteConfig, "registry">,
): Record<string, string> {
  const registry = site.registry ?? repo.registry;
  const out: Record<string, string> = {
    [RELEASE]: `${registry}/${repo.project}/${RELEASE}`,
  };
  for (const s of Object.values(repo.services)) {
    out[s.name] = `${registry}/${repo.project}/${s.image}`;
  }
  return out;
}

/** A repository name without its registry host: what Distribution's events name (`target.repository`). */
export function repositoryPath(repository: string): string {
  return parseRepository(repository).repository;
}

/**
 * The stack config key of a pin set through `POST /tags/{repo}` (registrywatcher's
 * `pinned_tag`): on the release repository, `gitops-rings:release` (a release version); on a
 * service's, `gitops-rings:pins.<service>.digest` for `sha256:…`, `.version` for a semver, and
 * `.tag` for any other tag.
 * @throws naming the repository and value when the release pin is not a version.
 */
export function pinKey(service: string, pinnedTag: string): { key: string; value: string } {
  if (service === RELEASE) {
    if (!isVersion(pinnedTag)) {
      throw new Error(
        `pinnedTag: "${pinnedTag}" is not a release version (the release repository is pinned by version)`,
      );
    }
    return { key: `${CONFIG_NAMESPACE}:release`, value: pinnedTag };
  }
  const kind = isDigest(pinnedTag) ? "digest" : isVersion(pinnedTag) ? "version" : "tag";
  return { key: `${CONFIG_NAMESPACE}:pins.${service}.${kind}`, value: pinnedTag };
}

/** The stack config key that `POST /tags/{repo}/reset` removes (see {@link pinKey}). */
export function pinRoot(service: string): string {
  return service === RELEASE
    ? `${CONFIG_NAMESPACE}:release`
    : `${CONFIG_NAMESPACE}:pins.${service}`;
}

/** A pin as the API shows it: the tag, version or digest. */
export function pinnedTagOf(pin: Pin | undefined): string | undefined {
  if (pin === undefined) return undefined;
  if ("version" in pin) return pin.version;
  if ("tag" in pin) return pin.tag;
  return pin.digest;
}

/**
 * Sets (`value` given) or removes (`value` undefined) the key path `key` (`gitops-rings:a.b.c`)
 * in a copy of a stack file's config map, as `pulumi config set --path` would.
 */
export function withConfigValue(
  raw: Readonly<Record<string, unknown>>,
  key: string,
  value: unknown,
): Record<string, unknown> {
  const [ns, ...rest] = key.split(":");
  const [top, ...inner] = rest.join(":").split(".");
  const out: Record<string, unknown> = { ...raw };
  const topKey = `${ns}:${top}`;
  if (inner.length === 0) {
    if (value === undefined) delete out[topKey];
    else out[topKey] = value;
    return out;
  }
  const clone = (v: unknown): Record<string, unknown> => {
    if (typeof v === "string" && /^\s*\{/.test(v)) {
      try {
        return { ...(JSON.parse(v) as Record<string, unknown>) };
      } catch {
        return {};
      }
    }
    return v !== null && typeof v === "object" ? { ...(v as Record<string, unknown>) } : {};
  };
  const root = clone(out[topKey]);
  let node = root;
  for (const k of inner.slice(0, -1)) {
    node[k] = clone(node[k]);
    node = node[k] as Record<string, unknown>;
  }
  const last = inner[inner.length - 1];
  if (value === undefined) delete node[last];
  else node[last] = value;
  out[topKey] = root;
  return out;
}

/** Whether the key path `key` (`gitops-rings:a.b.c`) is set in a stack file's config map. */
export function hasConfigValue(raw: Readonly<Record<string, unknown>>, key: string): boolean {
  const [ns, ...rest] = key.split(":");
  const [top, ...inner] = rest.join(":").split(".");
  let node: unknown = raw[`${ns}:${top}`];
  for (const k of inner) {
    if (typeof node === "string" && /^\s*\{/.test(node)) {
      try {
        node = JSON.parse(node);
      } catch {
        return false;
      }
    }
    if (node === null || typeof node !== "object") return false;
    node = (node as Record<string, unknown>)[k];
  }
  return node !== undefined;
}

/** Shortens a digest for messages: `sha256:4f1c2a9b0d3e`. */
const short = (digest: string | undefined) => (digest ? digest.slice(0, 19) : "nothing");

/**
 * How what a site runs (its stack outputs) differs from what its plan says it should run: one
 * line per difference, empty when in sync. A non-building site differs in its ring,
 * environment, release, or any service's digest; a building site, in any image the plan would
 * build, or a release or digest other than the plan's.
 * @param outputs the site's stack outputs (lib/check.ts parseSiteOutputs); undefined: never deployed.
 */
export function siteDrift(plan: SitePlan, outputs: SiteOutputs | undefined): string[] {
  if (outputs === undefined) return ["never deployed (the stack has no outputs)"];
  const drift: string[] = [];
  if (outputs.ring !== plan.ring) drift.push(`ring: runs ${outputs.ring}, should run ${plan.ring}`);
  if (outputs.environment !== plan.environment.name) {
    drift.push(`environment: runs ${outputs.environment}, should run ${plan.environment.name}`);
  }
  const running = outputs.release ?? "";
  const wanted = plan.build ? plan.release.version : (plan.deploy.release ?? "");
  if (running !== wanted) {
    drift.push(`release: runs ${running || "none"}, should run ${wanted || "none"}`);
  }
  const desired: Record<string, { version?: string; digest?: string; why: string }> = plan.build
    ? Object.fromEntries(
        plan.services.map((s) => [
          s.service,
          {
            version: s.version,
            ...(s.action === "build" ? {} : { digest: s.digest }),
            why: s.action === "build" ? `build (${s.reason})` : s.action,
          },
        ]),
      )
    : plan.deploy.images;
  for (const [service, want] of Object.entries(desired).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const has = outputs.services[service];
    if (want.digest === undefined) {
      drift.push(`${service}: would ${want.why} ${want.version ?? ""}`.trimEnd());
    } else if (has?.digest !== want.digest) {
      drift.push(
        `${service}: runs ${has?.version ?? "-"} (${short(has?.digest)}), ` +
          `should run ${want.version ?? "-"} (${short(want.digest)}, ${want.why})`,
      );
    }
  }
  for (const service of Object.keys(outputs.services).sort()) {
    if (!(service in desired)) drift.push(`${service}: runs, but no longer a service`);
  }
  return drift;
}
