/**
 * `restore`: puts a verified backup in place of a database, through SQLite.
 *
 * The backup is written INTO the live database with SQLite's online backup API, as one
 * transaction of the target: connections that have the database open (the application, a
 * reader) see the old content or the new, never a mix, and SQLite itself owns the `-wal`,
 * `-shm` and `-journal` beside it, so restored pages can never be paired with a stale WAL of
 * the old database. Swapping files under open connections is the classic way to corrupt
 * SQLite: a connection keeps the old file while the old `-wal` is replayed onto the new one.
 *
 * Before anything changes, the current database (WAL content included) is kept beside it as
 * `<db>.pre-restore-<YYYYMMDD_HHMMSS>`.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import {
  cleanTemps,
  removeQuietly,
  STALE_TEMP_MS,
  syncDir,
  withTempFile,
} from "../files/atomic.ts";
import { exists } from "../engine/view.ts";
import { formatStamp } from "./names.ts";
import { copyOut } from "../engine/db_file.ts";
import {
  describeCause,
  LitekeepError,
  OperationError,
  statOrExplain,
  UsageError,
} from "../errors.ts";
import { acquireLocks, dbLockPath } from "../files/lock.ts";
import { publishNew } from "../engine/publish.ts";
import { writeInto } from "../engine/write_into.ts";
import { selfContainedCopy, snapshotDatabase } from "../engine/snapshot.ts";
import {
  checkDatabaseFile,
  integrityProblems,
  openReadWrite,
  pragmaValue,
  sideFiles,
  sqliteFailure,
  type TableCount,
  tableCounts,
} from "../engine/sqlite.ts";
import { type ChecksumCheck, verifyBackup } from "../engine/verify.ts";

/** How to restore. */
export interface RestoreOptions {
  /** The backup file to restore. */
  backup: string;
  /** The database to restore into; created when it does not exist. */
  db: string;
  /** The time the pre-restore copy is named after. */
  now: Date;
  /** How long to wait for the database's writers and readers, in ms. */
  busyTimeoutMs: number;
  /** Verify and plan; change nothing. */
  dryRun?: boolean;
}

/** What a restore did (or, in a dry run, would do). */
export interface RestoreResult {
  backup: string;
  database: string;
  dryRun: boolean;
  /** True when the database did not exist and is created from the backup. */
  created: boolean;
  /** The copy of the database as it was; null when there was none (or in a dry run). */
  preRestore: string | null;
  /**
   * Side files (`-wal`, `-shm`, `-journal`) of a database that is gone, moved aside before the
   * database was created: each as `[from, to]` (in a dry run: where they would go).
   */
  movedAside: Array<[string, string]>;
  /** Journal mode of the database before the restore; null when it did not exist. */
  journalModeBefore: string | null;
  /** Journal mode after the restore (in a dry run: the one it will have). */
  journalMode: string;
  /** The backup's checksum check. */
  checksum: ChecksumCheck;
  /** The restored tables and row counts (the backup's, in a dry run). */
  tables: TableCount[];
  /** What was (or would be) done, in order, in plain words. */
  steps: string[];
  warnings: string[];
  /** Temporary files of interrupted runs that this run removed beside the database. */
  cleaned: string[];
  durationMs: number;
}

/**
 * Restores `options.backup` into `options.db`.
 *
 * @throws {UsageError} when the backup is the database itself
 * @throws {OperationError} for a bad backup, a missing target folder, or a failed restore; the
 *   database is then untouched
 * @throws {BusyError} when another run holds the database's lock, its writers or readers hold
 *   it past `busyTimeoutMs`, the page size must change while it is open, or a missing database
 *   appeared while the restore worked
 */
