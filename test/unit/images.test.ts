/**
 * lib/images.ts without I/O: finding image references in objects (pod specs of every workload
 * kind and a site's extra field paths), the site's rules, the overlay's pins and annotations,
 * the preview table; lib/kustomize.ts's text for them; the site config's `images` key.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { ConfigError, parseRepositoryConfig, parseSiteConfig } from "../../lib/config";
import {
  findImages,
  foreignOverlay,
  formatForeignImages,
  inRegistry,
  ruleViolation,
  useName,
  valuesAt,
  writtenName,
  type ForeignImage,
} from "../../lib/images";
import { exactImageName, siteOverlayFiles } from "../../lib/kustomize";
import { parseReference } from "../../lib/registry";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

const pod = (containers: object) => ({ template: { spec: containers } });

describe("findImages: every image field, as kbld's search rules", () => {
  const objects = [
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "ns" },
      spec: { containers: [{ name: "a", image: "a:1" }] },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d", namespace: "ns" },
      spec: pod({
        initContainers: [{ name: "i", image: "i:1" }],
        containers: [{ name: "c", image: "c:1" }],
        ephemeralContainers: [{ name: "e", image: "e:1" }],
      }),
    },
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "s" },
      spec: pod({ containers: [{ name: "c", image: "s:1" }] }),
    },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "ds" },
      spec: pod({ containers: [{ name: "c", image: "ds:1" }] }),
    },
    {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "rs" },
      spec: pod({ containers: [{ name: "c", image: "rs:1" }] }),
    },
    {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "j" },
      spec: pod({ containers: [{ name: "c", image: "j:1" }] }),
    },
    {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "cj" },
      spec: {
        jobTemplate: {
          spec: pod({
            initContainers: [{ name: "w", image: "w:1" }],
            containers: [{ name: "c", image: "cj:1" }],
          }),
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "PodTemplate",
      metadata: { name: "pt" },
      template: { spec: { containers: [{ name: "c", image: "pt:1" }] } },
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cm" },
      data: { image: "not-an-image-field:1" },
    },
    null,
  ];

  it("GIVEN every workload kind THEN each container, init and ephemeral container is found, named by object and container, in stream order", () => {
    assert.deepEqual(
      findImages(objects).map((u) => `${useName(u)} = ${u.image}`),
      [
        "Pod/ns/p: container a = a:1",
        "Deployment/ns/d: init container i = i:1",
        "Deployment/ns/d: container c = c:1",
        "Deployment/ns/d: ephemeral container e = e:1",
        "StatefulSet//s: container c = s:1",
        "DaemonSet//ds: container c = ds:1",
        "ReplicaSet//rs: container c = rs:1",
        "Job//j: container c = j:1",
        "CronJob//cj: init container w = w:1",
        "CronJob//cj: container c = cj:1",
        "PodTemplate//pt: container c = pt:1",
      ],
    );
  });

  const runner = {
    apiVersion: "ci.example.com/v1",
    kind: "Runner",
    metadata: { name: "r", namespace: "ns" },
    spec: {
      image: "runner:1",
      steps: [{ image: "s0:1" }, { name: "no image" }, { image: "s2:1" }],
      template: { spec: { containers: [{ name: "c", image: "c:1" }] } },
    },
  };

  it("GIVEN a site's extra field paths for a custom kind THEN the values there are found with their concrete paths; a path that repeats a container is found once", () => {
    const fields = [
      { kind: "Runner", group: "ci.example.com", path: "spec/image" },
      { kind: "Runner", path: "spec/steps[]/image" },
      { kind: "Runner", path: "spec/template/spec/containers[]/image" },
      { kind: "Other", path: "spec/image" },
      { kind: "Runner", group: "other.example.com", path: "spec/image" },
      { kind: "Runner", version: "v2", path: "spec/image" },
    ];
    assert.deepEqual(
      findImages([runner], fields).map((u) => `${u.container} = ${u.image}`),
      [
        "container c = c:1",
        "field spec/image = runner:1",
        "field spec/steps[0]/image = s0:1",
        "field spec/steps[2]/image = s2:1",
      ],
    );
  });

  it("GIVEN paths through missing keys, scalars and lists where maps are expected THEN valuesAt yields nothing for them", () => {
    assert.deepEqual(valuesAt(runner, "spec/missing/image"), []);
    assert.deepEqual(valuesAt(runner, "spec/image/x"), []);
    assert.deepEqual(valuesAt(runner, "spec/steps/image"), []);
    assert.deepEqual(valuesAt({ a: [1, 2] }, "a[]"), [
      { path: "a[0]", value: 1 },
      { path: "a[1]", value: 2 },
    ]);
  });
});

describe("the site's rules for images no service builds", () => {
  const WHERE = "stacks/Pulumi.s.yaml";
  const check = (ref: string, rules: Parameters<typeof ruleViolation>[2]) =>
    ruleViolation(parseReference(ref), ref, rules, WHERE);

  it("GIVEN registries as rules name them THEN a reference is in one by host and by path prefix, Docker Hub by any of its names", () => {
    const cases: [string, string, boolean][] = [
      ["redis:7.4", "docker.io", true],
      ["redis:7.4", "index.docker.io", true],
      ["redis:7.4", "docker.io/library", true],
      ["redis:7.4", "docker.io/bitnami", false],
      ["quay.io/prometheus/node-exporter:v1", "quay.io/prometheus", true],
      ["quay.io/prometheusx/node-exporter:v1", "quay.io/prometheus", false],
      ["127.0.0.1:5001/vendor/x:1", "127.0.0.1:5001", true],
      ["127.0.0.1:5001/vendor/x:1", "127.0.0.1:5002", false],
    ];
    for (const [ref, registry, expected] of cases) {
      assert.equal(inRegistry(parseReference(ref), registry), expected, `${ref} in ${registry}`);
    }
  });

  it("GIVEN no rules THEN anything goes", () => {
    assert.equal(check("redis:7.4", { requireDigest: false }), undefined);
  });

  it("GIVEN requireDigest true THEN a tag is refused naming the reference and key, a digest passes", () => {
    assert.equal(
      check("redis:7.4", { requireDigest: true }),
      `"redis:7.4" is by tag, and ${WHERE}: gitops-rings:images.requireDigest is true: write it by digest (<name>@sha256:…)`,
    );
    assert.equal(check(`redis@${D1}`, { requireDigest: true }), undefined);
    assert.equal(check(`redis:7.4@${D1}`, { requireDigest: true }), undefined);
  });

  it("GIVEN requireDigest for some registries THEN only their tags are refused", () => {
    const rules = { requireDigest: ["docker.io"] };
    assert.match(
      check("redis", rules) ?? "",
      /^"redis" is by tag, and .*requireDigest lists docker\.io/,
    );
    assert.equal(check("quay.io/x/y:1", rules), undefined);
  });

  it("GIVEN allowedRegistries THEN anything from elsewhere is refused, by digest too, naming the registries allowed", () => {
    const rules = { allowedRegistries: ["127.0.0.1:5001"], requireDigest: false };
    assert.equal(check("127.0.0.1:5001/x:1", rules), undefined);
    assert.equal(
      check(`redis@${D1}`, rules),
      `"redis@${D1}" is from docker.io/library/redis, which ${WHERE}: gitops-rings:images.allowedRegistries does not list (127.0.0.1:5001)`,
    );
  });
});

const image = (over: Partial<ForeignImage> & { reference: string }): ForeignImage => ({
  registry: "docker.io",
  repository: "docker.io/library/redis",
  tag: "7.4",
  digest: D1,
  image: `redis@${D1}`,
  usedBy: [],
  ...over,
});

describe("the overlay's part for resolved images", () => {
  const objectOf = (name: string) => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    name,
    namespace: "ns",
  });
  const images = {
    "redis:7.4": image({ reference: "redis:7.4" }),
    redis: image({ reference: "redis", tag: "latest", digest: D2, image: `redis@${D2}` }),
    [`agent@${D1}`]: image({ reference: `agent@${D1}`, tag: undefined, image: `agent@${D1}` }),
  };
  const uses = [
    { object: objectOf("a"), container: "container x", image: "redis:7.4" },
    { object: objectOf("a"), container: "container y", image: "redis" },
    { object: objectOf("b"), container: "container z", image: `agent@${D1}` },
  ];

  it("GIVEN references by tag and by digest THEN each tag is one exact pin, the digest none, and only the object with a resolved tag is annotated", () => {
    const overlay = foreignOverlay(uses, images);
    assert.deepEqual(overlay.pins, [
      { reference: "redis", name: "redis", digest: D2 },
      { reference: "redis:7.4", name: "redis", digest: D1 },
    ]);
    assert.deepEqual(overlay.annotations, [
      {
        object: objectOf("a"),
        value: JSON.stringify([
          { origin: "redis", image: `redis@${D2}` },
          { origin: "redis:7.4", image: `redis@${D1}` },
        ]),
      },
    ]);
  });

  it("GIVEN written references THEN writtenName drops tag and digest, not a registry port", () => {
    assert.equal(writtenName("127.0.0.1:5001/x/y:1.0"), "127.0.0.1:5001/x/y");
    assert.equal(writtenName("127.0.0.1:5001/x/y"), "127.0.0.1:5001/x/y");
    assert.equal(writtenName(`redis:7@${D1}`), "redis");
  });

  it("GIVEN references with regular-expression characters THEN exactImageName escapes them and ends the match", () => {
    assert.equal(exactImageName("127.0.0.1:5001/x/y:1.0"), "127\\.0\\.0\\.1:5001/x/y:1\\.0$");
    const re = new RegExp(`^${exactImageName("redis")}(@sha256)?(:[a-zA-Z0-9_.{}-]*)?$`);
    assert.ok(re.test("redis"));
    assert.ok(!re.test("redis:7.4"));
    assert.ok(!re.test(`redis@${D1}`));
  });

  it("GIVEN pins, annotations and fields WHEN the overlay files are made THEN images, patches and the image fields configuration say exactly that", () => {
    const files = siteOverlayFiles("/repo/sites/s", {
      environmentOverlay: "/repo/app/overlays/dev",
      namespace: "ns",
      site: "s",
      ring: "developers",
      release: "0.1.0",
      images: [{ name: "backend", newName: "r/example/backend", digest: D1 }],
      foreign: foreignOverlay(uses, images, [
        { kind: "Runner", group: "ci.example.com", path: "spec/image" },
      ]),
    });
    const k = parse(files["kustomization.yaml"]);
    assert.deepEqual(k.images, [
      { name: "backend", newName: "r/example/backend", digest: D1 },
      { name: "redis$", newName: "redis", digest: D2 },
      { name: "redis:7\\.4$", newName: "redis", digest: D1 },
    ]);
    assert.deepEqual(k.patches.length, 1);
    assert.deepEqual(k.patches[0].target, {
      group: "apps",
      version: "v1",
      kind: "Deployment",
      name: "^a$",
    });
    assert.deepEqual(parse(k.patches[0].patch), {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: {
        name: "a",
        annotations: { "gitops-rings.io/images": overlayValue() },
      },
    });
    assert.deepEqual(parse(files["image-fields.yaml"]).images.at(-1), {
      path: "spec/image",
      group: "ci.example.com",
      kind: "Runner",
    });
    function overlayValue() {
      return JSON.stringify([
        { origin: "redis", image: `redis@${D2}` },
        { origin: "redis:7.4", image: `redis@${D1}` },
      ]);
    }
  });

  it("GIVEN a pin without a sha256 digest WHEN the overlay files are made THEN it throws naming the reference", () => {
    assert.throws(
      () =>
        siteOverlayFiles("/d", {
          environmentOverlay: "/e",
          namespace: "ns",
          site: "s",
          ring: "r",
          release: "",
          images: [],
          foreign: {
            pins: [{ reference: "redis:7.4", name: "redis", digest: "sha256:abc" }],
            annotations: [],
            fields: [],
          },
        }),
      /^Error: site s: image redis:7\.4: "sha256:abc" is not a sha256 digest/,
    );
  });
});

describe("formatForeignImages: what preview shows", () => {
  it("GIVEN images and the previous update's digests THEN each row has reference, tag, digest and whether it changed", () => {
    const images = {
      "redis:7.4": image({ reference: "redis:7.4", digest: D2 }),
      "nginx:1": image({ reference: "nginx:1", tag: "1", digest: D1 }),
      [`agent@${D1}`]: image({ reference: `agent@${D1}`, tag: undefined, digest: D1 }),
      "new:1": image({ reference: "new:1", tag: "1", digest: D1 }),
    };
    const lines = formatForeignImages(images, {
      "redis:7.4": { digest: D1 },
      "nginx:1": { digest: D1 },
      [`agent@${D1}`]: { digest: D1 },
    });
    assert.equal(lines[0], "Images no service builds (resolved in the planning step)");
    assert.match(lines[1], /^IMAGE +TAG +DIGEST +CHANGE$/);
    assert.deepEqual(
      lines.slice(2).map((l) => l.split(/ {2,}/)),
      [
        [`agent@${D1}`, "(digest)", D1, "unchanged"],
        ["new:1", "1", D1, "new"],
        ["nginx:1", "1", D1, "unchanged"],
        ["redis:7.4", "7.4", D2, `digest changed (was ${D1})`],
      ],
    );
  });

  it("GIVEN no images THEN no lines", () => {
    assert.deepEqual(formatForeignImages({}), []);
  });
});

describe("site config: images", () => {
  const repo = parseRepositoryConfig(
    "project: p\nregistry: r.example.com\nrings: [a, b]\nenvironments: { e: { overlay: o, namespace: n } }\nservices: { s: { context: s } }\n",
    "gitops-rings.yaml",
  );
  const site = (images: unknown) =>
    parseSiteConfig({ ring: "b", environment: "e", images }, "stacks/Pulumi.e-b.yaml", repo);

  it("GIVEN rules and fields THEN they are read, requireDigest as pulumi config stores booleans too", () => {
    assert.deepEqual(
      site({
        allowedRegistries: ["docker.io/library", "127.0.0.1:5001"],
        requireDigest: "true",
        fields: [{ kind: "Runner", group: "ci.example.com", path: "spec/steps[]/image" }],
      }).images,
      {
        allowedRegistries: ["docker.io/library", "127.0.0.1:5001"],
        requireDigest: true,
        fields: [{ kind: "Runner", group: "ci.example.com", path: "spec/steps[]/image" }],
      },
    );
    assert.deepEqual(site({ requireDigest: ["docker.io"] }).images, {
      requireDigest: ["docker.io"],
      fields: [],
    });
  });

  it("GIVEN bad values THEN every one is named with file, key and value", () => {
    assert.throws(
      () =>
        site({
          allowedRegistries: ["Not A Registry"],
          requireDigest: "sometimes",
          fields: [{ path: "spec//image" }],
          other: 1,
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.message.split("\n"), [
          'stacks/Pulumi.e-b.yaml: gitops-rings:images.allowedRegistries[0]: "Not A Registry" is not a registry (host[:port], or host[:port]/path for part of one)',
          'stacks/Pulumi.e-b.yaml: gitops-rings:images.requireDigest: "sometimes" is not true, false or a list of registries',
          `stacks/Pulumi.e-b.yaml: gitops-rings:images.fields[0].path: "spec//image" is not a field path (keys separated by '/', key[] for every item of a list, e.g. spec/steps[]/image)`,
          "stacks/Pulumi.e-b.yaml: gitops-rings:images.other: unknown key (known keys: allowedRegistries, requireDigest, fields)",
        ]);
        return true;
      },
    );
  });
});
