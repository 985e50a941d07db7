import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { imageLabels, releaseLabels, RELEASE_IMAGE } from "../../lib/labels";
import type { VerifiedJob } from "../../lib/verification";
import { revisionOf } from "../../lib/revision";
import { objectsRenderer, pinnedImages, renderSiteOverlay } from "../../lib/kustomize";
import type { ForeignImage } from "../../lib/images";
import { splitPhases } from "../../lib/jobs";
import { manifestObjects } from "../../lib/kubectl";
import type { OverlayRenderer, SitePlan, ServiceStep } from "../../lib/site";
import type { ImageRecord } from "../../lib/types";
import { Release } from "../release/release";
import { Ring } from "../ring/ring";
import { ServiceImage } from "../service/serviceImage";
import { dockerConfigJson, PULL_SECRET_NAME, type RegistryAuth } from "../../lib/registry-auth";
import type { RegistryCredentials } from "../service/build";
import { KubectlApply } from "./kubectlApply";
import { PullSecret } from "./pullSecret";
import { renderWithProvider } from "./render";
import { SiteVerification } from "./verification";

/** Arguments of {@link Site}. */
export interface SiteArgs {
  /** What the site builds, reuses and deploys, as lib/site.ts `prepareSite` computed it. */
  readonly plan: SitePlan;
  /**
   * Directory where the site's generated Kustomize overlay is written.
   * @default `.gitops-rings/sites/<site>` under the working directory
   */
  readonly overlayDir?: string;
  /**
   * How the `kubernetes` deployer renders the overlay into objects before splitting them into
   * phases. @default the kubernetes provider's kustomize (components/site/render.ts)
   */
  readonly renderOverlay?: OverlayRenderer;
}

/** What a site runs, per service (DESIGN.md invariant 5). */
export interface DeployedService {
  readonly version?: string;
  readonly digest: string;
  /** `<repository>@sha256:…`. */
  readonly ref: string;
  readonly revision?: string;
  readonly sources: ImageRecord["sources"];
  /** Why the site runs this image: `ring developers`, `pin version 0.1.0`, `built (revision changed)`, … */
  readonly why: string;
}

/**
 * One site (`gitops-rings:site:Site`): environment + ring = one stack (DESIGN.md, "site").
 *
 * When the site builds (flow 1) it declares, in dependency order, one {@link ServiceImage} per
 * service with each dependency's reference by digest as its `FROM`, then the {@link Release}
 * that records them all. Every site then deploys (flow 2): it writes a Kustomize
 * overlay over its environment's overlay that pins every image by digest, labels the
 * objects with site and ring and the site's Namespace with the release, and applies it with `@pulumi/kubernetes`
 * (`yaml.v2.ConfigGroup`, one per phase of lib/jobs.ts) or, on the local platform, with
 * {@link KubectlApply}; pre-deploy Jobs run before the workloads change, post-deploy Jobs after. A building
 * site declares its {@link Ring} last: the pointer moves only after the release, its images
 * and the deployment succeeded (DESIGN.md invariant 2).
 */
export class Site extends pulumi.ComponentResource {
  /** The release version the site runs. */
  public readonly release: pulumi.Output<string>;
  /** Per service: version, digest, reference by digest, revision, source commits, why. */
  public readonly services: pulumi.Output<Record<string, DeployedService>>;
  /** The release plan as a table (what preview prints; DESIGN.md flow 7). */
  public readonly plan: pulumi.Output<string>;
  /**
   * The images the site deploys that no service builds, by reference as written: registry,
   * repository, tag, digest, image by digest and where they are used (lib/images.ts; the
   * origins seed 002 records). The next update's plan compares its digests with these.
   */
  public readonly foreignImages: pulumi.Output<Record<string, ForeignImage>>;
  /**
   * The images whose resources this stack declares (built now or kept from an earlier update),
   * by service name and `release`: the next update declares them again with the same inputs
   * instead of dropping them (lib/site.ts `BuiltImages`).
   */
  public readonly builtImages: pulumi.Output<Record<string, { version: string; digest: string }>>;
  public readonly images: Record<string, ServiceImage> = {};
  /** The release, when the site builds. */
  public readonly releaseImage?: Release;
  /** The ring and its pointer, when the site builds. */
  public readonly ring?: Ring;
  /**
   * What the deploy ends with: on the local platform KubectlApply (every phase), else the
   * ConfigGroup of the post-deploy Jobs, which waits for the others ({@link Site.phases}).
   */
  public readonly deployment: k8s.yaml.v2.ConfigGroup | KubectlApply;
  /** The post-deploy Jobs that passed, as the site's verification records them. */
  public postDeployJobs: pulumi.Output<VerifiedJob[]> = pulumi.output([]);
  /** The site's verification of its release (lib/verification.ts), after the deployment. */
  public readonly verification?: SiteVerification;
  /** The provider path's ConfigGroups, one per phase of lib/jobs.ts `splitPhases`. */
  public phases?: {
    readonly pre: k8s.yaml.v2.ConfigGroup;
    readonly main: k8s.yaml.v2.ConfigGroup;
    readonly post: k8s.yaml.v2.ConfigGroup;
  };

