/**
 * `litekeep checkpoint [DB]`: copies the WAL back into the database file.
 *
 * @module
 */
import type { Context } from "../context.ts";
import { BUSY_TIMEOUT_RANGE } from "../limits.ts";
import { BusyError } from "../errors.ts";
import { formatBytes } from "../format.ts";
import { acquireLocks, dbLockPath } from "../lock.ts";
import {
  CHECKPOINT_MODES,
  checkpointCompleted,
  checkpointDatabase,
  type CheckpointMode,
} from "../snapshot.ts";
import { checkDatabaseFile } from "../sqlite.ts";
import {
  choiceValue,
  databasePath,
  intInRange,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";

/** One line for the command list. */
export const summary = "PRAGMA wal_checkpoint(MODE): passive (default), full, restart, truncate";

/** Help text. */
export const usage = `Usage: litekeep checkpoint [DB] [options]

Copies the frames of DB's write-ahead log back into the database file, and reports busy,
log frames and checkpointed frames. Exits 0 when the checkpoint completed, 75 when readers
or writers kept it from completing (retry later). A database not in WAL mode has nothing to
checkpoint (exit 0).

Options:
  --mode MODE          passive (default: never waits, copies what it can), full (waits for
                       writers, then copies all), restart (full, then waits for readers so the
                       next writer starts the log afresh), truncate (restart, then empties the -wal)
  --busy-timeout MS    how long full/restart/truncate wait for readers and writers (default 10000)
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
    busyTimeoutMs: values["busy-timeout"] === undefined
      ? undefined
      : intInRange("checkpoint", "busy-timeout", values["busy-timeout"], BUSY_TIMEOUT_RANGE),
  };
}

/** Runs `checkpoint`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const db = databasePath(ctx, "checkpoint", flags.db, "litekeep checkpoint instance/app.db");
  // Before SQLite opens it for writing, which would create a missing database.
  await checkDatabaseFile(db);
  await using _lock = await acquireLocks([{ path: dbLockPath(db), what: `database "${db}"` }]);
  const busyTimeoutMs = flags.busyTimeoutMs ?? ctx.config?.busyTimeout ?? 10_000;
  const result = checkpointDatabase(db, flags.mode, busyTimeoutMs);
  if (!checkpointCompleted(result)) {
    throw new BusyError(
      `Checkpoint (${flags.mode}) of "${db}" could not complete: readers or writers are using ` +
        `the database (${result.checkpointedFrames} of ${result.logFrames} frames copied back)`,
      {
        hint: flags.mode === "passive"
          ? "passive never waits: retry later, or use --mode full with a --busy-timeout"
          : `retry later, or raise --busy-timeout (it was ${busyTimeoutMs} ms)`,
      },
    );
  }
  const walBytes = await Deno.stat(`${db}-wal`).then((s) => s.size, () => null);
  const wal = result.logFrames !== -1;
  if (ctx.json) {
    printJson(ctx, { ok: true, command: "checkpoint", database: db, ...result, walBytes });
  } else if (!ctx.quiet) {
    ctx.io.stdout(
      wal
        ? `Checkpoint (${result.mode}) of ${db}: complete\n` +
          `  busy                 ${result.busy ? "yes" : "no"}\n` +
          `  log frames           ${result.logFrames}\n` +
          `  checkpointed frames  ${result.checkpointedFrames}\n` +
          `  -wal now             ${walBytes === null ? "removed" : formatBytes(walBytes)}\n`
        : `Checkpoint of ${db}: not in WAL mode, nothing to checkpoint\n`,
    );
  }
  return 0;
}
