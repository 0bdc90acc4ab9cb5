/**
 * Worker entry: runs the integrity check and the row counts of one file off the main thread,
 * so that hashing (main thread) and checking (here) use both cores, and the main thread stays
 * free to draw progress. Started by `inspectInWorker()` in `verify.ts`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { compareCounts, inspectFile, type InspectRequest, VERDICT } from "./verify.ts";

self.onmessage = (event: MessageEvent<InspectRequest>) => {
  const { path, mode, verdict } = event.data;
  // The verdict goes to shared memory before the message: a main thread blocked in a write
  // (see writeInto's `verdict`) reads it there, and the message says why.
  const flag = verdict ? new Int32Array(verdict.buffer) : undefined;
  const settle = (passed: boolean) => {
    if (!flag) return;
    Atomics.store(flag, 0, passed ? VERDICT.passed : VERDICT.failed);
    Atomics.notify(flag, 0);
  };
  try {
    const inspection = inspectFile(path, mode);
    const expected = verdict?.expectedTables;
    settle(
      inspection.problems.length === 0 &&
        (expected === undefined || compareCounts(expected, inspection.tables).length === 0),
    );
    self.postMessage({ ok: true, inspection });
  } catch (error) {
    settle(false);
    self.postMessage({
      ok: false,
      message: error instanceof Error ? error.message : String(error),
    });
  }
};
