/**
 * `litekeep stats [DIR or DB]`: statistics of a backup folder (with `--max-age`, a one-line
 * cron monitor) or of a database, read-only.
 *
 * @module
 */
import { defaultBackupDir } from "../backup_set/backup.ts";
import type { Context } from "../cli/context.ts";
import { BUSY_TIMEOUT_RANGE } from "../limits.ts";
import { describeCause, OperationError, UsageError } from "../errors.ts";
import { formatBytes, formatDuration, formatLocalTime, formatTables } from "../cli/format.ts";
import {
  type BackupFolderStats,
  backupFolderStats,
  type DatabaseStats,
  databaseStats,
  staleSets,
} from "../backup_set/stats.ts";
import {
  cliPath,
  durationValue,
  intInRange,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";

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
  --busy-timeout MS    for a database: wait this long for a writer's lock (default 5000, at most
                       86400000)
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
    busyTimeoutMs: values["busy-timeout"] === undefined
      ? undefined
      : intInRange("stats", "busy-timeout", values["busy-timeout"], BUSY_TIMEOUT_RANGE),
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
  let isFolder: boolean;
  try {
    isFolder = (await Deno.stat(path)).isDirectory;
  } catch (cause) {
    throw new OperationError(`Cannot read "${path}": ${describeCause(cause)}`, {
      cause,
      hint: 'check the path (and "backupDir" or "db" in litekeep.json)',
    });
  }
  if (isFolder) return await showFolderStats(ctx, path, flags.maxAge);
  if (flags.maxAge !== undefined) {
    throw new UsageError(`stats: --max-age needs a backup folder, and "${path}" is a file`, {
      hint: "give the backup folder: litekeep stats data/backups --max-age 26h",
    });
  }
  const stats = await databaseStats(path, flags.busyTimeoutMs ?? config?.busyTimeout ?? 5000);
  if (ctx.json) printJson(ctx, { ok: true, command: "stats", kind: "database", ...stats });
  else if (!ctx.quiet) ctx.io.stdout(describeDatabase(stats));
  return 0;
}

/** `--max-age`: seconds, and the text given, for messages. */
export interface MaxAge {
  seconds: number;
  text: string;
}

/**
 * Prints a backup folder's statistics (also `backup --stats-only`); with `maxAge`, fails
 * when a database's newest backup is older.
 *
 * @returns the exit code: 1 when a backup set is stale
 */
export async function showFolderStats(
  ctx: Context,
  dir: string,
  maxAge?: MaxAge,
): Promise<number> {
  const stats = await backupFolderStats(dir, ctx.io.now());
  for (const set of stats.sets) {
    if (set.withoutSidecar.length === 0) continue;
    ctx.log.warn(
      `${set.withoutSidecar.length} backup(s) of "${set.stem}" have no checksum sidecar, so ` +
        `their checksum cannot be verified: ${set.withoutSidecar.join(", ")}`,
    );
  }
  for (const set of stats.sets) {
    if (set.future.length === 0) continue;
    ctx.log.warn(
      `${set.future.length} backup(s) of "${set.stem}" are named in the future, so a clock was ` +
        `wrong when they were taken; they are kept but never count as fresh: ${
          set.future.join(", ")
        }`,
    );
  }
  const stale = maxAge === undefined ? [] : staleSets(stats, maxAge.seconds);
  if (stale.length > 0) {
    const what = stats.sets.length === 0 ? "there are no backups" : stale.map((stem) => {
      const age = stats.sets.find((s) => s.stem === stem)!.newestAgeSeconds;
      return age === null
        ? `"${stem}" has no backup that is not named in the future`
        : `the newest backup of "${stem}" is ${formatDuration(age * 1000)} old`;
    }).join("; ");
    ctx.log.error(
      `Backups in "${dir}" are stale: ${what} (--max-age ${maxAge!.text})`,
      "check that the backup cron job runs, and read its log",
    );
  }
  if (ctx.json) {
    printJson(ctx, {
      ok: stale.length === 0,
      command: "stats",
      kind: "backups",
      ...stats,
      maxAgeSeconds: maxAge?.seconds ?? null,
      stale,
    });
  } else if (!ctx.quiet) ctx.io.stdout(describeFolder(stats));
  return stale.length === 0 ? 0 : 1;
}

function describeFolder(s: BackupFolderStats): string {
  let text = `Backups in ${s.dir}: ${s.count}, ${formatBytes(s.bytes)}\n`;
  if (s.sets.length === 0) return `${text}  (no backups)\n`;
  for (const set of s.sets) {
    const t = set.trend;
    const sign = (n: number) => (n < 0 ? "-" : "+") + formatBytes(Math.abs(n));
    const age = set.newestAgeSeconds === null
      ? "named in the future"
      : `${formatDuration(Math.max(0, set.newestAgeSeconds) * 1000)} ago`;
    text +=
      `  ${set.stem}: ${set.count} backup${set.count === 1 ? "" : "s"}, ${
        formatBytes(set.bytes)
      }\n` +
      `    oldest  ${set.oldest.name}  ${formatLocalTime(set.oldest.time)}\n` +
      `    newest  ${set.newest.name}  ${formatLocalTime(set.newest.time)}, ${age}\n` +
      `    size    ${formatBytes(t.firstBytes)} -> ${formatBytes(t.lastBytes)} (${
        sign(t.changeBytes)
      }${t.bytesPerDay === null ? "" : `, ${sign(t.bytesPerDay)}/day`})\n` +
      (set.withoutSidecar.length ? `    no sidecar: ${set.withoutSidecar.length}\n` : "") +
      (set.future.length ? `    named in the future: ${set.future.join(", ")}\n` : "");
  }
  return text;
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