  constructor(name: string, args: SiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitops-rings:site:Site", name, {}, opts);
    const plan = args.plan;
    const deployed: Record<string, pulumi.Output<DeployedService>> = {};
    let releaseVersion: pulumi.Output<string> = pulumi.output(plan.deploy.release ?? "");

    if (plan.build) {
      for (const step of plan.services) {
        const image = this.serviceImage(name, plan, step);
        this.images[step.service] = image;
        deployed[step.service] = pulumi
          .all([image.digest, image.ref, image.revision])
          .apply(([digest, ref, revision]) => ({
            version: step.version,
            digest,
            ref,
            revision,
            sources: [...step.sources],
            why:
              step.action === "build"
                ? `built (${step.reason})`
                : step.reason === "unchanged"
                  ? `ring ${plan.ring} (unchanged)`
                  : `reused ${step.version}: same revision (${step.reason})`,
          }));
      }
      const records = pulumi.all(
        Object.fromEntries(
          plan.services.map((s) => [
            s.service,
            pulumi
              .all([this.images[s.service].digest, this.images[s.service].revision])
              .apply(([digest, revision]): ImageRecord => ({
                service: s.service,
                repository: s.repository,
                version: s.version,
                digest,
                revision,
                dependencies: s.dependencies,
                sources: s.sources,
              })),
          ]),
        ),
      );
      const labels = records.apply((services) =>
        releaseLabels(
          { version: plan.release.version, services },
          { project: plan.project, vendor: plan.vendor },
        ),
      );
      const release = new Release(
        `${name}-release`,
        {
          repository: plan.release.repository,
          action: plan.release.action,
          version: plan.release.version,
          revision: labels.apply((l) => l["org.opencontainers.image.revision"]),
          digest: plan.release.digest,
          labels,
          builder: plan.builder,
          registries: registriesOf(plan.registryAuth),
        },
        { parent: this },
      );
      releaseVersion = release.version;
      this.releaseImage = release;
    } else {
      for (const [service, image] of Object.entries(plan.deploy.images)) {
        deployed[service] = pulumi.output({
          version: image.version,
          digest: image.digest,
          ref: `${image.repository}@${image.digest}`,
          revision: image.revision,
          sources: [...image.sources],
          why: image.why,
        });
      }
    }

    const built: Record<string, pulumi.Output<{ version: string; digest: string }>> = {};
    for (const step of plan.build ? plan.services : []) {
      if (step.action !== "reuse") {
        built[step.service] = this.images[step.service].digest.apply((digest) => ({
          version: step.version,
          digest,
        }));
      }
    }
    if (this.releaseImage && plan.release.action !== "reuse") {
      built.release = this.releaseImage.digest.apply((digest) => ({
        version: plan.release.version,
        digest,
      }));
    }
    this.builtImages = pulumi.all(built);
    this.services = pulumi.all(deployed);
    this.release = releaseVersion;
    this.plan = pulumi.output(plan.table);
    this.foreignImages = pulumi.output({ ...(plan.foreignImages ?? {}) });
    this.deployment = this.deploy(name, plan, args.overlayDir, args.renderOverlay);
    const releaseDigest: pulumi.Input<string> | undefined = this.releaseImage
      ? this.releaseImage.digest
      : plan.deploy.releaseDigest;
    if (releaseDigest !== undefined) {
      // Declared after the deployment: it runs only when every phase, post-deploy Jobs
      // included, passed (a failed Job fails the update before it).
      this.verification = new SiteVerification(
        `${name}-verification`,
        {
          releaseRepository: `${plan.registry}/${plan.project}/${RELEASE_IMAGE}`,
          site: plan.site,
          ring: plan.ring,
          release: this.release,
          digest: releaseDigest,
          jobs: this.postDeployJobs,
        },
        { parent: this, dependsOn: [this.deployment] },
      );
    }
    if (this.releaseImage) {
      // The pointer moves last: after the release, its images and the site's own deployment
      // (a failed deploy leaves the ring where it was). The deployment reads the release's
      // version from the Release, never from the pointer, so it does not wait for it.
      const release = this.releaseImage;
      const current = plan.release.currentVersion;
      const currentDigest = plan.release.currentDigest;
      this.ring = new Ring(
        `${name}-ring-${plan.ring}`,
        {
          registry: plan.registry,
          project: plan.project,
          rings: plan.rings,
          ring: plan.ring,
          ...(current !== undefined && currentDigest !== undefined
            ? { current: { version: current, digest: currentDigest } }
            : {}),
          next: { ring: plan.nextRing, release: plan.release.nextRingVersion },
          release: { version: release.version, digest: release.digest },
          dependsOn: [release, ...Object.values(this.images), this.deployment],
        },
        { parent: this },
      );
    }
    this.registerOutputs({
      release: this.release,
      services: this.services,
      plan: this.plan,
      builtImages: this.builtImages,
      foreignImages: this.foreignImages,
    });
  }

