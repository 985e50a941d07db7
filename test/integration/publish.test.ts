/**
 * lib/publish.ts with the real BuildKit and a private registry: a service built FROM another
 * service inherits its labels (BuildKit copies the base's `config.Labels`), and publishing
 * leaves the image its own labels only, puts the immutable version tag, and is a no-op on a
 * retry. Built for two platforms, so the index path is exercised too (the Dockerfiles have no
 * RUN, so no emulation is needed), with BuildKit's provenance attestations (mode=max), which
 * must keep naming the manifests they attest.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildWithBuildkit } from "../../lib/buildkit";
import { publishImage } from "../../lib/publish";
import { isAttestation, readProvenance, REFERENCE_DIGEST } from "../../lib/provenance";
import {
  RegistryClient,
  TagImmutableError,
  type ImageIndex,
  type ImageManifest,
} from "../../lib/registry";
import { useRegistry } from "./helpers/registry";

describe("publishImage against BuildKit and a registry", function () {
  this.timeout(180_000);
  const registry = useRegistry();
  const addr = process.env.BUILDKIT_HOST ?? "";
  const client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
  const platforms = ["linux/amd64", "linux/arm64"];
  let tmp: string;

  const baseLabels = {
    "org.opencontainers.image.version": "0.1.0",
    "org.opencontainers.image.revision": `v1:sha256:${"b".repeat(64)}`,
    "org.opencontainers.image.source": "https://git.example.com/base.git",
    "dependency.toolchain": "latest",
    "io.gitops-rings.source.base.commit": "a".repeat(40),
    "io.gitops-rings.source.base.url": "https://git.example.com/base.git",
    team: "platform",
  };
  const childLabels = {
    "org.opencontainers.image.version": "0.1.0",
    "org.opencontainers.image.revision": `v1:sha256:${"c".repeat(64)}`,
    "dependency.base": "0.1.0",
  };

  function dirWith(name: string, files: Record<string, string>): string {
    const dir = path.join(tmp, name);
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    }
    return dir;
  }

  let baseRef: string;
  let child: { repository: string; digest: string };

  before(async function () {
    if (!addr) throw new Error('BUILDKIT_HOST is not set: eval "$(bash scripts/platform.sh env)"');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-publish-"));
    const host = registry().host;
    const base = dirWith("base", {
      Dockerfile: "FROM scratch\nLABEL com.example.base-own=yes\nCOPY base.txt /\n",
      "base.txt": "base\n",
    });
    const built = await buildWithBuildkit({
      addr,
      context: base,
      dockerfile: path.join(base, "Dockerfile"),
      labels: baseLabels,
      platforms,
      repository: `${host}/publish/base`,
    });
    const published = await publishImage(
      {
        repository: `${host}/publish/base`,
        digest: built.digest,
        tag: "0.1.0",
        labels: baseLabels,
      },
      client,
    );
    baseRef = published.ref;
    const ctx = dirWith("child", {
      Dockerfile: "FROM base\nLABEL com.example.child-own=yes\nCOPY child.txt /\n",
      "child.txt": "child\n",
    });
    const c = await buildWithBuildkit({
      addr,
      context: ctx,
      dockerfile: path.join(ctx, "Dockerfile"),
      namedContexts: { base: `docker-image://${baseRef}` },
      labels: childLabels,
      platforms,
      repository: `${host}/publish/child`,
    });
    child = { repository: `${host}/publish/child`, digest: c.digest };
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("GIVEN a child built FROM a service THEN BuildKit made it inherit the base's labels (what publishing must undo)", async () => {
    const labels = await client.getLabels(`${child.repository}@${child.digest}`);
    assert.equal(
      labels["org.opencontainers.image.source"],
      baseLabels["org.opencontainers.image.source"],
    );
    assert.equal(labels["dependency.toolchain"], "latest");
    assert.equal(labels.team, "platform");
  });

  it("WHEN it is published THEN each platform's labels are exactly its own, the version tag points at the result and the layers are the built ones", async () => {
    const published = await publishImage(
      { ...child, tag: "0.1.0", labels: childLabels, base: baseRef },
      client,
    );
    assert.equal(published.rewritten, true);
    assert.notEqual(published.digest, child.digest);
    assert.equal(await client.resolveDigest(`${child.repository}:0.1.0`), published.digest);
    for (const platform of ["amd64", "arm64"]) {
      const labels = await client.getLabels(`${child.repository}:0.1.0`, {
        os: "linux",
        architecture: platform,
      });
      assert.deepEqual(labels, { ...childLabels, "com.example.child-own": "yes" });
    }
    const before = (await client.getManifest(`${child.repository}@${child.digest}`))
      .manifest as ImageIndex;
    const after = (await client.getManifest(published.ref)).manifest as ImageIndex;
    assert.equal(after.manifests.length, before.manifests.length);
    for (let i = 0; i < before.manifests.length; i++) {
      if (isAttestation(before.manifests[i])) continue;
      const [b, a] = await Promise.all(
        [before, after].map(
          async (idx) =>
            (await client.getManifest(`${child.repository}@${idx.manifests[i].digest}`)).manifest,
        ),
      );
      assert.deepEqual((a as { layers: unknown }).layers, (b as { layers: unknown }).layers);
    }
  });

  it("WHEN it is published THEN each platform's provenance attestation (mode=max) names the published manifest, in the index and in its statement, with BuildKit's predicate unchanged", async () => {
    const ref = `${child.repository}:0.1.0`;
    const digest = await client.resolveDigest(ref);
    const published = await readProvenance(client, `${child.repository}@${digest}`);
    const built = await readProvenance(client, `${child.repository}@${child.digest}`);
    assert.deepEqual(
      published.map((p) => [p.platform, p.mode, p.subjectMatches]),
      [
        ["linux/amd64", "max", true],
        ["linux/arm64", "max", true],
      ],
    );
    assert.deepEqual(
      built.map((p) => [p.mode, p.subjectMatches]),
      [
        ["max", true],
        ["max", true],
      ],
    );
    for (let i = 0; i < published.length; i++) {
      assert.notEqual(published[i].manifest, built[i].manifest, "the manifest was rewritten");
      const statements = await Promise.all(
        [built[i], published[i]].map(async (p) => {
          const m = (await client.getManifest(`${child.repository}@${p.attestation}`))
            .manifest as ImageManifest;
          return JSON.parse(
            (await client.getBlob(child.repository, m.layers[0].digest)).toString(),
          );
        }),
      );
      assert.deepEqual(statements[1].predicate, statements[0].predicate);
      assert.deepEqual(statements[1].subject[0].digest, {
        sha256: published[i].manifest.slice("sha256:".length),
      });
    }
    const index = (await client.getManifest(`${child.repository}@${digest}`))
      .manifest as ImageIndex;
    const annotated = index.manifests
      .filter(isAttestation)
      .map((a) => a.annotations?.[REFERENCE_DIGEST]);
    assert.deepEqual(
      annotated,
      published.map((p) => p.manifest),
    );
  });

  it("WHEN the same build is published again (a retry) THEN it is the same digest and nothing moves", async () => {
    const first = await client.resolveDigest(`${child.repository}:0.1.0`);
    const again = await publishImage(
      { ...child, tag: "0.1.0", labels: childLabels, base: baseRef },
      client,
    );
    assert.equal(again.digest, first);
  });

  it("WHEN another image is published under an existing version THEN TagImmutableError and the tag stays", async () => {
    const first = await client.resolveDigest(`${child.repository}:0.1.0`);
    // Without the base, its `team` label is not known to be inherited: another config, another digest.
    await assert.rejects(
      publishImage({ ...child, tag: "0.1.0", labels: childLabels }, client),
      (err: unknown) => err instanceof TagImmutableError && err.existingDigest === first,
    );
    assert.equal(await client.resolveDigest(`${child.repository}:0.1.0`), first);
  });

  it("WHEN the base itself was published THEN its non-inherited labels stayed (nothing to drop from FROM scratch)", async () => {
    const labels = await client.getLabels(baseRef);
    assert.deepEqual(labels, { ...baseLabels, "com.example.base-own": "yes" });
  });
});
