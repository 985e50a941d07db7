/**
 * Registry credentials against a Distribution instance of its own behind htpasswd basic auth
 * (issue 11, part D): the program's registry client and BuildKit's push, each with the
 * credentials of the stack config and without them.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildWithBuildkit } from "../../lib/buildkit";
import { RegistryError } from "../../lib/registry";
import { registryClientWith } from "../../lib/registry-auth";
import { useRegistry } from "./helpers/registry";

/** The user the helper's htpasswd knows without `htpasswd` installed. */
const CREDENTIALS = { username: "ci", password: "s3cret pass" };

describe("registry credentials against a registry that requires them", function () {
  this.timeout(180_000);
  const registry = useRegistry({ basicAuth: CREDENTIALS });
  const addr = process.env.BUILDKIT_HOST ?? "";
  let context: string;

  before(function () {
    if (!addr) throw new Error('BUILDKIT_HOST is not set: eval "$(bash scripts/platform.sh env)"');
    context = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-registry-auth-"));
    fs.writeFileSync(path.join(context, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n");
    fs.writeFileSync(path.join(context, "hello.txt"), `hello ${Date.now()}\n`);
  });

  after(() => fs.rmSync(context, { recursive: true, force: true }));

  const build = (credentials?: Record<string, typeof CREDENTIALS>) =>
    buildWithBuildkit({
      addr,
      context,
      dockerfile: path.join(context, "Dockerfile"),
      repository: `${registry().host}/it/hello`,
      ...(credentials ? { credentials } : {}),
    });

  it("GIVEN no credentials WHEN the program's client reads THEN the error names the registry and the config keys to set", async () => {
    const client = registryClientWith({}, { dockerConfig: false });
    await assert.rejects(
      client.listTags(`${registry().host}/it/hello`),
      (err: unknown) =>
        err instanceof RegistryError &&
        err.status === 401 &&
        err.message.includes(`registry ${registry().host} requires credentials`) &&
        err.message.includes(
          `pulumi config set --secret --path 'gitops-rings:registryAuth["${registry().host}"].password' <password>`,
        ),
    );
  });

  it("GIVEN the credentials WHEN the program's client pings THEN the registry accepts them", async () => {
    await registryClientWith({ [registry().host]: CREDENTIALS }, { dockerConfig: false }).ping(
      registry().host,
    );
  });

  it("GIVEN the credentials WHEN BuildKit builds THEN it pushes, and the pushed digest is in the registry", async () => {
    const built = await build({ [registry().host]: CREDENTIALS });
    const client = registryClientWith({ [registry().host]: CREDENTIALS }, { dockerConfig: false });
    assert.equal(await client.resolveDigest(built.ref), built.digest);
  });

  it("GIVEN no credentials WHEN BuildKit builds THEN the push fails naming the registry and the config keys, and no password", async () => {
    fs.writeFileSync(path.join(context, "hello.txt"), `hello again ${Date.now()}\n`);
    await assert.rejects(build(), (err: Error) => {
      assert.match(err.message, new RegExp(`registry ${registry().host} requires credentials`));
      assert.ok(!err.message.includes(CREDENTIALS.password));
      return true;
    });
  });
});
