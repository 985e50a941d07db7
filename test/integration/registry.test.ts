/**
 * lib/registry.ts against a real registry: Debian's docker-registry (CNCF Distribution 2.8),
 * started per suite by helpers/registry.ts. Images, indexes and manifest lists are pushed
 * through the client's own blob and manifest calls.
 */
import assert from "node:assert/strict";
import { readdirSync, existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import {
  MediaType,
  RegistryClient,
  RegistryError,
  TagImmutableError,
  sha256Digest,
  type ImageManifest,
} from "../../lib/registry";
import { tarOf } from "./helpers/images";
import { freePort, useRegistry } from "./helpers/registry";

/** Number of blobs (layers, configs and manifests alike) in Distribution's filesystem storage. */
function blobCount(dir: string): number {
  const root = path.join(dir, "data", "docker", "registry", "v2", "blobs", "sha256");
  if (!existsSync(root)) return 0;
  return readdirSync(root).reduce((n, d) => n + readdirSync(path.join(root, d)).length, 0);
}

describe("registry client against Distribution 2.8", function () {
  this.timeout(60_000);
  const registry = useRegistry();
  let client: RegistryClient;
  let repo: string;

  before(() => {
    client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
    repo = `${registry().host}/example/backend`;
  });

  it("GIVEN a running registry WHEN ping THEN it answers /v2/", async () => {
    await client.ping(registry().host);
  });

  describe("GIVEN an OCI image with one layer and labels pushed under 1.0.0", () => {
    const labels = { "org.opencontainers.image.version": "1.0.0", team: "a" };
    const layer = tarOf({ "app/hello.txt": "hello\n" });
    let pushed: Awaited<ReturnType<RegistryClient["pushImage"]>>;

    before(async () => {
      pushed = await client.pushImage(repo, { labels, layers: [layer], tag: "1.0.0" });
    });

    it("WHEN the tag is resolved THEN the digest is the sha256 of the pushed manifest bytes", async () => {
      assert.equal(pushed.descriptor.digest, sha256Digest(pushed.bytes));
      assert.equal(await client.resolveDigest(`${repo}:1.0.0`), pushed.descriptor.digest);
      assert.equal(pushed.reference, `${repo}@${pushed.descriptor.digest}`);
    });

    it("WHEN the manifest is HEAD THEN media type, digest and size are the registry's", async () => {
      assert.deepEqual(await client.headManifest(`${repo}:1.0.0`), {
        digest: pushed.descriptor.digest,
        mediaType: MediaType.ociManifest,
        size: pushed.bytes.length,
      });
    });

    it("WHEN the manifest is fetched THEN its bytes are exactly the pushed bytes", async () => {
      const m = await client.getManifest(`${repo}:1.0.0`);
      assert.deepEqual(m.bytes, pushed.bytes);
      assert.equal(m.mediaType, MediaType.ociManifest);
      const manifest = m.manifest as ImageManifest;
      assert.equal(manifest.layers.length, 1);
      assert.equal(manifest.layers[0].mediaType, MediaType.ociLayerGzip);
      assert.equal(manifest.config.mediaType, MediaType.ociConfig);
    });

    it("WHEN the labels are read THEN they are exactly the config's labels", async () => {
      assert.deepEqual(await client.getLabels(`${repo}:1.0.0`), labels);
      const config = await client.getImageConfig(`${repo}@${pushed.descriptor.digest}`);
      assert.equal(config.digest, pushed.descriptor.digest);
      assert.equal(config.manifestDigest, pushed.descriptor.digest);
      assert.equal(config.platform, undefined);
      assert.deepEqual(config.config.rootfs, { type: "layers", diff_ids: [sha256Digest(layer)] });
    });

    it("WHEN the layer blob is fetched THEN it gunzips to the tar that was pushed", async () => {
      const manifest = (await client.getManifest(`${repo}:1.0.0`)).manifest as ImageManifest;
      const blob = await client.getBlob(repo, manifest.layers[0].digest);
      assert.deepEqual(gunzipSync(blob), layer);
    });

    it("WHEN the same blob is pushed again THEN nothing new is stored", async () => {
      const before = blobCount(registry().dir);
      const d = await client.pushBlob(repo, Buffer.from("x".repeat(10)));
      const again = await client.pushBlob(repo, Buffer.from("x".repeat(10)));
      assert.deepEqual(again, d);
      assert.equal(blobCount(registry().dir), before + 1);
    });
  });

  describe("GIVEN linux/amd64 and linux/arm64 images under one OCI index", () => {
    let amd64: Awaited<ReturnType<RegistryClient["pushImage"]>>;
    let arm64: Awaited<ReturnType<RegistryClient["pushImage"]>>;
    let index: Awaited<ReturnType<RegistryClient["pushIndex"]>>;

    before(async () => {
      const r = `${registry().host}/example/multi`;
      amd64 = await client.pushImage(r, { labels: { arch: "amd64" }, layers: [tarOf({ a: "1" })] });
      arm64 = await client.pushImage(r, {
        labels: { arch: "arm64" },
        layers: [tarOf({ a: "2" })],
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      });
      index = await client.pushIndex(r, [arm64.descriptor, amd64.descriptor], { tag: "2.0.0" });
    });

    it("WHEN the tag is resolved THEN it is the index's digest", async () => {
      const head = await client.headManifest(`${registry().host}/example/multi:2.0.0`);
      assert.equal(head?.digest, index.descriptor.digest);
      assert.equal(head?.mediaType, MediaType.ociIndex);
    });

    it("WHEN labels are read without a platform THEN linux/amd64 is chosen", async () => {
      const c = await client.getImageConfig(`${registry().host}/example/multi:2.0.0`);
      assert.deepEqual(c.labels, { arch: "amd64" });
      assert.equal(c.digest, index.descriptor.digest);
      assert.equal(c.manifestDigest, amd64.descriptor.digest);
      assert.deepEqual(c.platform, { os: "linux", architecture: "amd64" });
    });

    it("WHEN labels are read for linux/arm64 THEN the arm64 manifest is chosen", async () => {
      const c = await client.getImageConfig(`${registry().host}/example/multi:2.0.0`, {
        os: "linux",
        architecture: "arm64",
      });
      assert.deepEqual(c.labels, { arch: "arm64" });
      assert.equal(c.manifestDigest, arm64.descriptor.digest);
    });

    it("WHEN a platform the index lacks is asked THEN the error lists the platforms it has", async () => {
      await assert.rejects(
        client.getLabels(`${registry().host}/example/multi:2.0.0`, {
          os: "linux",
          architecture: "s390x",
        }),
        (e: RegistryError) => {
          assert.equal(
            e.message,
            `registry ${registry().host}, repository example/multi, reference 2.0.0: select platform: ` +
              `index ${index.descriptor.digest} has no linux/s390x manifest (has: linux/arm64/v8, linux/amd64)`,
          );
          return true;
        },
      );
    });
  });

  describe("GIVEN a Docker v2 schema 2 image under a Docker manifest list", () => {
    it("WHEN it is read THEN media types are Docker's and labels come through the list", async () => {
      const r = `${registry().host}/example/dockerfmt`;
      const image = await client.pushImage(r, {
        labels: { fmt: "docker" },
        layers: [tarOf({ d: "docker" })],
        format: "docker",
      });
      const list = await client.pushIndex(r, [image.descriptor], {
        tag: "1.0.0",
        format: "docker",
      });
      assert.equal(
        (await client.headManifest(`${r}@${image.descriptor.digest}`))?.mediaType,
        MediaType.dockerManifest,
      );
      assert.equal(
        (await client.headManifest(`${r}:1.0.0`))?.mediaType,
        MediaType.dockerManifestList,
      );
      const c = await client.getImageConfig(`${r}:1.0.0`);
      assert.deepEqual(c.labels, { fmt: "docker" });
      assert.equal(c.digest, list.descriptor.digest);
      assert.equal(c.manifestDigest, image.descriptor.digest);
    });
  });

  describe("GIVEN several tags and repositories", () => {
    const host = () => registry().host;

    before(async () => {
      for (const name of ["tags-a", "tags-b", "tags-c"]) {
        const r = `${host()}/paged/${name}`;
        const img = await client.pushImage(r, { labels: { name } });
        for (const tag of ["0.1.0", "0.2.0", "0.10.0", "latest", "ring-users"]) {
          await client.putTag(r, tag, img.descriptor.digest);
        }
      }
    });

    it("WHEN tags are listed with a page size of 2 THEN every tag comes back", async () => {
      // Distribution 2.8 ignores n/last on tags/list and answers in one page; the Link-following
      // loop is exercised on the catalog below and on tags in registry-challenge.test.ts.
      const tags = await client.listTags(`${host()}/paged/tags-a`, 2);
      assert.deepEqual([...tags].sort(), ["0.1.0", "0.10.0", "0.2.0", "latest", "ring-users"]);
    });

    it("WHEN the catalog is listed one repository per page THEN the Link header is followed to the end", async () => {
      const repos = await client.listRepositories(host(), 1);
      for (const name of ["paged/tags-a", "paged/tags-b", "paged/tags-c"]) {
        assert.ok(repos.includes(name), `${name} in ${repos.join(",")}`);
      }
      assert.deepEqual(repos, [...repos].sort());
      assert.equal(new Set(repos).size, repos.length);
    });

    it("WHEN the tags of an unknown repository are listed THEN the answer is empty", async () => {
      assert.deepEqual(await client.listTags(`${host()}/paged/nothing-here`), []);
    });
  });

  describe("GIVEN version tag 1.0.0 on image A and an image B", () => {
    let a: string;
    let b: string;
    let r: string;

    before(async () => {
      r = `${registry().host}/example/immutable`;
      a = (await client.pushImage(r, { labels: { which: "A" }, tag: "1.0.0" })).descriptor.digest;
      b = (await client.pushImage(r, { labels: { which: "B" } })).descriptor.digest;
    });

    it("WHEN putTag(1.0.0, A) THEN it is a no-op that reports no change", async () => {
      assert.equal(await client.putTag(r, "1.0.0", a), false);
    });

    it("WHEN putTag(1.0.0, B) THEN it is refused naming repository, tag and both digests, and 1.0.0 stays on A", async () => {
      await assert.rejects(client.putTag(r, "1.0.0", b), (e: TagImmutableError) => {
        assert.ok(e instanceof TagImmutableError);
        assert.equal(
          e.message,
          `registry ${registry().host}, repository example/immutable, reference 1.0.0: put tag: ` +
            `tag 1.0.0 already points at ${a}; refusing to move it to ${b} (version tags are immutable)`,
        );
        assert.equal(e.existingDigest, a);
        assert.equal(e.newDigest, b);
        return true;
      });
      assert.equal(await client.resolveDigest(`${r}:1.0.0`), a);
    });

    it("WHEN putTag(1.0.1, B) THEN the new tag points at B", async () => {
      assert.equal(await client.putTag(r, "1.0.1", b), true);
      assert.equal(await client.resolveDigest(`${r}:1.0.1`), b);
    });

    it("WHEN ring-x is moved from A to B THEN it points at B, reports A, and no blob is stored", async () => {
      assert.equal(await client.moveTag(r, "ring-x", a), undefined);
      const blobs = blobCount(registry().dir);
      assert.equal(await client.moveTag(r, "ring-x", b), a);
      assert.equal(await client.resolveDigest(`${r}:ring-x`), b);
      assert.equal(blobCount(registry().dir), blobs);
    });

    it("WHEN B is deleted THEN its digest and tags are gone", async () => {
      const c = (await client.pushImage(r, { labels: { which: "C" }, tag: "9.9.9" })).descriptor
        .digest;
      assert.equal(await client.deleteManifest(r, c), true);
      assert.equal(await client.manifestExists(`${r}@${c}`), false);
      assert.equal(await client.headManifest(`${r}:9.9.9`), undefined);
      assert.equal(await client.deleteManifest(r, c), false);
    });
  });

  describe("GIVEN a content cache directory (cacheDir)", () => {
    let dir: string;
    let pushed: Awaited<ReturnType<RegistryClient["pushImage"]>>;
    const cachedRepo = () => `${registry().host}/example/cached`;
    /** Counts the HTTP requests `fn` sends, by method and path. */
    async function requests<T>(fn: () => Promise<T>): Promise<{ result: T; sent: string[] }> {
      const real = globalThis.fetch;
      const sent: string[] = [];
      globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
        sent.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return real(input, init);
      }) as typeof fetch;
      try {
        return { result: await fn(), sent };
      } finally {
        globalThis.fetch = real;
      }
    }

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "gitops-rings-oci-cache-"));
      pushed = await client.pushImage(cachedRepo(), {
        labels: { team: "cached" },
        layers: [tarOf({ "c.txt": "cached\n" })],
        tag: "2.0.0",
      });
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it("WHEN a second client reads the labels of a digest the first read THEN it sends nothing", async () => {
      const ref = `${cachedRepo()}@${pushed.descriptor.digest}`;
      const first = new RegistryClient({ dockerConfig: false, cacheDir: dir });
      const cold = await requests(() => first.getLabels(ref));
      assert.deepEqual(cold.result, { team: "cached" });
      assert.equal(cold.sent.length, 2, cold.sent.join(", ")); // manifest, config blob
      const second = new RegistryClient({ dockerConfig: false, cacheDir: dir });
      const warm = await requests(() => second.getLabels(ref));
      assert.deepEqual(warm.result, { team: "cached" });
      assert.deepEqual(warm.sent, []);
    });

    it("WHEN read by tag THEN the tag is resolved live and only the immutable config comes from the cache", async () => {
      const reader = new RegistryClient({ dockerConfig: false, cacheDir: dir });
      const { result, sent } = await requests(() => reader.getLabels(`${cachedRepo()}:2.0.0`));
      assert.deepEqual(result, { team: "cached" });
      assert.deepEqual(sent, ["GET /v2/example/cached/manifests/2.0.0"]);
    });

    it("WHEN a cached file no longer hashes to its digest THEN it is fetched again and rewritten", async () => {
      const config = JSON.parse(pushed.bytes.toString("utf8")).config.digest as string;
      const file = path.join(
        dir,
        registry().host.replace(/[^A-Za-z0-9._-]/g, "_"),
        "sha256",
        config.slice(7),
      );
      await writeFile(file, "corrupt");
      const reader = new RegistryClient({ dockerConfig: false, cacheDir: dir });
      const { result, sent } = await requests(() =>
        reader.getLabels(`${cachedRepo()}@${pushed.descriptor.digest}`),
      );
      assert.deepEqual(result, { team: "cached" });
      assert.deepEqual(sent, [`GET /v2/example/cached/blobs/${config}`]);
      const again = await requests(() =>
        reader.getLabels(`${cachedRepo()}@${pushed.descriptor.digest}`),
      );
      assert.deepEqual(again.sent, []);
    });
  });

  describe("GIVEN references that do not exist", () => {
    it("WHEN a missing tag is fetched THEN the error names registry, repository, reference and status", async () => {
      const r = `${registry().host}/example/backend`;
      await assert.rejects(client.getManifest(`${r}:0.0.404`), (e: RegistryError) => {
        assert.equal(e.status, 404);
        assert.equal(e.code, "MANIFEST_UNKNOWN");
        assert.match(
          e.message,
          new RegExp(
            `^registry ${registry().host.replace(/\./g, "\\.")}, repository example/backend, reference 0\\.0\\.404: GET manifest: HTTP 404 \\(MANIFEST_UNKNOWN: `,
          ),
        );
        return true;
      });
      await assert.rejects(client.resolveDigest(`${r}:0.0.404`), { status: 404 });
    });

    it("WHEN nothing listens on the port THEN the client retries and then names the connection error", async () => {
      const lines: string[] = [];
      const c = new RegistryClient({
        dockerConfig: false,
        maxAttempts: 3,
        retryBaseMs: 5,
        log: (l) => lines.push(l),
      });
      const host = `127.0.0.1:${await freePort()}`;
      await assert.rejects(c.ping(host), (e: RegistryError) => {
        assert.equal(
          e.message,
          `registry ${host}: ping: http://${host}/v2/: no response after 3 attempts: ECONNREFUSED`,
        );
        return true;
      });
      assert.equal(lines.length, 2);
    });
  });
});

