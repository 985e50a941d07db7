/**
 * A deploy identity per site (issue 11, part C; README, "A deploy identity per site"): a
 * ServiceAccount in the site's namespace whose Role grants only what the site's manifests
 * need, and a kubeconfig for it with a short-lived token from the TokenRequest API.
 *
 * `npm run rings -- bootstrap <site>` applies {@link bootstrapObjects} with the caller's
 * kubeconfig; a site with `gitops-rings:identity: true` requests a token at plan time
 * ({@link identityKubeconfig}) and deploys with it. The token lives in memory, in a Pulumi
 * secret input (encrypted in the state) and, for one kubectl run, in a private temporary file.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { kubectl, type KubectlOptions } from "./kubectl";

/** The name of the ServiceAccount, Role and RoleBinding of a site's deploy identity. */
export const IDENTITY_NAME = "gitops-rings-deploy";

/** How long a site's deploy token lives, in seconds (the TokenRequest API's minimum is 600). */
export const TOKEN_SECONDS = 3600;

/** A kind the API server serves: its resource (plural), group and whether it is namespaced. */
export interface ApiResource {
  readonly resource: string;
  readonly group: string;
  readonly namespaced: boolean;
}

/** A Role rule. */
export interface PolicyRule {
  readonly apiGroups: string[];
  readonly resources: string[];
  readonly verbs: string[];
}

/** Verbs on the kinds the site's manifests render: server-side apply, prune, and reads. */
const APPLY_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"];
const READ_VERBS = ["get", "list", "watch"];

/**
 * What every deploy reads, whatever the overlay renders: rollouts (Deployments, their
 * ReplicaSets' and Pods' events), phased Jobs and their Pods' logs (lib/rollout.ts,
 * lib/jobs.ts).
 */
export const DEPLOY_RULES: readonly PolicyRule[] = [
  { apiGroups: ["apps"], resources: ["deployments", "replicasets"], verbs: READ_VERBS },
  { apiGroups: [""], resources: ["pods", "events"], verbs: READ_VERBS },
  { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: READ_VERBS },
];

/**
 * Parses `kubectl api-resources --no-headers`: `NAME [SHORTNAMES] APIVERSION NAMESPACED KIND`.
 * @returns by `<group>/<Kind>` (`/<Kind>` for the core group).
 */
export function parseApiResources(text: string): Map<string, ApiResource> {
  const out = new Map<string, ApiResource>();
  for (const line of text.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const kind = cols[cols.length - 1];
    const namespaced = cols[cols.length - 2] === "true";
    const apiVersion = cols[cols.length - 3];
    const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
    out.set(`${group}/${kind}`, { resource: cols[0], group, namespaced });
  }
  return out;
}

/**
 * The Role rules of a site: full apply verbs on each namespaced kind its manifests render, one
 * rule per API group with its resources sorted, then {@link DEPLOY_RULES}. Cluster-scoped kinds
 * (the site's Namespace, which bootstrap creates) get nothing: a Role cannot grant them.
 * @param objects the rendered objects (apiVersion and kind are read).
 * @param resources the API server's kinds ({@link parseApiResources}).
 * @throws Error naming a kind the API server does not serve.
 */
export function roleRules(
  objects: readonly { readonly apiVersion?: string; readonly kind?: string }[],
  resources: ReadonlyMap<string, ApiResource>,
): PolicyRule[] {
  const byGroup = new Map<string, Set<string>>();
  for (const o of objects) {
    if (!o.apiVersion || !o.kind) continue;
    const group = o.apiVersion.includes("/")
      ? o.apiVersion.slice(0, o.apiVersion.indexOf("/"))
      : "";
    const found = resources.get(`${group}/${o.kind}`);
    if (!found)
      throw new Error(`${o.apiVersion} ${o.kind}: the API server does not serve this kind`);
    if (!found.namespaced) continue;
    if (!byGroup.has(group)) byGroup.set(group, new Set());
    byGroup.get(group)!.add(found.resource);
  }
  const groups = [...byGroup.keys()].sort();
  return [
    ...groups.map((group) => ({
      apiGroups: [group],
      resources: [...byGroup.get(group)!].sort(),
      verbs: [...APPLY_VERBS],
    })),
    ...DEPLOY_RULES.map((r) => ({
      apiGroups: [...r.apiGroups],
      resources: [...r.resources],
      verbs: [...r.verbs],
    })),
  ];
}

/**
 * What `rings bootstrap` applies: the site's Namespace, the ServiceAccount, the Role with
 * `rules` and the RoleBinding, all named {@link IDENTITY_NAME}.
 */
