/**
 * lib/buildkit.ts against the local platform's BuildKit daemon ($BUILDKIT_HOST, runc worker)
 * pushing into a private registry started for this suite (helpers/registry.ts) on a random
 * 127.0.0.1 port: buildctl's `registry.insecure=true` output option makes BuildKit push there
 * over plain HTTP, and BuildKit pulls named contexts from loopback over HTTP on its own.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { buildWithBuildkit, tagVersion, type BuildkitResult } from "../../lib/buildkit";
import {
  RegistryClient,
  TagImmutableError,
  sha256Digest,
  type ImageManifest,
} from "../../lib/registry";
import { useRegistry } from "./helpers/registry";

const BASE_CONTEXT = path.resolve(__dirname, "../../app/services/base");

/** Names and contents of the regular files in an uncompressed tar. */
function tarFiles(tar: Buffer): Record<string, string> {
  const files: Record<string, string> = {};
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from: number, length: number) =>
      header.toString("latin1", from, from + length).replace(/\0.*$/s, "");
    const name = (field(345, 155) ? `${field(345, 155)}/` : "") + field(0, 100);
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1);
    if (type === "0" || type === "") {
      files[name] = tar.toString("utf8", at + 512, at + 512 + size);
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

describe("buildWithBuildkit against BuildKit and a registry", function () {
  this.timeout(120_000);
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

  async function manifestOf(ref: string): Promise<ImageManifest> {
    return (await client.getManifest(ref)).manifest as ImageManifest;
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

    describe("AND tagVersion", () => {
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
        await tagVersion(repo, "0.1.0", built.digest);
        assert.equal(await client.resolveDigest(`${repo}:0.1.0`), built.digest);
        assert.deepEqual(await client.listTags(repo), ["0.1.0"]);
      });

      it("WHEN the tag already points at the same digest THEN it is a no-op", async () => {
        await tagVersion(repo, "0.1.0", built.digest);
        assert.equal(await client.resolveDigest(`${repo}:0.1.0`), built.digest);
        assert.deepEqual(await client.listTags(repo), ["0.1.0"]);
      });

      it("WHEN the tag points at another digest THEN it throws TagImmutableError and the tag stays", async () => {
        await assert.rejects(tagVersion(repo, "0.1.0", other.digest), (err: unknown) => {
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
