/**
 * WAL checkpoints: `PRAGMA wal_checkpoint(MODE)`, and the `-wal` before and after.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { openReadWrite, sqliteFailure } from "./sqlite.ts";

/** The checkpoint modes of `PRAGMA wal_checkpoint`. */
export const CHECKPOINT_MODES = ["passive", "full", "restart", "truncate"] as const;
/** A checkpoint mode. */
export type CheckpointMode = typeof CHECKPOINT_MODES[number];

/** What `PRAGMA wal_checkpoint` reported, and the `-wal` around it. */
export interface CheckpointResult {
  mode: CheckpointMode;
  /** True when readers or writers kept the checkpoint from completing. */
  busy: boolean;
  /**
   * Frames in the WAL (-1 when the database is not in WAL mode). TRUNCATE reports 0 once it
   * has emptied the `-wal`: `walBytesBefore` and `walBytesAfter` say what it did.
   */
  logFrames: number;
  /** Frames copied back into the database (-1 when not in WAL mode). */
  checkpointedFrames: number;
  /** True when every frame went back (see `checkpointCompleted`). */
  complete: boolean;
  /** Size of the `-wal` before the checkpoint (null when there was none). */
  walBytesBefore: number | null;
  /** Size of the `-wal` after it (null when there is none). */
  walBytesAfter: number | null;
}

/**
 * True when a checkpoint did all it was asked: nothing kept it from finishing and every frame
 * of the log went back into the database. A database not in WAL mode has nothing to do.
 */
export function checkpointCompleted(
  result: Pick<CheckpointResult, "busy" | "logFrames" | "checkpointedFrames">,
): boolean {
  if (result.logFrames === -1) return true;
  return !result.busy && result.checkpointedFrames === result.logFrames;
}

/**
 * True when the caller must report an incomplete checkpoint as busy (exit 75): only the modes
 * that wait (full, restart, truncate) promise to finish. Passive copies what the oldest
 * reader's snapshot allows without waiting, so partial progress is its success.
 */
export function checkpointFellShort(result: CheckpointResult): boolean {
  return !result.complete && result.mode !== "passive";
}

/**
 * True when a TRUNCATE checkpoint emptied the `-wal`. It then reports 0 of 0 frames, so a
 * report that counted frames would say nothing was copied; the sizes tell the truth.
 */
export function walEmptied(r: CheckpointResult): boolean {
  // SQLite reports 0 of 0 frames once TRUNCATE has reset the -wal; the file may already hold
  // the 32-byte header a writer wrote next (seen by the new-user trial: "3.9 MiB -> 32 B").
  return r.mode === "truncate" && r.complete && r.logFrames === 0;
}

function walSize(path: string): number | null {
  try {
    return Deno.statSync(`${path}-wal`).size;
  } catch {
    return null;
  }
}

/**
 * Runs `PRAGMA wal_checkpoint(MODE)` on `path`.
 *
 * @throws {UsageError} for an unknown mode
 * @throws {OperationError} or {BusyError} when the database cannot be opened or stays locked
 */
export function checkpointDatabase(
  path: string,
  mode: CheckpointMode,
  busyTimeoutMs: number,
): CheckpointResult {
  if (!CHECKPOINT_MODES.includes(mode)) {
    throw new UsageError(`Unknown checkpoint mode "${mode}"`, {
      hint: `use one of: ${CHECKPOINT_MODES.join(", ")}`,
    });
  }
  let db;
  try {
    db = openReadWrite(path, busyTimeoutMs);
  } catch (error) {
    throw sqliteFailure(error, "Cannot open database", path);
  }
  let result: Omit<CheckpointResult, "walBytesAfter">;
  try {
    const walBytesBefore = walSize(path);
    const row = db.prepare(`PRAGMA wal_checkpoint(${mode.toUpperCase()})`).get() as Record<
      string,
      number
    >;
    const [busyFlag, logFrames, checkpointedFrames] = Object.values(row).map(Number);
    const busy = busyFlag !== 0;
    result = {
      mode,
      busy,
      logFrames,
      checkpointedFrames,
      complete: checkpointCompleted({ busy, logFrames, checkpointedFrames }),
      walBytesBefore,
    };
  } catch (error) {
    throw sqliteFailure(error, "Cannot checkpoint database", path);
  } finally {
    db.close();
  }
  // Measured after the close: the last connection of a stopped application's database removes
  // the -wal it opened, so "after" is what the run leaves (it said "none -> 0 B" of a -wal that
  // was gone once the run ended).
  return { ...result, walBytesAfter: walSize(path) };
}
