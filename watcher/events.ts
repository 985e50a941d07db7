/**
 * Distribution's webhook notifications (`POST /events`): the envelope, and which sites an
 * event concerns. Only pushes and deletes of manifests change what a site should run (a new
 * version tag, a moved ring pointer, a followed tag pointing elsewhere); pulls and blob
 * events are ignored.
 */

/** The media type of Distribution's notification envelope. */
export const EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

/** One event of a notification envelope (the fields the watcher reads). */
export interface RegistryEvent {
  readonly id?: string;
  readonly timestamp?: string;
  /** `push`, `pull`, `delete`, `mount`. */
  readonly action: string;
  readonly target?: {
    readonly mediaType?: string;
    readonly digest?: string;
    /** The repository without the registry host, e.g. `example/release`. */
    readonly repository?: string;
    readonly tag?: string;
    readonly url?: string;
  };
  readonly request?: { readonly host?: string };
}

/** The JSON schema of the envelope, for the route's validation. */
export const envelopeSchema = {
  type: "object",
  required: ["events"],
  properties: {
    events: {
      type: "array",
      items: {
        type: "object",
        required: ["action"],
        properties: {
          id: { type: "string" },
          timestamp: { type: "string" },
          action: { type: "string" },
          target: {
            type: "object",
            properties: {
              mediaType: { type: "string" },
              digest: { type: "string" },
              repository: { type: "string" },
              tag: { type: "string" },
              url: { type: "string" },
            },
          },
          request: { type: "object", properties: { host: { type: "string" } } },
        },
      },
    },
  },
} as const;

/** Blob media types: a layer or config upload changes no tag, so no site. */
const BLOB = /(layer|config|\.tar|octet-stream)/;

/** Whether an event can change what some site should run: a push or delete of a manifest or tag. */
export function isRelevant(event: RegistryEvent): boolean {
  if (event.action !== "push" && event.action !== "delete") return false;
  if (event.target?.repository === undefined) return false;
  const mediaType = event.target.mediaType ?? "";
  return event.target.tag !== undefined || mediaType === "" || !BLOB.test(mediaType);
}

/**
 * The sites an event concerns: those that run an image of its repository. Matched on the
 * repository path (`<project>/<image>`), whatever host the event's request used (a client may
 * push to `localhost:5000` what a site reads as `127.0.0.1:5000`); reconciling a site of
 * another registry with the same path costs one check, never a wrong deploy.
 * @param watched per site, the repository paths it runs (watcher/sites.ts repositoryPath).
 */
export function sitesOfEvent(
  event: RegistryEvent,
  watched: ReadonlyMap<string, ReadonlySet<string>>,
): string[] {
  const repository = event.target?.repository;
  if (repository === undefined) return [];
  return [...watched.entries()]
    .filter(([, repositories]) => repositories.has(repository))
    .map(([site]) => site)
    .sort();
}
