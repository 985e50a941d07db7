/**
 * lib/buildkit.ts against the local platform's BuildKit daemon ($BUILDKIT_HOST, runc worker)
 * pushing into a private registry started for this suite (helpers/registry.ts) on a random
 * 127.0.0.1 port: buildctl's `registry.insecure=true` output option makes BuildKit push there
 * over plain HTTP, and BuildKit pulls named contexts from loopback over HTTP on its own.
 *
 * And the rules of lib/dockerfile.ts and lib/revision.ts held against the real builder, with
 * what BuildKit put in a layer read back from the registry:
 * - every reference to a service (FROM, `COPY --from`, `RUN --mount=from`) builds against that
 *   service's digest through referencePins (DESIGN.md invariant 7); this machine has no
 *   internet, so a reference left to BuildKit's default (`docker.io/library/<name>`) fails;
 * - symlinks, directories and permission bits land in the image as the revision counts them
 *   (invariant 3);
 * - a wildcard that matches nothing passes in BuildKit and in the plan, and one below a missing
 *   directory fails in both (invariant 6).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { buildWithBuildkit, type BuildkitResult } from "../../lib/buildkit";
import { ConfigError } from "../../lib/config";
import {
  ServiceTriggers,
  readBuild,
  referencePins,
  type ServiceImages,
} from "../../lib/dockerfile";
import { isAttestation } from "../../lib/provenance";
import {
  RegistryClient,
  TagImmutableError,
  isIndexMediaType,
  sha256Digest,
  type ImageIndex,
  type ImageManifest,
} from "../../lib/registry";
import { computeRevisionInput } from "../../lib/revision";
import { useRegistry } from "./helpers/registry";

const BASE_CONTEXT = path.resolve(__dirname, "../../app/services/base");

/** One tar entry: type flag (`0` file, `2` symlink, `5` directory), permission bits, content. */
interface TarEntry {
  readonly type: string;
  readonly mode: number;
  readonly content?: string;
  readonly link?: string;
}

/** The entries of an uncompressed tar by name (no trailing slash), PAX paths applied. */
function tarEntries(tar: Buffer): Record<string, TarEntry> {
  const entries: Record<string, TarEntry> = {};
  let paxPath: string | undefined;
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from: number, length: number) =>
      header.toString("utf8", from, from + length).replace(/\0.*$/s, "");
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1) || "0";
    const body = tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"))?.[1];
      continue;
    }
    if (type === "g") continue;
    const name = (
      paxPath ?? (field(345, 155) ? `${field(345, 155)}/` : "") + field(0, 100)
    ).replace(/\/$/, "");
    paxPath = undefined;
    entries[name] = {
      type,
      mode: parseInt(field(100, 8).trim(), 8) & 0o7777,
      ...(type === "0" ? { content: body.toString("utf8") } : {}),
      ...(type === "2" ? { link: field(157, 100) } : {}),
    };
  }
  return entries;
}

/** Names and contents of the regular files in an uncompressed tar. */
function tarFiles(tar: Buffer): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, entry] of Object.entries(tarEntries(tar))) {
    if (entry.content !== undefined) files[name] = entry.content;
  }
  return files;
}