export function bootstrapObjects(namespace: string, rules: readonly PolicyRule[]): object[] {
  const metadata = { name: IDENTITY_NAME, namespace };
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata },
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata, rules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: IDENTITY_NAME },
      subjects: [{ kind: "ServiceAccount", name: IDENTITY_NAME, namespace }],
    },
  ];
}

/**
 * Creates or updates a site's deploy identity with the caller's kubeconfig.
 * @param namespace the site's namespace.
 * @param rendered the site's rendered manifests (multi-document YAML), whose kinds the Role grants.
 * @returns the rules granted.
 */
export async function bootstrapIdentity(
  namespace: string,
  rendered: string,
  opts: KubectlOptions = {},
): Promise<PolicyRule[]> {
  const objects = parseAllDocuments(rendered)
    .map((d) => d.toJS() as { apiVersion?: string; kind?: string })
    .filter((o) => o && o.kind);
  const resources = parseApiResources(await kubectl(opts, ["api-resources", "--no-headers"]));
  const rules = roleRules(objects, resources);
  await kubectl(
    opts,
    ["apply", "--server-side", "--field-manager=gitops-rings-bootstrap", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: bootstrapObjects(namespace, rules) }),
  );
  return rules;
}

/** The cluster of the caller's current context: server and CA (inline, base64). */
async function currentCluster(
  opts: KubectlOptions,
): Promise<{ server: string; ca?: string; insecure?: boolean }> {
  const view = JSON.parse(
    await kubectl(opts, ["config", "view", "--raw", "--minify", "-o", "json"]),
  ) as { clusters?: { cluster: Record<string, unknown> }[] };
  const cluster = view.clusters?.[0]?.cluster ?? {};
  const server = cluster.server as string | undefined;
  if (!server) throw new Error("kubeconfig: the current context has no cluster server");
  const data = cluster["certificate-authority-data"] as string | undefined;
  const file = cluster["certificate-authority"] as string | undefined;
  const ca = data ?? (file ? fs.readFileSync(file).toString("base64") : undefined);
  return {
    server,
    ...(ca ? { ca } : {}),
    ...(cluster["insecure-skip-tls-verify"] === true ? { insecure: true } : {}),
  };
}

/**
 * A kubeconfig for a site's deploy identity: the caller's cluster, and a token the TokenRequest
 * API issues for the ServiceAccount (`kubectl create token`), bound to {@link TOKEN_SECONDS}.
 * @param namespace the site's namespace.
 * @param opts the caller's kubeconfig, which must be allowed to create tokens there.
 * @returns the kubeconfig's YAML text (it holds the token: keep it secret).
 * @throws Error naming the namespace and `npm run rings -- bootstrap <site>` when the
 *   ServiceAccount does not exist.
 */
export async function identityKubeconfig(
  namespace: string,
  site: string,
  opts: KubectlOptions = {},
): Promise<string> {
  const token = (
    await kubectl(opts, [
      "create",
      "token",
      IDENTITY_NAME,
      "-n",
      namespace,
      `--duration=${TOKEN_SECONDS}s`,
    ]).catch((err: Error) => {
      if (/not ?found/i.test(err.message)) {
        throw new Error(
          `site ${site}: gitops-rings:identity is true but namespace ${namespace} has no ServiceAccount ` +
            `${IDENTITY_NAME}; create it with: npm run rings -- bootstrap ${site}`,
        );
      }
      throw err;
    })
  ).trim();
  const cluster = await currentCluster(opts);
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "site",
        cluster: {
          server: cluster.server,
          ...(cluster.ca ? { "certificate-authority-data": cluster.ca } : {}),
          ...(cluster.insecure ? { "insecure-skip-tls-verify": true } : {}),
        },
      },
    ],
    users: [{ name: IDENTITY_NAME, user: { token } }],
    contexts: [{ name: "site", context: { cluster: "site", user: IDENTITY_NAME, namespace } }],
    "current-context": "site",
  });
}

/**
 * Runs `fn` with `kubeconfig` (YAML text) in a private temporary file (mode 0600), removed when
 * `fn` settles.
 */
export async function withKubeconfig<T>(
  kubeconfig: string,
  fn: (file: string) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-rings-identity-"));
  try {
    const file = path.join(dir, "kubeconfig");
    fs.writeFileSync(file, kubeconfig, { mode: 0o600 });
    return await fn(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The manifests without the site's own Namespace: bootstrap created it, and a Role cannot grant
 * a cluster-scoped object, so a deploy identity applies everything else.
 */
export function withoutOwnNamespace(manifests: string, namespace: string): string {
  return parseAllDocuments(manifests)
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .filter((o) => o && !(o.kind === "Namespace" && o.metadata?.name === namespace))
    .map((o) => stringify(o))
    .join("---\n");
}
