/**
 * The site plan: everything a site's update does, computed up front as plain values before
 * any resource exists (STYLE.md rule 5; DESIGN.md flows 1, 2, 4, 5, 7). The program entry
 * computes it with {@link prepareSite} in an explicit async step, then hands it to the Site
 * component, which only wires resources.
 */
import type { ImageRecord, SourceCommit } from "./types";

/** What an update does with one image. */
export type ImageAction = "build" | "keep" | "reuse";

/** Why an image is built or reused (DESIGN.md flow 7). */
export type ImageReason = "new" | "revision changed" | "dependency changed" | "unchanged";

/** Which builder makes images (README, "The local platform"). */
export type ImageBuilder =
  | { readonly kind: "docker-build"; readonly name?: string }
  | { readonly kind: "buildctl"; readonly addr: string };

/** How a site applies its manifests. */
export type Deployer =
  { readonly kind: "kubernetes" } | { readonly kind: "kubectl"; readonly kubeconfig?: string };

/** One service's step in a building site. */
export interface ServiceStep {
  readonly service: string;
  /** `<registry>/<project>/<image>`. */
  readonly repository: string;
  readonly action: ImageAction;
  readonly reason: ImageReason;
  /** The version in the ring now, if any. */
  readonly currentVersion?: string;
  /** The version this update gives the image (the current one when not building). */
  readonly version: string;
  readonly revision: string;
  /** The existing image's digest, for `reuse` (and `keep`, where it is the expected result). */
  readonly digest?: string;
  /** Labels of the image, all plain (lib/labels.ts imageLabels). */
  readonly labels: Readonly<Record<string, string>>;
  /** Versions of the dependency images, by service name (the `dependency.*` labels). */
  readonly dependencies: Readonly<Record<string, string>>;
  /** Build args whose value is a dependency image, mapped to that dependency's service name. */
  readonly dependencyArgs: Readonly<Record<string, string>>;
  readonly build: {
    /** Absolute path. */
    readonly context: string;
    /** Absolute path. */
    readonly dockerfile: string;
    readonly buildArgs: Readonly<Record<string, string>>;
    readonly target?: string;
    readonly platforms: readonly string[];
  };
  readonly sources: readonly SourceCommit[];
}

/** One image a non-building site deploys, resolved to a digest. */
export interface DeployImage extends Pick<ImageRecord, "repository" | "digest" | "sources"> {
  readonly version?: string;
  readonly revision?: string;
  /** `ring testers`, `pin version 0.1.0`, `policy semver ^0.2`, … */
  readonly why: string;
}

/** The whole plan of one site's update. */
export interface SitePlan {
  /** The stack name. */
  readonly site: string;
  readonly project: string;
  readonly vendor?: string;
  /** Registry `host[:port][/prefix]`. */
  readonly registry: string;
  readonly ring: string;
  /** The configured rings in order, without `ante` and `post`. */
  readonly rings: readonly string[];
  /** The ring after `ring` (`post` after the last configured ring). */
  readonly nextRing: string;
  readonly environment: {
    readonly name: string;
    /** Absolute path of the environment's Kustomize overlay. */
    readonly overlay: string;
    readonly namespace: string;
  };
  /** Whether this update builds (then `services` and `release` say what). */
  readonly build: boolean;
  readonly builder: ImageBuilder;
  readonly deployer: Deployer;
  /** Building sites: one step per service in dependency order. Empty otherwise. */
  readonly services: readonly ServiceStep[];
  /** Building sites: the release step. */
  readonly release: {
    readonly repository: string;
    readonly action: ImageAction;
    readonly currentVersion?: string;
    readonly version: string;
    readonly digest?: string;
  };
  /** Non-building sites: the release version and the images they deploy, by service. */
  readonly deploy: {
    readonly release?: string;
    readonly images: Readonly<Record<string, DeployImage>>;
  };
  /** The release plan as a table (lib/plan.ts formatPlan). */
  readonly table: string;
}
