import assert from "node:assert/strict";
import { ReconcileQueue, backoffDelay, mergeTriggers, type Trigger } from "../../watcher/queue";
import { FakeClock } from "./helpers/fakeClock";

/** A run function whose calls the test finishes by hand. */
function controlledRuns() {
  const calls: { site: string; trigger: Trigger; done: () => void; fail: (e: Error) => void }[] =
    [];
  const run = (site: string, trigger: Trigger) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ site, trigger, done: resolve, fail: reject });
    });
  return { calls, run };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("watcher: reconcile queue", () => {
  it("GIVEN an idle site WHEN enqueued THEN it runs once with the trigger", async () => {
    const { calls, run } = controlledRuns();
    const q = new ReconcileQueue({ run, clock: new FakeClock() });
    q.enqueue("a", { reason: "event" });
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0].trigger, { reason: "event" });
    assert.equal(q.state("a").phase, "running");
    calls[0].done();
    await q.idle();
    assert.equal(q.state("a").phase, "idle");
    assert.equal(q.state("a").runs, 1);
  });

  it("GIVEN a running reconcile WHEN events arrive THEN they coalesce into exactly one more run", async () => {
    const { calls, run } = controlledRuns();
    const q = new ReconcileQueue({ run, clock: new FakeClock() });
    q.enqueue("a", { reason: "event" });
    q.enqueue("a", { reason: "event" });
    q.enqueue("a", { reason: "poll" });
    q.enqueue("a", { reason: "api", force: true });
    assert.equal(calls.length, 1, "one reconcile per site at a time");
    assert.deepEqual(q.state("a").pending, { reason: "event+poll+api", force: true });
    assert.equal(q.state("a").coalesced, 2);
    calls[0].done();
    await tick();
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1].trigger, { reason: "event+poll+api", force: true });
    calls[1].done();
    await q.idle();
    assert.equal(calls.length, 2, "nothing more");
    assert.equal(q.state("a").runs, 2);
  });

  it("GIVEN a limit of 2 WHEN three sites are enqueued THEN two run and the third waits for a slot", async () => {
    const { calls, run } = controlledRuns();
    const q = new ReconcileQueue({ run, concurrency: 2, clock: new FakeClock() });
    for (const s of ["a", "b", "c"]) q.enqueue(s, { reason: "poll" });
    assert.deepEqual(
      calls.map((c) => c.site),
      ["a", "b"],
    );
    assert.equal(q.state("c").phase, "queued");
    q.enqueue("c", { reason: "event" });
    assert.equal(q.state("c").coalesced, 1, "a queued site keeps its place and merges");
    calls[1].done();
    await tick();
    assert.deepEqual(
      calls.map((c) => c.site),
      ["a", "b", "c"],
    );
    assert.equal(calls[2].trigger.reason, "poll+event");
    calls[0].done();
    calls[2].done();
    await q.idle();
  });

  it("GIVEN a failing reconcile WHEN time passes THEN it is retried with doubling backoff, capped, and events wait for the retry", async () => {
    const clock = new FakeClock();
    const { calls, run } = controlledRuns();
    const failures: number[] = [];
    const q = new ReconcileQueue({
      run,
      clock,
      backoff: { initialMs: 1000, maxMs: 3000 },
      onFailure: (_s, _e, _n, delay) => failures.push(delay),
    });
    q.enqueue("a", { reason: "event" });
    calls[0].fail(new Error("registry down"));
    await tick();
    assert.equal(q.state("a").phase, "backoff");
    assert.equal(q.state("a").retryAt, 1000);
    assert.equal(q.state("a").lastError, "registry down");
    q.enqueue("a", { reason: "poll" });
    assert.equal(calls.length, 1, "a non-forced event waits for the retry");
    clock.advance(999);
    assert.equal(calls.length, 1);
    clock.advance(1);
    assert.equal(calls.length, 2);
    assert.equal(calls[1].trigger.reason, "event+retry+poll");
    calls[1].fail(new Error("still down"));
    await tick();
    clock.advance(2000);
    assert.equal(calls.length, 3);
    calls[2].fail(new Error("still down"));
    await tick();
    assert.deepEqual(failures, [1000, 2000, 3000]);
    assert.equal(q.state("a").failures, 3);
    clock.advance(3000);
    calls[3].done();
    await q.idle();
    assert.equal(q.state("a").failures, 0);
    assert.equal(q.state("a").lastError, undefined);
  });

  it("GIVEN a site in backoff WHEN a forced trigger arrives THEN it runs now", async () => {
    const clock = new FakeClock();
    const { calls, run } = controlledRuns();
    const q = new ReconcileQueue({ run, clock, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    q.enqueue("a", { reason: "poll" });
    calls[0].fail(new Error("boom"));
    await tick();
    q.enqueue("a", { reason: "api", force: true });
    assert.equal(calls.length, 2);
    assert.equal(calls[1].trigger.force, true);
    assert.equal(clock.pending, 0, "the backoff timer is cancelled");
    calls[1].done();
    await q.idle();
  });

  it("GIVEN a running reconcile WHEN drained THEN it finishes, and nothing queued, pending or retried starts", async () => {
    const clock = new FakeClock();
    const { calls, run } = controlledRuns();
    const q = new ReconcileQueue({ run, clock, concurrency: 1 });
    q.enqueue("a", { reason: "event" });
    q.enqueue("a", { reason: "event" });
    q.enqueue("b", { reason: "event" });
    let drained = false;
    const draining = q.drain().then(() => (drained = true));
    q.enqueue("c", { reason: "event" });
    await tick();
    assert.equal(drained, false, "waits for the running reconcile");
    calls[0].done();
    await draining;
    assert.equal(calls.length, 1);
    assert.equal(q.state("b").phase, "idle");
    assert.equal(q.state("c").runs, 0);
  });

  it("GIVEN failures WHEN the delay is computed THEN it doubles from the initial delay up to the cap", () => {
    const b = { initialMs: 10_000, maxMs: 300_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(b, n)),
      [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000],
    );
  });

  it("GIVEN two triggers WHEN merged THEN reasons are kept once and force wins", () => {
    assert.deepEqual(mergeTriggers({ reason: "event" }, { reason: "event+poll", force: true }), {
      reason: "event+poll",
      force: true,
    });
    assert.deepEqual(mergeTriggers(undefined, { reason: "poll" }), { reason: "poll" });
  });
});
