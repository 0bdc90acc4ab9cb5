/**
 * `litekeep list [DIR or DB]`: the backups of a folder, newest first, with their checksum state.
 *
 * @module
 */
import { defaultBackupDir } from "../backup_set/backup.ts";
import { type BackupListing, listBackupFolder, type ListedBackup } from "../backup_set/list.ts";
import { basename, dirname } from "node:path";
import { dbStem, parseBackupName } from "../backup_set/names.ts";
import type { Context } from "../cli/context.ts";
import { OperationError, statOrExplain, UsageError } from "../errors.ts";
import { formatAge, formatBytes, formatLocalTime } from "../cli/format.ts";
import { cliPath, jsonError, parseStrict, positionals, printJson } from "./_args.ts";

/** One line for the command list. */
export const summary = "the backups, newest first: time, age, size, database, checksum state";

/** Help text. */
export const usage = `Usage: litekeep list [DIR or DB] [options]

Lists the backups in a folder, newest first: when each was taken (its name, local time), its
age, size, the database it belongs to, and its checksum state. Backups named in the future (a
wrong clock) are flagged. Reads only.

  DIR   a backup folder: every backup in it
  DB    a database: its backups, in config "backupDir", else DB's folder/backups (a backup
        file: the backups of its database beside it)
  none  config "backupDir" (every backup in it), else the backups of config "db"

Checksum states: not-checked (a sidecar, not hashed), missing (no sidecar), unreadable (a
sidecar that cannot be read), and with --verify: ok or mismatch.

Options:
  --verify       hash each backup against its sidecar and run quick_check on it (as prune's
                 "newest good" backup is found); exit 1 when any backup fails
  -h, --help     show this help

Examples:
  litekeep list data/backups/database
  litekeep list instance/gym_system.db --verify
  litekeep list --json
`;

/** The typed flags of `list`. */
export interface ListFlags {
  path?: string;
  verify: boolean;
}

/** Parses `list`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): ListFlags {
  const { values, positionals: rest } = parseStrict("list", argv, {
    verify: { type: "boolean" },
  });
  const [path] = positionals("list", rest, 1);
  return { path, verify: values.verify ?? false };
}

/** The folder to list and the stem to list in it, from the argument or the config. */
async function target(ctx: Context, given: string | undefined): Promise<{
  dir: string;
  stem?: string;
  db?: string;
}> {
  const config = ctx.config;
  if (given === undefined) {
    if (config?.backupDir) return { dir: config.backupDir };
    if (config?.db) {
      return { dir: defaultBackupDir(config.db), stem: dbStem(config.db), db: config.db };
    }
    throw new UsageError("list: no backup folder or database given", {
      hint: 'name one ("litekeep list data/backups") or set "backupDir" in litekeep.json',
    });
  }
  const path = cliPath(ctx, given);
  const info = await statOrExplain(
    path,
    `Cannot list "${path}"`,
    "give a backup folder or a database (and check the path)",
  );
  if (info.isDirectory) return { dir: path };
  if (!info.isFile) {
    throw new OperationError(`Cannot list "${path}": it is neither a folder nor a file`, {
      hint: "give a backup folder or a database",
    });
  }
  // A backup itself ("list backups/gym_backup_20251019_155538.db"): the others of its set.
  const backup = parseBackupName(basename(path));
  if (backup !== undefined) return { dir: dirname(path), stem: backup.stem };
  return { dir: config?.backupDir ?? defaultBackupDir(path), stem: dbStem(path), db: path };
}

/** Checks that `dir` is a folder, naming the database whose backups were looked for. */
async function checkFolder(dir: string, db: string | undefined): Promise<void> {
  const of = db === undefined ? "" : ` for "${db}"`;
  const info = await statOrExplain(
    dir,
    `Cannot list backup folder "${dir}"${of}`,
    db === undefined
      ? 'check the path (and "backupDir" in litekeep.json)'
      : `no backup was made yet ("litekeep backup ${db}"), or they are elsewhere: name the ` +
        'folder ("litekeep list DIR") or set "backupDir" in litekeep.json',
  );
  if (!info.isDirectory) {
    throw new OperationError(`Cannot list "${dir}": it is a file, not a backup folder`, {
      hint: 'give the folder that holds the backups (and check "backupDir" in litekeep.json)',
    });
  }
}

