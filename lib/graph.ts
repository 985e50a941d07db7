/**
 * The dependency graph of services: a service depends on the services whose images its
 * Dockerfile builds FROM (DESIGN.md, "dependency": the graph is acyclic). Builds and plans run
 * in {@link dependencyOrder}; a cycle is bad input (DESIGN.md, invariant 6).
 */
import { ConfigError, type ConfigProblem } from "./config";

/** One dependency of a service, and where it was found. */
export interface DependencyEdge {
  /** The service depended on. */
  readonly service: string;
  /** The file that says so, e.g. `app/services/backend/Dockerfile`. */
  readonly file?: string;
  /** 1-based line in that file. */
  readonly line?: number;
}

/** Each service's dependencies, by service name. Every service is a key, even without any. */
export type DependencyGraph = Readonly<Record<string, readonly DependencyEdge[]>>;

/**
 * Orders services so that each comes after its dependencies; ties are broken by name, so the
 * order is the same on every run (Kahn's algorithm with a sorted ready set).
 * @param graph each service's dependencies; an edge to a service that is not a key is ignored.
 * @param file the file named in a cycle error (the version repository file).
 * @returns every service of `graph`, dependencies first.
 * @throws {ConfigError} for each cycle, e.g.
 *   `gitops-rings.yaml: services: dependency cycle a -> b -> a (a/Dockerfile:2 builds a FROM b;
 *   b/Dockerfile:1 builds b FROM a)`.
 */
export function dependencyOrder(graph: DependencyGraph, file = "gitops-rings.yaml"): string[] {
  const names = Object.keys(graph).sort();
  const dependents = new Map<string, string[]>(names.map((n) => [n, []]));
  const waiting = new Map<string, number>();
  for (const name of names) {
    const deps = new Set(graph[name].map((e) => e.service).filter((d) => graph[d] !== undefined));
    waiting.set(name, deps.size);
    for (const d of deps) dependents.get(d)?.push(name);
  }
  const ready = names.filter((n) => waiting.get(n) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const name = ready.shift() as string;
    order.push(name);
    const freed: string[] = [];
    for (const dependent of dependents.get(name) ?? []) {
      const left = (waiting.get(dependent) ?? 0) - 1;
      waiting.set(dependent, left);
      if (left === 0) freed.push(dependent);
    }
    if (freed.length > 0) {
      ready.push(...freed);
      ready.sort();
    }
  }
  if (order.length < names.length) {
    const placed = new Set(order);
    const rest = names.filter((n) => !placed.has(n));
    throw new ConfigError(findCycles(graph, rest).map((cycle) => cycleProblem(graph, cycle, file)));
  }
  return order;
}

/**
 * The cycles among the services that could not be ordered: one per strongly connected
 * component (Tarjan), the shortest that starts and ends at the component's first name.
 */
function findCycles(graph: DependencyGraph, rest: readonly string[]): string[][] {
  const inRest = new Set(rest);
  const edges = (n: string) =>
    [...new Set(graph[n].map((e) => e.service))].filter((d) => inRest.has(d)).sort();
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };
  for (const n of rest) if (!index.has(n)) visit(n);
  const cycles: string[][] = [];
  for (const component of components.sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const start = component[0];
    const members = new Set(component);
    if (component.length === 1 && !edges(start).includes(start)) continue;
    // Breadth-first from start back to start, inside the component.
    const parent = new Map<string, string>();
    const queue = [start];
    let found = false;
    while (queue.length > 0 && !found) {
      const v = queue.shift() as string;
      for (const w of edges(v)) {
        if (!members.has(w)) continue;
        if (w === start) {
          parent.set(start, v);
          found = true;
          break;
        }
        if (!parent.has(w)) {
          parent.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = parent.get(start) as string; v !== start; v = parent.get(v) as string) {
      path.push(v);
    }
    path.push(start);
    // parent pointers walk backwards along dependency edges: reverse to read a -> b -> a.
    cycles.push(path.reverse());
  }
  return cycles;
}

function cycleProblem(
  graph: DependencyGraph,
  cycle: readonly string[],
  file: string,
): ConfigProblem {
  const where: string[] = [];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const edge = graph[cycle[i]].find((e) => e.service === cycle[i + 1]);
    const at =
      edge?.file === undefined
        ? ""
        : edge.line === undefined
          ? `${edge.file} `
          : `${edge.file}:${edge.line} `;
    where.push(`${at}builds ${cycle[i]} FROM ${cycle[i + 1]}`);
  }
  return {
    file,
    key: "services",
    message: `dependency cycle ${cycle.join(" -> ")} (${where.join("; ")})`,
  };
}
