/**
 * The OCI registry as the state store (DESIGN.md): the release repository is
 * `<registry>/<project>/release`; its version tags (`1.4.0`) are immutable and its ring tags
 * (`ring-<name>`) are the only moving pointers. A ring's state is the labels of the release
 * image its tag points at (lib/labels.ts).
 *
 * Invariant 2 is kept here: a ring tag moves only after every image the release names, and the
 * release itself, answer a HEAD; a multi-ring move (shift, unshift) checks every ring first and
 * moves nothing when any check fails. Every move is a compare-and-swap on the digest the ring
 * held when the move was planned ({@link RingMove.expected}), so a ring that another writer
 * moved in the meantime (a promote, an unshift, another site) is not silently overwritten, and
 * a multi-ring move that fails midway rolls back the moves it made (a failed run leaves every
 * ring where it was).
 */
import * as semver from "semver";
import {
  imageRecordFromLabels,
  LABEL_RELEASE_VERSION,
  LABEL_REVISION,
  parseReleaseLabels,
  releaseLabels,
  RELEASE_IMAGE,
  type Labels,
} from "./labels";
import {
  DEFAULT_PLATFORM,
  isTag,
  parseRepository,
  RegistryClient,
  type Platform,
} from "./registry";
import type { Digest, ImageRecord, ReleaseRecord, RingName, RingState, Version } from "./types";
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
  /** The ring the release comes from (for {@link StateStore.moveRing}, the release version). */
  readonly from: RingName;
  readonly release: ReleaseRecord;
  /**
   * The digest `ring` pointed at when the move was planned; undefined when it had no release.
   * The move is a compare-and-swap on it: a ring that holds anything else (but `release`
   * itself) by the time it moves is not moved.
   */
  readonly expected?: Digest;
}

/**
 * A compare-and-swap of a ring tag found the ring elsewhere than the move expected (another
 * writer moved it since the move was planned), or another writer moved it right after this move.
 */
export class RingMovedError extends Error {
  constructor(
    /** The ring. */
    readonly ring: RingName,
    /** The digest the move expected (undefined: no release). */
    readonly expected: Digest | undefined,
    /** The digest the ring was found at (undefined: no release). */
    readonly found: Digest | undefined,
    message: string,
  ) {
    super(message);
    this.name = "RingMovedError";
  }
}

/**
 * The moves of a shift over `states` (in ring order): each ring gets the release of the ring
 * before it, so the last ring's goes to `post` and `ante`'s feeds the first ring. A ring whose
 * predecessor points at nothing keeps what it has; a ring that already has its predecessor's
 * release is not moved. Moves come last ring first, so a run stopped midway duplicates a
 * release and never loses one. Each move expects the ring's release in `states`.
 */
export function planShift(states: readonly RingState[]): RingMove[] {
  const moves: RingMove[] = [];
  for (let i = states.length - 1; i >= 1; i--) {
    const move = moveFrom(states[i - 1], states[i]);
    if (move) moves.push(move);
  }
  return moves;
}

/**
 * The moves of an unshift over `states` (in ring order), the reverse of {@link planShift}: each
 * configured ring gets the release of the ring after it (`post`'s goes back to the last ring).
 * First ring first. `ante` is never moved: it is where base images and the next release are
 * prepared before the first ring (DESIGN.md flow 3, seed 001), so what was prepared there stays
 * and the first ring's release leaves the train (its version tag keeps it in the registry).
 * After a shift, an unshift restores every ring but `post` (the shift did not move `ante`).
 * Each move expects the ring's release in `states`.
 */
export function planUnshift(states: readonly RingState[]): RingMove[] {
  const moves: RingMove[] = [];
  for (let i = 0; i < states.length - 1; i++) {
    if (states[i].ring === ANTE) continue;
    const move = moveFrom(states[i + 1], states[i]);
    if (move) moves.push(move);
  }
  return moves;
}