  private serviceImage(name: string, plan: SitePlan, step: ServiceStep): ServiceImage {
    const dependency = (service: string): ServiceImage => {
      const image = this.images[service];
      if (!image) {
        throw new pulumi.ResourceError(
          `service ${step.service}: dependency ${service} comes later in the build order`,
          this,
        );
      }
      return image;
    };
    const dependencyArgs = Object.fromEntries(
      Object.entries(step.dependencyArgs).map(([arg, service]) => [arg, dependency(service).ref]),
    );
    const namedContexts = Object.fromEntries(
      Object.entries(step.namedContexts).map(([ref, service]) => [
        ref,
        pulumi.interpolate`docker-image://${dependency(service).ref}`,
      ]),
    );
    // The revision covers the digests of the images built FROM (lib/revision.ts); when a
    // dependency is rebuilt in this update, they are known only once it is pushed.
    const revision: pulumi.Output<string> =
      step.revision !== undefined
        ? pulumi.output(step.revision)
        : pulumi
            .all(
              Object.fromEntries(
                Object.keys(step.dependencies).map((d) => [d, dependency(d).digest]),
              ),
            )
            .apply((digests) => revisionOf({ content: step.content }, digests));
    const labels = revision.apply((r) => imageLabels({ ...step.labelInput, revision: r }));
    return new ServiceImage(
      `${name}-${step.service}`,
      {
        service: step.service,
        repository: step.repository,
        action: step.action,
        version: step.version,
        revision,
        digest: step.digest,
        labels,
        build: {
          ...step.build,
          dependencyArgs,
          namedContexts,
          ...(step.baseService !== undefined ? { base: dependency(step.baseService).ref } : {}),
          builder: plan.builder,
          registries: registriesOf(plan.registryAuth),
        },
      },
      { parent: this },
    );
  }

  /**
   * The provider path's image pull secret (README, "Registry credentials"): the site's
   * Namespace (server-side apply: the overlay applies it too), the
   * `kubernetes.io/dockerconfigjson` Secret and the `default` ServiceAccount's
   * `imagePullSecrets`, all before the first phase.
   */
  private providerPullSecret(name: string, plan: SitePlan, auth: RegistryAuth): pulumi.Resource[] {
    const namespace = plan.environment.namespace;
    const ns = new k8s.core.v1.Namespace(
      `${name}-pull-secret-namespace`,
      { metadata: { name: namespace } },
      { parent: this },
    );
    const secret = new k8s.core.v1.Secret(
      `${name}-pull-secret`,
      {
        metadata: { name: PULL_SECRET_NAME, namespace },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": pulumi.secret(dockerConfigJson(auth)) },
      },
      { parent: this, dependsOn: [ns] },
    );
    const account = new k8s.core.v1.ServiceAccountPatch(
      `${name}-pull-secret-account`,
      {
        metadata: { name: "default", namespace },
        imagePullSecrets: [{ name: PULL_SECRET_NAME }],
      },
      { parent: this, dependsOn: [secret] },
    );
    return [ns, secret, account];
  }

