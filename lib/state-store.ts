/**
 * The OCI registry as the state store (DESIGN.md): the release repository is
 * `<registry>/<project>/release`; its version tags (`1.4.0`) are immutable and its ring tags
 * (`ring-<name>`) are the only moving pointers. A ring's state is the labels of the release
 * image its tag points at (lib/labels.ts).
 *
 * Invariant 2 is kept here: a ring tag moves only after every image the release names, and the
 * release itself, answer a HEAD; a multi-ring move (shift, unshift) checks every ring first and
 * moves nothing when any check fails.
 */
import * as semver from "semver";
import {
  imageRecordFromLabels,
  LABEL_REVISION,
  parseReleaseLabels,
  releaseLabels,
  RELEASE_IMAGE,
} from "./labels";
import {
  DEFAULT_PLATFORM,
  isTag,
  parseRepository,
  RegistryClient,
  type Platform,
} from "./registry";
import type { ImageRecord, ReleaseRecord, RingName, RingState, Version } from "./types";
import { allRings, ANTE, POST } from "./version";
import { mapLimit } from "./limit";

export { ANTE, POST };

/** The tag of a ring pointer on the release repository: `ring-<name>`. */
export function ringTag(ring: RingName): string {
  return `ring-${ring}`;
}

/**
 * The full ring order: `ante`, the configured rings, `post`.
 * @throws when a configured ring is `ante` or `post`, repeats, or cannot be a tag.
 */
export function ringOrder(rings: readonly RingName[]): RingName[] {
  const seen = new Set<string>();
  for (const ring of rings) {
    if (ring === ANTE || ring === POST) {
      throw new Error(`ring ${JSON.stringify(ring)} is a pseudo-ring and is always added`);
    }
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(ring) || !isTag(ringTag(ring))) {
      throw new Error(`ring ${JSON.stringify(ring)}: use lowercase letters, digits, ".", "_", "-"`);
    }
    if (seen.has(ring)) throw new Error(`ring ${JSON.stringify(ring)} is listed twice`);
    seen.add(ring);
  }
  return allRings(rings);
}

/** One ring pointer move: `ring` gets `release`, which ring `from` holds. */
export interface RingMove {
  readonly ring: RingName;
  readonly from: RingName;
  readonly release: ReleaseRecord;
}

/**
 * The moves of a shift over `states` (in ring order): each ring gets the release of the ring
 * before it, so the last ring's goes to `post` and `ante`'s feeds the first ring. A ring whose
 * predecessor points at nothing keeps what it has; a ring that already has its predecessor's
 * release is not moved. Moves come last ring first, so a run stopped midway duplicates a
 * release and never loses one.
 */
export function planShift(states: readonly RingState[]): RingMove[] {
  const moves: RingMove[] = [];
  for (let i = states.length - 1; i >= 1; i--) {
    const source = states[i - 1].release;
    if (source && source.digest !== states[i].release?.digest) {
      moves.push({ ring: states[i].ring, from: states[i - 1].ring, release: source });
    }
  }
  return moves;
}

/**
 * The moves of an unshift over `states` (in ring order), the reverse of {@link planShift}: each
 * ring gets the release of the ring after it (`post`'s goes back to the last ring, the first
 * ring's to `ante`). First ring first. After a shift, an unshift restores every ring but `post`.
 */
export function planUnshift(states: readonly RingState[]): RingMove[] {
  const moves: RingMove[] = [];
  for (let i = 0; i < states.length - 1; i++) {
    const source = states[i + 1].release;
    if (source && source.digest !== states[i].release?.digest) {
      moves.push({ ring: states[i].ring, from: states[i + 1].ring, release: source });
    }
  }
  return moves;
}

/** Applies `moves` to `states` without I/O: what the rings point at afterwards. */
export function applyMoves(states: readonly RingState[], moves: readonly RingMove[]): RingState[] {
  const after = new Map(moves.map((m) => [m.ring, m.release]));
  return states.map((s) => (after.has(s.ring) ? { ring: s.ring, release: after.get(s.ring) } : s));
}

/** Options of {@link StateStore}. */
export interface StateStoreOptions {
  /** The registry, `host[:port]`, e.g. `127.0.0.1:5000`. */
  readonly registry: string;
  /** The project: repositories are `<registry>/<project>/<image>`. May contain slashes. */
  readonly project: string;
  /** The configured rings in order, without `ante` and `post`. */
  readonly rings: readonly RingName[];
  /**
   * The registry client (share one: it caches tokens).
   * @default a new {@link RegistryClient} with default options
   */
  readonly client?: RegistryClient;
  /** `org.opencontainers.image.vendor` on the release image. */
  readonly vendor?: string;
  /**
   * The platform whose labels are read when a service image is an index.
   * @default linux/amd64
   */
  readonly platform?: Platform;
  /**
   * How many version tags {@link StateStore.findByRevision} reads, newest first.
   * @default 50
   */
  readonly scanLimit?: number;
}

