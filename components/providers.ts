import { ringPointerProvider } from "./ring/ringPointer";
import { buildkitImageProvider } from "./service/buildkitImage";
import { versionTagProvider } from "./service/versionTag";
import { kubectlApplyProvider } from "./site/kubectlApply";
import { pullSecretProvider } from "./site/pullSecret";
import { siteVerificationProvider } from "./site/verification";

/**
 * Every dynamic provider of gitops-rings by the name its resources' state carries
 * (components/dynamic.ts `providerByName`). The engine's provider process loads this module
 * from the checkout and calls the provider by name, so a name must never change or go away
 * while a stack holds resources of its type; the provider behind it may change freely.
 */
export const PROVIDERS = {
  BuildkitImage: buildkitImageProvider,
  VersionTag: versionTagProvider,
  RingPointer: ringPointerProvider,
  KubectlApply: kubectlApplyProvider,
  PullSecret: pullSecretProvider,
  SiteVerification: siteVerificationProvider,
} as const;

/** A name of {@link PROVIDERS}. */
export type ProviderName = keyof typeof PROVIDERS;
