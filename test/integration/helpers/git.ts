/**
 * Real git repositories for tests, made with `git init` in temporary directories.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A scratch repository with helpers that shell out to git. */
export class TestRepo {
  private tick = 0;

  private constructor(readonly dir: string) {}

  /** `git init -b main` in a new temporary directory. */
  static create(prefix = "gitops-rings-git-"): TestRepo {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    const repo = new TestRepo(dir);
    repo.git("init", "-q", "-b", "main");
    return repo;
  }

  /** Runs git in the repository with a fixed identity and advancing commit dates. */
  git(...args: string[]): string {
    this.tick++;
    const date = `2024-01-01T00:${String(Math.floor(this.tick / 60)).padStart(2, "0")}:${String(this.tick % 60).padStart(2, "0")}Z`;
    return execFileSync("git", args, {
      cwd: this.dir,
      encoding: "utf8",
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: "Test",
        GIT_AUTHOR_EMAIL: "test@example.invalid",
        GIT_COMMITTER_NAME: "Test",
        GIT_COMMITTER_EMAIL: "test@example.invalid",
        GIT_AUTHOR_DATE: date,
        GIT_COMMITTER_DATE: date,
        GIT_CONFIG_NOSYSTEM: "1",
        HOME: this.dir,
      },
    }).trim();
  }

  /** Writes `files` and commits them. @returns the new commit id. */
  commit(message: string, files: Readonly<Record<string, string>> = {}): string {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.dir, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
    this.git("add", "-A");
    this.git("commit", "-q", "--allow-empty", "-m", message);
    return this.head();
  }

  /** The commit HEAD points at. */
  head(): string {
    return this.git("rev-parse", "HEAD");
  }

  /** `file://` URL of the repository. */
  get fileUrl(): string {
    return `file://${this.dir}`;
  }

  /** Removes the directory. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
