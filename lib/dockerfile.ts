/**
 * Reading a Dockerfile the way BuildKit does, for three purposes: which services a service
 * depends on (DESIGN.md, "dependency"), which context files its COPY/ADD instructions read
 * (DESIGN.md, "revision"; invariant 3: a file no COPY/ADD reads changes nothing), and errors
 * that name the Dockerfile and line (invariant 6). Parsing is `dockerfile-ast`'s; `.dockerignore`
 * matching is `@balena/dockerignore`'s (a port of Docker's own).
 *
 * ## How a Dockerfile names another service (the convention)
 *
 * A stage is built FROM a service's image when its FROM image, after ARG substitution, is
 *
 * 1. the bare service name or its image name, without tag or digest: `FROM base`; or
 * 2. `<project>/<image>`, `<registry>/<project>/<image>` or one of the service's `aliases` in
 *    gitops-rings.yaml, with any tag or none: `FROM 127.0.0.1:5001/example/base:1.2.0`.
 *
 * These are the names manifests use too (lib/config.ts serviceImageNames, lib/kustomize.ts).
 *
 * The recommended form is a global ARG whose default is the service name:
 *
 * ```Dockerfile
 * ARG BASE=base
 * FROM ${BASE}
 * ```
 *
 * The build then pins the dependency by digest, either with the build arg
 * (`BASE=<registry>/<project>/base@sha256:…`, see {@link ServiceReference.arg}) or with a named
 * build context whose key is {@link ServiceReference.ref}. A stage name always wins over a
 * service name, as in BuildKit. `COPY --from=<service>` and `RUN --mount=from=<service>` name a
 * service the same way. A FROM with a digest (`@sha256:…`) is an explicit pin and not a
 * service reference.
 *
 * ## Context files
 *
 * Sources of COPY and ADD (shell or JSON form; `--chown`, `--chmod`, `--link` and `--parents`
 * do not change what is read; `--exclude` patterns are applied below each directory a source
 * names or matches, as BuildKit does), and context bind mounts of RUN (`--mount=type=bind`
 * without `from`), in the stages the target needs, with the ONBUILD triggers of what a stage
 * is built FROM run first in that stage (a base service's triggers read this build's context).
 * Skipped: `--from=` copies, heredocs, ADD of URLs. Wildcards follow Go's `filepath.Match` per
 * path segment, as BuildKit's; a matched directory contributes every file and directory under
 * it. A wildcard that matches nothing copies nothing (BuildKit allows it), but one below a
 * directory that does not exist fails, as it fails in BuildKit. `.dockerignore`:
 * `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`, as in
 * BuildKit. A symlink that a source names or a wildcard matches contributes the link and, when
 * it stays inside the context, what it points to (BuildKit copies the target under the link's
 * name); a symlink inside a copied directory is copied as a link. Variables in sources are
 * expanded per platform (`TARGETARCH` and friends), and the lists are merged.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import ignore, { type Ignore } from "@balena/dockerignore";
import {
  Add,
  Arg,
  Copy,
  DockerfileParser,
  Env,
  From,
  type Instruction,
  Onbuild,
  Run,
} from "dockerfile-ast";
import {
  ConfigError,
  serviceImageNames,
  type ConfigProblem,
  type RepositoryConfig,
} from "./config";

/** How the Dockerfile can name the images of the project's services. */
export interface ServiceImages {
  /** Registries the project's images live in (the repository's and a site's override). */
  readonly registries: readonly string[];
  /** The project: the path under the registry. */
  readonly project: string;
  /** Each service's image name, by service name. */
  readonly images: Readonly<Record<string, string>>;
  /** Each service's further names (`services.<name>.aliases`), by service name. @default {} */
  readonly aliases?: Readonly<Record<string, readonly string[]>>;
}

/** Options for reading a Dockerfile. */
export interface DockerfileOptions {
  /** Build args (`--build-arg`), overriding ARG defaults. @default {} */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Stage to build. @default the last stage */
  readonly target?: string;
  /** Target platform, for `TARGETPLATFORM` and friends. @default "linux/amd64" */
  readonly platform?: string;
  /** Build platform, for `BUILDPLATFORM` and friends. @default "linux/amd64" */
  readonly buildPlatform?: string;
  /** The project's service images; without it no reference is recognized. */
  readonly services?: ServiceImages;
  /**
   * The ONBUILD triggers of each service's image ({@link DockerfileInfo.onbuild} of its own
   * Dockerfile), by service name: a stage FROM that service runs them first, so what they
   * COPY/ADD is read from this build's context. @default {}
   */
  readonly onbuild?: Readonly<Record<string, readonly string[]>>;
}

/** One build stage (one FROM). */
export interface DockerfileStage {
  /** 0-based stage index, as `COPY --from=<n>` counts. */
  readonly index: number;
  /** The `AS` name, lowercased as BuildKit compares it. */
  readonly name?: string;
  /** The FROM image after ARG substitution. */
  readonly base: string;
  /** 1-based line of the FROM. */
  readonly line: number;
  /** Index of the stage this one is built FROM, when it is a stage. */
  readonly parent?: number;
  /** The service this stage is built FROM, when it is one. */
  readonly service?: string;
}

