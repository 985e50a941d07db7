import { strict as assert } from "node:assert";
import { ownLabels } from "../../lib/publish";

describe("ownLabels (lib/publish.ts): an image's labels describe that image alone", () => {
  const base = {
    "org.opencontainers.image.version": "0.1.0",
    "org.opencontainers.image.source": "https://git.example.com/base.git",
    "dependency.toolchain": "latest",
    "io.gitops-rings.source.base.commit": "a".repeat(40),
    "io.gitops-rings.source.base.url": "https://git.example.com/base.git",
    team: "platform",
    maintainer: "ops@example.com",
  };

  it("GIVEN a child built FROM a base WHEN its labels are made its own THEN the base's source, dependency, source commit and extra labels are gone and the child's stay", () => {
    const given = {
      "org.opencontainers.image.version": "0.2.0",
      "org.opencontainers.image.revision": "v1:sha256:" + "1".repeat(64),
      "dependency.base": "0.1.0",
    };
    const built = { ...base, ...given, "com.example.own": "from the child's Dockerfile" };
    assert.deepEqual(ownLabels(built, given, base), {
      "org.opencontainers.image.version": "0.2.0",
      "org.opencontainers.image.revision": "v1:sha256:" + "1".repeat(64),
      "dependency.base": "0.1.0",
      "com.example.own": "from the child's Dockerfile",
    });
  });

  it("GIVEN a base whose labels are unknown (not a service) WHEN labels are made own THEN only this program's keys the build did not set are dropped", () => {
    const given = { "org.opencontainers.image.version": "0.2.0" };
    const built = { ...base, ...given };
    assert.deepEqual(ownLabels(built, given), {
      "org.opencontainers.image.version": "0.2.0",
      team: "platform",
      maintainer: "ops@example.com",
    });
  });

  it("GIVEN a label the build sets to the base's value WHEN labels are made own THEN it stays", () => {
    const given = { team: "platform" };
    assert.deepEqual(ownLabels({ team: "platform" }, given, { team: "platform" }), given);
  });
});