  /** Generated overlay + apply. The overlay is written once every digest is known. */
  private deploy(
    name: string,
    plan: SitePlan,
    overlayDir?: string,
    renderOverlay?: OverlayRenderer,
  ): k8s.yaml.v2.ConfigGroup | KubectlApply {
    const dir = path.resolve(overlayDir ?? path.join(".gitops-rings", "sites", plan.site));
    const images = this.services.apply((services) =>
      // Every service is pinned under every name teams write for it (the planning step rendered
      // the same overlay); Kustomize leaves entries no container names (a base image) unused.
      pinnedImages(
        Object.fromEntries(
          Object.entries(services).map(([service, s]) => [
            service,
            { repository: s.ref.slice(0, s.ref.indexOf("@")), digest: s.digest },
          ]),
        ),
        plan.imageNames,
      ),
    );
    const overlay = pulumi.all([images, this.release]).apply(([pinned, release]) => ({
      environmentOverlay: plan.environment.overlay,
      namespace: plan.environment.namespace,
      site: plan.site,
      ring: plan.ring,
      release,
      images: pinned,
      // Images no service builds, as the planning step resolved and checked them.
      ...(plan.foreign ? { foreign: plan.foreign } : {}),
    }));
    const auth = plan.registryAuth ?? {};
    const hasAuth = Object.keys(auth).length > 0;
    if (plan.deployer.kind === "kubectl") {
      const kubeconfig = plan.deployer.kubeconfig;
      // The site's image pull secret, before the manifests (README, "Registry credentials").
      const pullSecret = hasAuth
        ? new PullSecret(
            `${name}-pull-secret`,
            {
              namespace: plan.environment.namespace,
              name: PULL_SECRET_NAME,
              dockerConfigJson: pulumi.secret(dockerConfigJson(auth)),
              ...(kubeconfig !== undefined ? { kubeconfig } : {}),
            },
            { parent: this },
          )
        : undefined;
      // The planning step checked the rendered images (lib/site.ts). The second check is the
      // applier's (lib/jobs.ts deployInPhases), inside KubectlApply: an error thrown here,
      // in an apply whose value is a resource input, would reach the user as `error serializing
      // property "manifests"` with a stack trace; the provider's error is the message alone.
      const identity = plan.identityKubeconfig;
      const manifests = overlay.apply(async (o) => {
        const { kustomizeSiteOverlay } = await import("../../lib/kubectl");
        const yaml = await kustomizeSiteOverlay(dir, o);
        // A deploy identity applies all but the Namespace, which bootstrap made (lib/identity.ts).
        if (identity === undefined) return yaml;
        const { withoutOwnNamespace } = await import("../../lib/identity");
        return withoutOwnNamespace(yaml, plan.environment.namespace);
      });
      const applied = new KubectlApply(
        `${name}-apply`,
        {
          manifests,
          kubeconfig,
          release: this.release,
          timeoutSeconds: plan.rolloutTimeout,
          ...(identity !== undefined ? { identity: pulumi.secret(identity) } : {}),
        },
        { parent: this, ...(pullSecret ? { dependsOn: [pullSecret] } : {}) },
      );
      this.postDeployJobs = applied.jobs.apply((jobs) =>
        (jobs ?? [])
          .filter((j) => j.phase === "post-deploy")
          .map((j) => ({ name: j.name, status: j.status })),
      );
      return applied;
    }
    // The provider path follows the same phase rule (lib/jobs.ts splitPhases): one ConfigGroup
    // per phase, each waiting for the one before; the provider awaits the Jobs it creates
    // (Complete, or the update fails) and the rollouts of the workloads.
    const render = renderOverlay ?? renderWithProvider;
    const phases = overlay.apply(async (o) => {
      // The provider awaits each object itself, concurrently; the site's rollout timeout
      // bounds each of them (the kubectl path bounds them all together).
      const overlay = { ...o, awaitTimeoutSeconds: plan.rolloutTimeout };
      const yaml = await renderSiteOverlay(dir, overlay, objectsRenderer(render));
      return splitPhases(manifestObjects(yaml), o.release);
    });
    const pullSecret = hasAuth ? this.providerPullSecret(name, plan, auth) : [];
    const pre = new k8s.yaml.v2.ConfigGroup(
      `${name}-pre-deploy`,
      { objs: phases.apply((p) => p.pre) },
      { parent: this, dependsOn: pullSecret },
    );
    const main = new k8s.yaml.v2.ConfigGroup(
      `${name}-apply`,
      { objs: phases.apply((p) => p.main) },
      { parent: this, dependsOn: [pre] },
    );
    const post = new k8s.yaml.v2.ConfigGroup(
      `${name}-post-deploy`,
      { objs: phases.apply((p) => p.post) },
      { parent: this, dependsOn: [main] },
    );
    this.phases = { pre, main, post };
    this.postDeployJobs = phases.apply((p) =>
      p.post.map((j) => ({ name: String(j.metadata?.name), status: "Complete" })),
    );
    return post;
  }
}

/**
 * The docker-build backend's `registries` for a plan's credentials, passwords as Pulumi secrets
 * (the buildctl backend reads them in its provider instead: lib/registry-auth.ts).
 * @returns undefined without credentials (the caller's docker config applies, as before).
 */
function registriesOf(auth: RegistryAuth | undefined): RegistryCredentials[] | undefined {
  const entries = Object.entries(auth ?? {});
  if (entries.length === 0) return undefined;
  return entries.map(([address, c]) => ({
    address,
    username: c.username,
    password: pulumi.secret(c.password),
  }));
}