/** A place where the Dockerfile uses another service's image. */
export interface ServiceReference {
  /** The service. */
  readonly service: string;
  /** The image reference as the Dockerfile has it after substitution, e.g. `base`. */
  readonly ref: string;
  /** How: a stage's FROM, `COPY --from`, or `RUN --mount=from`. */
  readonly via: "from" | "copy" | "mount";
  /** When the FROM image is exactly `${NAME}` or `$NAME`: the ARG to pass the digest in. */
  readonly arg?: string;
  /** 0-based index of the stage it is in. */
  readonly stage: number;
  /** 1-based line. */
  readonly line: number;
}

/** One COPY/ADD source or RUN bind mount that reads from the build context. */
export interface ContextSource {
  /** The source after substitution, as written (may hold wildcards). */
  readonly source: string;
  /** Whether the source is a Go `filepath.Match` pattern. */
  readonly wildcard: boolean;
  /** `COPY`, `ADD` or `RUN`. */
  readonly instruction: string;
  /**
   * `--exclude` patterns (BuildKit's, `.dockerignore` syntax), matched against paths relative
   * to each directory the source names or matches; a file named or matched directly is never
   * excluded (as in BuildKit).
   */
  readonly exclude?: readonly string[];
  /**
   * When an ONBUILD trigger reads it: the service (or `stage <name>`) whose ONBUILD it is. The
   * trigger runs in the stage built FROM it, so `line` is that FROM line, as in BuildKit.
   */
  readonly onbuild?: string;
  /** 0-based index of the stage it is in. */
  readonly stage: number;
  /** 1-based line. */
  readonly line: number;
}

/** What a Dockerfile builds from, for one target and platform. */
export interface DockerfileInfo {
  /** The Dockerfile as named in error messages. */
  readonly file: string;
  /** Every stage, in order. */
  readonly stages: readonly DockerfileStage[];
  /** Index of the stage built (the target, or the last). */
  readonly target: number;
  /** Indices of the stages the target needs, sorted. */
  readonly needed: readonly number[];
  /** Service references in the needed stages, in file order. */
  readonly references: readonly ServiceReference[];
  /** Names of the services depended on, sorted, unique. */
  readonly dependencies: readonly string[];
  /** Context sources in the needed stages, in file order, ONBUILD triggers at their FROM. */
  readonly sources: readonly ContextSource[];
  /**
   * The ONBUILD triggers the built image carries: the target stage's own ONBUILD instructions,
   * raw (BuildKit runs inherited triggers and drops them, so they do not pass on).
   */
  readonly onbuild: readonly string[];
}

