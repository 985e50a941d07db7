import { strict as assert } from "node:assert";
import { imagesNotByDigest } from "../../lib/kubectl";

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
});
