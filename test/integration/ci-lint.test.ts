/**
 * The checks of this repository's CI (scripts/ci/lint.sh): actionlint on every workflow and
 * shellcheck on every shell script pass here, and fail on a copy with a broken workflow or
 * script, so the check can fail. The tools come from the platform's cache
 * (`scripts/platform.sh tools`).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
const LINT = path.join(ROOT, "scripts/ci/lint.sh");

function lint(root?: string): { status: number | null; output: string } {
  const r = spawnSync("bash", [LINT, ...(root ? [root] : [])], { encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("CI checks: actionlint and shellcheck", function () {
  this.timeout(60_000);
  let copy: string;

  beforeEach(function () {
    copy = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-lint-"));
    fs.cpSync(path.join(ROOT, ".github"), path.join(copy, ".github"), { recursive: true });
    fs.cpSync(path.join(ROOT, "scripts"), path.join(copy, "scripts"), { recursive: true });
  });

  afterEach(function () {
    fs.rmSync(copy, { recursive: true, force: true });
  });

  it("GIVEN this repository THEN every workflow passes actionlint and every shell script passes shellcheck", function () {
    const { status, output } = lint();
    assert.equal(status, 0, output);
    assert.match(output, /actionlint: 3 workflows/);
    const scripts = Number(/shellcheck: (\d+) scripts/.exec(output)?.[1]);
    assert.ok(scripts >= 10, `shellcheck checked ${scripts} scripts`);
  });

  it("GIVEN a copy with a broken workflow THEN the check fails naming the file and the line", function () {
    const file = path.join(copy, ".github/workflows/preview.yml");
    const text = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, text.replace("${{ matrix.site }}", "${{ matrix.sites }}"));
    const { status, output } = lint(copy);
    assert.equal(status, 1, output);
    assert.match(
      output,
      /\.github\/workflows\/preview\.yml:\d+:\d+: property "sites" is not defined/,
    );
  });

  it("GIVEN a copy with a workflow whose run script breaks shellcheck THEN the check fails", function () {
    fs.writeFileSync(
      path.join(copy, ".github/workflows/broken.yml"),
      "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $UNQUOTED\n",
    );
    const { status, output } = lint(copy);
    assert.equal(status, 1, output);
    assert.match(output, /broken\.yml:6:\d+: shellcheck reported issue in this script: SC2086/);
  });

  it("GIVEN a copy with a broken shell script THEN shellcheck fails naming it", function () {
    fs.writeFileSync(
      path.join(copy, "scripts/ci/broken.sh"),
      "#!/usr/bin/env bash\nfor f in $(ls *.txt); do rm $f; done\n",
    );
    const { status, output } = lint(copy);
    assert.equal(status, 1, output);
    assert.match(output, /In \.\/scripts\/ci\/broken\.sh line 2:/);
    assert.match(output, /SC2045|SC2086/);
  });
});