export async function restoreDatabase(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const { backup, db, busyTimeoutMs } = options;
  const dryRun = options.dryRun ?? false;
  await checkFolder(dirname(db));
  await refuseSameFile(backup, db);
  const report = await verifyBackup(backup, "full");
  if (!report.ok) {
    throw new OperationError(
      `Backup "${backup}" failed verification, so "${db}" was not touched: ${
        report.problems.slice(0, 3).join("; ")
      }`,
      { hint: 'choose another backup: "litekeep verify DIR" shows which are sound' },
    );
  }
  const created = !await exists(db);
  // Side files of a database that is gone would be replayed into the new one: they are kept,
  // under names that say what they are, out of its way.
  const stale = created ? await staleSideFiles(db, formatStamp(options.now)) : [];
  const header = created ? undefined : await checkDatabaseFile(db, "database", {
    allowEmpty: true,
  });
  // A 0-byte file is a database the application has created and not yet written: it is
  // written into through SQLite like any other (its open connections stay safe), and there is
  // nothing in it to keep.
  const empty = header?.size === 0;
  const modeBefore = header === undefined ? null : header.wal ? "wal" : "delete";
  const result: RestoreResult = {
    backup,
    database: db,
    dryRun,
    created,
    preRestore: null,
    movedAside: stale,
    journalModeBefore: modeBefore,
    journalMode: modeBefore ?? "delete",
    checksum: report.checksum,
    tables: report.tables,
    steps: [`verify ${backup}: checksum ${report.checksum.status}, integrity_check ok`],
    warnings: report.warnings,
    cleaned: [],
    durationMs: 0,
  };
  const preName = `${db}.pre-restore-${formatStamp(options.now)}`;
  if (dryRun) {
    for (const [from, to] of stale) result.steps.push(`move ${from} aside as ${to}`);
    if (!created && !empty) result.steps.push(`keep the current database as ${preName}`);
    result.steps.push(
      created
        ? `create ${db} from the backup (rollback-journal mode)`
        : `restore through SQLite into ${db} (journal mode ${result.journalMode} kept)`,
    );
    result.durationMs = Math.round(performance.now() - started);
    return result;
  }

  await using _lock = await acquireLocks([{ path: dbLockPath(db), what: `database "${db}"` }]);
  // Holding the database's lock, no live run owns a temp of this database's kinds here (restore's
  // and pull's hold the same lock); temps of other kinds go only when their run is dead.
  result.cleaned = (await cleanTemps(dirname(db), options.now, STALE_TEMP_MS, isOwnTemp(db)))
    .map((path) => basename(path));
  // A backup made by another tool may say WAL, and a stray -wal/-journal beside a backup would
  // be replayed by SQLite into what it reads: then restore from a self-contained copy.
  const alone = !(await checkDatabaseFile(backup, "backup")).wal &&
    (await sideFiles(backup)).length === 0;
  await using copy = alone ? undefined : await selfContainedCopy(backup);
  const source = copy?.path ?? backup;
  if (created) {
    for (const [from, to] of stale) {
      await Deno.rename(from, to);
      result.steps.push(`moved ${from} aside as ${to}`);
    }
    if (stale.length > 0) await syncDir(dirname(db));
    await createFrom(source, db);
    result.steps.push(`created ${db} from the backup`);
  } else {
    // The pre-restore copy is taken while the write lock is held, and the write is checked to
    // start before any other commit (see writeInto): every commit is in the copy or comes after.
    const written = await writeInto(source, db, {
      busyTimeoutMs,
      doing: "Cannot restore into",
      keep: empty ? undefined : () => keepPreRestore(db, preName, busyTimeoutMs),
      mustBeEmpty: empty,
      discard: removeQuietly,
      failureHint: (kept, asItWas) =>
        asItWas
          ? `SQLite rolled the restore back; the database is as it was${
            kept ? `, and also kept as "${kept}"` : ""
          }`
          : `SQLite could not confirm that its rollback left the database as it was${
            kept ? `; the database as it was before is kept as "${kept}"` : ""
          }`,
    });
    result.journalModeBefore = written.journalModeBefore;
    result.preRestore = written.kept ?? null;
    result.steps.push(
      empty
        ? `${db} was empty (0 bytes): nothing to keep`
        : `kept the current database as ${result.preRestore}`,
    );
    if (written.attempts > 1) {
      result.steps.push(`started over ${written.attempts - 1} time(s): a commit came in between`);
    }
    if (written.leftWal) {
      result.steps.push("left WAL mode for the page size change, then went back");
    }
    if (!written.backToWal) {
      result.warnings.push(
        `"${db}" could not go back to WAL mode (another connection is open): run ` +
          `sqlite3 "${db}" "PRAGMA journal_mode=WAL" when the application is stopped`,
      );
    }
    result.steps.push(`restored through SQLite into ${db}`);
  }
  const after = checkRestored(db, result.journalModeBefore, busyTimeoutMs, result.preRestore);
  result.journalMode = after.journalMode;
  if (!sameTables(after.tables, report.tables)) {
    result.warnings.push(
      "the restored row counts differ from the backup's: another process has written since",
    );
  }
  result.tables = after.tables;
  result.durationMs = Math.round(performance.now() - started);
  return result;
}

/**
 * Temps written under the lock of `db`: restore's pre-restore copy and new database, and pull's
 * copy (`<pid>-<random>-<name>[.pre-restore-<stamp>[_n]]`, with SQLite's side files).
 */
function isOwnTemp(db: string): (name: string) => boolean {
  const name = basename(db).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const own = new RegExp(
    `^\\.litekeep-tmp-\\d+-[0-9a-z]+-${name}(\\.pre-restore-\\d{8}_\\d{6}(_\\d+)?)?(-journal|-wal|-shm)?$`,
  );
  return (temp) => own.test(temp);
}

