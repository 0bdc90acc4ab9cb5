/**
 * `litekeep stats [DIR or DB]`: statistics of a backup folder (with `--max-age`, a one-line
 * cron monitor) or of a database, read-only.
 *
 * @module
 */
import { defaultBackupDir } from "../backup_set/backup.ts";
import type { Context } from "../cli/context.ts";
import { BUSY_TIMEOUT_RANGE } from "../limits.ts";
import { statOrExplain, UsageError } from "../errors.ts";
import { formatBytes, formatLocalTime, formatTables } from "../cli/format.ts";
import { type DatabaseStats, databaseStats } from "../backup_set/stats.ts";
import {
  busyTimeoutFlag,
  cliPath,
  durationValue,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";
import { type MaxAge, showFolderStats } from "./_folder_stats.ts";

/** `stats DB` waits less than the other commands by default: it only reads. */
const STATS_BUSY_TIMEOUT_MS = 5000;

/** One line for the command list. */
export const summary = "backup folder or database statistics; --max-age makes a cron monitor";

/** Help text. */
export const usage = `Usage: litekeep stats [DIR or DB] [options]

For a backup folder (default: config "backupDir", else the config "db"'s folder/backups):
the count, total size, oldest and newest backup, the age of the newest, the size trend, and
a warning for backups without a checksum sidecar, per database.
For a database: SQLite version, journal mode, page size and count, freelist, WAL size and
frames, tables and row counts, file times. Strictly read-only: the database and its WAL are
not changed and no file is created beside them.

Options:
  --max-age DURATION   exit 1 when the newest backup is older (90m, 26h, 2d, 1w, 1d12h)
  --busy-timeout MS    for a database: wait this long for a writer's lock (default ${STATS_BUSY_TIMEOUT_MS}, at most
                       ${BUSY_TIMEOUT_RANGE.max})
  -h, --help           show this help

Examples:
  litekeep stats data/backups/database --max-age 26h --quiet
  litekeep stats instance/gym_system.db --json
`;

/** The typed flags of `stats`. */
export interface StatsFlags {
  path?: string;
  /** `--max-age`, in seconds and as given. */
  maxAge?: MaxAge;
  busyTimeoutMs?: number;
}

/** Parses `stats`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): StatsFlags {
  const { values, positionals: rest } = parseStrict("stats", argv, {
    "max-age": { type: "string" },
    "busy-timeout": { type: "string" },
  });
  const [path] = positionals("stats", rest, 1);
  return {
    path,
    maxAge: values["max-age"] === undefined ? undefined : {
      seconds: durationValue("stats", "max-age", values["max-age"]),
      text: values["max-age"],
    },
    busyTimeoutMs: busyTimeoutFlag("stats", values["busy-timeout"]),
  };
}

/** Runs `stats`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const config = ctx.config;
  const path = flags.path !== undefined
    ? cliPath(ctx, flags.path)
    : config?.backupDir ?? (config?.db ? defaultBackupDir(config.db) : undefined);
  if (path === undefined) {
    throw new UsageError("stats: no backup folder or database given", {
      hint: 'name one ("litekeep stats data/backups") or set "backupDir" in litekeep.json',
    });
  }
  const isFolder = (await statOrExplain(
    path,
    `Cannot read "${path}"`,
    'check the path (and "backupDir" or "db" in litekeep.json)',
  )).isDirectory;
  if (isFolder) return await showFolderStats(ctx, path, flags.maxAge);
  if (flags.maxAge !== undefined) {
    throw new UsageError(`stats: --max-age needs a backup folder, and "${path}" is a file`, {
      hint: "give the backup folder: litekeep stats data/backups --max-age 26h",
    });
  }
  const stats = await databaseStats(
    path,
    flags.busyTimeoutMs ?? config?.busyTimeout ?? STATS_BUSY_TIMEOUT_MS,
  );
  if (ctx.json) printJson(ctx, { ok: true, command: "stats", kind: "database", ...stats });
  else if (!ctx.quiet) ctx.io.stdout(describeDatabase(stats));
  return 0;
}

function describeDatabase(s: DatabaseStats): string {
  const wal = s.wal
    ? `${formatBytes(s.wal.bytes)}, ${s.wal.frames} frames`
    : s.journalMode === "wal"
    ? "none (fully checkpointed)"
    : "-";
  return `Database ${s.path}\n` +
    `  sqlite        ${s.sqliteVersion} (file last written by ${s.writtenBy})\n` +
    `  journal mode  ${s.journalMode}\n` +
    `  pages         ${s.pageCount} of ${s.pageSize} bytes (${
      formatBytes(s.pageCount * s.pageSize)
    }), ${s.freelistCount} free\n` +
    `  wal           ${wal}\n` +
    `  files\n${
      s.files.map((f) =>
        `    ${f.path}  ${formatBytes(f.bytes)}  modified ${
          f.mtime ? formatLocalTime(f.mtime) : "?"
        }\n`
      ).join("")
    }` +
    `  tables\n${formatTables(s.tables)}`;
}
