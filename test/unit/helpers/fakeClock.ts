/** A fake clock for the watcher's queue and poll timers (watcher/queue.ts `Clock`). */
import type { Clock } from "../../../watcher/queue";

/** A clock whose time moves only when the test says so. */
export class FakeClock implements Clock {
  time = 0;
  private timers: { at: number; f: () => void; id: number }[] = [];
  private next = 1;
  now(): number {
    return this.time;
  }
  setTimeout(f: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.push({ at: this.time + ms, f, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.f();
    }
    this.time = until;
  }
  get pending(): number {
    return this.timers.length;
  }
}
