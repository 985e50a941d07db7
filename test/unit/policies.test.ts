import assert from "node:assert/strict";
import {
  describePolicy,
  expandTemplate,
  filterTags,
  compilePattern,
  labelledImage,
  patternGroups,
  selectOrdered,
  selectSemver,
  tagsForCommit,
  templateReferences,
} from "../../lib/policies";
import { imageLabels } from "../../lib/labels";

const values = (tags: string[]) => tags.map((tag) => ({ tag, value: tag }));

describe("policies: tag selection without a registry", () => {
  describe("filterTags (Flux semantics)", () => {
    it("GIVEN a named group and $name WHEN filtered THEN only matching tags remain, with the group as value", () => {
      assert.deepEqual(
        filterTags(["main-abc1234-1700000000", "main-def5678-1700000100", "pr-12-1", "latest"], {
          pattern: "^main-[a-f0-9]+-(?P<ts>[0-9]+)",
          extract: "$ts",
        }),
        [
          { tag: "main-abc1234-1700000000", value: "1700000000" },
          { tag: "main-def5678-1700000100", value: "1700000100" },
        ],
      );
    });

    it("GIVEN an unanchored pattern WHEN extracted THEN the value is extract expanded against the match alone, the rest of the tag dropped (Flux's ExpandString)", () => {
      assert.deepEqual(filterTags(["v1.2.3-linux"], { pattern: "v(\\d+\\.\\d+)", extract: "$1" }), [
        { tag: "v1.2.3-linux", value: "1.2" },
      ]);
    });

    it("GIVEN a pattern that matches a tag several times WHEN extracted THEN only the first match is expanded", () => {
      assert.deepEqual(
        filterTags(["build-7-of-9", "x"], { pattern: "(?P<n>\\d+)", extract: "n=$n" }),
        [{ tag: "build-7-of-9", value: "n=7" }],
      );
    });

    it("GIVEN a template THEN templateReferences lists the groups it names, and patternGroups the groups a pattern has", () => {
      assert.deepEqual(templateReferences("$1-${2}-${major}-$$-$nope-$1x"), [
        "1",
        "2",
        "major",
        "nope",
        "1x",
      ]);
      assert.deepEqual(patternGroups(compilePattern("^(?P<major>\\d+)\\.(\\d+)(?:-x)?$")), {
        count: 2,
        names: ["major"],
      });
    });

    it("GIVEN no extract WHEN filtered THEN values are the tags", () => {
      assert.deepEqual(
        filterTags(["1.0.0", "1.0.0-rc.1", "x"], { pattern: "^\\d+\\.\\d+\\.\\d+$" }),
        values(["1.0.0"]),
      );
    });

    it("GIVEN Go templates WHEN expanded THEN $1, ${1}, ${name}, $$ and unknown groups behave as in Go", () => {
      const m = /(?<major>\d+)\.(\d+)/.exec("7.9")!;
      assert.equal(expandTemplate("$1-${2}-${major}-$$-$nope-$1x", m), "7-9-7-$--");
    });

    it("GIVEN an invalid pattern WHEN filtered THEN the error names the pattern", () => {
      assert.throws(() => filterTags(["a"], { pattern: "(" }), /^Error: filterTags pattern "\(": /);
    });
  });

  describe("selectSemver", () => {
    const tags = values([
      "1.0.0",
      "1.1.0",
      "1.2.0-rc.1",
      "v1.1.5",
      "2.0.0",
      "2.1.0-beta.1",
      "latest",
      "1.1.5",
    ]);

    it("GIVEN a caret range WHEN selected THEN the highest release in range wins, prereleases excluded", () => {
      assert.deepEqual(selectSemver(tags, "^1.0.0"), {
        tag: "1.1.5",
        value: "1.1.5",
        version: "1.1.5",
      });
    });

    it("GIVEN a range naming a prerelease WHEN selected THEN prereleases of any version in range count", () => {
      assert.equal(selectSemver(tags, ">=1.0.0-0 <2.0.0")?.tag, "1.2.0-rc.1");
      assert.equal(selectSemver(tags, ">=2.0.0-0")?.tag, "2.1.0-beta.1");
    });

    it("GIVEN prerelease true WHEN selected THEN prereleases in range count though the range names none", () => {
      assert.equal(selectSemver(tags, "^1.0.0", true)?.tag, "1.2.0-rc.1");
      assert.equal(selectSemver(tags, "*", true)?.tag, "2.1.0-beta.1");
    });

    it("GIVEN prerelease false WHEN selected THEN no prerelease counts, though the range names one", () => {
      assert.equal(selectSemver(tags, ">=1.0.0-0 <2.0.0", false)?.tag, "1.1.5");
    });

    it("GIVEN * WHEN selected THEN the highest release wins", () => {
      assert.equal(selectSemver(tags, "*")?.tag, "2.0.0");
    });

    it("GIVEN a range nothing satisfies WHEN selected THEN nothing is selected", () => {
      assert.equal(selectSemver(tags, ">=3.0.0"), undefined);
    });

    it("GIVEN a bad range WHEN selected THEN the error names it", () => {
      assert.throws(() => selectSemver(tags, "not a range"), {
        message: '"not a range" is not a semver range',
      });
    });
  });

  describe("selectOrdered", () => {
    it("GIVEN timestamps WHEN ordered alphabetically THEN asc picks the last and desc the first", () => {
      const tags = values(["RELEASE.2024-03-01", "RELEASE.2024-01-15", "RELEASE.2023-12-31"]);
      assert.equal(selectOrdered(tags, "alphabetical")?.tag, "RELEASE.2024-03-01");
      assert.equal(selectOrdered(tags, "alphabetical", "desc")?.tag, "RELEASE.2023-12-31");
    });

    it("GIVEN numbers WHEN ordered numerically THEN 10 beats 9 (unlike alphabetically)", () => {
      const tags = values(["9", "10", "2.5"]);
      assert.equal(selectOrdered(tags, "numerical")?.tag, "10");
      assert.equal(selectOrdered(tags, "numerical", "desc")?.tag, "2.5");
      assert.equal(selectOrdered(tags, "alphabetical")?.tag, "9");
    });

    it("GIVEN a non-number WHEN ordered numerically THEN the error names the tag", () => {
      assert.throws(() => selectOrdered(values(["1", "latest"]), "numerical"), {
        message: 'tag "latest": value "latest" is not a number',
      });
    });
  });

  it("GIVEN tags with a prefix WHEN matched to a commit THEN 7..40 hex digits that prefix the commit match", () => {
    const commit = "8609b01765984664cad3615801efa550417442ff";
    assert.deepEqual(
      tagsForCommit(
        [
          "main-8609b01",
          "main-8609b0",
          "main-8609b017659",
          "dev-8609b01",
          "main-deadbee",
          `main-${commit}`,
        ],
        "main-",
        commit,
      ),
      ["main-8609b01", "main-8609b017659", `main-${commit}`],
    );
  });

  it("GIVEN each policy WHEN described THEN the config value is in the text", () => {
    assert.equal(describePolicy({ kind: "semver", range: "^1.2.0" }), 'semver "^1.2.0"');
    assert.equal(
      describePolicy({ kind: "numerical", filterTags: { pattern: "^b-(\\d+)$", extract: "$1" } }),
      'numerical asc (filterTags "^b-(\\\\d+)$" extract "$1")',
    );
    assert.equal(describePolicy({ kind: "tag", tag: "stable" }), 'tag "stable"');
    assert.equal(
      describePolicy({ kind: "gitRevision", source: "api", url: "file:///r", branch: "main" }),
      "gitRevision main of file:///r",
    );
  });

  describe("labelledImage: what an image's own labels say it is (invariant 5)", () => {
    const commit = "8609b01765984664cad3615801efa550417442ff";

    it("GIVEN an image built by gitops-rings THEN its version, revision and source commits are read", () => {
      const labels = imageLabels({
        project: "example",
        image: "backend",
        version: "1.4.2",
        revision: `v1:sha256:${"a".repeat(64)}`,
        dependencies: { base: "0.3.0" },
        sources: [
          { name: "docs", url: "https://example.com/docs.git", commit },
          { name: "api", url: "https://example.com/api.git", commit },
        ],
      });
      assert.deepEqual(labelledImage(labels, "img"), {
        version: "1.4.2",
        revision: `v1:sha256:${"a".repeat(64)}`,
        sources: [
          { name: "api", url: "https://example.com/api.git", commit },
          { name: "docs", url: "https://example.com/docs.git", commit },
        ],
      });
    });

    it("GIVEN an image gitops-rings did not build THEN what it has is read, without error", () => {
      assert.deepEqual(labelledImage({}, "img"), { sources: [] });
      assert.deepEqual(
        labelledImage(
          {
            "org.opencontainers.image.version": "latest",
            "org.opencontainers.image.revision": commit,
            "dependency.libc": "not semver",
          },
          "img",
        ),
        { revision: commit, sources: [] },
      );
    });

    it("GIVEN a malformed io.gitops-rings source label THEN the error names the image and the label", () => {
      assert.throws(
        () => labelledImage({ "io.gitops-rings.source.api.commit": commit }, "r/backend@sha256:1"),
        { message: "r/backend@sha256:1: label io.gitops-rings.source.api.url is missing" },
      );
    });
  });
});
