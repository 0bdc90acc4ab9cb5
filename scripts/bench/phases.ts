/**
 * The phases of a default backup, timed in-process with litekeep's own functions, to show what
 * bounds its time: the snapshot (SQLite's backup API), the fsync, the sha256, and the
 * integrity check, alone and side by side as `backupDatabase()` runs them.
 *
 * @module
 */
import { join } from "node:path";
import { removeTempDb, syncFile } from "../../lib/files/atomic.ts";
import { hashFile } from "../../lib/backup_set/checksum.ts";
import { snapshotDatabase } from "../../lib/engine/snapshot.ts";
import { inspectInWorker } from "../../lib/engine/verify.ts";
import { type Spread, spread } from "./report.ts";

/** The phases, in the order a backup runs them. */
export const PHASES = [
  ["read", "read the source file once (what any copy must at least do)"],
  ["snapshot", "snapshotDatabase(): the page reader (the backup API where it falls back)"],
  ["fsync", "syncFile() of the snapshot"],
  ["count", "inspectInWorker(none): row counts in a worker, which --verify none still runs"],
  ["sha256", "hashFile(sha256) of the snapshot, alone"],
  ["check", "inspectInWorker(full): integrity_check + row counts in a worker, alone"],
  ["hash+check", "both side by side, as backupDatabase() runs them"],
] as const;

/** A phase name. */
export type Phase = typeof PHASES[number][0];

/** Reads a file once in 1 MiB blocks, as `cp` and `sha256sum` must at least do. */
async function readAll(path: string): Promise<void> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 20);
  while (await file.read(buffer) !== null) {
    // Only the reading counts.
  }
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/**
 * Times each phase on a snapshot of `source` made in `work`, `repeats` times.
 *
 * @returns milliseconds per phase
 */
export async function profilePhases(
  source: string,
  work: string,
  repeats: number,
): Promise<Record<Phase, Spread>> {
  const ms: Record<Phase, number[]> = {
    read: [],
    snapshot: [],
    fsync: [],
    count: [],
    sha256: [],
    check: [],
    "hash+check": [],
  };
  for (let i = 0; i < repeats; i++) {
    const copy = join(work, `phases-${i}.db`);
    try {
      ms.read.push(await timed(() => readAll(source)));
      ms.snapshot.push(
        await timed(() => snapshotDatabase(source, copy, { busyTimeoutMs: 10_000 })),
      );
      ms.fsync.push(await timed(() => syncFile(copy)));
      ms.count.push(await timed(() => inspectInWorker(copy, "none")));
      ms.sha256.push(await timed(() => hashFile(copy, "sha256")));
      ms.check.push(await timed(() => inspectInWorker(copy, "full")));
      ms["hash+check"].push(
        await timed(() => Promise.all([inspectInWorker(copy, "full"), hashFile(copy, "sha256")])),
      );
    } finally {
      await removeTempDb(copy);
    }
  }
  return Object.fromEntries(
    Object.entries(ms).map(([phase, values]) => [phase, spread(values)]),
  ) as Record<Phase, Spread>;
}
