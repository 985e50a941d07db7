import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { parseAllDocuments } from "yaml";
import { parseRepositoryConfig, parseSiteConfig } from "../../lib/config";
import {
  DEPLOY_RULES,
  bootstrapObjects,
  parseApiResources,
  roleRules,
  withKubeconfig,
  withoutOwnNamespace,
} from "../../lib/identity";

/** `kubectl api-resources --no-headers` as kubernetes 1.34 prints it, in part. */
const API_RESOURCES = `
configmaps                          cm         v1                                true    ConfigMap
namespaces                          ns         v1                                false   Namespace
services                            svc        v1                                true    Service
deployments                         deploy     apps/v1                           true    Deployment
jobs                                           batch/v1                          true    Job
clusterroles                                   rbac.authorization.k8s.io/v1      false   ClusterRole
`;

describe("deploy identity (lib/identity.ts)", () => {
  const resources = parseApiResources(API_RESOURCES);

  it("GIVEN kubectl api-resources, short names or not THEN each kind maps to its resource, group and scope", () => {
    assert.deepEqual(resources.get("/ConfigMap"), {
      resource: "configmaps",
      group: "",
      namespaced: true,
    });
    assert.deepEqual(resources.get("batch/Job"), {
      resource: "jobs",
      group: "batch",
      namespaced: true,
    });
    assert.deepEqual(resources.get("rbac.authorization.k8s.io/ClusterRole"), {
      resource: "clusterroles",
      group: "rbac.authorization.k8s.io",
      namespaced: false,
    });
  });

  it("GIVEN rendered kinds THEN the Role grants each namespaced kind by group, then what a deploy reads; cluster-scoped kinds get nothing", () => {
    const rules = roleRules(
      [
        { apiVersion: "v1", kind: "Service" },
        { apiVersion: "apps/v1", kind: "Deployment" },
        { apiVersion: "v1", kind: "ConfigMap" },
        { apiVersion: "v1", kind: "Namespace" },
        { apiVersion: "v1", kind: "Service" },
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole" },
      ],
      resources,
    );
    const apply = ["get", "list", "watch", "create", "update", "patch", "delete"];
    assert.deepEqual(rules, [
      { apiGroups: [""], resources: ["configmaps", "services"], verbs: apply },
      { apiGroups: ["apps"], resources: ["deployments"], verbs: apply },
      ...DEPLOY_RULES,
    ]);
  });

  it("GIVEN a kind the API server does not serve THEN the error names it", () => {
    assert.throws(
      () => roleRules([{ apiVersion: "example.com/v1", kind: "Widget" }], resources),
      /example.com\/v1 Widget: the API server does not serve this kind/,
    );
  });

  it("GIVEN a namespace THEN bootstrap applies the Namespace, a ServiceAccount, the Role and a RoleBinding of that ServiceAccount", () => {
    const objects = bootstrapObjects("example-dev-developers", []) as {
      kind: string;
      metadata: { name: string; namespace?: string };
      subjects?: unknown;
      roleRef?: unknown;
    }[];
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`),
      [
        "Namespace//example-dev-developers",
        "ServiceAccount/example-dev-developers/gitops-rings-deploy",
        "Role/example-dev-developers/gitops-rings-deploy",
        "RoleBinding/example-dev-developers/gitops-rings-deploy",
      ],
    );
    assert.deepEqual(objects[3].subjects, [
      { kind: "ServiceAccount", name: "gitops-rings-deploy", namespace: "example-dev-developers" },
    ]);
  });

  it("GIVEN rendered manifests THEN the identity applies all but the site's own Namespace", () => {
    const out = withoutOwnNamespace(
      [
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: site\n",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: site\n",
      ].join("---\n"),
      "site",
    );
    assert.deepEqual(
      parseAllDocuments(out).map((d) => {
        const o = d.toJS() as { kind: string; metadata: { name: string } };
        return `${o.kind}/${o.metadata.name}`;
      }),
      ["Namespace/other", "ConfigMap/c"],
    );
  });

  it("GIVEN a kubeconfig WHEN a run uses it THEN it is a private file removed after, even on failure", async () => {
    let seen = "";
    await assert.rejects(
      withKubeconfig("token: x\n", async (file) => {
        seen = file;
        assert.equal(fs.statSync(file).mode & 0o777, 0o600);
        assert.equal(fs.readFileSync(file, "utf8"), "token: x\n");
        throw new Error("apply failed");
      }),
      /apply failed/,
    );
    assert.equal(fs.existsSync(seen), false);
  });

  it("GIVEN gitops-rings:identity THEN the site config reads it as pulumi config set stores it; unset, it is absent", () => {
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
    const file = "stacks/Pulumi.dev-developers.yaml";
    assert.equal(parseSiteConfig({ ...values, identity: "true" }, file, repo).identity, true);
    assert.equal(parseSiteConfig(values, file, repo).identity, undefined);
    assert.throws(
      () => parseSiteConfig({ ...values, identity: "yes" }, file, repo),
      /gitops-rings:identity: "yes" is not true or false/,
    );
  });
});
