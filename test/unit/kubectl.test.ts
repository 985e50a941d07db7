import { strict as assert } from "node:assert";
import { applyManifests, imagesNotByDigest } from "../../lib/kubectl";

const digest = `sha256:${"a".repeat(64)}`;

describe("imagesNotByDigest (DESIGN.md invariant 4)", () => {
  it("GIVEN workloads whose every container is pinned by digest THEN nothing is reported", () => {
    const yaml = `apiVersion: apps/v1
kind: Deployment
metadata: { name: backend, namespace: ns }
spec:
  template:
    spec:
      initContainers: [{ name: init, image: "r/base@${digest}" }]
      containers: [{ name: backend, image: "r/backend@${digest}" }]
---
apiVersion: v1
kind: Service
metadata: { name: backend, namespace: ns }
`;
    assert.deepEqual(imagesNotByDigest(yaml), []);
  });

  it("GIVEN images by tag in a Deployment, a CronJob and a Pod THEN each is named with its object and container", () => {
    const yaml = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: ns }
spec:
  template:
    spec:
      containers:
        - { name: web, image: "r/web@${digest}" }
        - { name: proxy, image: "nginx:1.27" }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: ns }
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{ name: job, image: busybox }]
---
apiVersion: v1
kind: Pod
metadata: { name: debug }
spec:
  containers: [{ name: sh, image: "r/x:1.0@sha256:abc" }]
`;
    assert.deepEqual(imagesNotByDigest(yaml), [
      'Deployment/ns/web: container proxy: "nginx:1.27"',
      'CronJob/ns/nightly: container job: "busybox"',
      'Pod//debug: container sh: "r/x:1.0@sha256:abc"',
    ]);
  });

  it("GIVEN init and ephemeral containers in a CronJob, a StatefulSet and a PodTemplate THEN each is named with its kind of container", () => {
    const yaml = `apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: ns }
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{ name: migrate, image: "ledger/api:1.4" }]
          containers: [{ name: job, image: "r/job@${digest}" }]
          ephemeralContainers: [{ name: debug, image: busybox }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db, namespace: ns }
spec:
  template:
    spec:
      initContainers: [{ name: init, image: "r/init@${digest}" }]
      containers: [{ name: db, image: "postgres:17" }]
---
apiVersion: v1
kind: PodTemplate
metadata: { name: tmpl, namespace: ns }
template:
  spec:
    containers: [{ name: t, image: "registry.example.com/ledger/api" }]
`;
    assert.deepEqual(imagesNotByDigest(yaml), [
      'CronJob/ns/nightly: init container migrate: "ledger/api:1.4"',
      'CronJob/ns/nightly: ephemeral container debug: "busybox"',
      'StatefulSet/ns/db: container db: "postgres:17"',
      'PodTemplate/ns/tmpl: container t: "registry.example.com/ledger/api"',
    ]);
  });

  it("GIVEN the objects instead of YAML (as the kubernetes provider renders them) THEN the same lines", () => {
    const objects = [
      {
        kind: "Job",
        metadata: { name: "once" },
        spec: { template: { spec: { containers: [{ name: "x", image: "x:1" }] } } },
      },
      { kind: "ConfigMap", metadata: { name: "c" }, data: { image: "x:1" } },
      null,
    ];
    assert.deepEqual(imagesNotByDigest(objects), ['Job//once: container x: "x:1"']);
  });

  it("GIVEN manifests with an image by tag WHEN applied THEN it refuses before running kubectl, naming the container, with the message alone", async () => {
    const yaml = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: ns }
spec:
  template:
    spec:
      containers: [{ name: web, image: "nginx:1.27" }]
`;
    // A kubectl that fails on any call: the error must not be kubectl's.
    await assert.rejects(applyManifests(yaml, [], { kubectl: "/bin/false" }), (err: Error) => {
      assert.match(
        err.message,
        /^refusing to apply manifests with images that are neither a service's nor pinned by digest/,
      );
      assert.match(err.message, /\nDeployment\/ns\/web: container web: "nginx:1\.27"$/);
      return true;
    });
  });
});