const PLATFORM_ARGS = ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];
const BUILD_PLATFORM_ARGS = ["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

/**
 * The {@link ServiceImages} of a repository config.
 * @param repo the repository config.
 * @param registry a site's registry override, recognized beside the repository's.
 * @returns registries, project and each service's image.
 */
export function serviceImagesOf(repo: RepositoryConfig, registry?: string): ServiceImages {
  const images: Record<string, string> = {};
  const aliases: Record<string, readonly string[]> = {};
  for (const [name, s] of Object.entries(repo.services)) {
    images[name] = s.image;
    if (s.aliases) aliases[name] = s.aliases;
  }
  const registries =
    registry && registry !== repo.registry ? [repo.registry, registry] : [repo.registry];
  return { registries, project: repo.project, images, aliases };
}

/**
 * Every name by which a Dockerfile or a manifest may name a service's image, without tag or
 * digest (lib/config.ts serviceImageNames), mapped to the service. The repository config
 * rejects a name two services claim; were one claimed anyway (through a site's registry
 * override), the first service in name order keeps it.
 * @param services the project's service images.
 * @returns name → service name.
 */
export function imageNameOwners(services: ServiceImages): Map<string, string> {
  const owners = new Map<string, string>();
  for (const name of Object.keys(services.images).sort()) {
    const service = { name, image: services.images[name], aliases: services.aliases?.[name] };
    for (const n of serviceImageNames(service, services.project, services.registries)) {
      if (!owners.has(n)) owners.set(n, name);
    }
  }
  return owners;
}

/**
 * Which service an image reference names, by the convention in this module's header.
 * @param ref an image reference after ARG substitution, e.g. `base` or
 *   `127.0.0.1:5001/example/base:1.2.0`.
 * @param services the project's service images.
 * @returns the service name, or undefined.
 */
export function matchServiceImage(ref: string, services: ServiceImages): string | undefined {
  if (ref.includes("@")) return undefined;
  const owners = imageNameOwners(services);
  const exact = owners.get(ref);
  if (exact !== undefined) return exact;
  // A tag is allowed on names with a path (`example/base:1.2.0`), not on bare ones (`node:22`).
  const colon = ref.lastIndexOf(":");
  if (colon <= ref.lastIndexOf("/")) return undefined;
  const name = ref.slice(0, colon);
  return name.includes("/") ? owners.get(name) : undefined;
}

/** How a build pins the services it references to their digests (DESIGN.md invariant 7). */
export interface ReferencePins {
  /** Build args to set to a dependency's `<repo>@<digest>`, mapped to its service name. */
  readonly dependencyArgs: Readonly<Record<string, string>>;
  /**
   * Image names as the Dockerfile uses them after substitution, mapped to the service they
   * name: the build passes each as a named context `docker-image://<repo>@<digest>`, which
   * BuildKit substitutes for the name in FROM, `COPY --from` and `RUN --mount=from` alike.
   */
  readonly namedContexts: Readonly<Record<string, string>>;
}

/**
 * How a build pins every reference to another service, whatever the instruction: a FROM that
 * is exactly `${ARG}` by that build arg, every other reference (FROM with a name, `COPY
 * --from`, `RUN --mount=from`, with or without `${ARG}` inside) by a named context keyed by the
 * name it resolves to (DESIGN.md invariant 7: nothing is pulled by name).
 * @param references the service references of a build ({@link BuildRead.references}).
 * @returns the build args and named contexts, each mapped to the service whose digest it takes.
 */
export function referencePins(references: readonly ServiceReference[]): ReferencePins {
  const dependencyArgs: Record<string, string> = {};
  const namedContexts: Record<string, string> = {};
  for (const ref of references) {
    if (ref.arg !== undefined) dependencyArgs[ref.arg] = ref.service;
    else namedContexts[ref.ref] = ref.service;
  }
  return { dependencyArgs, namedContexts };
}

function platformArgs(platform: string, names: readonly string[]): Record<string, string> {
  const [os = "", arch = "", variant = ""] = platform.split("/");
  return { [names[0]]: platform, [names[1]]: os, [names[2]]: arch, [names[3]]: variant };
}

/** A variable lookup: undefined when not set. */
type Lookup = (name: string) => string | undefined;

/**
 * Expands `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?m}`
 * and `${VAR?m}` in one word, with quotes and the escape character handled like BuildKit's
 * shell lexer for COPY/ADD/FROM words. Unset variables expand to "".
 * @throws {Error} with a message for unsupported or malformed expressions.
 */
function expandWord(word: string, lookup: Lookup, escape: string, quotes: boolean): string {
  let out = "";
  let i = 0;
  const readName = (): string => {
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(word.slice(i));
    if (!m) return "";
    i += m[0].length;
    return m[0];
  };
  const dollar = (): string => {
    i++; // past $
    if (word[i] !== "{") {
      const name = readName();
      if (name === "") return "$";
      return lookup(name) ?? "";
    }
    i++; // past {
    const name = readName();
    if (name === "") throw new Error(`bad substitution in ${JSON.stringify(word)}`);
    if (word[i] === "}") {
      i++;
      return lookup(name) ?? "";
    }
    let op = word[i];
    i++;
    if (op === ":") {
      op += word[i];
      i++;
    }
    if (!["-", "+", "?", ":-", ":+", ":?"].includes(op)) {
      throw new Error(`unsupported substitution \${${name}${op}...} in ${JSON.stringify(word)}`);
    }
    // The operand runs to the matching brace, with nested expansions.
    let operand = "";
    let depth = 1;
    while (i < word.length) {
      const c = word[i];
      if (c === escape && i + 1 < word.length) {
        operand += c + word[i + 1];
        i += 2;
        continue;
      }
      if (c === "{") depth++;
      if (c === "}" && --depth === 0) break;
      operand += c;
      i++;
    }
    if (word[i] !== "}") throw new Error(`missing '}' in ${JSON.stringify(word)}`);
    i++;
    const value = lookup(name);
    const set = value !== undefined;
    const nonEmpty = set && value !== "";
    const word2 = () => expandWord(operand, lookup, escape, quotes);
    switch (op) {
      case "-":
        return set ? value : word2();
      case ":-":
        return nonEmpty ? value : word2();
      case "+":
        return set ? word2() : "";
      case ":+":
        return nonEmpty ? word2() : "";
      default:
        if ((op === "?" && set) || (op === ":?" && nonEmpty)) return value as string;
        throw new Error(`${name}: ${operand || "parameter not set"}`);
    }
  };
  let inDouble = false;
  while (i < word.length) {
    const c = word[i];
    if (c === escape && i + 1 < word.length) {
      out += word[i + 1];
      i += 2;
    } else if (quotes && c === "'" && !inDouble) {
      const end = word.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated quote in ${JSON.stringify(word)}`);
      out += word.slice(i + 1, end);
      i = end + 1;
    } else if (quotes && c === '"') {
      inDouble = !inDouble;
      i++;
    } else if (c === "$") {
      out += dollar();
    } else {
      out += c;
      i++;
    }
  }
  if (inDouble) throw new Error(`unterminated quote in ${JSON.stringify(word)}`);
  return out;
}

/** Whether a COPY source is a Go `filepath.Match` pattern. */
function isWildcard(source: string): boolean {
  return /[*?[]/.test(source);
}

const REMOTE = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;
const HEREDOC = /^<<-?(["']?)[A-Za-z_][A-Za-z0-9_]*\1$/;

/**
 * Reads a Dockerfile's stages, service references and context sources for one target and
 * platform. Pure: no file access.
 * @param content the Dockerfile text.
 * @param file the Dockerfile as named in error messages.
 * @param options build args, target, platforms and the project's service images.
 * @returns stages, target, the stages it needs, references and context sources.
 * @throws {ConfigError} listing every problem as `<file>:<line>: <message>`: no FROM, an
 *   instruction other than ARG before the first FROM, a FROM without image, a COPY/ADD
 *   without source and destination, a bad `${...}` substitution, an unknown target.
 */
export function parseDockerfile(
  content: string,
  file: string,
  options: DockerfileOptions = {},
): DockerfileInfo {
  const problems: ConfigProblem[] = [];
  const fail = (line: number | undefined, message: string) =>
    problems.push({ file, ...(line !== undefined ? { line } : {}), message });
  const dockerfile = DockerfileParser.parse(content);
  const escape = dockerfile.getEscapeCharacter();
  const buildArgs = options.buildArgs ?? {};
  const target = platformArgs(options.platform ?? "linux/amd64", PLATFORM_ARGS);
  const build = platformArgs(options.buildPlatform ?? "linux/amd64", BUILD_PLATFORM_ARGS);
  // While an ONBUILD trigger runs: the FROM line it runs at (as BuildKit reports it), and
  // the service or stage that declared it.
  let trigger: { readonly line: number; readonly of: string } | undefined;
  const lineOf = (ins: Instruction) => trigger?.line ?? ins.getRange().start.line + 1;
  const expand = (ins: Instruction, word: string, lookup: Lookup, quotes = true) => {
    try {
      return expandWord(word, lookup, escape, quotes);
    } catch (err) {
      fail(lineOf(ins), `${ins.getKeyword()}: ${(err as Error).message}`);
      return word;
    }
  };

  // Global ARGs (before the first FROM) are visible in FROM lines only.
  const globals = new Map<string, string | undefined>();
  const globalLookup: Lookup = (name) =>
    globals.has(name) ? globals.get(name) : (target[name] ?? build[name]);
  const stages: (DockerfileStage & { deps: Set<number> })[] = [];
  const references: ServiceReference[] = [];
  const sources: ContextSource[] = [];
  let env = new Map<string, string>();
  let args = new Map<string, string | undefined>();
  const stageLookup: Lookup = (name) => (env.has(name) ? env.get(name) : args.get(name));
  const stageEnv: Map<string, string>[] = [];
  /** Each stage's own ONBUILD triggers, raw, as the image config carries them. */
  const stageTriggers: string[][] = [];

  const stageByName = (name: string): number | undefined => {
    const lower = name.toLowerCase();
    const found = stages.findIndex((s) => s.name === lower);
    if (found >= 0) return found;
    if (/^\d+$/.test(name) && Number(name) < stages.length) return Number(name);
    return undefined;
  };
  /** Resolves a `--from` value: a stage, a service, or an outside image (undefined). */
  const from = (ins: Instruction, value: string, via: "copy" | "mount") => {
    const stage = stages[stages.length - 1];
    const ref = expand(ins, value, stageLookup);
    const index = stageByName(ref);
    if (index !== undefined && index < stage.index) {
      stage.deps.add(index);
      return;
    }
    const service = options.services ? matchServiceImage(ref, options.services) : undefined;
    if (service !== undefined) {
      references.push({ service, ref, via, stage: stage.index, line: lineOf(ins) });
    }
  };

  /** Reads one instruction into the stages, references and sources. */
  const dispatch = (ins: Instruction): void => {
    const keyword = ins.getKeyword();
    if (ins instanceof From) {
      // getArguments() leaves the flags (--platform) out.
      const rest = ins.getArguments().map((a) => a.getValue());
      if (rest.length === 0) {
        fail(lineOf(ins), "FROM without an image");
        return;
      }
      const raw = rest[0];
      const base = expand(ins, raw, globalLookup);
      const name =
        rest.length >= 3 && rest[1].toLowerCase() === "as" ? rest[2].toLowerCase() : undefined;
      const index = stages.length;
      const parentIndex = stageByName(base);
      const parent = parentIndex !== undefined && /^\d+$/.test(base) ? undefined : parentIndex;
      const service =
        parent === undefined && options.services
          ? matchServiceImage(base, options.services)
          : undefined;
      stages.push({
        index,
        ...(name !== undefined ? { name } : {}),
        base,
        line: lineOf(ins),
        ...(parent !== undefined ? { parent } : {}),
        ...(service !== undefined ? { service } : {}),
        deps: new Set(parent !== undefined ? [parent] : []),
      });
      if (service !== undefined) {
        const arg = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/.exec(raw);
        references.push({
          service,
          ref: base,
          via: "from",
          ...(arg ? { arg: arg[1] ?? arg[2] } : {}),
          stage: index,
          line: lineOf(ins),
        });
      }
      env = new Map(parent !== undefined ? stageEnv[parent] : []);
      args = new Map();
      stageEnv.push(env);
      stageTriggers.push([]);
      // BuildKit runs the ONBUILD triggers of what a stage is built FROM first, in that stage.
      const inherited =
        parent !== undefined
          ? { of: `stage ${stages[parent].name ?? parent}`, triggers: stageTriggers[parent] }
          : { of: service ?? base, triggers: service ? (options.onbuild?.[service] ?? []) : [] };
      for (const text of inherited.triggers) {
        const [triggered] = DockerfileParser.parse(text).getInstructions();
        if (triggered === undefined || triggered instanceof From) continue;
        trigger = { line: lineOf(ins), of: inherited.of };
        dispatch(triggered);
        trigger = undefined;
      }
      return;
    }
    if (ins instanceof Arg) {
      for (const property of ins.getProperties()) {
        const name = property.getName();
        const raw = property.getValue();
        if (stages.length === 0) {
          const value =
            buildArgs[name] ?? (raw === null ? undefined : expand(ins, raw, globalLookup));
          globals.set(name, value);
        } else {
          const value =
            buildArgs[name] ??
            (raw !== null ? expand(ins, raw, stageLookup) : undefined) ??
            (globals.has(name) ? globals.get(name) : (target[name] ?? build[name]));
          args.set(name, value);
        }
      }
      return;
    }
    if (stages.length === 0) {
      fail(lineOf(ins), `${keyword} before the first FROM`);
      return;
    }
    const stage = stages[stages.length - 1];
    const origin = trigger ? { onbuild: trigger.of } : {};
    if (ins instanceof Onbuild) {
      const text = ins.getRawArgumentsContent();
      if (text !== null && trigger === undefined) stageTriggers[stage.index].push(text);
      return;
    }
    if (ins instanceof Env) {
      for (const property of ins.getProperties()) {
        const raw = property.getValue();
        env.set(property.getName(), raw === null ? "" : expand(ins, raw, stageLookup));
      }
      return;
    }
    if (ins instanceof Copy || ins instanceof Add) {
      const flags = ins.getFlags();
      const fromFlag = flags.find((f) => f.getName() === "from");
      const fromValue = fromFlag?.getValue();
      if (ins instanceof Copy && fromValue !== null && fromValue !== undefined) {
        from(ins, fromValue, "copy");
        return;
      }
      let words: string[] | undefined;
      let quotes = true;
      if (ins.getOpeningBracket() !== null) {
        try {
          const parsed: unknown = JSON.parse(ins.getArgumentsContent() ?? "");
          if (Array.isArray(parsed) && parsed.every((w) => typeof w === "string")) {
            words = parsed as string[];
            quotes = false;
          }
        } catch {
          // not JSON after all: the shell form, as BuildKit falls back to
        }
      }
      if (words === undefined) {
        const all = ins.getArguments(); // flags left out
        const markers = all.filter((a) => HEREDOC.test(a.getValue()));
        const lastMarkerLine = Math.max(-1, ...markers.map((a) => a.getRange().start.line));
        words = all
          .filter((a) => lastMarkerLine < 0 || a.getRange().start.line <= lastMarkerLine)
          .map((a) => a.getValue());
      }
      if (words.length < 2) {
        fail(lineOf(ins), `${keyword} needs at least one source and a destination`);
        return;
      }
      const exclude = flags
        .filter((f) => f.getName() === "exclude")
        .flatMap((f) => {
          const value = f.getValue();
          return value === null ? [] : [expand(ins, value, stageLookup)];
        });
      for (const word of words.slice(0, -1)) {
        if (quotes && HEREDOC.test(word)) continue;
        const source = expand(ins, word, stageLookup, quotes);
        if (ins instanceof Add && REMOTE.test(source)) continue;
        sources.push({
          source,
          wildcard: isWildcard(source),
          instruction: keyword,
          ...(exclude.length > 0 ? { exclude } : {}),
          ...origin,
          stage: stage.index,
          line: lineOf(ins),
        });
      }
      return;
    }
    if (ins instanceof Run) {
      for (const flag of ins.getFlags()) {
        if (flag.getName() !== "mount") continue;
        const option = (name: string) => {
          const found = flag.getOptions().find((o) => o.getName() === name);
          const value = found?.getValue();
          return value === null || value === undefined
            ? undefined
            : expand(ins, value, stageLookup);
        };
        const type = option("type") ?? "bind";
        const fromValue = option("from");
        if (fromValue !== undefined) {
          if (type === "bind" || type === "cache") from(ins, fromValue, "mount");
          continue;
        }
        if (type !== "bind") continue;
        const source = option("source") ?? option("src") ?? ".";
        sources.push({
          source,
          wildcard: false,
          instruction: keyword,
          ...origin,
          stage: stage.index,
          line: lineOf(ins),
        });
      }
    }
  };

  for (const ins of dockerfile.getInstructions()) dispatch(ins);

  if (stages.length === 0) {
    if (problems.length === 0) fail(undefined, "no FROM instruction");
    throw new ConfigError(problems);
  }
  let targetIndex = stages.length - 1;
  if (options.target !== undefined) {
    const found = stages.findIndex((s) => s.name === options.target?.toLowerCase());
    if (found < 0) {
      const names = stages.flatMap((s) => (s.name ? [s.name] : []));
      fail(
        undefined,
        `target ${JSON.stringify(options.target)} is not a stage (${names.join(", ") || "no named stages"})`,
      );
    } else {
      targetIndex = found;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const d of stages[i].deps) visit(d);
  };
  visit(targetIndex);
  const neededReferences = references.filter((r) => needed.has(r.stage));
  return {
    file,
    stages: stages.map(({ deps: _deps, ...stage }) => stage),
    target: targetIndex,
    needed: [...needed].sort((a, b) => a - b),
    references: neededReferences,
    dependencies: [...new Set(neededReferences.map((r) => r.service))].sort(),
    sources: sources.filter((s) => needed.has(s.stage)),
    onbuild: stageTriggers[targetIndex],
  };
}

// ---------------------------------------------------------------------------------------------
// .dockerignore and context files
// ---------------------------------------------------------------------------------------------

/** The `.dockerignore` that applies to a build. */
export interface Dockerignore {
  /** The file read, or undefined when there is none. */
  readonly file?: string;
  /** Its patterns, comments and blank lines removed. */
  readonly patterns: readonly string[];
}

/**
 * Finds the `.dockerignore` of a build: `<Dockerfile>.dockerignore` beside the Dockerfile when
 * it exists, else `<context>/.dockerignore` (BuildKit's rule).
 * @param context the build context directory.
 * @param dockerfile the Dockerfile path.
 * @returns the file and its patterns; no patterns when there is none.
 */
export async function readDockerignore(context: string, dockerfile: string): Promise<Dockerignore> {
  for (const file of [`${dockerfile}.dockerignore`, path.join(context, ".dockerignore")]) {
    let text: string;
    try {
      text = await fs.promises.readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    const patterns = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    return { file, patterns };
  }
  return { patterns: [] };
}

/** What {@link readBuild} needs besides the Dockerfile options. */
export interface ReadBuildOptions extends Omit<DockerfileOptions, "platform"> {
  /** Platforms built; sources are expanded for each and merged. @default ["linux/amd64"] */
  readonly platforms?: readonly string[];
  /** How error messages name the Dockerfile. @default the dockerfile path as given */
  readonly label?: string;
  /**
   * The ONBUILD triggers of a service's image (e.g. {@link ServiceTriggers.of}), asked for each
   * service a stage is built FROM; they add to {@link DockerfileOptions.onbuild}.
   */
  readonly triggers?: (service: string) => Promise<readonly string[]>;
}

/**
 * The ONBUILD triggers of the project's services, each read from its own Dockerfile (its
 * target stage's ONBUILD instructions, {@link DockerfileInfo.onbuild}) once the Dockerfile's
 * place is known, which for a service from a source repository is after its checkout. So the
 * builds of all services can be read at once: a build FROM a service waits for that service's
 * {@link ServiceTriggers.locate} only.
 */
export class ServiceTriggers {
  private readonly located = new Map<
    string,
    { promise: Promise<readonly string[]>; resolve: (t: Promise<readonly string[]>) => void }
  >();

  /** @param services the names of every service that may be located. */
  constructor(services: Iterable<string>) {
    for (const service of services) {
      let resolve: (t: Promise<readonly string[]>) => void = () => undefined;
      const promise = new Promise<readonly string[]>((r) => (resolve = r));
      this.located.set(service, { promise, resolve });
    }
  }

  /**
   * Says where a service's Dockerfile is and reads its triggers. A Dockerfile that cannot be
   * read or parsed gives no triggers here: that service's own read reports it.
   * @param service the service name.
   * @param dockerfile its Dockerfile path.
   * @param options its build args and target.
   */
  locate(
    service: string,
    dockerfile: string,
    options: Pick<DockerfileOptions, "buildArgs" | "target"> = {},
  ): void {
    const triggers = fs.promises
      .readFile(dockerfile, "utf8")
      .then(
        (text) =>
          parseDockerfile(text, dockerfile, {
            buildArgs: options.buildArgs,
            target: options.target,
          }).onbuild,
      )
      .catch((): readonly string[] => []);
    this.located.get(service)?.resolve(triggers);
  }

  /**
   * The triggers of a service's image, once it is located; none for an unknown service.
   * @param service the service name.
   */
  readonly of = (service: string): Promise<readonly string[]> =>
    this.located.get(service)?.promise ?? Promise.resolve([]);
}

/** A build's Dockerfile, as read from disk, with what it reads from the context. */
export interface BuildRead {
  /** The context directory, as given. */
  readonly context: string;
  /** The Dockerfile path, as given. */
  readonly dockerfile: string;
  /** The Dockerfile bytes. */
  readonly dockerfileBytes: Buffer;
  /** The Dockerfile read for the first platform (stages, references, sources). */
  readonly info: DockerfileInfo;
  /** Names of the services depended on, over all platforms, sorted. */
  readonly dependencies: readonly string[];
  /** Every service reference, over all platforms, unique, in file order of the first. */
  readonly references: readonly ServiceReference[];
  /** The ONBUILD triggers the built image carries ({@link DockerfileInfo.onbuild}). */
  readonly onbuild: readonly string[];
  /** The `.dockerignore` applied. */
  readonly dockerignore: Dockerignore;
  /**
   * Context-relative posix paths of the files and symlinks COPY/ADD read, sorted. A symlink
   * that a source names or a wildcard matches is listed with what it points to (BuildKit
   * copies the target under the link's name); a symlink inside a copied directory is copied
   * as a link.
   */
  readonly files: readonly string[];
  /**
   * Context-relative posix paths of the directories copied with their mode (every directory
   * inside a copied directory; not the copied directory itself, whose contents BuildKit
   * copies into the destination), sorted.
   */
  readonly directories: readonly string[];
}

type EntryKind = "file" | "dir" | "symlink";

/** Lists a context's directories lazily, once each. */
class ContextTree {
  private readonly dirs = new Map<string, Promise<Map<string, EntryKind>>>();
  constructor(private readonly root: string) {}

  /** Entries of one directory (context-relative posix path, "" for the root). */
  list(rel: string): Promise<Map<string, EntryKind>> {
    let entries = this.dirs.get(rel);
    if (entries === undefined) {
      entries = fs.promises
        .readdir(path.join(this.root, rel), { withFileTypes: true })
        .then((dirents) => {
          const out = new Map<string, EntryKind>();
          for (const d of dirents) {
            if (d.isFile()) out.set(d.name, "file");
            else if (d.isDirectory()) out.set(d.name, "dir");
            else if (d.isSymbolicLink()) out.set(d.name, "symlink");
          }
          return out;
        });
      this.dirs.set(rel, entries);
    }
    return entries;
  }

  /** Every file, symlink and directory under a directory, context-relative. */
  async walk(rel: string, out: [string, EntryKind][]): Promise<void> {
    const entries = await this.list(rel);
    const subdirs: string[] = [];
    for (const [name, kind] of entries) {
      const child = rel === "" ? name : `${rel}/${name}`;
      out.push([child, kind]);
      if (kind === "dir") subdirs.push(child);
    }
    await Promise.all(subdirs.map((d) => this.walk(d, out)));
  }

  /** Every entry at exactly `depth` segments below `rel` whose segments match. */
  async match(rel: string, segments: readonly RegExp[], out: [string, EntryKind][]): Promise<void> {
    const [first, ...more] = segments;
    let entries: Map<string, EntryKind>;
    try {
      entries = await this.list(rel);
    } catch {
      return;
    }
    const next: Promise<void>[] = [];
    for (const [name, kind] of entries) {
      if (!first.test(name)) continue;
      const child = rel === "" ? name : `${rel}/${name}`;
      if (more.length === 0) out.push([child, kind]);
      else if (kind === "dir") next.push(this.match(child, more, out));
    }
    await Promise.all(next);
  }
}

/** A Go `filepath.Match` segment pattern as a RegExp. */
function segmentRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) {
      re += escapeRegExp(pattern[++i]);
    } else if (c === "*") {
      re += "[^/]*";
    } else if (c === "?") {
      re += "[^/]";
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\]\\^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else {
      re += escapeRegExp(c);
    }
  }
  return new RegExp(`^${re}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Normalizes a source to a context-relative posix path ("" for the root), as BuildKit does. */
function contextPath(source: string): string {
  const normal = path.posix.normalize(`/${source}`);
  return normal === "/" ? "" : normal.slice(1).replace(/\/$/, "");
}

/**
 * Reads a build: the Dockerfile (parsed per platform), its `.dockerignore`, and the
 * context files its COPY/ADD instructions and RUN bind mounts read.
 * @param context the build context directory.
 * @param dockerfile the Dockerfile path.
 * @param options build args, target, platforms, service images, error label.
 * @returns the Dockerfile bytes and reading, the dependencies and the sorted file list.
 * @throws {ConfigError} for a bad Dockerfile (see {@link parseDockerfile}), a source that is
 *   not in the context or is excluded by `.dockerignore`, a wildcard below a directory that is
 *   not in the context, naming the Dockerfile, the line (of the FROM for an ONBUILD trigger)
 *   and the source (DESIGN.md invariant 6).
 */
export async function readBuild(
  context: string,
  dockerfile: string,
  options: ReadBuildOptions = {},
): Promise<BuildRead> {
  const label = options.label ?? dockerfile;
  let dockerfileBytes: Buffer;
  try {
    dockerfileBytes = await fs.promises.readFile(dockerfile);
  } catch (err) {
    throw new ConfigError([{ file: label, message: `cannot read: ${(err as Error).message}` }]);
  }
  const content = dockerfileBytes.toString("utf8");
  const platforms =
    options.platforms && options.platforms.length > 0 ? options.platforms : ["linux/amd64"];
  const parse = (onbuild: DockerfileOptions["onbuild"]) =>
    [...new Set(platforms)].map((platform) =>
      parseDockerfile(content, label, { ...options, onbuild, platform }),
    );
  let infos = parse(options.onbuild);
  if (options.triggers !== undefined) {
    // A stage FROM a service runs that image's ONBUILD triggers in this build's context.
    const onbuild: Record<string, readonly string[]> = { ...options.onbuild };
    const bases = new Set(infos.flatMap((i) => i.stages.flatMap((s) => s.service ?? [])));
    for (const service of [...bases].sort()) {
      const triggers = await options.triggers(service);
      if (triggers.length > 0) onbuild[service] = triggers;
    }
    if (Object.keys(onbuild).length > 0) infos = parse(onbuild);
  }
  const dockerignore = await readDockerignore(context, dockerfile);
  const ig = ignore().add([...dockerignore.patterns]);
  const tree = new ContextTree(context);
  const problems: ConfigProblem[] = [];
  const files = new Set<string>();
  const directories = new Set<string>();
  const seen = new Set<string>();
  const problem = (source: ContextSource, message: string) =>
    problems.push({
      file: label,
      line: source.line,
      message: `${source.onbuild ? `ONBUILD ${source.instruction} of ${source.onbuild}` : source.instruction} source ${JSON.stringify(source.source)} ${message}`,
    });

  /** A copied directory: what is under it, after .dockerignore and `--exclude`. */
  const addTree = async (rel: string, exclude: Ignore | undefined) => {
    const under: [string, EntryKind][] = [];
    await tree.walk(rel, under);
    for (const [entry, kind] of under) {
      if (ig.ignores(entry)) continue;
      if (exclude?.ignores(rel === "" ? entry : entry.slice(rel.length + 1))) continue;
      (kind === "dir" ? directories : files).add(entry);
    }
  };
  /** A path a source names or a wildcard matches. */
  const addPath = async (
    rel: string,
    source: ContextSource,
    exclude: Ignore | undefined,
    depth = 0,
  ): Promise<void> => {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.lstat(path.join(context, rel));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
      problem(source, "is not in the build context");
      return;
    }
    if (stat.isDirectory()) {
      await addTree(rel, exclude);
      return;
    }
    if (rel !== "" && ig.ignores(rel)) {
      const name = dockerignore.file ? path.basename(dockerignore.file) : ".dockerignore";
      problem(source, `is excluded by ${name}`);
      return;
    }
    files.add(rel);
    if (stat.isSymbolicLink() && depth < 8) {
      // BuildKit follows a source that is a symlink: what it points to is read too.
      let real: string;
      try {
        real = await fs.promises.realpath(path.join(context, rel));
      } catch {
        // BuildKit follows it to compute the copy's cache key, and finds nothing.
        problem(source, `is a symlink to nothing (${rel})`);
        return;
      }
      const root = await fs.promises.realpath(context);
      const inside = path.relative(root, real);
      if (inside.startsWith("..") || path.isAbsolute(inside)) return;
      await addPath(inside.split(path.sep).join("/"), source, exclude, depth + 1);
    }
  };
  /** A wildcard source: each match, as BuildKit resolves it below the part without wildcards. */
  const addMatches = async (rel: string, source: ContextSource, exclude: Ignore | undefined) => {
    const segments = rel.split("/");
    const firstWild = segments.findIndex(isWildcard);
    const base = segments
      .slice(0, firstWild)
      .map((s) => s.replace(/\\(.)/g, "$1"))
      .join("/");
    if (base !== "" && !(await exists(path.join(context, base)))) {
      // BuildKit walks what comes before the first wildcard: a missing one fails the COPY,
      // while a wildcard that matches nothing below it copies nothing.
      problem(source, `is not in the build context (no ${JSON.stringify(base)})`);
      return;
    }
    const matched: [string, EntryKind][] = [];
    await tree.match(base, segments.slice(firstWild).map(segmentRegExp), matched);
    for (const [m, kind] of matched.sort()) {
      if (kind === "dir") await addTree(m, exclude);
      else if (!ig.ignores(m)) await addPath(m, source, exclude);
    }
  };

  for (const info of infos) {
    for (const source of info.sources) {
      const rel = contextPath(source.source);
      const key = JSON.stringify([source.wildcard, rel, source.exclude ?? []]);
      if (seen.has(key)) continue;
      seen.add(key);
      const exclude = source.exclude ? ignore().add([...source.exclude]) : undefined;
      if (source.wildcard) await addMatches(rel, source, exclude);
      else await addPath(rel, source, exclude);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const references = new Map<string, ServiceReference>();
  for (const ref of infos.flatMap((i) => i.references)) {
    const key = JSON.stringify([ref.service, ref.ref, ref.via, ref.arg ?? null]);
    if (!references.has(key)) references.set(key, ref);
  }
  return {
    context,
    dockerfile,
    dockerfileBytes,
    info: infos[0],
    dependencies: [...new Set(infos.flatMap((i) => i.dependencies))].sort(),
    references: [...references.values()],
    onbuild: infos[0].onbuild,
    dockerignore,
    files: [...files].sort(),
    directories: [...directories].sort(),
  };
}

/** Whether a path exists, following symlinks as BuildKit resolves a wildcard's base. */
async function exists(file: string): Promise<boolean> {
  try {
    await fs.promises.stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The context files a build's COPY/ADD instructions read, after `.dockerignore`.
 * @param context the build context directory.
 * @param dockerfile the Dockerfile path.
 * @param options build args, target, platforms, service images, error label.
 * @returns context-relative posix paths of files and symlinks, sorted.
 * @throws {ConfigError} as {@link readBuild}.
 */
export async function contextFiles(
  context: string,
  dockerfile: string,
  options: ReadBuildOptions = {},
): Promise<string[]> {
  return [...(await readBuild(context, dockerfile, options)).files];
}
