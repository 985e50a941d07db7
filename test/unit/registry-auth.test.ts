import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ConfigError,
  parseRepositoryConfig,
  parseSiteConfig,
  validateRegistryAuth,
} from "../../lib/config";
import { buildctlArgs } from "../../lib/buildkit";
import {
  configureProvider,
  credentialsOf,
  dockerConfigJson,
  missingCredentialsMessage,
  providerCredentials,
  pullSecretObjects,
  withDockerConfig,
} from "../../lib/registry-auth";

const FILE = "stacks/Pulumi.dev-developers.yaml";
const PASSWORD = "hunter2 secret";
const secret = () => true;

/** The problems of a ConfigError, one line each; fails when `f` does not throw one. */
function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.ok(!err.message.includes(PASSWORD), `the message shows the password: ${err.message}`);
    return err.message.split("\n");
  }
  assert.fail("no ConfigError");
}

describe("registry credentials (lib/config.ts registryAuth, lib/registry-auth.ts)", () => {
  describe("validateRegistryAuth", () => {
    it("GIVEN a registry with username and a secret password THEN both are read, by host[:port]", () => {
      assert.deepEqual(
        validateRegistryAuth(
          { "registry.example.com:5000": { username: "ci", password: PASSWORD } },
          FILE,
          secret,
        ),
        { "registry.example.com:5000": { username: "ci", password: PASSWORD } },
      );
    });

    it("GIVEN nothing configured THEN there are no credentials", () => {
      assert.deepEqual(validateRegistryAuth(undefined, FILE, secret), {});
    });

    it("GIVEN a password that is not a secret THEN the error names file and key and gives the command, never the password", () => {
      assert.deepEqual(
        problemsOf(() =>
          validateRegistryAuth(
            { "127.0.0.1:5001": { username: "ci", password: PASSWORD } },
            FILE,
            () => false,
          ),
        ),
        [
          `${FILE}: gitops-rings:registryAuth["127.0.0.1:5001"].password: is stored in plain text; set it as a secret: ` +
            `pulumi config set --path 'gitops-rings:registryAuth["127.0.0.1:5001"].username' <user> && ` +
            `pulumi config set --secret --path 'gitops-rings:registryAuth["127.0.0.1:5001"].password' <password>`,
        ],
      );
    });

    it("GIVEN bad entries THEN every problem names file and key", () => {
      const lines = problemsOf(() =>
        validateRegistryAuth(
          {
            "https://r.example.com": { username: "ci", password: PASSWORD },
            "r.example.com/path": { username: "ci", password: PASSWORD },
            "a.example.com": { password: PASSWORD },
            "b.example.com": { username: "ci" },
            "c.example.com": { username: "ci", password: 42, token: "x" },
            "d.example.com": "ci",
          },
          FILE,
          secret,
        ),
      );
      assert.deepEqual(
        lines.map((l) => l.replace(/: pulumi config set .*$/, ": <commands>")),
        [
          `${FILE}: gitops-rings:registryAuth["a.example.com"].username: is required: <commands>`,
          `${FILE}: gitops-rings:registryAuth["b.example.com"].password: is required: <commands>`,
          `${FILE}: gitops-rings:registryAuth["c.example.com"].token: unknown key (known: username, password)`,
          `${FILE}: gitops-rings:registryAuth["c.example.com"].password: is not a non-empty string`,
          `${FILE}: gitops-rings:registryAuth["d.example.com"]: is not a map { username, password }: <commands>`,
          `${FILE}: gitops-rings:registryAuth["https://r.example.com"]: "https://r.example.com" is not a registry host[:port] (no scheme, no path)`,
          `${FILE}: gitops-rings:registryAuth["r.example.com/path"]: "r.example.com/path" is not a registry host[:port] (no scheme, no path)`,
        ],
      );
    });

    it("GIVEN a stack file's ciphertext (no isSecret) THEN it is valid and the password is absent", () => {
      const auth = validateRegistryAuth(
        { "127.0.0.1:5001": { username: "ci", password: { secure: "v1:abc" } } },
        FILE,
      );
      assert.deepEqual(auth, { "127.0.0.1:5001": { username: "ci" } });
      assert.deepEqual(credentialsOf(auth), {});
    });

    it("GIVEN a stack file with the password in plain text (no isSecret) THEN it is refused", () => {
      const lines = problemsOf(() =>
        validateRegistryAuth({ "127.0.0.1:5001": { username: "ci", password: PASSWORD } }, FILE),
      );
      assert.equal(lines.length, 1);
      assert.match(lines[0], /\.password: is stored in plain text/);
    });
  });

  describe("parseSiteConfig", () => {
    const repo = parseRepositoryConfig(
      [
        "project: example",
        "registry: 127.0.0.1:5001",
        "rings: [developers]",
        "environments: { dev: { overlay: deploy/dev, namespace: example-dev } }",
        "services: { base: { context: services/base } }",
      ].join("\n"),
      "gitops-rings.yaml",
    );
    const values = { ring: "developers", environment: "dev" };

    it("GIVEN no registryAuth THEN the site config has none (as before)", () => {
      assert.equal(parseSiteConfig(values, FILE, repo).registryAuth, undefined);
    });

    it("GIVEN registryAuth from the runtime THEN the site config has it, decrypted", () => {
      const site = parseSiteConfig(
        { ...values, registryAuth: { "127.0.0.1:5001": { username: "ci", password: PASSWORD } } },
        FILE,
        repo,
        { isSecret: (k) => k === "gitops-rings:registryAuth" },
      );
      assert.deepEqual(site.registryAuth, {
        "127.0.0.1:5001": { username: "ci", password: PASSWORD },
      });
    });
  });

  describe("what the credentials become", () => {
    const auth = { "127.0.0.1:5001": { username: "ci", password: PASSWORD } };

    it("GIVEN credentials THEN the docker config has one auth per registry, base64 user:password", () => {
      assert.equal(
        dockerConfigJson(auth),
        JSON.stringify({
          auths: {
            "127.0.0.1:5001": { auth: Buffer.from(`ci:${PASSWORD}`).toString("base64") },
          },
        }),
      );
    });

    it("GIVEN credentials WHEN a build runs THEN it sees a private config.json that is removed after, even when it fails", async () => {
      let seen = "";
      await assert.rejects(
        withDockerConfig(auth, async (dir) => {
          assert.ok(dir);
          seen = dir;
          assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
          const file = path.join(dir, "config.json");
          assert.equal(fs.statSync(file).mode & 0o777, 0o600);
          assert.equal(fs.readFileSync(file, "utf8"), dockerConfigJson(auth));
          throw new Error("build failed");
        }),
        /build failed/,
      );
      assert.equal(fs.existsSync(seen), false);
    });

    it("GIVEN no credentials WHEN a build runs THEN nothing is written and the caller's docker config applies", async () => {
      assert.equal(await withDockerConfig({}, async (dir) => dir), undefined);
    });

    it("GIVEN a build with credentials THEN buildctl's arguments hold none", () => {
      const args = buildctlArgs(
        {
          addr: "tcp://127.0.0.1:1234",
          context: "/ctx",
          dockerfile: "/ctx/Dockerfile",
          repository: "127.0.0.1:5001/example/base",
          credentials: auth,
        },
        "/tmp/metadata.json",
      ).join(" ");
      assert.ok(!args.includes(PASSWORD) && !args.includes("ci:"), args);
    });

    it("GIVEN a namespace THEN the pull secret is a dockerconfigjson Secret that the default ServiceAccount names", () => {
      const [ns, secretObject, account] = pullSecretObjects("example-dev-developers", "{}");
      assert.deepEqual(ns, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "example-dev-developers" },
      });
      assert.deepEqual(secretObject, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "gitops-rings-registry", namespace: "example-dev-developers" },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": "e30=" },
      });
      assert.deepEqual(account, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default", namespace: "example-dev-developers" },
        imagePullSecrets: [{ name: "gitops-rings-registry" }],
      });
      // What delete applies: the ServiceAccount without the reference, nothing else.
      assert.deepEqual(pullSecretObjects("ns", undefined), [
        {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name: "default", namespace: "ns" },
        },
      ]);
    });

    it("GIVEN a registry without credentials THEN the message names it and the config keys to set", () => {
      assert.equal(
        missingCredentialsMessage("127.0.0.1:5001"),
        'registry 127.0.0.1:5001 requires credentials and none are configured for it (stack config gitops-rings:registryAuth["127.0.0.1:5001"]); set them with: ' +
          `pulumi config set --path 'gitops-rings:registryAuth["127.0.0.1:5001"].username' <user> && ` +
          `pulumi config set --secret --path 'gitops-rings:registryAuth["127.0.0.1:5001"].password' <password>`,
      );
    });
  });

  describe("configureProvider (inside dynamic providers)", () => {
    afterEach(() => configureProvider(undefined));

    it("GIVEN the config value as the engine hands it (JSON text) THEN the provider has the credentials", () => {
      configureProvider(
        JSON.stringify({ "127.0.0.1:5001": { username: "ci", password: PASSWORD } }),
      );
      assert.deepEqual(providerCredentials(), {
        "127.0.0.1:5001": { username: "ci", password: PASSWORD },
      });
    });

    it("GIVEN no value THEN the provider has none", () => {
      configureProvider(undefined);
      assert.deepEqual(providerCredentials(), {});
    });

    it("GIVEN a value that is not JSON THEN the error names the key, not the value", () => {
      assert.throws(
        () => configureProvider(`{${PASSWORD}`),
        (err: Error) =>
          err.message === "stack config: gitops-rings:registryAuth: is not a map (JSON)",
      );
    });
  });
});
