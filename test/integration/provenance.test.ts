/**
 * BuildKit's provenance attestation as the local platform's BuildKit writes it, read back by
 * lib/provenance.ts the way `rings check` reads it: one build per mode (max, min, off), each
 * pushed by digest to a private registry.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildWithBuildkit, type BuildkitBuild } from "../../lib/buildkit";
import { provenanceViolations, readProvenanceSnapshot } from "../../lib/check";
import { readProvenance } from "../../lib/provenance";
import { RegistryClient } from "../../lib/registry";
import { useRegistry } from "./helpers/registry";

describe("provenance attestations of the buildctl backend", function () {
  this.timeout(180_000);
  const registry = useRegistry();
  const addr = process.env.BUILDKIT_HOST ?? "";
  const client = new RegistryClient({ dockerConfig: false, retryBaseMs: 10 });
  const built: Record<string, string> = {};
  let tmp: string;

  before(async function () {
    if (!addr) throw new Error('BUILDKIT_HOST is not set: eval "$(bash scripts/platform.sh env)"');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-provenance-"));
    fs.writeFileSync(path.join(tmp, "Dockerfile"), "FROM scratch\nARG NOTE\nCOPY note.txt /\n");
    fs.writeFileSync(path.join(tmp, "note.txt"), "provenance\n");
    for (const mode of ["max", "min", "off"] as const) {
      const build: BuildkitBuild = {
        addr,
        context: tmp,
        dockerfile: path.join(tmp, "Dockerfile"),
        buildArgs: { NOTE: mode },
        repository: `${registry().host}/provenance/${mode}`,
        provenance: mode,
      };
      built[mode] = (await buildWithBuildkit(build)).ref;
    }
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("GIVEN the default (max) THEN the index holds one attestation whose SLSA statement is mode=max and names the manifest", async () => {
    const [p] = await readProvenance(client, built.max);
    assert.equal(p.platform, "linux/amd64");
    assert.equal(p.predicateType, "https://slsa.dev/provenance/v0.2");
    assert.equal(p.mode, "max");
    assert.equal(p.subjectMatches, true);
  });

  it("GIVEN min THEN the statement is mode=min; GIVEN off THEN the image is a bare manifest without attestation", async () => {
    const [min] = await readProvenance(client, built.min);
    assert.deepEqual([min.mode, min.subjectMatches], ["min", true]);
    const [off] = await readProvenance(client, built.off);
    assert.deepEqual([off.attestation, off.mode, off.platform], [undefined, undefined, "unknown"]);
  });

  it("GIVEN the three images WHEN checked as rings check does THEN max requires max, min accepts min, off accepts all", async () => {
    const images = [built.max, built.min, built.off];
    const found = async (required: "max" | "min" | "off") =>
      provenanceViolations(await readProvenanceSnapshot(client, images, required)).map((v) => [
        v.object.split("@")[0].split("/").pop(),
        v.found,
      ]);
    assert.deepEqual(await found("max"), [
      ["min", "provenance mode=min"],
      ["off", "no attestation manifest"],
    ]);
    assert.deepEqual(await found("min"), [["off", "no attestation manifest"]]);
    assert.deepEqual(await found("off"), []);
  });
});
