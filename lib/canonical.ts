/**
 * Canonical JSON: object keys sorted at every level, no whitespace, `undefined` members left
 * out. Whatever is hashed or compared is serialized with it (STYLE.md rule 8): revisions
 * (lib/revision.ts) and the manifests and configs this project pushes (lib/registry.ts).
 * @param value a JSON value (objects, arrays, strings, numbers, booleans, null).
 * @returns its canonical text.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(",")}}`;
}
