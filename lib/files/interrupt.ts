/**
 * Signals during work that must finish once begun. `main.ts` ends a run on SIGINT, SIGTERM or
 * SIGHUP after removing its temps: right for a copy in progress (nothing is published yet), wrong
 * once a live database is being written. A restore or pull whose write into the database has
 * begun is finished, checked and reported instead: cut after SQLite's commit, the run said
 * "interrupted" (exit 130) while the database was already restored and the pre-restore copy was
 * never named (found by the new-user trial).
 *
 * @module
 */

/** A signal that arrived while signals were deferred, kept until the run ends. */
export interface PendingSignal {
  signal: string;
  code: number;
}

let deferring = false;
let pending: PendingSignal | undefined;

/**
 * From now until the run ends, a signal no longer ends it: called just before a write into a
 * live database begins. The work after it (checks, the report) is short and bounded.
 */
export function deferSignalsToTheEnd(): void {
  deferring = true;
}

/**
 * Called by the signal listener: true (and the signal kept) when signals are deferred, false
 * when the run may end now.
 */
export function deferSignal(signal: string, code: number): boolean {
  if (!deferring) return false;
  pending ??= { signal, code };
  return true;
}

/** The signal deferred during the run, if any. */
export function pendingSignal(): PendingSignal | undefined {
  return pending;
}