/** The registry as state store: ring pointers, releases and version tags. */
export class StateStore {
  /** `<registry>/<project>/release`. */
  readonly releaseRepository: string;
  /** `ante`, the configured rings, `post`. */
  readonly rings: readonly RingName[];
  readonly client: RegistryClient;
  private readonly platform: Platform;

  constructor(private readonly options: StateStoreOptions) {
    this.rings = ringOrder(options.rings);
    this.client = options.client ?? new RegistryClient();
    this.platform = options.platform ?? DEFAULT_PLATFORM;
    this.releaseRepository = `${options.registry}/${options.project}/${RELEASE_IMAGE}`;
    parseRepository(this.releaseRepository);
  }

  /** `<registry>/<project>/<image>`. */
  repositoryOf(image: string): string {
    return `${this.options.registry}/${this.options.project}/${image}`;
  }

  private assertRing(ring: RingName): void {
    if (!this.rings.includes(ring)) {
      throw new Error(`unknown ring ${JSON.stringify(ring)} (rings: ${this.rings.join(", ")})`);
    }
  }

  /** The ring after `ring` in the order, or undefined for `post`. */
  nextRing(ring: RingName): RingName | undefined {
    this.assertRing(ring);
    return this.rings[this.rings.indexOf(ring) + 1];
  }