/** `target` gets `source`'s release, expecting its own; none when there is nothing to move. */
function moveFrom(source: RingState, target: RingState): RingMove | undefined {
  if (!source.release || source.release.digest === target.release?.digest) return undefined;
  return {
    ring: target.ring,
    from: source.ring,
    release: source.release,
    ...(target.release ? { expected: target.release.digest } : {}),
  };
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

/**
 * How long an existence check begun by {@link beginReleaseCheck} stands in for the ring move's
 * own, in milliseconds. A move that comes later (a deploy of many Deployments, a slow Job)
 * checks again, so the images are always seen in the registry shortly before the ring moves.
 */
export const CHECK_AHEAD_MAX_AGE_MS = 60_000;

/** Existence checks begun ahead of a ring move, by `<release repository>@<digest>`. */
const checksAhead = new Map<
  string,
  { readonly begun: number; readonly missing: Promise<string[]> }
>();

/**
 * Begins checking, now, that every image a release names and the release itself are in the
 * registry, for the ring move that follows in this process ({@link StateStore.missingImages}
 * takes the result once). The publish of every image calls it (lib/publish.ts); it begins
 * nothing unless `labels` record a release (`LABEL_RELEASE_VERSION`, parsed by
 * `parseReleaseLabels`; labels that do not parse begin nothing, and the move reports them).
 * On a building site the existence checks of a release of N services (N + 1 `HEAD` requests)
 * then run during the site's deploy instead of after it, when the ring pointer moves
 * (issue 10). The move still waits for the result: invariant 2 holds as before.
 * @param releaseRepository the repository the image was published to; for a release,
 *   `<registry>/<project>/release`.
 * @param digest the digest its version tag points at.
 */
export function beginReleaseCheck(
  client: RegistryClient,
  releaseRepository: string,
  labels: Labels,
  digest: Digest,
): void {
  if (labels[LABEL_RELEASE_VERSION] === undefined) return;
  let release: ReleaseRecord;
  try {
    release = parseReleaseLabels(labels, digest);
  } catch {
    return;
  }
  const begun = Date.now();
  // Checks no move took in time are dropped, so that a process that lives long (the watcher)
  // keeps none of them.
  for (const [key, check] of checksAhead) {
    if (begun - check.begun > CHECK_AHEAD_MAX_AGE_MS) checksAhead.delete(key);
  }
  const missing = missingOf(client, releaseRepository, release);
  // Awaited by the move; a failure there is checked again rather than reported.
  missing.catch(() => undefined);
  checksAhead.set(`${releaseRepository}@${digest}`, { begun, missing });
}

/** The check begun ahead for `key`, if it is recent enough; it is taken only once. */
function takeCheckAhead(key: string): Promise<string[]> | undefined {
  const ahead = checksAhead.get(key);
  checksAhead.delete(key);
  return ahead && Date.now() - ahead.begun <= CHECK_AHEAD_MAX_AGE_MS ? ahead.missing : undefined;
}

/** The `HEAD` requests behind {@link StateStore.missingImages}, 4 at a time. */
async function missingOf(
  client: RegistryClient,
  releaseRepository: string,
  release: Pick<ReleaseRecord, "services"> & { digest?: string },
): Promise<string[]> {
  const refs = Object.values(release.services).map((s) => `${s.repository}@${s.digest}`);
  if (release.digest) refs.push(`${releaseRepository}@${release.digest}`);
  const present = await mapLimit(refs, 4, (ref) => client.manifestExists(ref));
  return refs.filter((_, i) => !present[i]);
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
   * images, then the release image itself when `release` has a digest). A check of the same
   * release begun by {@link beginReleaseCheck} in this process less than
   * {@link CHECK_AHEAD_MAX_AGE_MS} ago is taken instead, once; otherwise, or when it failed,
   * the images are checked now.
   */
  async missingImages(
    release: Pick<ReleaseRecord, "services"> & { digest?: string },
  ): Promise<string[]> {
    const ahead = release.digest
      ? takeCheckAhead(`${this.releaseRepository}@${release.digest}`)
      : undefined;
    const missing = ahead ? await ahead.catch(() => undefined) : undefined;
    return missing ?? missingOf(this.client, this.releaseRepository, release);
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

  /** `release <version> (<digest>)` for the release at `digest`, or `no release`. */
  private async describe(digest: Digest | undefined): Promise<string> {
    if (digest === undefined) return "no release";
    try {
      const release = await this.readReleaseAt(digest);
      return release ? `release ${release.version} (${digest})` : `${digest} (not in the registry)`;
    } catch {
      return digest;
    }
  }

  /** The digest the ring tag points at now, or undefined when it does not exist. */
  private async ringDigest(ring: RingName): Promise<Digest | undefined> {
    const r = parseRepository(this.releaseRepository);
    return (await this.client.headManifest({ ...r, tag: ringTag(ring) }))?.digest;
  }

  private async conflict(
    ring: RingName,
    expected: Digest | undefined,
    found: Digest | undefined,
  ): Promise<RingMovedError> {
    return new RingMovedError(
      ring,
      expected,
      found,
      `ring ${ring} moved since the move was planned: planned from ${await this.describe(expected)}, ` +
        `found at ${await this.describe(found)}`,
    );
  }

  /**
   * Compare-and-swap of one ring tag: points `ring` at `target` only when it still points at
   * `expected` (undefined: no tag). A ring already at `target` (a retry of a move that was
   * made) is left as it is, and the result says it did not move.
   *
   * Distribution 2.8 has no conditional manifest PUT (no `If-Match` on
   * `PUT /v2/<name>/manifests/<tag>`), so the compare and the swap are two requests and not
   * atomic. The window between them is kept to one HEAD and one PUT (the manifest bytes are
   * fetched before the compare), and the tag is read again after the PUT: a writer that moved
   * it inside the window and won is reported as a {@link RingMovedError}.
   * @returns whether the tag moved.
   * @throws {@link RingMovedError} when the ring is not at `expected`, or another writer won.
   */
  private async swapRing(
    ring: RingName,
    expected: Digest | undefined,
    target: Digest,
  ): Promise<boolean> {
    const r = parseRepository(this.releaseRepository);
    const manifest = await this.client.getManifest({ ...r, digest: target });
    const found = await this.ringDigest(ring);
    if (found === target) return false;
    if (found !== expected) throw await this.conflict(ring, expected, found);
    await this.client.putManifest(
      this.releaseRepository,
      ringTag(ring),
      manifest.bytes,
      manifest.mediaType,
    );
    const after = await this.ringDigest(ring);
    if (after !== target) {
      throw new RingMovedError(
        ring,
        target,
        after,
        `ring ${ring} was moved to ${await this.describe(target)}, but another writer moved it ` +
          `at the same time and won: it points at ${await this.describe(after)}`,
      );
    }
    return true;
  }

  /**
   * Checks every move before any tag moves: the release and every image it names exist, and
   * each ring still points where the move expects (or at the move's release already).
   */
  private async checkMoves(what: string, moves: readonly RingMove[]): Promise<void> {
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
    await mapLimit(moves, 2, async (m) => {
      const found = await this.ringDigest(m.ring);
      if (found !== m.expected && found !== m.release.digest) {
        problems.push((await this.conflict(m.ring, m.expected, found)).message);
      }
    });
    if (problems.length > 0) {
      throw new Error(`${what}: no ring moved: ${problems.sort().join("; ")}`);
    }
  }

  /**
   * Checks every move ({@link checkMoves}), then makes them in order, each a compare-and-swap
   * ({@link swapRing}). When one fails, the moves already made are rolled back in reverse
   * order, each again a compare-and-swap (expecting the release it moved to), and the error
   * says what was rolled back and what could not be. A ring that had no release cannot be
   * emptied again (Distribution 2.8 deletes no tag without deleting the manifest, which would
   * take the release's version tag with it): it keeps its new release, and the error says so.
   */
  private async applyChecked(what: string, moves: readonly RingMove[]): Promise<void> {
    await this.checkMoves(what, moves);
    const done: RingMove[] = [];
    for (const m of moves) {
      try {
        if (await this.swapRing(m.ring, m.expected, m.release.digest)) done.push(m);
      } catch (e) {
        // A writer that won the race moved the ring; otherwise nothing moved but `done`.
        const lost = e instanceof RingMovedError && e.expected === m.release.digest;
        const after =
          done.length > 0 ? `; ${await this.rollBack(done)}` : lost ? "" : "; no ring moved";
        throw new Error(`${what}: ${(e as Error).message}${after}`, { cause: e });
      }
    }
  }

  /** Undoes `done` (moves that were made), last first; says what it did. */
  private async rollBack(done: readonly RingMove[]): Promise<string> {
    const back: string[] = [];
    const kept: string[] = [];
    for (const m of [...done].reverse()) {
      if (m.expected === undefined) {
        kept.push(
          `ring ${m.ring} keeps release ${m.release.version}: it had no release, and Distribution cannot delete a tag alone`,
        );
        continue;
      }
      try {
        await this.swapRing(m.ring, m.release.digest, m.expected);
        back.push(`ring ${m.ring} back to ${await this.describe(m.expected)}`);
      } catch (e) {
        kept.push(`ring ${m.ring} not rolled back: ${(e as Error).message}`);
      }
    }
    return [
      `rolled back: ${back.length > 0 ? back.join(", ") : "nothing"}`,
      ...(kept.length > 0 ? [`NOT rolled back: ${kept.join("; ")}`] : []),
    ].join("; ");
  }

  /**
   * Points `ring` at release `releaseVersion`, checking first that the release (at `digest`,
   * when given) and every image it names exist (invariant 2), then moving the tag by
   * compare-and-swap on `expected` ({@link RingMove.expected}); otherwise the ring stays where
   * it was. A ring already at the release is left as it is (a retried move is no conflict).
   * @param options.expected the digest the ring held when the move was planned, `null` when it
   *   had no release @default what the ring holds when the move starts (a move by hand)
   * @param options.digest the digest the release must have (what the caller pushed)
   * @returns the ring's new state.
   * @throws when a check fails, or with the ring, the planned and the found release when the
   *   ring moved since the plan ({@link RingMovedError} as the cause).
   */
  async moveRing(
    ring: RingName,
    releaseVersion: Version,
    options: { readonly expected?: Digest | null; readonly digest?: Digest } = {},
  ): Promise<RingState> {
    this.assertRing(ring);
    const what = `move ring ${ring} to ${releaseVersion}`;
    const release = await this.readRelease(releaseVersion);
    if (options.digest !== undefined && release.digest !== options.digest) {
      throw new Error(
        `${what}: release ${releaseVersion} is ${release.digest} in the registry, ` +
          `not ${options.digest} as this update pushed it; no ring moved`,
      );
    }
    const expected =
      options.expected === undefined
        ? await this.ringDigest(ring)
        : (options.expected ?? undefined);
    await this.applyChecked(what, [
      { ring, from: releaseVersion, release, ...(expected ? { expected } : {}) },
    ]);
    return { ring, release };
  }

  /**
   * Copies ring `from`'s release to ring `to` (checked like {@link moveRing}, and a
   * compare-and-swap on what `to` held when `from` was read).
   * @param to @default the ring after `from`
   * @throws when `from` has no release or is `post` without a `to`.
   */
  async promote(from: RingName, to?: RingName): Promise<RingState> {
    const target = to ?? this.nextRing(from);
    if (target === undefined) throw new Error(`promote ${from}: there is no ring after ${from}`);
    this.assertRing(target);
    const [state, before] = await Promise.all([this.readRing(from), this.ringDigest(target)]);
    if (!state.release)
      throw new Error(`promote ${from} to ${target}: ring ${from} has no release`);
    await this.applyChecked(`promote ${from} to ${target}`, [
      { ring: target, from, release: state.release, ...(before ? { expected: before } : {}) },
    ]);
    return { ring: target, release: state.release };
  }

  /**
   * Moves the whole train one step ({@link planShift}): checks every release that would move
   * and every ring's pointer, then moves the ring tags by compare-and-swap; a failed check
   * moves nothing, and a failed move rolls back the moves made before it.
   * @returns every ring's state afterwards, in ring order.
   */
  async shift(): Promise<RingState[]> {
    const states = await this.readRings();
    const moves = planShift(states);
    await this.applyChecked("shift", moves);
    return applyMoves(states, moves);
  }

  /**
   * Moves the whole train one step back ({@link planUnshift}; `ante` stays as it is), checked
   * and rolled back like {@link shift}.
   * @returns every ring's state afterwards, in ring order.
   */
  async unshift(): Promise<RingState[]> {
    const states = await this.readRings();
    const moves = planUnshift(states);
    await this.applyChecked("unshift", moves);
    return applyMoves(states, moves);
  }
}
