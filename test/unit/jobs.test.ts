import assert from "node:assert/strict";
import {
  JOB_SPEC_ANNOTATION,
  PHASE_ANNOTATION,
  jobFailureMessage,
  jobNameForRelease,
  phaseOf,
  splitPhases,
} from "../../lib/jobs";
import type { ManifestObject } from "../../lib/kubectl";

const job = (name: string, phase?: string, spec: object = { template: {} }): ManifestObject => ({
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: {
    name,
    namespace: "ns",
    ...(phase ? { annotations: { [PHASE_ANNOTATION]: phase } } : {}),
  },
  spec,
});
const obj = (kind: string, name: string, apiVersion = "v1"): ManifestObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace: "ns" },
});

describe("lib/jobs", () => {
  describe("jobNameForRelease", () => {
    const cases: [string, string, string][] = [
      ["migrate", "0.1.2", "migrate-0-1-2"],
      ["migrate", "1.0.0-rc.1+build.7", "migrate-1-0-0-rc-1-build-7"],
      ["smoke", "", "smoke-unreleased"],
    ];
    for (const [name, release, expected] of cases) {
      it(`GIVEN ${name} and release ${JSON.stringify(release)} THEN ${expected}`, () => {
        assert.equal(jobNameForRelease(name, release), expected);
      });
    }

    it("GIVEN a long name THEN the result is a DNS label of at most 63 characters that keeps the release", () => {
      const long = "a-very-long-database-migration-job-name-that-goes-on-and-on-forever";
      const name = jobNameForRelease(long, "10.20.30");
      assert.ok(name.length <= 63, name);
      assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      assert.ok(name.endsWith("-10-20-30"), name);
      assert.notEqual(name, jobNameForRelease(`${long}-2`, "10.20.30"));
    });
  });

  describe("phaseOf", () => {
    it("GIVEN a Job without the annotation THEN it has no phase", () => {
      assert.equal(phaseOf(job("seed")), undefined);
    });

    it("GIVEN an unknown phase THEN the error names the object, the annotation and the value", () => {
      assert.throws(
        () => phaseOf(job("seed", "predeploy")),
        /^Error: Job\/ns\/seed: annotation gitops-rings.io\/phase: "predeploy" is not a phase \(use pre-deploy or post-deploy\)$/,
      );
    });

    it("GIVEN a Deployment with a phase THEN only Jobs may have one", () => {
      const d = {
        ...obj("Deployment", "web", "apps/v1"),
        metadata: { name: "web", annotations: { [PHASE_ANNOTATION]: "pre-deploy" } },
      };
      assert.throws(() => phaseOf(d), /Deployment\/\/web: .*only a Job \(batch\/v1\) has a phase/);
    });
  });

  describe("splitPhases", () => {
    it("GIVEN no phased Jobs THEN every object is in main, in order, unchanged", () => {
      const objects = [obj("Namespace", "ns"), obj("Deployment", "web", "apps/v1"), job("plain")];
      assert.deepEqual(splitPhases(objects, "0.1.0"), { pre: [], main: objects, post: [] });
    });

    it("GIVEN pre- and post-deploy Jobs THEN pre holds the non-workloads and the pre Jobs, main the workloads, post the post Jobs, Jobs renamed for the release", () => {
      const objects = [
        obj("Namespace", "ns"),
        obj("ConfigMap", "cfg"),
        obj("Deployment", "web", "apps/v1"),
        job("smoke", "post-deploy"),
        job("migrate", "pre-deploy"),
        obj("Service", "web"),
        obj("CronJob", "nightly", "batch/v1"),
      ];
      const phases = splitPhases(objects, "0.4.1");
      const names = (list: ManifestObject[]) => list.map((o) => `${o.kind}/${o.metadata?.name}`);
      assert.deepEqual(names(phases.pre), [
        "Namespace/ns",
        "ConfigMap/cfg",
        "Service/web",
        "Job/migrate-0-4-1",
      ]);
      assert.deepEqual(names(phases.main), ["Deployment/web", "CronJob/nightly"]);
      assert.deepEqual(names(phases.post), ["Job/smoke-0-4-1"]);
      assert.equal(phases.pre[3].metadata?.annotations?.[PHASE_ANNOTATION], "pre-deploy");
      assert.match(
        String(phases.pre[3].metadata?.annotations?.[JOB_SPEC_ANNOTATION]),
        /^[a-f0-9]{16}$/,
      );
    });

    it("GIVEN only post-deploy Jobs THEN pre is empty and main holds the rest", () => {
      const phases = splitPhases([obj("Namespace", "ns"), job("smoke", "post-deploy")], "1.0.0");
      assert.deepEqual(phases.pre, []);
      assert.deepEqual(
        phases.main.map((o) => o.kind),
        ["Namespace"],
      );
      assert.equal(phases.post[0].metadata?.name, "smoke-1-0-0");
    });

    it("GIVEN two Jobs whose specs differ by key order only THEN their spec hashes are equal; a changed spec changes it", () => {
      const a = splitPhases([job("m", "pre-deploy", { a: 1, b: { c: 2, d: 3 } })], "1.0.0");
      const b = splitPhases([job("m", "pre-deploy", { b: { d: 3, c: 2 }, a: 1 })], "1.0.0");
      const c = splitPhases([job("m", "pre-deploy", { a: 2, b: { c: 2, d: 3 } })], "1.0.0");
      const hash = (p: typeof a) => p.pre[0].metadata?.annotations?.[JOB_SPEC_ANNOTATION];
      assert.equal(hash(a), hash(b));
      assert.notEqual(hash(a), hash(c));
    });
  });

  describe("jobFailureMessage", () => {
    it("GIVEN a failed pre-deploy Job whose Pod has no log THEN it shows the condition, the termination and why there is no log, and that the workloads were not changed", () => {
      const message = jobFailureMessage(
        "pre-deploy",
        {
          namespace: "ns",
          name: "migrate-0-1-0",
          conditions: [
            { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded" },
            {
              type: "Failed",
              status: "True",
              reason: "BackoffLimitExceeded",
              message: "Job has reached the specified backoff limit",
            },
          ],
        },
        [
          {
            name: "migrate-0-1-0-abcde",
            containers: [
              {
                name: "migrate",
                exitCode: 3,
                reason: "Error",
                message: "relation users missing\n",
              },
            ],
            log: { unavailable: "the server could not find the requested resource" },
          },
        ],
      );
      assert.equal(
        message,
        [
          "pre-deploy Job ns/migrate-0-1-0 failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
          '  pod migrate-0-1-0-abcde: container migrate terminated: exit code 3, reason Error, message "relation users missing"',
          "  pod migrate-0-1-0-abcde: no log: the server could not find the requested resource",
          "the workloads were not changed",
        ].join("\n"),
      );
    });

    it("GIVEN a Pod with a log THEN its tail is indented under the Pod", () => {
      const message = jobFailureMessage(
        "post-deploy",
        {
          name: "smoke",
          conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded" }],
        },
        [{ name: "smoke-x", containers: [], log: { text: "GET /health\n503\n" } }],
      );
      assert.match(message, /^post-deploy Job \/smoke failed: DeadlineExceeded\n/);
      assert.match(message, /log \(last 20 lines\):\n {4}GET \/health\n {4}503$/);
    });
  });
});