/** The target's folder must exist: restore creates a database, never folders. */
async function checkFolder(folder: string): Promise<void> {
  const info = await statOrExplain(
    folder,
    `Cannot restore into folder "${folder}"`,
    "create the folder first, or check the database path",
  );
  if (!info.isDirectory) {
    throw new OperationError(`Cannot restore into "${folder}": it is a file, not a folder`, {
      hint: "check the database path",
    });
  }
}

/**
 * Restoring a file into itself would wait forever: the backup API's reading and writing
 * connections would hold each other's locks. A hard link is the same file under another name,
 * so the device and inode decide, not the path.
 */
async function refuseSameFile(backup: string, db: string): Promise<void> {
  const real = (p: string) => Deno.realPath(p).catch(() => p);
  const same = await real(backup) === await real(db) ||
    await Promise.all([Deno.stat(backup), Deno.stat(db)]).then(
      ([a, b]) => a.ino !== null && a.dev === b.dev && a.ino === b.ino,
      () => false,
    );
  if (!same) return;
  throw new UsageError(`restore: the backup "${backup}" is the database itself`, {
    hint: "name a backup file and the database it should replace",
  });
}

/**
 * The side files beside a missing `db`, each with the free name it is moved aside to:
 * `<side file>.stale-<stamp>`, never over another file.
 */
async function staleSideFiles(db: string, stamp: string): Promise<Array<[string, string]>> {
  const found: Array<[string, string]> = [];
  for (const suffix of ["-wal", "-shm", "-journal"]) {
    const from = db + suffix;
    if (!await exists(from)) continue;
    let to = `${from}.stale-${stamp}`;
    for (let n = 2; await exists(to); n++) to = `${from}.stale-${stamp}_${n}`;
    found.push([from, to]);
  }
  return found;
}

/**
 * Creates a missing database from the backup: a temp copy beside it, synced, then published
 * without ever replacing a database that appeared meanwhile (see publishNew).
 */
async function createFrom(source: string, db: string): Promise<void> {
  try {
    await withTempFile(dirname(db), basename(db), (temp) => copyOut(source, temp), {
      publish: (temp, to) => publishNew(temp, to, "Cannot restore into"),
    });
  } catch (cause) {
    if (cause instanceof LitekeepError) throw cause;
    throw new OperationError(`Cannot create "${db}": ${describeCause(cause)}`, {
      cause,
      hint: "check the folder's permissions and free space",
    });
  }
}

/** Snapshots the database (WAL content included) to `<db>.pre-restore-<stamp>`, never over one. */
async function keepPreRestore(db: string, name: string, busyTimeoutMs: number): Promise<string> {
  let path = name;
  for (let n = 2; await exists(path); n++) path = `${name}_${n}`;
  await withTempFile(
    dirname(db),
    basename(path),
    (temp) =>
      snapshotDatabase(db, temp, {
        busyTimeoutMs,
        sourceChecked: true,
        // keepPreRestore is writeInto's `keep`: it runs under the database's write lock.
        writeLockHeld: true,
        spaceHint: "free some space beside the database: a restore first keeps a copy of the " +
          "current database there (the pre-restore copy), then writes the backup into it; " +
          "nothing was changed",
      }),
  );
  return path;
}

/**
 * Checks the restored database: `quick_check`, and the journal mode it had (a WAL database
 * stays WAL). Opened read-write, so that closing it removes the side files when it is the
 * last connection, as the application's own close would.
 */
function checkRestored(
  db: string,
  modeBefore: string | null,
  busyTimeoutMs: number,
  preRestore: string | null,
): { journalMode: string; tables: TableCount[] } {
  let conn;
  try {
    conn = openReadWrite(db, busyTimeoutMs);
    let journalMode = String(pragmaValue(conn, "journal_mode"));
    if (modeBefore === "wal" && journalMode !== "wal") {
      journalMode = String(pragmaValue(conn, "journal_mode = WAL"));
    }
    const problems = integrityProblems(conn, "quick");
    const keep = preRestore ? `; the previous database is kept as "${preRestore}"` : "";
    if (problems.length > 0) {
      throw new OperationError(
        `Restored database "${db}" fails quick_check: ${problems.slice(0, 3).join("; ")}`,
        { hint: `report this${keep}` },
      );
    }
    if (modeBefore !== null && (modeBefore === "wal") !== (journalMode === "wal")) {
      throw new OperationError(
        `Restored database "${db}" is in ${journalMode} mode, not ${modeBefore} as before`,
        { hint: `set it with: sqlite3 "${db}" "PRAGMA journal_mode=${modeBefore}"${keep}` },
      );
    }
    return { journalMode, tables: tableCounts(conn) };
  } catch (cause) {
    if (cause instanceof LitekeepError) throw cause;
    throw sqliteFailure(cause, "Cannot check restored database", db);
  } finally {
    conn?.close();
  }
}

function sameTables(a: TableCount[], b: TableCount[]): boolean {
  return a.length === b.length && a.every((t, i) => t.name === b[i].name && t.rows === b[i].rows);
}
