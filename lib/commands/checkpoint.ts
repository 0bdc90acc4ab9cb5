/**
 * `litekeep checkpoint [DB]`: copies the WAL back into the database file.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { BusyError } from "../errors.ts";
import { formatBytes } from "../cli/format.ts";
import { acquireLocks, dbLockPath } from "../files/lock.ts";
import {
  CHECKPOINT_MODES,
  checkpointDatabase,
  checkpointFellShort,
  type CheckpointMode,
  type CheckpointResult,
  walEmptied,
} from "../engine/checkpoint.ts";
import { checkDatabaseFile } from "../engine/sqlite.ts";
import {
  busyTimeoutFlag,
  choiceValue,
  databasePath,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";

/** One line for the command list. */
export const summary = "PRAGMA wal_checkpoint(MODE): passive (default), full, restart, truncate";

/** Help text. */
export const usage = `Usage: litekeep checkpoint [DB] [options]

Copies the frames of DB's write-ahead log back into the database file, and reports busy,
log frames and checkpointed frames, and the size of the -wal before and after. Passive
never waits: it copies what the oldest reader's snapshot allows and exits 0, saying how many
frames a reader kept back. Full, restart and truncate exit 0 when they completed, 75 when
readers or writers kept them from completing within --busy-timeout (retry later). A database
not in WAL mode has nothing to checkpoint (exit 0).

Options:
  --mode MODE          passive (default: never waits, copies what it can), full (waits for
                       writers, then copies all), restart (full, then waits for readers so the
                       next writer starts the log afresh), truncate (restart, then empties the -wal)
  --busy-timeout MS    how long full/restart/truncate wait for readers and writers (default ${DEFAULT_BUSY_TIMEOUT_MS})
  -h, --help           show this help

Examples:
  litekeep checkpoint instance/gym_system.db
  litekeep checkpoint instance/gym_system.db --mode truncate --busy-timeout 30000
`;

/** The typed flags of `checkpoint`. */
export interface CheckpointFlags {
  db?: string;
  mode: CheckpointMode;
  busyTimeoutMs?: number;
}

/** Parses `checkpoint`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): CheckpointFlags {
  const { values, positionals: rest } = parseStrict("checkpoint", argv, {
    mode: { type: "string" },
    "busy-timeout": { type: "string" },
  });
  const [db] = positionals("checkpoint", rest, 1);
  return {
    db,
    mode: choiceValue(
      "checkpoint",
      "mode",
      (values.mode ?? "passive").toLowerCase(),
      CHECKPOINT_MODES,
    ),
    busyTimeoutMs: busyTimeoutFlag("checkpoint", values["busy-timeout"]),
  };
}

/** Runs `checkpoint`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const db = databasePath(ctx, "checkpoint", flags.db, "litekeep checkpoint instance/app.db");
  // Before SQLite opens it for writing, which would create a missing database.
  await checkDatabaseFile(db);
  await using _lock = await acquireLocks([{ path: dbLockPath(db), what: `database "${db}"` }]);
  const busyTimeoutMs = flags.busyTimeoutMs ?? ctx.config?.busyTimeout ?? DEFAULT_BUSY_TIMEOUT_MS;
  const result = checkpointDatabase(db, flags.mode, busyTimeoutMs);
  if (checkpointFellShort(result)) {
    throw new BusyError(
      `Checkpoint (${flags.mode}) of "${db}" could not complete: readers or writers are using ` +
        `the database (${result.checkpointedFrames} of ${result.logFrames} frames copied back)`,
      { hint: `retry later, or raise --busy-timeout (it was ${busyTimeoutMs} ms)` },
    );
  }
  if (ctx.json) {
    // walBytes: the -wal after, as before walBytesAfter existed.
    printJson(ctx, {
      ok: true,
      command: "checkpoint",
      database: db,
      ...result,
      walBytes: result.walBytesAfter,
    });
  } else if (!ctx.quiet) ctx.io.stdout(describeCheckpoint(db, result));
  return 0;
}

/** The human report; a passive checkpoint that a reader held back says so plainly. */
function describeCheckpoint(db: string, r: CheckpointResult): string {
  if (r.logFrames === -1) return `Checkpoint of ${db}: not in WAL mode, nothing to checkpoint\n`;
  const size = (bytes: number | null) => bytes === null ? "none" : formatBytes(bytes);
  const keptBack = r.logFrames - Math.max(r.checkpointedFrames, 0);
  let text = `Checkpoint (${r.mode}) of ${db}: ${r.complete ? "complete" : "partial"}\n` +
    `  busy                 ${r.busy ? "yes" : "no"}\n` +
    // TRUNCATE counts 0 of 0 once it has emptied the -wal: the sizes say what it did.
    `  checkpointed frames  ${
      walEmptied(r) ? "all" : `${r.checkpointedFrames} of ${r.logFrames}`
    }\n` +
    `  -wal                 ${size(r.walBytesBefore)} -> ${size(r.walBytesAfter)}\n`;
  if (!r.complete) {
    text += keptBack > 0
      ? `  a reader kept ${keptBack} frame${keptBack === 1 ? "" : "s"} back: its snapshot still ` +
        "needs them, and a later checkpoint copies them\n"
      : "  another checkpoint was running, so this one copied nothing; a later one will\n";
  }
  return text;
}