describe("registry client against Distribution 2.8 with htpasswd basic auth", function () {
  this.timeout(60_000);
  const registry = useRegistry({ basicAuth: { username: "ci", password: "s3cret pass" } });

  it("GIVEN no credentials WHEN ping THEN a 401 names the missing credentials", async () => {
    const client = new RegistryClient({ dockerConfig: false });
    await assert.rejects(client.ping(registry().host), (e: RegistryError) => {
      assert.equal(e.status, 401);
      assert.equal(
        e.message,
        `registry ${registry().host}: ping: HTTP 401: basic auth required and no credentials for it`,
      );
      return true;
    });
  });

  it("GIVEN explicit credentials WHEN an image is pushed and read THEN both work", async () => {
    const client = new RegistryClient({
      dockerConfig: false,
      credentials: { [registry().host]: registry().credentials! },
    });
    await client.ping(registry().host);
    const r = `${registry().host}/example/private`;
    const img = await client.pushImage(r, {
      labels: { secret: "yes" },
      layers: [tarOf({ f: "x" })],
      tag: "1.0.0",
    });
    assert.equal(await client.resolveDigest(`${r}:1.0.0`), img.descriptor.digest);
    assert.deepEqual(await client.getLabels(`${r}:1.0.0`), { secret: "yes" });
  });

  it("GIVEN a wrong password WHEN tags are listed THEN the 401 is reported, not retried forever", async () => {
    const client = new RegistryClient({
      dockerConfig: false,
      credentials: { [registry().host]: { username: "ci", password: "wrong" } },
    });
    await assert.rejects(
      client.listTags(`${registry().host}/example/private`),
      (e: RegistryError) => {
        assert.equal(e.status, 401);
        assert.match(e.message, /list tags: HTTP 401 \(UNAUTHORIZED: authentication required\)$/);
        return true;
      },
    );
  });

  it("GIVEN the credentials in a docker config.json WHEN tags are listed THEN they are used", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "gitops-rings-docker-config-"));
    try {
      const file = path.join(dir, "config.json");
      const auth = Buffer.from("ci:s3cret pass").toString("base64");
      await writeFile(file, JSON.stringify({ auths: { [`http://${registry().host}`]: { auth } } }));
      const client = new RegistryClient({ dockerConfig: file });
      assert.deepEqual(await client.listTags(`${registry().host}/example/private`), ["1.0.0"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