  /** Reads the release image at `reference` (tag or digest) of the release repository. */
  private async readReleaseAt(reference: string): Promise<ReleaseRecord | undefined> {
    const r = parseRepository(this.releaseRepository);
    const at = reference.includes(":") ? { ...r, digest: reference } : { ...r, tag: reference };
    const head = await this.client.headManifest(at);
    if (!head) return undefined;
    const { labels } = await this.client.getImageConfig(
      { ...r, digest: head.digest },
      this.platform,
    );
    try {
      return parseReleaseLabels(labels, head.digest);
    } catch (e) {
      throw new Error(`${this.releaseRepository}:${reference}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /**
   * What `ring` points at: the release (version, digest, every service's version, digest,
   * revision, repository and sources), or no release when its tag does not exist yet.
   * @throws on an unknown ring, or when the tag points at an image that is not a release.
   */
  async readRing(ring: RingName): Promise<RingState> {
    this.assertRing(ring);
    const release = await this.readReleaseAt(ringTag(ring));
    return release ? { ring, release } : { ring };
  }

  /** Every ring's state, in ring order (`ante` first, `post` last). */
  async readRings(): Promise<RingState[]> {
    return Promise.all(this.rings.map((ring) => this.readRing(ring)));
  }

  /**
   * The release with version tag `version`.
   * @throws when there is no such release.
   */
  async readRelease(version: Version): Promise<ReleaseRecord> {
    if (semver.valid(version) !== version) {
      throw new Error(`release version ${JSON.stringify(version)} is not a semantic version`);
    }
    const release = await this.readReleaseAt(version);
    if (!release) throw new Error(`${this.releaseRepository}: release ${version} does not exist`);
    return release;
  }

  /**
   * The semver tags of `repository`, ascending (other tags, such as ring tags, are left out).
   * @param repository @default the release repository
   */
  async listVersions(repository: string = this.releaseRepository): Promise<Version[]> {
    const tags = await this.client.listTags(repository);
    return tags.filter((t) => semver.valid(t) === t).sort(semver.compare);
  }

  /**
   * The newest image of `repository` whose revision label equals `revision`, so the build can
   * reuse it instead of rebuilding (invariant 3). Reads the config labels of at most
   * `scanLimit` version tags, newest first, a few at a time.
   * @param options.service the service name the record gets @default the repository's last path component
   * @param options.versions the repository's version tags, when the caller listed them already
   *   @default {@link StateStore.listVersions}
   * @returns the image's record, or undefined when none of the scanned tags has that revision.
   */
  async findByRevision(
    repository: string,
    revision: string,
    options: {
      readonly service?: string;
      readonly limit?: number;
      readonly versions?: readonly Version[];
    } = {},
  ): Promise<ImageRecord | undefined> {
    const versions = [...(options.versions ?? (await this.listVersions(repository)))].reverse();
    const scan = versions.slice(0, options.limit ?? this.options.scanLimit ?? 50);
    const service = options.service ?? repository.slice(repository.lastIndexOf("/") + 1);
    const batch = 4;
    for (let i = 0; i < scan.length; i += batch) {
      const configs = await mapLimit(scan.slice(i, i + batch), batch, (tag) =>
        this.client.getImageConfig(`${repository}:${tag}`, this.platform),
      );
      const hit = configs.find((c) => c.labels[LABEL_REVISION] === revision);
      if (hit) {
        return imageRecordFromLabels(hit.labels, { service, repository, digest: hit.digest });
      }
    }
    return undefined;
  }

  /**
   * Every digest `release` names that the registry lacks, as `repository@digest` (service
   * images, then the release image itself when `release` has a digest).
   */
  async missingImages(release: Pick<ReleaseRecord, "services"> & { digest?: string }) {
    const refs = Object.values(release.services).map((s) => `${s.repository}@${s.digest}`);
    if (release.digest) refs.push(`${this.releaseRepository}@${release.digest}`);
    const present = await mapLimit(refs, 4, (ref) => this.client.manifestExists(ref));
    return refs.filter((_, i) => !present[i]);
  }

  private async assertComplete(
    what: string,
    release: Pick<ReleaseRecord, "version" | "services"> & { digest?: string },
  ): Promise<void> {
    const missing = await this.missingImages(release);
    if (missing.length > 0) {
      throw new Error(
        `${what}: release ${release.version} names images the registry does not have: ${missing.join(", ")}`,
      );
    }
  }

  /**
   * Pushes the release image: `FROM scratch`, zero layers, an OCI manifest whose config carries
   * {@link releaseLabels}, under the immutable version tag `release.version`. Checks first that
   * every service image it names exists. The config has no timestamp, so pushing the same
   * release twice is a no-op, and pushing other content under an existing version is refused
   * (`TagImmutableError` of lib/registry.ts).
   * @returns the release with its digest.
   */
  async pushRelease(release: Pick<ReleaseRecord, "version" | "services">): Promise<ReleaseRecord> {
    await this.assertComplete(`push release to ${this.releaseRepository}`, release);
    const labels = releaseLabels(release, {
      project: this.options.project,
      vendor: this.options.vendor,
    });
    const pushed = await this.client.pushImage(this.releaseRepository, {
      labels,
      layers: [],
      platform: this.platform,
      tag: release.version,
    });
    return {
      version: release.version,
      digest: pushed.descriptor.digest,
      services: release.services,
    };
  }

  private async applyChecked(what: string, moves: readonly RingMove[]): Promise<void> {
    const byDigest = new Map(moves.map((m) => [m.release.digest, m]));
    const problems: string[] = [];
    await mapLimit([...byDigest.values()], 2, async (m) => {
      const missing = await this.missingImages(m.release);
      if (missing.length > 0) {
        problems.push(
          `ring ${m.ring} would get release ${m.release.version} (from ${m.from}), which names missing images: ${missing.join(", ")}`,
        );
      }
    });
    if (problems.length > 0) {
      throw new Error(`${what}: no ring moved: ${problems.sort().join("; ")}`);
    }
    for (const m of moves) {
      await this.client.moveTag(this.releaseRepository, ringTag(m.ring), m.release.digest);
    }
  }

  /**
   * Points `ring` at release `releaseVersion`, after checking that the release and every image
   * it names exist (invariant 2); otherwise the ring stays where it was.
   * @returns the ring's new state.
   */
  async moveRing(ring: RingName, releaseVersion: Version): Promise<RingState> {
    this.assertRing(ring);
    const release = await this.readRelease(releaseVersion);
    await this.applyChecked(`move ring ${ring} to ${releaseVersion}`, [
      { ring, from: releaseVersion, release },
    ]);
    return { ring, release };
  }

  /**
   * Copies ring `from`'s release to ring `to` (checked like {@link moveRing}).
   * @param to @default the ring after `from`
   * @throws when `from` has no release or is `post` without a `to`.
   */
  async promote(from: RingName, to?: RingName): Promise<RingState> {
    const target = to ?? this.nextRing(from);
    if (target === undefined) throw new Error(`promote ${from}: there is no ring after ${from}`);
    this.assertRing(target);
    const state = await this.readRing(from);
    if (!state.release)
      throw new Error(`promote ${from} to ${target}: ring ${from} has no release`);
    await this.applyChecked(`promote ${from} to ${target}`, [
      { ring: target, from, release: state.release },
    ]);
    return { ring: target, release: state.release };
  }

  /**
   * Moves the whole train one step ({@link planShift}): checks every release that would move,
   * then moves the ring tags; a failed check moves nothing.
   * @returns every ring's state afterwards, in ring order.
   */
  async shift(): Promise<RingState[]> {
    const states = await this.readRings();
    const moves = planShift(states);
    await this.applyChecked("shift", moves);
    return applyMoves(states, moves);
  }

  /**
   * Moves the whole train one step back ({@link planUnshift}), checked like {@link shift}.
   * @returns every ring's state afterwards, in ring order.
   */
  async unshift(): Promise<RingState[]> {
    const states = await this.readRings();
    const moves = planUnshift(states);
    await this.applyChecked("unshift", moves);
    return applyMoves(states, moves);
  }
}
