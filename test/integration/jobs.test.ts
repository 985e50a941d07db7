/**
 * lib/jobs.ts deployInPhases against the local platform's API server, whose simulated kwok
 * node completes the Pods of Jobs and fails those labelled with kwok's chaos label
 * (scripts/platform/kwok-stages.yaml). Each run uses its own namespace, deleted afterwards.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { deployInPhases, JobFailedError, PHASE_ANNOTATION } from "../../lib/jobs";
import type { ObjectRef } from "../../lib/kubectl";

const run = promisify(execFile);
const image = (n: number) => `127.0.0.1:5001/it/app@sha256:${String(n).repeat(64)}`;
const FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io";

async function kubectl(...args: string[]): Promise<string> {
  return (await run("kubectl", args)).stdout;
}

describe("lib/jobs deployInPhases (real API server, kwok)", function () {
  this.timeout(120_000);
  const ns = `it-jobs-${randomBytes(4).toString("hex")}`;

  const namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } };
  const deployment = (img: string) => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: ns },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: img }] },
      },
    },
  });
  const job = (name: string, phase: string, fail?: string) => ({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: ns, annotations: { [PHASE_ANNOTATION]: phase } },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: fail
          ? {
              labels: { [FAIL_LABEL]: "true" },
              annotations: { [`${FAIL_LABEL}/message`]: fail, [`${FAIL_LABEL}/exit-code`]: "3" },
            }
          : {},
        spec: { restartPolicy: "Never", containers: [{ name: name, image: image(9) }] },
      },
    },
  });
  const yaml = (...objects: object[]) => objects.map((o) => stringify(o)).join("---\n");
  const webImage = async () =>
    kubectl(
      "get",
      "deployment",
      "web",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.template.spec.containers[0].image}",
    );
  const jobNames = async () =>
    (await kubectl("get", "jobs", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"))
      .split(" ")
      .filter(Boolean)
      .sort();

  let previous: ObjectRef[] = [];

  after(async () => {
    await kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false");
  });

  it("GIVEN a pre-deploy and a post-deploy Job WHEN deployed THEN both run for the release and complete, around the rollout", async () => {
    const out = await deployInPhases(
      yaml(
        namespace,
        deployment(image(1)),
        job("migrate", "pre-deploy"),
        job("smoke", "post-deploy"),
      ),
      [],
      "0.1.0",
    );
    previous = out.objects;
    assert.deepEqual(
      out.jobs.map((j) => [j.phase, j.name, j.status]),
      [
        ["pre-deploy", "migrate-0-1-0", "Complete"],
        ["post-deploy", "smoke-0-1-0", "Complete"],
      ],
    );
    assert.equal(await webImage(), image(1));
    assert.deepEqual(await jobNames(), ["migrate-0-1-0", "smoke-0-1-0"]);
  });

  it("GIVEN a failing pre-deploy Job WHEN the next release deploys THEN the update fails with the Job's condition and termination message and the Deployment is unchanged", async () => {
    await assert.rejects(
      deployInPhases(
        yaml(
          namespace,
          deployment(image(2)),
          job("migrate", "pre-deploy", "relation users does not exist"),
          job("smoke", "post-deploy"),
        ),
        previous,
        "0.2.0",
      ),
      (err: Error) => {
        assert.ok(err instanceof JobFailedError, err.message);
        assert.match(
          err.message,
          new RegExp(`^pre-deploy Job ${ns}/migrate-0-2-0 failed: BackoffLimitExceeded`),
        );
        assert.match(
          err.message,
          /container migrate terminated: exit code 3, reason containerFailed, message "relation users does not exist"/,
        );
        assert.match(err.message, /no log: /);
        assert.match(err.message, /the workloads were not changed$/);
        return true;
      },
    );
    assert.equal(await webImage(), image(1));
    assert.deepEqual(await jobNames(), ["migrate-0-1-0", "migrate-0-2-0", "smoke-0-1-0"]);
  });

  it("GIVEN a failing post-deploy Job WHEN deployed THEN the rollout happened and the update fails naming the smoke test", async () => {
    await assert.rejects(
      deployInPhases(
        yaml(
          namespace,
          deployment(image(2)),
          job("migrate", "pre-deploy"),
          job("smoke", "post-deploy", "GET /health: 503"),
        ),
        previous,
        "0.2.1",
      ),
      /^JobFailedError: post-deploy Job it-jobs-[a-f0-9]+\/smoke-0-2-1 failed: BackoffLimitExceeded[^]*message "GET \/health: 503"/,
    );
    assert.equal(await webImage(), image(2));
  });

  it("GIVEN a failed Job of the same release WHEN the update runs again with it fixed THEN the Job runs again and succeeds, and older releases' Jobs are pruned", async () => {
    const out = await deployInPhases(
      yaml(
        namespace,
        deployment(image(2)),
        job("migrate", "pre-deploy"),
        job("smoke", "post-deploy"),
      ),
      previous,
      "0.2.1",
    );
    assert.deepEqual(
      out.jobs.map((j) => j.status),
      ["Complete", "Complete"],
    );
    // 0.1.0's Jobs were in `previous`; 0.2.0's failed Job was never recorded (its update failed).
    const names = await jobNames();
    assert.ok(!names.includes("migrate-0-1-0") && !names.includes("smoke-0-1-0"), names.join(" "));
    assert.ok(names.includes("migrate-0-2-1") && names.includes("smoke-0-2-1"), names.join(" "));
  });

  it("GIVEN the previous deploy's manifests WHEN one of two Deployments changed THEN only it is applied and awaited, and both are recorded", async () => {
    const api = (img: string) => ({
      ...deployment(img),
      metadata: { name: "api", namespace: ns },
      spec: {
        ...deployment(img).spec,
        selector: { matchLabels: { app: "api" } },
        template: {
          metadata: { labels: { app: "api" } },
          spec: { containers: [{ name: "api", image: img }] },
        },
      },
    });
    const first = yaml(namespace, deployment(image(3)), api(image(3)));
    const done = await deployInPhases(first, previous, "0.3.0");
    // Scaled by hand: applying api's manifest again (replicas 1, conflicts forced) would undo it.
    await kubectl("scale", "deployment", "api", "-n", ns, "--replicas=2");
    const next = yaml(namespace, deployment(image(4)), api(image(3)));
    const out = await deployInPhases(
      next,
      done.objects,
      "0.3.1",
      {},
      { manifests: first, release: "0.3.0" },
    );
    assert.equal(await webImage(), image(4));
    assert.equal(
      await kubectl("get", "deployment", "api", "-n", ns, "-o", "jsonpath={.spec.replicas}"),
      "2",
      "api is unchanged, so it was not applied again",
    );
    assert.deepEqual(out.objects.map((o) => `${o.kind}/${o.name}`).sort(), [
      "Deployment/api",
      "Deployment/web",
      `Namespace/${ns}`,
    ]);
  });
});
