/**
 * Signals during work that must finish once begun. `main.ts` ends a run on SIGINT, SIGTERM or
 * SIGHUP after removing its temps: right for a copy in progress (nothing is published yet), wrong
 * once a database is being changed. A restore or pull whose write into the live database has
 * begun is finished, checked and reported instead: cutting it after SQLite's commit would leave
 * the database restored while the run says "interrupted" and never names the pre-restore copy.
 *
 * @module
 */

/** A signal that arrived during such work, kept until the run ends. */
export interface PendingSignal {
  signal: string;
  code: number;
}

let depth = 0;
let pending: PendingSignal | undefined;

/** Runs `work` so that a signal arriving meanwhile is deferred until the run ends. */
export async function uninterruptible<T>(work: () => Promise<T>): Promise<T> {
  depth++;
  try {
    return await work();
  } finally {
    depth--;
  }
}

/**
 * Called by the signal listener: true (and the signal kept) when uninterruptible work is
 * running, false when the run may end now.
 */
export function deferSignal(signal: string, code: number): boolean {
  if (depth === 0) return false;
  pending ??= { signal, code };
  return true;
}

/** The signal deferred during the run, if any. */
export function pendingSignal(): PendingSignal | undefined {
  return pending;
}
