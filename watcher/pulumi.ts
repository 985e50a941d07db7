/**
 * The watcher's one outside capability on sites (STYLE.md rule 11): reading a site's stack
 * outputs, running `pulumi up` on it, and writing its stack config, through the Automation API
 * (LocalWorkspace over the version repository and the site's stack), with the backend and
 * passphrase of the environment the watcher runs in, as `pulumi` would.
 */
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";

/** What the watcher does to sites; tests replace it. */
export interface SiteOps {
  /** The site's stack outputs (an Automation API `OutputMap`); `{}` when the stack does not exist yet. */
  outputs(site: string): Promise<Record<string, unknown>>;
  /** `pulumi up` on the site; resolves with its outputs, rejects with the update's error. */
  up(site: string): Promise<{ readonly outputs: Record<string, unknown> }>;
  /** `pulumi config set --path <key> <value>` on the site. */
  setConfig(site: string, key: string, value: string): Promise<void>;
  /** `pulumi config rm --path <key>` on the site. */
  removeConfig(site: string, key: string): Promise<void>;
}

/** The error lines of the Pulumi CLI's output in an Automation API error, or its first line. */
export function pulumiErrorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^error:/.test(l) && !/^error: update failed$/.test(l));
  const unique = [...new Set(lines)];
  return (unique.length > 0 ? unique.join("; ") : (text.split("\n")[0] ?? text)).slice(0, 2000);
}

/** {@link SiteOps} over the Pulumi CLI of the environment, in the version repository `root`. */
export class AutomationSiteOps implements SiteOps {
  private workspace?: Promise<LocalWorkspace>;

  constructor(private readonly root: string) {}

  private ws(): Promise<LocalWorkspace> {
    this.workspace ??= LocalWorkspace.create({ workDir: this.root });
    return this.workspace;
  }

  private stack(site: string): Promise<Stack> {
    return LocalWorkspace.createOrSelectStack({ stackName: site, workDir: this.root });
  }

  async outputs(site: string): Promise<Record<string, unknown>> {
    try {
      return await (await this.ws()).stackOutputs(site);
    } catch (e) {
      if (/no stack named|not found|does not exist/i.test((e as Error).message)) return {};
      throw new Error(`${site}: reading stack outputs: ${pulumiErrorMessage(e)}`, { cause: e });
    }
  }

  async up(site: string): Promise<{ readonly outputs: Record<string, unknown> }> {
    const stack = await this.stack(site);
    try {
      const result = await stack.up({ onOutput: () => undefined });
      return { outputs: result.outputs };
    } catch (e) {
      throw new Error(`${site}: pulumi up failed: ${pulumiErrorMessage(e)}`, { cause: e });
    }
  }

  async setConfig(site: string, key: string, value: string): Promise<void> {
    await this.stack(site);
    await (await this.ws()).setConfig(site, key, { value }, true);
  }

  async removeConfig(site: string, key: string): Promise<void> {
    await this.stack(site);
    await (await this.ws()).removeConfig(site, key, true);
  }
}
