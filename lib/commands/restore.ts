/**
 * `litekeep restore BACKUP [DB]`: puts a verified backup in place of the database, through
 * SQLite, keeping the current database as `<db>.pre-restore-<timestamp>`.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { logCleanedAndWarnings } from "../cli/log.ts";
import { UsageError } from "../errors.ts";
import { formatDuration, formatTables } from "../cli/format.ts";
import { restoreDatabase, type RestoreResult } from "../backup_set/restore.ts";
import {
  busyTimeoutFlag,
  cliPath,
  databasePath,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";

/** One line for the command list. */
export const summary = "verify a backup and restore it into DB, keeping a pre-restore copy";

/** Help text. */
export const usage = `Usage: litekeep restore BACKUP [DB] [options]

Verifies BACKUP (checksum against its sidecar, integrity_check) and refuses a bad one. Keeps
the current DB (WAL content included) as DB.pre-restore-YYYYMMDD_HHMMSS, then writes the
backup INTO DB through SQLite's backup API, in one transaction: programs that have DB open
see the old data or the new, never a stale -wal paired with restored pages, and DB keeps its
journal mode (WAL stays WAL). A DB that does not exist is created; its folder must exist, and
a -wal/-shm/-journal left by a deleted DB is moved aside (kept as FILE.stale-YYYYMMDD_HHMMSS).

Options:
  --dry-run            verify BACKUP and say what would be done; change nothing
  --busy-timeout MS    wait this long for the application's writes (default ${DEFAULT_BUSY_TIMEOUT_MS})
  -h, --help           show this help

Examples:
  litekeep restore data/backups/database/gym_system_backup_20251019_155538.db instance/gym_system.db
  litekeep restore gym_system_backup_20251019_155538.db --dry-run
`;

/** The typed flags of `restore`. */
export interface RestoreFlags {
  backup: string;
  db?: string;
  dryRun: boolean;
  busyTimeoutMs?: number;
}

/** Parses `restore`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): RestoreFlags {
  const { values, positionals: rest } = parseStrict("restore", argv, {
    "dry-run": { type: "boolean" },
    "busy-timeout": { type: "string" },
  });
  const [backup, db] = positionals("restore", rest, 2);
  if (backup === undefined) {
    throw new UsageError("restore: no backup given", {
      hint: "litekeep restore BACKUP [DB]",
    });
  }
  return {
    backup,
    db,
    dryRun: values["dry-run"] ?? false,
    busyTimeoutMs: busyTimeoutFlag("restore", values["busy-timeout"]),
  };
}

/** Runs `restore`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const db = databasePath(ctx, "restore", flags.db, "litekeep restore BACKUP instance/app.db");
  const result = await restoreDatabase({
    backup: cliPath(ctx, flags.backup),
    db,
    now: ctx.io.now(),
    busyTimeoutMs: flags.busyTimeoutMs ?? ctx.config?.busyTimeout ?? DEFAULT_BUSY_TIMEOUT_MS,
    dryRun: flags.dryRun,
  });
  logCleanedAndWarnings(ctx.log, result);
  if (ctx.json) printJson(ctx, { ok: true, command: "restore", ...result });
  else if (!ctx.quiet) ctx.io.stdout(describe(result));
  return 0;
}

function describe(r: RestoreResult): string {
  if (r.dryRun) {
    return `Dry run: nothing was changed. litekeep restore would:\n${
      r.steps.map((s) => `  - ${s}\n`).join("")
    }`;
  }
  return `Restored ${r.backup}\n` +
    `  into          ${r.database}${r.created ? " (created)" : ""}\n` +
    `  journal mode  ${r.journalMode}${
      r.journalModeBefore ? ` (was ${r.journalModeBefore})` : ""
    }\n` +
    `  previous      ${r.preRestore ?? "none (the database did not exist)"}\n` +
    r.movedAside.map(([from, to]) => `  moved aside   ${from} -> ${to}\n`).join("") +
    `  checksum      ${r.checksum.status}\n` +
    `  duration      ${formatDuration(r.durationMs)}\n` +
    `  tables\n${formatTables(r.tables)}`;
}
