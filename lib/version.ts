/**
 * The version rule and the ring order, exactly as ../shared/DESIGN.md ("The version rule")
 * takes them from GitOps seed 001 ("Versioning", "Rings"). Plain functions over plain values.
 */
import * as semver from "semver";
import type { RingName, Version } from "./types";

/** The pseudo-ring before the configured rings, where base images are prepared (seed 001). */
export const ANTE: RingName = "ante";
/** The pseudo-ring after the configured rings, holding what was shifted off (seed 001). */
export const POST: RingName = "post";

/**
 * Every ring in order: `ante`, the configured rings, `post` (GitOps seed 001, "Rings").
 * @param rings the configured rings, in order, without the pseudo-rings.
 * @returns `['ante', ...rings, 'post']`.
 */
export function allRings(rings: readonly RingName[]): RingName[] {
  return [ANTE, ...rings, POST];
}

/**
 * The ring after `ring` in {@link allRings} order: N when building against R (DESIGN.md).
 * @param rings the configured rings, in order, without the pseudo-rings.
 * @param ring a ring of `allRings(rings)`.
 * @returns the next ring, or undefined for `post`.
 * @throws {Error} when `ring` is not a ring of `allRings(rings)`.
 */
export function nextRing(rings: readonly RingName[], ring: RingName): RingName | undefined {
  const all = allRings(rings);
  const i = all.indexOf(ring);
  if (i < 0) throw new Error(`${JSON.stringify(ring)} is not a ring (${all.join(", ")})`);
  return all[i + 1];
}

/**
 * The ring before `ring` in {@link allRings} order.
 * @param rings the configured rings, in order, without the pseudo-rings.
 * @param ring a ring of `allRings(rings)`.
 * @returns the previous ring, or undefined for `ante`.
 * @throws {Error} when `ring` is not a ring of `allRings(rings)`.
 */
export function previousRing(rings: readonly RingName[], ring: RingName): RingName | undefined {
  const all = allRings(rings);
  const i = all.indexOf(ring);
  if (i < 0) throw new Error(`${JSON.stringify(ring)} is not a ring (${all.join(", ")})`);
  return i === 0 ? undefined : all[i - 1];
}

/** What {@link nextVersion} decides from. */
export interface NextVersionInput {
  /** The image's (or release's) version in ring R, the ring built against. */
  readonly current?: Version;
  /** Its version in ring N, the ring after R. */
  readonly next?: Version;
  /**
   * The highest version tag its repository holds already, whichever ring (if any) points at
   * it. Read only when neither R nor N has a version: it then counts as the version in R, so a
   * service re-added after its rings were emptied continues after its last build instead of
   * restarting at the initial version (which a semver policy would never select).
   */
  readonly registry?: Version;
  /**
   * The major version the site requests (stack config `majorBump.<service>`): the build gives
   * `major.0.0` when the version it bumps from has a lower major, and follows the ring rule
   * once that major is reached, so one request bumps the major once.
   */
  readonly major?: number;
  /** The version when there is none anywhere. @default "0.1.0" */
  readonly initial?: Version;
}

/**
 * The version of a rebuild in ring R (DESIGN.md, "The version rule", from GitOps seed 001):
 *
 * | version in R | version in N | next build in R |
 * |---|---|---|
 * | none | none | initial (0.1.0) |
 * | 0.3.2 | none | 0.3.3 |
 * | 0.3.2 | 0.2.7 | 0.3.3 |
 * | 0.3.2 | 0.3.2 (just promoted) | 0.4.0 |
 * | 0.4.0 | 0.3.2 | 0.4.1 |
 *
 * Same major.minor in N as in R: bump minor; otherwise bump patch. Cases the table leaves
 * open:
 * - none in R but a version in N (R's image was shifted on, or R was reset) counts as R
 *   holding N's version, so the build leaves N's minor line to N (0.3.2 in N gives 0.4.0);
 * - none in R nor N but version tags in the registry: the highest of them counts as the
 *   version in R ("no version anywhere" means none in the registry), so 0.5.3 gives 0.5.4;
 * - a requested major M (`major`) above the major of the version bumped from gives `M.0.0`
 *   (with nothing anywhere: `M.0.0` when the initial version's major is below M); once the
 *   major is M or more the rule above applies again, so the request bumps once.
 *
 * Prerelease and build parts of the base are dropped; the result is always greater than the
 * base. Releases use the same rule.
 * @param input the versions in R, N and the registry, the requested major, the initial version.
 * @returns the next version.
 * @throws {Error} when a given version is not semver, or `major` is not a whole number.
 */
export function nextVersion(input: NextVersionInput): Version {
  const initial = input.initial ?? "0.1.0";
  const initialMajor = (parse(initial, "initial") as semver.SemVer).major;
  const current = parse(input.current, "current");
  const next = parse(input.next, "next");
  const registry = parse(input.registry, "registry");
  const major = input.major ?? 0;
  if (!Number.isSafeInteger(major) || major < 0) {
    throw new Error(`requested major ${JSON.stringify(input.major)} is not a whole number`);
  }
  const base = current ?? next ?? registry;
  if (base === undefined) return initialMajor < major ? `${major}.0.0` : initial;
  if (base.major < major) return `${major}.0.0`;
  if (next !== undefined && next.major === base.major && next.minor === base.minor) {
    return `${base.major}.${base.minor + 1}.0`;
  }
  return `${base.major}.${base.minor}.${base.patch + 1}`;
}

function parse(version: Version | undefined, what: string): semver.SemVer | undefined {
  if (version === undefined) return undefined;
  const parsed = semver.parse(version);
  if (parsed === null || parsed.version !== version.replace(/\+.*$/, "")) {
    throw new Error(`${what} version ${JSON.stringify(version)} is not a version`);
  }
  return parsed;
}
