import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { ConfigError } from "../../lib/config";
import { dependencyOrder, type DependencyGraph } from "../../lib/graph";

describe("lib/graph", () => {
  it("GIVEN a base and two services FROM it THEN the base comes first and ties go by name", () => {
    const graph: DependencyGraph = {
      frontend: [{ service: "base" }],
      backend: [{ service: "base" }],
      base: [],
    };
    assert.deepEqual(dependencyOrder(graph), ["base", "backend", "frontend"]);
  });

  it("GIVEN a chain z -> y -> x THEN the order is x, y, z whatever the names", () => {
    const graph: DependencyGraph = { z: [{ service: "y" }], y: [{ service: "x" }], x: [] };
    assert.deepEqual(dependencyOrder(graph), ["x", "y", "z"]);
  });

  it("GIVEN independent services THEN the order is by name", () => {
    assert.deepEqual(dependencyOrder({ c: [], a: [], b: [] }), ["a", "b", "c"]);
  });

  it("GIVEN an edge to a service that is not in the graph THEN it is ignored", () => {
    assert.deepEqual(dependencyOrder({ a: [{ service: "ghost" }] }), ["a"]);
  });

  it("GIVEN a cycle THEN a ConfigError prints it and names the Dockerfiles and lines", () => {
    const graph: DependencyGraph = {
      a: [{ service: "b", file: "app/a/Dockerfile", line: 2 }],
      b: [{ service: "a", file: "app/b/Dockerfile", line: 1 }],
      c: [],
    };
    assert.throws(
      () => dependencyOrder(graph, "gitops-rings.yaml"),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          "gitops-rings.yaml: services: dependency cycle a -> b -> a " +
            "(app/a/Dockerfile:2 builds a FROM b; app/b/Dockerfile:1 builds b FROM a)",
        );
        return true;
      },
    );
  });

  it("GIVEN two separate cycles and a self-reference THEN each is reported", () => {
    const graph: DependencyGraph = {
      a: [{ service: "b" }],
      b: [{ service: "c" }],
      c: [{ service: "a" }],
      x: [{ service: "y" }],
      y: [{ service: "x" }],
      s: [{ service: "s", file: "s/Dockerfile", line: 3 }],
      t: [{ service: "s" }],
    };
    assert.throws(() => dependencyOrder(graph), {
      message: [
        "gitops-rings.yaml: services: dependency cycle a -> b -> c -> a (builds a FROM b; builds b FROM c; builds c FROM a)",
        "gitops-rings.yaml: services: dependency cycle s -> s (s/Dockerfile:3 builds s FROM s)",
        "gitops-rings.yaml: services: dependency cycle x -> y -> x (builds x FROM y; builds y FROM x)",
      ].join("\n"),
    });
  });

  it("GIVEN any acyclic graph THEN every service comes after its dependencies", () => {
    const graphs = fc
      .array(fc.array(fc.nat(29), { maxLength: 4 }), { minLength: 1, maxLength: 30 })
      .map((lists) => {
        // Edges only to lower indices: acyclic by construction.
        const graph: Record<string, { service: string }[]> = {};
        lists.forEach((deps, i) => {
          graph[`s${i}`] = deps.filter((d) => d < i).map((d) => ({ service: `s${d}` }));
        });
        return graph;
      });
    fc.assert(
      fc.property(graphs, (graph) => {
        const order = dependencyOrder(graph);
        assert.deepEqual([...order].sort(), Object.keys(graph).sort());
        const at = new Map(order.map((n, i) => [n, i]));
        for (const [name, deps] of Object.entries(graph)) {
          for (const d of deps) assert.ok((at.get(d.service) as number) < (at.get(name) as number));
        }
        assert.deepEqual(dependencyOrder(graph), order);
      }),
    );
  });
});
