import assert from "node:assert/strict";
import { rolloutState, type DeploymentStatusJson } from "../../lib/rollout";

const d = (
  status: DeploymentStatusJson["status"],
  replicas = 2,
  generation = 3,
): DeploymentStatusJson => ({
  metadata: { name: "web", generation },
  spec: { replicas },
  status,
});

describe("rolloutState (kubectl rollout status's rule)", () => {
  const done = { observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2 };

  it("GIVEN every replica updated and available at the observed generation THEN it is done", () => {
    assert.deepEqual(rolloutState(d(done)), { done: true });
  });

  it("GIVEN a generation the controller has not observed THEN it waits, whatever the counts", () => {
    assert.deepEqual(rolloutState(d({ ...done, observedGeneration: 2 })), {
      done: false,
      failed: false,
      why: "waiting for the controller to observe the update",
    });
  });

  it("GIVEN each unfinished count THEN it says which", () => {
    const why = (s: DeploymentStatusJson["status"]) => {
      const state = rolloutState(d(s));
      return state.done ? "done" : state.why;
    };
    assert.equal(why({ ...done, updatedReplicas: 1 }), "1 of 2 replicas updated");
    assert.equal(why({ ...done, replicas: 3 }), "1 old replicas pending termination");
    assert.equal(why({ ...done, availableReplicas: 0 }), "0 of 2 updated replicas available");
  });

  it("GIVEN a progress deadline exceeded THEN it failed, with the condition's message", () => {
    const state = rolloutState(
      d({
        ...done,
        updatedReplicas: 1,
        conditions: [
          {
            type: "Progressing",
            status: "False",
            reason: "ProgressDeadlineExceeded",
            message: 'ReplicaSet "web-1" has timed out progressing.',
          },
        ],
      }),
    );
    assert.deepEqual(state, {
      done: false,
      failed: true,
      why: 'exceeded its progress deadline: ReplicaSet "web-1" has timed out progressing.',
    });
  });

  it("GIVEN no replicas field THEN one is wanted, as the API server defaults it", () => {
    const one: DeploymentStatusJson = {
      metadata: { name: "web", generation: 1 },
      status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
    };
    assert.deepEqual(rolloutState(one), { done: true });
    assert.equal(
      (rolloutState({ ...one, status: {} }) as { why: string }).why,
      "waiting for the controller to observe the update",
    );
  });
});
