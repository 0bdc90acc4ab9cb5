/**
 * Worker entry: runs the integrity check and the row counts of one file off the main thread,
 * so that hashing (main thread) and checking (here) use both cores, and the main thread stays
 * free to draw progress. Started by `inspectInWorker()` in `verify.ts`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { inspectFile } from "./verify.ts";
import type { VerifyMode } from "./sqlite.ts";

self.onmessage = (event: MessageEvent<{ path: string; mode: VerifyMode }>) => {
  try {
    self.postMessage({ ok: true, inspection: inspectFile(event.data.path, event.data.mode) });
  } catch (error) {
    self.postMessage({
      ok: false,
      message: error instanceof Error ? error.message : String(error),
    });
  }
};
