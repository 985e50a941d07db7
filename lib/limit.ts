/**
 * Bounded concurrency for registry requests, file reads and git calls: a counting semaphore
 * and a map over it. One implementation for all of lib/.
 */

/** A counting semaphore: at most `limit` tasks of {@link Semaphore.run} at once. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new Error(`semaphore limit ${limit} must be >= 1`);
  }

  /** Runs `task` once a slot is free; frees the slot when it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Runs `f` over `items` with at most `limit` at once; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  f: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const sem = new Semaphore(limit);
  return Promise.all(items.map((item, i) => sem.run(() => f(item, i))));
}