/** Runs `list`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const { dir, stem, db } = await target(ctx, flags.path);
  await checkFolder(dir, db);
  const listing = await listBackupFolder(dir, {
    stem,
    verify: flags.verify,
    now: ctx.io.now(),
    onVerify: (i, total, entry) => ctx.log.progress(`list: verifying ${i}/${total} ${entry.name}`),
  });
  ctx.log.endProgress();
  await warnOfOtherOwner(ctx, listing, db);
  const failed = listing.backups.filter((b) => b.good === false);
  for (const b of failed) {
    ctx.log.error(
      `Backup "${b.path}" failed: ${b.problems.join("; ")}`,
      'make a fresh backup ("litekeep backup"), and never restore one that failed',
    );
  }
  if (listing.future.length > 0) {
    ctx.log.warn(
      `${listing.future.length} backup(s) are named in the future, so a clock was wrong when ` +
        `they were taken: ${listing.future.join(", ")}`,
    );
  }
  if (ctx.json) {
    printJson(ctx, {
      ok: failed.length === 0,
      command: "list",
      ...listing,
      ...(failed.length === 0 ? {} : jsonError(
        `${failed.length} of ${listing.count} backup(s) failed: ${
          failed.map((b) => b.name).join(", ")
        }`,
        'each backup\'s "problems" says why; make a fresh backup ("litekeep backup"), and ' +
          "never restore one that failed",
      )),
    });
  } else if (!ctx.quiet) ctx.io.stdout(describe(listing));
  return failed.length === 0 ? 0 : 1;
}

/**
 * A database named on the line (or in the config) whose stem's set in the folder belongs to
 * another database, by the manifest: the backups listed are not its own, and the user must know.
 */
async function warnOfOtherOwner(
  ctx: Context,
  listing: BackupListing,
  db: string | undefined,
): Promise<void> {
  const owner = listing.sets[0]?.database;
  if (db === undefined || owner === undefined || owner === null) return;
  let real: string;
  try {
    real = await Deno.realPath(db);
  } catch {
    return;
  }
  if (owner === real) return;
  ctx.log.warn(
    `the backups of "${listing.sets[0].stem}" in "${listing.dir}" belong to "${owner}" (by its ` +
      `.litekeep-sets.json), not to "${real}"`,
  );
}

/** The human table: one line per backup, newest first. */
export function describe(l: BackupListing): string {
  const what = l.stem === null ? "" : ` of "${l.stem}"`;
  const head = `Backups${what} in ${l.dir}: ${l.count}, ${formatBytes(l.bytes)}`;
  if (l.count === 0) return `${head}\n  (no backups)\n`;
  const rows = l.backups.map((b) => [
    formatLocalTime(b.time),
    b.future ? "FUTURE" : `${formatAge(b.ageSeconds ?? 0)} ago`,
    formatBytes(b.bytes),
    b.stem,
    checksumText(b),
    ...(l.verified ? [b.good ? "good" : "FAILED"] : []),
    b.name,
  ]);
  const header = [
    "time",
    "age",
    "size",
    "database",
    "checksum",
    ...(l.verified ? ["check"] : []),
    "file",
  ];
  // A reduce, not Math.max(...rows): a spread of 200,000 arguments overflows the stack.
  const widths = header.map((h, i) => rows.reduce((w, r) => Math.max(w, r[i].length), h.length));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ")}\n`;
  const databases = l.sets
    .filter((s) => s.database !== null)
    .map((s) => `  ${s.stem}: ${s.database}\n`)
    .join("");
  const newest = l.verified
    ? l.sets.map((s) => `  newest good of ${s.stem}: ${s.newestGood ?? "none"}\n`).join("")
    : "";
  return `${head}, newest first\n${line(header)}${rows.map(line).join("")}` +
    (databases ? `databases (from .litekeep-sets.json):\n${databases}` : "") + newest;
}

function checksumText(b: ListedBackup): string {
  const algorithm = b.checksum.algorithm === null ? "" : `${b.checksum.algorithm} `;
  return b.checksum.state === "missing" ? "no sidecar" : `${algorithm}${b.checksum.state}`;
}