describe("buildWithBuildkit against BuildKit and a registry", function () {
  this.timeout(180_000);
  const registry = useRegistry();
  const addr = process.env.BUILDKIT_HOST ?? "";
  let client: RegistryClient;
  let tmp: string;

  /** A directory with `files` in it (paths relative to it). */
  function dirWith(name: string, files: Record<string, string>): string {
    const dir = path.join(tmp, name);
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    }
    return dir;
  }

  /**
   * The image manifest of a single-platform build: BuildKit pushes an index of it and its
   * provenance attestation (lib/provenance.ts), so the runnable manifest is read through it.
   */
  async function manifestOf(ref: string): Promise<ImageManifest> {
    const top = await client.getManifest(ref);
    if (!isIndexMediaType(top.mediaType)) return top.manifest as ImageManifest;
    const [image, ...others] = (top.manifest as ImageIndex).manifests.filter(
      (m) => !isAttestation(m),
    );
    assert.equal(others.length, 0, `${ref}: one platform expected`);
    return (await client.getManifest(`${ref.split("@")[0]}@${image.digest}`))
      .manifest as ImageManifest;
  }

  before(function () {
    if (!addr) throw new Error('BUILDKIT_HOST is not set: eval "$(bash scripts/platform.sh env)"');
    client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-buildkit-"));
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("GIVEN a FROM scratch Dockerfile that copies one file, with labels", () => {
    const labels = {
      "org.opencontainers.image.version": "0.1.0",
      "org.opencontainers.image.ref.name": "example/hello",
      "it.example/commas": "a,b=c",
    };
    let repo: string;
    let context: string;
    let built: BuildkitResult;

    before(async () => {
      repo = `${registry().host}/it/hello`;
      context = dirWith("hello", {
        Dockerfile: "FROM scratch\nCOPY hello.txt /hello.txt\n",
        "hello.txt": "hello from buildkit\n",
      });
      built = await buildWithBuildkit({
        addr,
        context,
        dockerfile: path.join(context, "Dockerfile"),
        labels,
        repository: repo,
      });
    });

    it("WHEN built THEN the digest is the registry's digest of the pushed manifest", async () => {
      assert.match(built.digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(built.ref, `${repo}@${built.digest}`);
      assert.equal(await client.resolveDigest(built.ref), built.digest);
      const pushed = await client.getManifest(built.ref);
      assert.equal(pushed.digest, built.digest);
      assert.equal(sha256Digest(pushed.bytes), built.digest);
    });

    it("WHEN built THEN its one layer holds exactly the copied file", async () => {
      const manifest = await manifestOf(built.ref);
      assert.equal(manifest.layers.length, 1);
      const layer = gunzipSync(await client.getBlob(repo, manifest.layers[0].digest));
      assert.deepEqual(tarFiles(layer), { "hello.txt": "hello from buildkit\n" });
    });

    it("WHEN built THEN the image config has exactly the labels passed", async () => {
      assert.deepEqual(await client.getLabels(built.ref), labels);
    });

    it("WHEN built THEN it was pushed by digest only: no tag", async () => {
      assert.deepEqual(await client.listTags(repo), []);
    });

    describe("AND a Dockerfile FROM base with build args, given base as a named context", () => {
      let child: BuildkitResult;

      before(async () => {
        const dir = dirWith("child", {
          Dockerfile:
            "FROM base\nARG GREETING\nARG FILE=default.txt\n" +
            "COPY ${FILE} /child.txt\nLABEL it.example/greeting=$GREETING\n",
          "default.txt": "default\n",
          "chosen.txt": "chosen by a build arg\n",
        });
        child = await buildWithBuildkit({
          addr,
          context: dir,
          dockerfile: path.join(dir, "Dockerfile"),
          buildArgs: { GREETING: "hello, world", FILE: "chosen.txt" },
          namedContexts: { base: `docker-image://${built.ref}` },
          labels: { "org.opencontainers.image.version": "0.2.0" },
          repository: `${registry().host}/it/child`,
        });
      });

      it("WHEN built THEN its layers are the base's layer and then its own", async () => {
        const base = await manifestOf(built.ref);
        const mine = await manifestOf(child.ref);
        assert.equal(mine.layers.length, 2);
        assert.deepEqual(mine.layers[0], base.layers[0]);
        const own = gunzipSync(
          await client.getBlob(child.ref.split("@")[0], mine.layers[1].digest),
        );
        assert.deepEqual(tarFiles(own), { "child.txt": "chosen by a build arg\n" });
      });

      it("WHEN built THEN the build args reached the Dockerfile and the labels merge over the base's", async () => {
        assert.deepEqual(await client.getLabels(child.ref), {
          ...labels,
          "org.opencontainers.image.version": "0.2.0",
          "it.example/greeting": "hello, world",
        });
      });
    });

    describe("AND the registry client puts the version tag", () => {
      let other: BuildkitResult;

      before(async () => {
        const dir = dirWith("other", {
          Dockerfile: "FROM scratch\nCOPY other.txt /other.txt\n",
          "other.txt": "another image\n",
        });
        other = await buildWithBuildkit({
          addr,
          context: dir,
          dockerfile: path.join(dir, "Dockerfile"),
          repository: repo,
        });
        assert.notEqual(other.digest, built.digest);
      });

      it("WHEN the tag is new THEN it points at the digest", async () => {
        await client.putTag(repo, "0.1.0", built.digest);
        assert.equal(await client.resolveDigest(`${repo}:0.1.0`), built.digest);
        assert.deepEqual(await client.listTags(repo), ["0.1.0"]);
      });

      it("WHEN the tag already points at the same digest THEN it is a no-op", async () => {
        await client.putTag(repo, "0.1.0", built.digest);
        assert.equal(await client.resolveDigest(`${repo}:0.1.0`), built.digest);
        assert.deepEqual(await client.listTags(repo), ["0.1.0"]);
      });

      it("WHEN the tag points at another digest THEN it throws TagImmutableError and the tag stays", async () => {
        await assert.rejects(client.putTag(repo, "0.1.0", other.digest), (err: unknown) => {
          assert.ok(err instanceof TagImmutableError);
          assert.equal(err.existingDigest, built.digest);
          assert.equal(err.newDigest, other.digest);
          assert.equal(
            err.message,
            `registry ${registry().host}, repository it/hello, reference 0.1.0: put tag: ` +
              `tag 0.1.0 already points at ${built.digest}; refusing to move it to ` +
              `${other.digest} (version tags are immutable)`,
          );
          return true;
        });
        assert.equal(await client.resolveDigest(`${repo}:0.1.0`), built.digest);
      });
    });
  });

  describe("GIVEN the example application's base image", () => {
    let base: BuildkitResult;

    before(async () => {
      assert.ok(
        fs.existsSync(path.join(BASE_CONTEXT, "rootfs/bin/busybox")),
        "app/services/base/rootfs/bin/busybox: run `bash scripts/platform.sh tools`",
      );
      base = await buildWithBuildkit({
        addr,
        context: BASE_CONTEXT,
        dockerfile: path.join(BASE_CONTEXT, "Dockerfile"),
        repository: `${registry().host}/it/base`,
      });
    });

    it("WHEN a Dockerfile FROM it runs a failing command THEN the error carries BuildKit's output tail and nothing is pushed", async () => {
      const marker = `it-marker-${randomBytes(4).toString("hex")}`;
      const dir = dirWith("failing", {
        Dockerfile: `FROM base\nRUN echo ${marker} && exit 3\n`,
      });
      const dockerfile = path.join(dir, "Dockerfile");
      const repository = `${registry().host}/it/failing`;
      await assert.rejects(
        buildWithBuildkit({
          addr,
          context: dir,
          dockerfile,
          namedContexts: { base: `docker-image://${base.ref}` },
          repository,
        }),
        (err: Error) => {
          const lines = err.message.split("\n");
          assert.equal(lines[0], `building ${repository} from ${dockerfile} failed:`);
          assert.ok(lines.length <= 41, `${lines.length} lines`);
          assert.ok(
            lines.some((l) => l.endsWith(` ${marker}`)),
            err.message,
          );
          assert.match(
            lines[lines.length - 1],
            /^error: failed to solve: process "\/bin\/sh -c echo it-marker-[0-9a-f]{8} && exit 3" did not complete successfully: exit code: 3$/,
          );
          return true;
        },
      );
      assert.equal((await client.listRepositories(registry().host)).includes("it/failing"), false);
    });

    it("WHEN a Dockerfile FROM it runs a command THEN the build succeeds with the base's layers below", async () => {
      const dir = dirWith("running", {
        Dockerfile: "FROM base\nUSER 0\nRUN echo ran > /tmp/ran\n",
      });
      const ran = await buildWithBuildkit({
        addr,
        context: dir,
        dockerfile: path.join(dir, "Dockerfile"),
        namedContexts: { base: `docker-image://${base.ref}` },
        repository: `${registry().host}/it/running`,
      });
      const below = (await manifestOf(base.ref)).layers;
      const layers = (await manifestOf(ran.ref)).layers;
      assert.deepEqual(layers.slice(0, below.length), below);
      const top = gunzipSync(
        await client.getBlob(`${registry().host}/it/running`, layers.at(-1)!.digest),
      );
      assert.equal(tarFiles(top)["tmp/ran"], "ran\n");
    });
  });

  /** A project of its own, so the references below can only be to images this suite pushed. */
  const project = `it-${randomBytes(4).toString("hex")}`;

  /** Builds `<dir>/Dockerfile` into `<registry>/<project>/<image>`. */
  function build(dir: string, image: string, namedContexts?: Record<string, string>) {
    return buildWithBuildkit({
      addr,
      context: dir,
      dockerfile: path.join(dir, "Dockerfile"),
      ...(namedContexts ? { namedContexts } : {}),
      repository: `${registry().host}/${project}/${image}`,
    });
  }

  /** Every entry of the image's layers, later layers over earlier ones. */
  async function imageEntries(built: BuildkitResult): Promise<Record<string, TarEntry>> {
    const repository = built.ref.split("@")[0];
    const manifest = await manifestOf(built.ref);
    const entries: Record<string, TarEntry> = {};
    for (const layer of manifest.layers) {
      Object.assign(
        entries,
        tarEntries(gunzipSync(await client.getBlob(repository, layer.digest))),
      );
    }
    return entries;
  }

  describe("GIVEN a base service and a shell service pushed under a unique project", () => {
    const marker = `from the base of ${project}\n`;
    const built: Record<string, BuildkitResult> = {};
    let child: string;
    let services: ServiceImages;

    before(async () => {
      const shell = path.join(tmp, "shell");
      fs.mkdirSync(path.join(shell, "bin"), { recursive: true });
      fs.copyFileSync("/bin/busybox", path.join(shell, "bin/busybox"));
      fs.chmodSync(path.join(shell, "bin/busybox"), 0o755);
      fs.writeFileSync(
        path.join(shell, "Dockerfile"),
        'FROM scratch\nCOPY bin/ /bin/\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n',
      );
      const base = dirWith("base", {
        Dockerfile: "FROM scratch\nCOPY base.txt /base.txt\n",
        "base.txt": marker,
      });
      built.shell = await build(shell, "shell");
      built.base = await build(base, "base");
      child = dirWith("child", {
        Dockerfile:
          "FROM shell\nCOPY --from=base /base.txt /copied.txt\n" +
          "RUN --mount=from=base,target=/b cp /b/base.txt /mounted.txt\n",
      });
      services = {
        registries: [registry().host],
        project,
        images: { base: "base", shell: "shell" },
      };
    });

    /** The named contexts of the child as referencePins maps them, filtered by `keep`. */
    async function namedContexts(keep: (via: string) => boolean): Promise<Record<string, string>> {
      const read = await readBuild(child, path.join(child, "Dockerfile"), { services });
      assert.deepEqual(read.dependencies, ["base", "shell"]);
      const pins = referencePins(read.references.filter((r) => keep(r.via)));
      assert.deepEqual(pins.dependencyArgs, {});
      return Object.fromEntries(
        Object.entries(pins.namedContexts).map(([ref, service]) => [
          ref,
          `docker-image://${built[service].ref}`,
        ]),
      );
    }

    it("WHEN built with referencePins THEN COPY --from and RUN --mount=from read the base pushed by digest", async () => {
      const contexts = await namedContexts(() => true);
      assert.deepEqual(Object.keys(contexts).sort(), ["base", "shell"]);
      const entries = await imageEntries(await build(child, "child", contexts));
      assert.equal(entries["copied.txt"]?.content, marker);
      assert.equal(entries["mounted.txt"]?.content, marker);
    });

    it("WHEN only FROM is pinned (the mapping before the fix) THEN BuildKit looks for docker.io/library/base and fails", async () => {
      const contexts = await namedContexts((via) => via === "from");
      assert.deepEqual(Object.keys(contexts), ["shell"]);
      await assert.rejects(build(child, "child-unpinned", contexts), /docker\.io\/library\/base/);
    });

    it("WHEN a service's Dockerfile has ONBUILD COPY THEN BuildKit copies from the child's context what the plan reads", async () => {
      const onbuild = dirWith("onbuild", {
        Dockerfile: "FROM scratch\nCOPY base.txt /\nONBUILD COPY app/ /srv/\n",
        "base.txt": "base\n",
      });
      const user = dirWith("onbuild-user", {
        Dockerfile: "FROM onbuild\nCOPY own.txt /\n",
        "own.txt": "own\n",
        "app/main.js": "from the child's context\n",
        "unread.txt": "no COPY reads it\n",
      });
      const withOnbuild = { ...services, images: { ...services.images, onbuild: "onbuild" } };
      const triggers = new ServiceTriggers(Object.keys(withOnbuild.images));
      triggers.locate("onbuild", path.join(onbuild, "Dockerfile"));
      const read = await readBuild(user, path.join(user, "Dockerfile"), {
        services: withOnbuild,
        triggers: triggers.of,
      });
      assert.deepEqual(read.files, ["app/main.js", "own.txt"]);
      const base = await build(onbuild, "onbuild");
      const entries = await imageEntries(
        await build(user, "onbuild-user", { onbuild: `docker-image://${base.ref}` }),
      );
      assert.equal(entries["srv/main.js"]?.content, "from the child's context\n");
      assert.equal(entries["own.txt"]?.content, "own\n");
      assert.equal(entries["unread.txt"], undefined);
    });
  });

  describe("GIVEN a context with symlinks, an empty directory and unusual permission bits", () => {
    let dir: string;
    let entries: Record<string, TarEntry>;

    before(async () => {
      dir = dirWith("modes", {
        Dockerfile:
          "FROM scratch\nCOPY conf/*.conf /etc/\nCOPY src/ /app/\n" +
          "COPY --exclude=*.md docs/ notes.md /docs/\nCOPY --exclude=*/*.png pics* /pics/\n",
        "docs/guide.md": "excluded\n",
        "docs/api/ref.md": "kept: *.md is matched below docs/ only\n",
        "docs/index.txt": "kept\n",
        "notes.md": "kept: named directly\n",
        "pics/a.png": "kept\n",
        "pics/sub/b.png": "excluded\n",
        "conf/real.conf": "real\n",
        "shared/app.conf": "pointed at\n",
        "src/plain.txt": "plain\n",
        "src/private.txt": "private\n",
        "src/group.txt": "group\n",
        "src/run.sh": "#!/bin/sh\n",
        "src/locked/key": "key\n",
        "src/links/target.txt": "target\n",
      });
      fs.symlinkSync("../shared/app.conf", path.join(dir, "conf/link.conf"));
      fs.symlinkSync("target.txt", path.join(dir, "src/links/inner"));
      fs.mkdirSync(path.join(dir, "src/empty"));
      fs.chmodSync(path.join(dir, "src/private.txt"), 0o600);
      fs.chmodSync(path.join(dir, "src/group.txt"), 0o664);
      fs.chmodSync(path.join(dir, "src/run.sh"), 0o755);
      fs.chmodSync(path.join(dir, "src/locked"), 0o700);
      entries = await imageEntries(await build(dir, "modes"));
    });

    it("WHEN a wildcard matches a symlink THEN BuildKit copies what it points to, and the plan reads that too", async () => {
      assert.deepEqual(entries["etc/link.conf"], {
        type: "0",
        mode: 0o644,
        content: "pointed at\n",
      });
      const read = await readBuild(dir, path.join(dir, "Dockerfile"));
      assert.ok(read.files.includes("conf/link.conf"), read.files.join(" "));
      assert.ok(read.files.includes("shared/app.conf"), read.files.join(" "));
    });

    it("WHEN COPY --exclude THEN BuildKit leaves out what the plan leaves out", async () => {
      const copied = Object.keys(entries)
        .filter((e) => /^(docs|pics)\//.test(e) && entries[e].type === "0")
        .sort();
      assert.deepEqual(copied, [
        "docs/api/ref.md",
        "docs/index.txt",
        "docs/notes.md",
        "pics/a.png",
      ]);
      const read = await readBuild(dir, path.join(dir, "Dockerfile"));
      assert.deepEqual(
        read.files.filter((f) => /^(docs|pics|notes)/.test(f)),
        ["docs/api/ref.md", "docs/index.txt", "notes.md", "pics/a.png"],
      );
    });

    it("WHEN a copied directory holds a symlink THEN BuildKit copies the link itself, as the plan hashes it", async () => {
      assert.deepEqual(entries["app/links/inner"], { type: "2", mode: 0o777, link: "target.txt" });
      const { input } = await computeRevisionInput(dir, path.join(dir, "Dockerfile"), {
        git: false,
      });
      assert.equal(input.files.find((f) => f.path === "src/links/inner")?.mode, "symlink");
    });

    it("WHEN copied THEN the image has the empty directory and every permission bit, as the revision counts them", async () => {
      assert.equal(entries["app/empty"]?.type, "5");
      const { input } = await computeRevisionInput(dir, path.join(dir, "Dockerfile"), {
        git: false,
      });
      const modes = Object.fromEntries(input.files.map((f) => [f.path, f.mode]));
      const expected: [string, number, string][] = [
        ["private.txt", 0o600, "100600"],
        ["group.txt", 0o664, "100664"],
        ["plain.txt", 0o644, "regular"],
        ["run.sh", 0o755, "executable"],
        ["locked", 0o700, "40700"],
        ["empty", 0o755, "directory"],
      ];
      for (const [file, mode, revisionMode] of expected) {
        assert.equal(entries[`app/${file}`]?.mode, mode, `app/${file} in the image`);
        assert.equal(modes[`src/${file}`], revisionMode, `src/${file} in the revision`);
      }
    });
  });

  describe("GIVEN COPY sources that match nothing", () => {
    // [what, COPY line, the plan's error after `Dockerfile:3: COPY source `, or "" when it builds]
    const cases: [string, string, string][] = [
      ["a wildcard matching nothing in the context", "COPY nothing*.txt /", ""],
      ["a wildcard matching nothing below a directory", "COPY src/*.none /", ""],
      [
        "a wildcard below a missing directory",
        "COPY missing/*.txt /",
        '"missing/*.txt" is not in the build context (no "missing")',
      ],
      ["a missing file", "COPY missing.txt /", '"missing.txt" is not in the build context'],
      ["a symlink to nothing", "COPY dangling /", '"dangling" is a symlink to nothing (dangling)'],
      [
        "a wildcard matching a symlink to nothing",
        "COPY src/dang* /",
        '"src/dang*" is a symlink to nothing (src/dangling)',
      ],
    ];
    cases.forEach(([what, line, error], i) => {
      it(`WHEN ${what} THEN BuildKit ${error ? "fails" : "builds"} and so does the plan`, async () => {
        const dir = dirWith(`none-${i}`, {
          Dockerfile: `FROM scratch\nCOPY src/a.txt /a.txt\n${line}\n`,
          "src/a.txt": "a\n",
        });
        fs.symlinkSync("nowhere", path.join(dir, "dangling"));
        fs.symlinkSync("nowhere", path.join(dir, "src/dangling"));
        const plan = readBuild(dir, path.join(dir, "Dockerfile"), { label: "Dockerfile" });
        if (!error) {
          await plan;
          await build(dir, "none");
          return;
        }
        await assert.rejects(plan, (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.message, `Dockerfile:3: COPY source ${error}`);
          return true;
        });
        await assert.rejects(build(dir, "none"), /failed to solve/);
      });
    });
  });

  it("GIVEN no buildctl binary WHEN built THEN the error names the repository and the spawn failure", async () => {
    const repository = `${registry().host}/it/none`;
    await assert.rejects(
      buildWithBuildkit({
        addr,
        context: tmp,
        dockerfile: path.join(tmp, "Dockerfile"),
        repository,
        buildctl: path.join(tmp, "no-buildctl"),
      }),
      {
        message: `building ${repository} from ${path.join(tmp, "Dockerfile")} failed:\nspawn ${path.join(tmp, "no-buildctl")} ENOENT`,
      },
    );
  });
});
