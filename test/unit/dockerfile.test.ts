import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError } from "../../lib/config";
import {
  contextFiles,
  matchServiceImage,
  parseDockerfile,
  readBuild,
  readDockerignore,
  referencePins,
  ServiceTriggers,
  type ServiceImages,
} from "../../lib/dockerfile";

const SERVICES: ServiceImages = {
  registries: ["127.0.0.1:5001", "registry.example.com"],
  project: "example",
  images: { base: "base", tools: "build-tools", backend: "backend" },
  aliases: { tools: ["legacy.example.com/team/tools"] },
};

/** Asserts that `fn` throws a ConfigError whose message is exactly `lines`. */
async function rejectsConfig(fn: () => Promise<unknown>, lines: readonly string[]): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.message, lines.join("\n"));
    return true;
  });
}

function throwsConfig(fn: () => unknown, lines: readonly string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.message, lines.join("\n"));
    return true;
  });
}

/** Writes files (path -> content) under a new temp dir; returns the dir. */
function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-dockerfile-"));
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe("lib/dockerfile", () => {
  describe("matchServiceImage", () => {
    const cases: [string, string | undefined][] = [
      ["base", "base"],
      ["build-tools", "tools"],
      ["tools", "tools"],
      ["base:1.2.0", undefined],
      ["127.0.0.1:5001/example/base", "base"],
      ["127.0.0.1:5001/example/base:0.3.2", "base"],
      ["registry.example.com/example/build-tools:latest", "tools"],
      [`127.0.0.1:5001/example/base@sha256:${"a".repeat(64)}`, undefined],
      ["127.0.0.1:5001/other/base", undefined],
      ["docker.io/library/alpine:3", undefined],
      // <project>/<image> and aliases: the names manifests use (lib/config.ts serviceImageNames).
      ["example/base", "base"],
      ["example/build-tools:2", "tools"],
      ["legacy.example.com/team/tools:1", "tools"],
      ["team/tools", undefined],
    ];
    for (const [ref, expected] of cases) {
      it(`GIVEN ${ref} THEN it names ${expected ?? "no service"}`, () => {
        assert.equal(matchServiceImage(ref, SERVICES), expected);
      });
    }
  });

  describe("parseDockerfile: stages and references", () => {
    it("GIVEN the recommended ARG BASE=base + FROM ${BASE} THEN base is a dependency passed by that ARG", () => {
      const info = parseDockerfile(
        "ARG BASE=base\nFROM ${BASE}\nCOPY a /a\n",
        "app/backend/Dockerfile",
        {
          services: SERVICES,
        },
      );
      assert.deepEqual(info.stages, [{ index: 0, base: "base", line: 2, service: "base" }]);
      assert.deepEqual(info.references, [
        { service: "base", ref: "base", via: "from", arg: "BASE", stage: 0, line: 2 },
      ]);
      assert.deepEqual(info.dependencies, ["base"]);
    });

    it("GIVEN a build arg that overrides a global ARG THEN FROM uses the override", () => {
      const info = parseDockerfile(
        "ARG REG=docker.io\nARG IMG=${REG}/library/alpine:3\nFROM $IMG AS x\n",
        "Dockerfile",
        { buildArgs: { REG: "127.0.0.1:5001" }, services: SERVICES },
      );
      assert.equal(info.stages[0].base, "127.0.0.1:5001/library/alpine:3");
      assert.deepEqual(info.dependencies, []);
    });

    it("GIVEN the registry/project/image form with a tag THEN it is a reference without an ARG", () => {
      const info = parseDockerfile(
        "FROM --platform=$BUILDPLATFORM 127.0.0.1:5001/example/build-tools:0.1.0 AS tools\nFROM scratch\nCOPY --from=tools /x /x\n",
        "Dockerfile",
        { services: SERVICES },
      );
      assert.deepEqual(info.references, [
        {
          service: "tools",
          ref: "127.0.0.1:5001/example/build-tools:0.1.0",
          via: "from",
          stage: 0,
          line: 1,
        },
      ]);
      assert.deepEqual(info.stages[0], {
        index: 0,
        name: "tools",
        base: "127.0.0.1:5001/example/build-tools:0.1.0",
        line: 1,
        service: "tools",
      });
    });

    it("GIVEN a stage named like a service THEN FROM that name is the stage, not the service", () => {
      const info = parseDockerfile("FROM alpine AS base\nFROM base\n", "Dockerfile", {
        services: SERVICES,
      });
      assert.deepEqual(info.stages[1], { index: 1, base: "base", line: 2, parent: 0 });
      assert.deepEqual(info.dependencies, []);
    });

    it("GIVEN COPY --from and RUN --mount from services THEN both are references", () => {
      const info = parseDockerfile(
        "FROM scratch\nCOPY --from=build-tools /bin/x /x\nRUN --mount=type=bind,from=backend,target=/b true\n",
        "Dockerfile",
        { services: SERVICES },
      );
      assert.deepEqual(info.references, [
        { service: "tools", ref: "build-tools", via: "copy", stage: 0, line: 2 },
        { service: "backend", ref: "backend", via: "mount", stage: 0, line: 3 },
      ]);
      assert.deepEqual(info.sources, []);
    });

    it("GIVEN FROM ${ARG}, FROM <name>, COPY --from and RUN --mount=from services THEN referencePins pins every one, not only FROM", () => {
      const info = parseDockerfile(
        [
          "ARG BASE=base",
          "FROM ${BASE} AS one",
          "FROM 127.0.0.1:5001/example/build-tools:0.1.0 AS two",
          "FROM scratch",
          "ARG FROM_TOOLS=build-tools",
          "COPY --from=backend /app /app",
          "COPY --from=${FROM_TOOLS} /bin/t /t",
          "RUN --mount=from=base,target=/b true",
          "COPY --from=one /x /x",
          "COPY --from=two /y /y",
        ].join("\n"),
        "Dockerfile",
        { services: SERVICES },
      );
      assert.deepEqual(referencePins(info.references), {
        dependencyArgs: { BASE: "base" },
        namedContexts: {
          "127.0.0.1:5001/example/build-tools:0.1.0": "tools",
          backend: "backend",
          "build-tools": "tools",
          base: "base",
        },
      });
      assert.deepEqual(info.dependencies, ["backend", "base", "tools"]);
    });

    it("GIVEN a target THEN only the stages it needs count, for references and sources", () => {
      const text = [
        "FROM base AS deps", // 0
        "COPY package.json /",
        "FROM deps AS build", // 1
        "COPY src/ /src/",
        "FROM build-tools AS test", // 2: not needed by runtime
        "COPY test/ /test/",
        "FROM scratch AS runtime", // 3
        "COPY --from=build /out /out",
      ].join("\n");
      const info = parseDockerfile(text, "Dockerfile", { target: "runtime", services: SERVICES });
      assert.equal(info.target, 3);
      assert.deepEqual(info.needed, [0, 1, 3]);
      assert.deepEqual(info.dependencies, ["base"]);
      assert.deepEqual(
        info.sources.map((s) => s.source),
        ["package.json", "src/"],
      );
      const test = parseDockerfile(text, "Dockerfile", { target: "test", services: SERVICES });
      assert.deepEqual(test.dependencies, ["tools"]);
      assert.deepEqual(
        test.sources.map((s) => s.source),
        ["test/"],
      );
    });

    it("GIVEN a FROM with a digest THEN it is an explicit pin, not a reference", () => {
      const info = parseDockerfile(
        `FROM 127.0.0.1:5001/example/base@sha256:${"b".repeat(64)}\n`,
        "Dockerfile",
        { services: SERVICES },
      );
      assert.deepEqual(info.dependencies, []);
    });
  });

  describe("parseDockerfile: COPY and ADD sources", () => {
    const sources = (text: string, platform?: string) =>
      parseDockerfile(text, "Dockerfile", { platform, buildArgs: { FROM_ARG: "cli" } }).sources.map(
        (s) => [s.instruction, s.source, s.wildcard, s.line],
      );

    it("GIVEN flags and several sources THEN every source is read and the destination is not", () => {
      assert.deepEqual(
        sources("FROM scratch\nCOPY --chown=1:1 --chmod=0755 --link a.txt b/ c*.txt /dst/\n"),
        [
          ["COPY", "a.txt", false, 2],
          ["COPY", "b/", false, 2],
          ["COPY", "c*.txt", true, 2],
        ],
      );
    });

    it("GIVEN the JSON array form THEN paths with spaces are kept whole", () => {
      assert.deepEqual(
        sources('FROM scratch\nCOPY --chown=1 ["my file.txt", "other", "/dst/"]\n'),
        [
          ["COPY", "my file.txt", false, 2],
          ["COPY", "other", false, 2],
        ],
      );
    });

    it("GIVEN line continuations and comments inside THEN sources on every line are read", () => {
      assert.deepEqual(sources("FROM scratch\nCOPY a \\\n# note\n  b /dst/\n"), [
        ["COPY", "a", false, 2],
        ["COPY", "b", false, 2],
      ]);
    });

    it("GIVEN heredocs THEN the inline documents are skipped and real sources beside them kept", () => {
      const text =
        'FROM scratch\nCOPY <<EOF /etc/conf\nhello\nEOF\nCOPY <<-"EOT" real.txt /y/\n\tthere\n\tEOT\n';
      assert.deepEqual(sources(text), [["COPY", "real.txt", false, 5]]);
    });

    it("GIVEN COPY --from a stage and ADD of URLs THEN nothing is read from the context", () => {
      const text =
        "FROM scratch AS a\nFROM scratch\nCOPY --from=a /x /x\nCOPY --from=0 /y /y\nADD https://example.com/f /f\nADD git@github.com:o/r.git /r\nADD local.tar /\n";
      assert.deepEqual(sources(text), [["ADD", "local.tar", false, 7]]);
    });

    it("GIVEN ARG, ENV and build args in sources THEN they are substituted in stage scope", () => {
      const text = [
        "ARG GLOBAL=g",
        "FROM scratch",
        "ARG GLOBAL",
        "ARG SRC=src",
        "ENV DIR=${SRC}/lib",
        "ARG FROM_ARG=default",
        "COPY ${DIR}/x ${GLOBAL}.txt ${MISSING:-fallback} ${FROM_ARG} \"quo\"ted '$SRC' /dst/",
      ].join("\n");
      assert.deepEqual(
        sources(text).map((s) => s[1]),
        ["src/lib/x", "g.txt", "fallback", "cli", "quoted", "$SRC"],
      );
    });

    it("GIVEN ENV in a parent stage THEN a child stage sees it", () => {
      const text = "FROM scratch AS a\nENV D=conf\nFROM a\nCOPY ${D}/ /c/\n";
      assert.deepEqual(sources(text), [["COPY", "conf/", false, 4]]);
    });

    it("GIVEN TARGETARCH in a source THEN it follows the platform", () => {
      const text = "FROM scratch\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/app /app\n";
      assert.deepEqual(sources(text, "linux/arm64"), [["COPY", "bin/arm64/app", false, 3]]);
      assert.deepEqual(sources(text), [["COPY", "bin/amd64/app", false, 3]]);
    });

    it("GIVEN RUN bind mounts from the context THEN their sources are read, whole context by default", () => {
      const text =
        "FROM scratch\nRUN --mount=type=bind,source=go.mod,target=/go.mod --mount=type=cache,target=/c go build\nRUN --mount=type=bind,target=/src make\n";
      assert.deepEqual(sources(text), [
        ["RUN", "go.mod", false, 2],
        ["RUN", ".", false, 3],
      ]);
    });

    it("GIVEN COPY --exclude flags THEN each source carries the patterns, substituted", () => {
      const info = parseDockerfile(
        "FROM scratch\nARG EXT=md\nCOPY --exclude=*.${EXT} --exclude=tmp/ docs/ a.txt /d/\n",
        "Dockerfile",
      );
      assert.deepEqual(
        info.sources.map((s) => [s.source, s.exclude]),
        [
          ["docs/", ["*.md", "tmp/"]],
          ["a.txt", ["*.md", "tmp/"]],
        ],
      );
    });

    it("GIVEN a FROM service whose image has ONBUILD triggers THEN their COPY/ADD read this context, at the FROM line", () => {
      const info = parseDockerfile(
        "FROM scratch AS other\nFROM base\nCOPY own.txt /\n",
        "app/child/Dockerfile",
        {
          services: SERVICES,
          onbuild: {
            base: [
              "ARG APP=app",
              "COPY ${APP}/ /srv/",
              "RUN echo not a source",
              "ADD --exclude=*.md extra.tar /",
            ],
          },
        },
      );
      assert.deepEqual(
        info.sources.map((s) => [s.instruction, s.source, s.line, s.onbuild, s.exclude]),
        [
          ["COPY", "app/", 2, "base", undefined],
          ["ADD", "extra.tar", 2, "base", ["*.md"]],
          ["COPY", "own.txt", 3, undefined, undefined],
        ],
      );
      assert.deepEqual(info.onbuild, []);
    });

    it("GIVEN ONBUILD in a stage THEN a stage FROM it runs them and the image carries the target's own", () => {
      const info = parseDockerfile(
        "FROM scratch AS parent\nONBUILD COPY parent.txt /\nFROM parent\nONBUILD COPY --from=build-tools /t /t\nONBUILD COPY child.txt /\n",
        "Dockerfile",
        { services: SERVICES },
      );
      assert.deepEqual(
        info.sources.map((s) => [s.source, s.line, s.onbuild]),
        [["parent.txt", 3, "stage parent"]],
      );
      assert.deepEqual(info.onbuild, ["COPY --from=build-tools /t /t", "COPY child.txt /"]);
      assert.deepEqual(info.dependencies, []);
    });
  });

  describe("parseDockerfile: errors name the Dockerfile and line", () => {
    it("GIVEN no FROM THEN the error says so", () => {
      throwsConfig(
        () => parseDockerfile("# nothing\n", "app/x/Dockerfile"),
        ["app/x/Dockerfile: no FROM instruction"],
      );
    });

    it("GIVEN several problems THEN each is reported with its line", () => {
      const text = [
        "COPY early /x",
        "FROM alpine",
        "COPY onlyone",
        "COPY ${A%b} /x",
        "ADD ${B:?unset} /y",
        'COPY "open /z',
      ].join("\n");
      throwsConfig(
        () => parseDockerfile(text, "app/x/Dockerfile", { target: "nope" }),
        [
          "app/x/Dockerfile:1: COPY before the first FROM",
          "app/x/Dockerfile:3: COPY needs at least one source and a destination",
          'app/x/Dockerfile:4: COPY: unsupported substitution ${A%...} in "${A%b}"',
          "app/x/Dockerfile:5: ADD: B: unset",
          'app/x/Dockerfile:6: COPY: unterminated quote in "\\"open"',
          'app/x/Dockerfile: target "nope" is not a stage (no named stages)',
        ],
      );
    });

    it("GIVEN an unknown target THEN the error lists the stages", () => {
      throwsConfig(
        () => parseDockerfile("FROM a AS build\nFROM b AS run\n", "Dockerfile", { target: "test" }),
        ['Dockerfile: target "test" is not a stage (build, run)'],
      );
    });
  });

  describe("contextFiles and .dockerignore", () => {
    let dir: string;
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("GIVEN COPY of files, a directory and globs THEN exactly the files read are listed, sorted", async () => {
      dir = tree({
        Dockerfile:
          "FROM scratch\nCOPY *.json [ab].txt /\nCOPY src /src\nCOPY cmd/*/main.go /cmd/\n",
        "package.json": "{}",
        "tsconfig.json": "{}",
        "a.txt": "a",
        "b.txt": "b",
        "c.txt": "not read",
        "src/index.ts": "x",
        "src/lib/util.ts": "y",
        "cmd/one/main.go": "1",
        "cmd/two/main.go": "2",
        "cmd/two/other.go": "not read",
        "cmd/main.go": "not read: wrong depth",
        "README.md": "not read",
      });
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), [
        "a.txt",
        "b.txt",
        "cmd/one/main.go",
        "cmd/two/main.go",
        "package.json",
        "src/index.ts",
        "src/lib/util.ts",
        "tsconfig.json",
      ]);
    });

    it("GIVEN COPY . with a .dockerignore with exceptions THEN ignored files are left out and exceptions kept", async () => {
      dir = tree({
        Dockerfile: "FROM scratch\nCOPY . /app\n",
        ".dockerignore": "# comment\n\nnode_modules\n*.log\n!keep.log\ndocs/*\n!docs/api\n",
        "index.js": "x",
        "a.log": "x",
        "keep.log": "x",
        "node_modules/m/index.js": "x",
        "docs/guide.md": "x",
        "docs/api/ref.md": "x",
      });
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), [
        ".dockerignore",
        "Dockerfile",
        "docs/api/ref.md",
        "index.js",
        "keep.log",
      ]);
    });

    it("GIVEN the base pattern '*' then '!rootfs/' THEN only rootfs is read", async () => {
      dir = tree({
        Dockerfile: "FROM scratch\nCOPY rootfs/ /\n",
        ".dockerignore": "*\n!rootfs/\n",
        "rootfs/bin/busybox": "x",
        "other.txt": "x",
      });
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), [
        "rootfs/bin/busybox",
      ]);
    });

    it("GIVEN <Dockerfile>.dockerignore beside the Dockerfile THEN it wins over the context's", async () => {
      dir = tree({
        "build/app.Dockerfile": "FROM scratch\nCOPY . /\n",
        "build/app.Dockerfile.dockerignore": "secret.txt\nbuild\n",
        ".dockerignore": "public.txt\n",
        "public.txt": "x",
        "secret.txt": "x",
      });
      const dockerfile = path.join(dir, "build/app.Dockerfile");
      assert.deepEqual(await readDockerignore(dir, dockerfile), {
        file: `${dockerfile}.dockerignore`,
        patterns: ["secret.txt", "build"],
      });
      assert.deepEqual(await contextFiles(dir, dockerfile), [".dockerignore", "public.txt"]);
    });

    it("GIVEN no .dockerignore THEN there are no patterns", async () => {
      dir = tree({ Dockerfile: "FROM scratch\n" });
      assert.deepEqual(await readDockerignore(dir, path.join(dir, "Dockerfile")), { patterns: [] });
    });

    it("GIVEN a file that no COPY reads THEN it is not listed", async () => {
      dir = tree({ Dockerfile: "FROM scratch\nCOPY app.js /\n", "app.js": "x", "notes.txt": "x" });
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), ["app.js"]);
    });

    it("GIVEN a source that is a symlink THEN the link and what it points to are listed", async () => {
      dir = tree({ Dockerfile: "FROM scratch\nCOPY current /c\n", "releases/v1/app": "x" });
      fs.symlinkSync("releases/v1", path.join(dir, "current"));
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), [
        "current",
        "releases/v1/app",
      ]);
    });

    it("GIVEN a per-platform source THEN files of every platform are listed", async () => {
      dir = tree({
        Dockerfile: "FROM scratch\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/ /bin/\n",
        "bin/amd64/app": "x",
        "bin/arm64/app": "y",
        "bin/riscv64/app": "z",
      });
      const build = await readBuild(dir, path.join(dir, "Dockerfile"), {
        platforms: ["linux/arm64", "linux/amd64"],
      });
      assert.deepEqual(build.files, ["bin/amd64/app", "bin/arm64/app"]);
    });

    it("GIVEN missing and ignored sources THEN each is an error naming the Dockerfile and line", async () => {
      dir = tree({
        Dockerfile: "FROM scratch\nCOPY missing.txt /\nCOPY secret.env /\nCOPY nothing*.txt /\n",
        ".dockerignore": "*.env\n",
        "secret.env": "x",
      });
      await rejectsConfig(
        () => contextFiles(dir, path.join(dir, "Dockerfile"), { label: "app/x/Dockerfile" }),
        [
          'app/x/Dockerfile:2: COPY source "missing.txt" is not in the build context',
          'app/x/Dockerfile:3: COPY source "secret.env" is excluded by .dockerignore',
        ],
      );
    });

    it("GIVEN a Dockerfile that does not exist THEN the error names it", async () => {
      dir = tree({});
      await assert.rejects(
        () => contextFiles(dir, path.join(dir, "Dockerfile"), { label: "app/x/Dockerfile" }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, /^app\/x\/Dockerfile: cannot read: ENOENT/);
          return true;
        },
      );
    });

    it("GIVEN sources that climb out with .. THEN they stay in the context, as in BuildKit", async () => {
      dir = tree({ Dockerfile: "FROM scratch\nCOPY ../../a.txt /\n", "a.txt": "x" });
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), ["a.txt"]);
    });

    it("GIVEN a symlink a wildcard matches THEN the link and what it points to are listed, as when named", async () => {
      dir = tree({
        Dockerfile: "FROM scratch\nCOPY conf/*.conf /etc/\n",
        "conf/real.conf": "x",
        "shared/app.conf": "y",
        "shared/tree/deep.txt": "z",
      });
      fs.symlinkSync("../shared/app.conf", path.join(dir, "conf/link.conf"));
      fs.symlinkSync("../shared/tree", path.join(dir, "conf/dir.conf"));
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), [
        "conf/dir.conf",
        "conf/link.conf",
        "conf/real.conf",
        "shared/app.conf",
        "shared/tree/deep.txt",
      ]);
    });

    it("GIVEN a copied directory THEN the directories under it are listed, empty ones too, not the directory itself", async () => {
      dir = tree({ Dockerfile: "FROM scratch\nCOPY src/ /app/\n", "src/a/b.txt": "x" });
      fs.mkdirSync(path.join(dir, "src/empty/inner"), { recursive: true });
      const build = await readBuild(dir, path.join(dir, "Dockerfile"));
      assert.deepEqual(build.directories, ["src/a", "src/empty", "src/empty/inner"]);
      assert.deepEqual(build.files, ["src/a/b.txt"]);
    });

    it("GIVEN COPY --exclude THEN matching paths under each copied directory are left out, files named directly kept", async () => {
      dir = tree({
        Dockerfile:
          "FROM scratch\nCOPY --exclude=*.md --exclude=tmp docs/ notes.md /d/\nCOPY --exclude=*/*.png pics* /p/\n",
        "docs/guide.md": "x",
        "docs/api/ref.md": "x",
        "docs/api/ref.txt": "x",
        "docs/tmp/scratch.txt": "x",
        "docs/index.txt": "x",
        "notes.md": "named directly",
        "pics/a.png": "x",
        "pics/sub/b.png": "x",
        "pics/sub/c.jpg": "x",
      });
      assert.deepEqual(await contextFiles(dir, path.join(dir, "Dockerfile")), [
        "docs/api/ref.md",
        "docs/api/ref.txt",
        "docs/index.txt",
        "notes.md",
        "pics/a.png",
        "pics/sub/c.jpg",
      ]);
    });

    it("GIVEN a wildcard under a directory that does not exist THEN it is an error; one that matches nothing is not", async () => {
      dir = tree({
        Dockerfile: "FROM scratch\nCOPY nothing*.txt /\nCOPY missing/*.txt /\nCOPY src/*.none /\n",
        "src/a.txt": "x",
      });
      await rejectsConfig(
        () => contextFiles(dir, path.join(dir, "Dockerfile"), { label: "app/x/Dockerfile" }),
        [
          'app/x/Dockerfile:3: COPY source "missing/*.txt" is not in the build context (no "missing")',
        ],
      );
    });

    it("GIVEN a symlink to nothing, named or matched THEN it is an error naming the link", async () => {
      dir = tree({ Dockerfile: "FROM scratch\nCOPY dangling /\nCOPY src/d* /\n", "src/a": "x" });
      fs.symlinkSync("nowhere", path.join(dir, "dangling"));
      fs.symlinkSync("../nowhere", path.join(dir, "src/dangling"));
      await rejectsConfig(
        () => contextFiles(dir, path.join(dir, "Dockerfile"), { label: "Dockerfile" }),
        [
          'Dockerfile:2: COPY source "dangling" is a symlink to nothing (dangling)',
          'Dockerfile:3: COPY source "src/d*" is a symlink to nothing (src/dangling)',
        ],
      );
    });

    it("GIVEN a base service whose Dockerfile has ONBUILD COPY THEN a build FROM it reads those files from its own context", async () => {
      dir = tree({
        "base/Dockerfile":
          "FROM scratch AS tools\nONBUILD COPY tools.txt /\nFROM scratch\nONBUILD COPY app/ /srv/\nONBUILD RUN --mount=type=bind,source=go.mod,target=/m true\n",
        "child/Dockerfile": "FROM base\nCOPY own.txt /\n",
        "child/own.txt": "x",
        "child/app/main.js": "x",
        "child/go.mod": "x",
        "child/tools.txt": "not read: ONBUILD of another stage",
      });
      const triggers = new ServiceTriggers(["base", "backend", "child"]);
      const child = readBuild(path.join(dir, "child"), path.join(dir, "child/Dockerfile"), {
        services: SERVICES,
        triggers: triggers.of,
      });
      triggers.locate("base", path.join(dir, "base/Dockerfile"));
      triggers.locate("backend", path.join(dir, "backend/Dockerfile")); // no such file: no triggers
      const build = await child;
      assert.deepEqual(build.files, ["app/main.js", "go.mod", "own.txt"]);
      assert.deepEqual(await triggers.of("backend"), []);
    });

    it("GIVEN a FROM service with an ONBUILD COPY of a missing source THEN the error names the FROM line and the trigger", async () => {
      dir = tree({ Dockerfile: "FROM scratch AS x\nFROM base\n" });
      await rejectsConfig(
        () =>
          contextFiles(dir, path.join(dir, "Dockerfile"), {
            label: "app/child/Dockerfile",
            services: SERVICES,
            onbuild: { base: ["COPY app/ /srv/"] },
          }),
        ['app/child/Dockerfile:2: ONBUILD COPY of base source "app/" is not in the build context'],
      );
    });
  });
});
