/**
 * Opening SQLite files safely, and reading what a database holds. Built on Deno's `node:sqlite`
 * (SQLite statically linked into the runtime: no shared library, nothing downloaded).
 *
 * Every connection of lib/ is opened here, and every raw read or write of a database file
 * (header, `-wal`, hashing, copies) goes through `lib/engine/db_file.ts`: closing any descriptor of a
 * database file drops all of this process's SQLite locks on it (see db_file.ts).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";
import { connectionOpened, readAt } from "./db_file.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import {
  BusyError,
  describeCause,
  isBusy,
  LitekeepError,
  OperationError,
  UsageError,
} from "../errors.ts";

const MAGIC = "SQLite format 3\0";

/** What the first 100 bytes of a database file say. */
export interface FileHeader {
  /** File size in bytes. */
  size: number;
  pageSize: number;
  /** True when the header says WAL (read/write version 2). */
  wal: boolean;
}

/**
 * Checks that `path` is a non-empty SQLite database file, before anything opens it, so every
 * way it can be wrong gets its own plain message.
 *
 * @param role names the file in messages, e.g. "database" or "backup"
 * @param options `allowEmpty`: a 0-byte file (a database SQLite has created but not yet written)
 *   is accepted, with size 0 and page size 0
 * @throws {OperationError} naming the path and the cause (exit 1)
 */
export async function checkDatabaseFile(
  path: string,
  role = "database",
  options: { allowEmpty?: boolean } = {},
): Promise<FileHeader> {
  const fail = (why: string, hint: string, cause?: unknown) =>
    new OperationError(`Cannot open ${role} "${path}": ${why}`, { hint, cause });
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (cause) {
    throw fail(describeCause(cause), 'check the path (and the config file\'s "db")', cause);
  }
  if (info.isDirectory) {
    throw fail("it is a folder, not a database file", "give the path of the .db file itself");
  }
  // A FIFO or a device (or a symlink to one) is no database, and reading one may never end.
  if (!info.isFile) {
    throw fail("it is not a regular file (a FIFO or a device?)", "give the path of the .db file");
  }
  // A file the application has just created (SQLite's own start of an empty database) is a
  // target that can be written into, never a source.
  if (info.size === 0 && options.allowEmpty) return { size: 0, pageSize: 0, wal: false };
  if (info.size === 0) {
    throw fail(
      "the database is empty (0 bytes), so there is no data to copy",
      "check that the application really writes to this path",
    );
  }
  let header: Uint8Array;
  try {
    // Through db_file.ts: a close of our own descriptor would drop this process's locks.
    header = readAt(path, 0, 100);
  } catch (cause) {
    throw fail(describeCause(cause), "check the file's permissions", cause);
  }
  if (header.length < 100 || new TextDecoder().decode(header.subarray(0, 16)) !== MAGIC) {
    throw fail(
      "file is not a SQLite database",
      `check the path, or run "litekeep info" on it`,
    );
  }
  const rawPageSize = (header[16] << 8) | header[17];
  return {
    size: info.size,
    pageSize: rawPageSize === 1 ? 65536 : rawPageSize,
    wal: header[18] === 2 || header[19] === 2,
  };
}

/**
 * A connection that db_file.ts knows is open, from construction to `close()` (or `using`):
 * while it is, no raw access of litekeep's closes a descriptor of its files, which would drop
 * its locks (POSIX locks belong to the process). Every connection of lib/ is one of these;
 * raw reads and writes of database files go through `lib/engine/db_file.ts`.
 */
class TrackedDatabase extends DatabaseSync {
  #release: () => void;

  constructor(path: string, options: { readOnly?: boolean }) {
    refuseOddFiles(path);
    // Absolute, so no name is ever read as a "file:" URI.
    super(resolve(path), options);
    this.#release = connectionOpened(path);
  }

  override close(): void {
    try {
      super.close();
    } finally {
      // After SQLite let go of its locks: only then may kept descriptors be closed.
      this.#release();
    }
  }
}

/**
 * Opens a file that nothing else writes (a backup, or an unpublished snapshot) read-only. A file
 * in rollback-journal mode opened read-only is never modified and gets no side files; callers
 * check first that the header does not say WAL.
 */
export function openBackupFile(path: string): DatabaseSync {
  return new TrackedDatabase(path, { readOnly: true });
}

/**
 * SQLite opens a database's `-journal` (to look for a hot one) and `-wal` as plain files: a FIFO
 * or a device planted under such a name would block it in open(2) forever, where no signal
 * handler runs and no busy timeout applies.
 *
 * @throws {OperationError} naming the file that is not a regular file
 */
export function refuseOddFiles(path: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path + suffix);
    } catch {
      continue; // Absent (or a dangling link): SQLite creates what it needs.
    }
    if (info.isFile || (suffix === "" && info.isDirectory)) continue;
    throw new OperationError(
      `Cannot open database "${path}": "${path + suffix}" is not a regular file (a FIFO, ` +
        "a device or a socket), which SQLite would wait on forever",
      { hint: `if no program uses "${path + suffix}", remove it and run again` },
    );
  }
}

/** Opens a live database read-only, waiting up to `busyTimeoutMs` for locks. */
export function openReadOnly(path: string, busyTimeoutMs: number): DatabaseSync {
  return withBusyTimeout(new TrackedDatabase(path, { readOnly: true }), busyTimeoutMs);
}

/** Opens a live database for writing (checkpoints, restores), waiting up to `busyTimeoutMs`. */
export function openReadWrite(path: string, busyTimeoutMs: number): DatabaseSync {
  return withBusyTimeout(new TrackedDatabase(path, {}), busyTimeoutMs);
}

/**
 * `DatabaseSync`'s `timeout` option is not honoured by this runtime (every busy wait was ~5 s,
 * whatever was asked), so the pragma sets it, before anything touches the file: the pragma
 * itself takes no lock.
 */
function withBusyTimeout(db: DatabaseSync, busyTimeoutMs: number): DatabaseSync {
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * The journal side files (`-wal`, `-journal`) that exist beside `path`. SQLite reads them
 * whatever the file's header says, so a file meant to stand alone must not be opened beside one.
 */
export async function sideFiles(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const suffix of ["-wal", "-journal"]) {
    try {
      await Deno.lstat(path + suffix);
      found.push(path + suffix);
    } catch {
      // Not there: good.
    }
  }
  return found;
}

/**
 * A `-wal` or `-journal` left by a database that was deleted would be replayed by SQLite into
 * a new file put at `db`: new data must never meet it. Removing it is the user's call, since a
 * program may still have the deleted database open.
 *
 * @param doing the start of the message, e.g. "Cannot restore into"
 * @throws {OperationError} naming the side file
 */
export async function refuseStaleSideFiles(db: string, doing: string): Promise<void> {
  const [stale] = await sideFiles(db);
  if (stale === undefined) return;
  throw new OperationError(
    `${doing} "${db}": it does not exist, but "${stale}" does, and SQLite would replay it into ` +
      "the new database",
    { hint: `if no program has "${db}" open, move "${stale}" away and run again` },
  );
}

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A table and its row count (null when it cannot be counted, e.g. a virtual table). */
export interface TableCount {
  name: string;
  rows: number | null;
}

/** The user tables of `db` (not `sqlite_*`), by name, with their CREATE statements. */
export function userTables(db: DatabaseSync): Array<{ name: string; sql: string | null }> {
  return db.prepare(
    "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
  ).all() as Array<{ name: string; sql: string | null }>;
}

/** Every user table of `db` with its row count, by name. */
export function tableCounts(db: DatabaseSync): TableCount[] {
  return userTables(db).map(({ name, sql }) => {
    if (sql && /^\s*CREATE\s+VIRTUAL\b/i.test(sql)) return { name, rows: null };
    try {
      const row = db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as {
        n: number;
      };
      return { name, rows: Number(row.n) };
    } catch {
      return { name, rows: null };
    }
  });
}

/** A table with its row count and its newest row (max rowid, or max of a chosen column). */
export interface TableSummary extends TableCount {
  newest: string | null;
}

/**
 * Every user table with its row count and newest value: `max(rowid)`, or `max(column)` for the
 * tables named in `orderBy`. Values are text, as every remote tool can report them.
 */
export function tableSummaries(
  db: DatabaseSync,
  orderBy: Record<string, string> = {},
): TableSummary[] {
  const tables = tableCounts(db);
  for (const [table, column] of Object.entries(orderBy)) checkColumn(db, tables, table, column);
  return tables.map((table) => {
    const column = Object.hasOwn(orderBy, table.name) ? quoteIdent(orderBy[table.name]) : "rowid";
    let newest: string | null = null;
    if (table.rows !== null) {
      try {
        const row = db.prepare(`SELECT max(${column}) AS v FROM ${quoteIdent(table.name)}`)
          .get() as {
            v: unknown;
          };
        newest = valueText(row.v);
      } catch {
        // WITHOUT ROWID table: no rowid to show.
      }
    }
    return { ...table, newest };
  });
}

/**
 * A value as text, as every remote tool writes it (`lib/remote/scripts.ts`): a BLOB as
 * `x'<lower-case hex>'` (SQL's literal, so it never reads as the text it is not), else `String()`.
 */
export function valueText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) {
    return `x'${Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("")}'`;
  }
  return String(value);
}

/**
 * A misspelt `--order-by` must not quietly compare nothing (every "newest" would be null on
 * both sides and look equal).
 *
 * @throws {UsageError} naming the table or column that does not exist
 */
function checkColumn(db: DatabaseSync, tables: TableCount[], table: string, column: string): void {
  if (!tables.some((t) => t.name === table)) {
    throw new UsageError(`--order-by ${table}.${column}: there is no table "${table}"`, {
      hint: `tables: ${tables.map((t) => t.name).join(", ")}`,
    });
  }
  const columns = (db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<
    { name: string }
  >).map((c) => c.name);
  if (!columns.includes(column)) {
    throw new UsageError(
      `--order-by ${table}.${column}: table "${table}" has no column "${column}"`,
      {
        hint: `its columns: ${columns.join(", ")}`,
      },
    );
  }
}

/** Integrity check modes: `integrity_check` and `quick_check`. */
export const CHECK_MODES = ["full", "quick"] as const;
/** An integrity check mode. */
export type CheckMode = typeof CHECK_MODES[number];

/**
 * The allowed values of `--verify` and config `verify`: a check mode, or none. Here with the
 * check modes rather than in `verify.ts`, so the config file can check the key cheaply.
 */
export const VERIFY_MODES = [...CHECK_MODES, "none"] as const;
/** A `--verify` choice. */
export type VerifyMode = typeof VERIFY_MODES[number];

/**
 * Runs `PRAGMA integrity_check` (full) or `quick_check`.
 *
 * @returns the problems found; empty when the database is sound
 */
export function integrityProblems(db: DatabaseSync, mode: CheckMode): string[] {
  const pragma = mode === "full" ? "integrity_check" : "quick_check";
  const rows = db.prepare(`PRAGMA ${pragma}(100)`).all() as Array<Record<string, string>>;
  const messages = rows.map((row) => String(Object.values(row)[0]));
  return messages.length === 1 && messages[0] === "ok" ? [] : messages;
}

/** Reads one pragma's single value. */
export function pragmaValue(db: DatabaseSync, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown> | undefined;
  return row ? Object.values(row)[0] : undefined;
}

/** SQLITE_READONLY_ROLLBACK: a hot journal that a read-only connection cannot roll back. */
const READONLY_ROLLBACK = 776;

/** Translates a SQLite error met while reading `path` into a litekeep error. */
export function sqliteFailure(
  error: unknown,
  doing: string,
  path: string,
  busyHint = "retry later, or raise --busy-timeout",
): Error {
  // Already said in litekeep's words (a side file that is no regular file): not said twice.
  if (error instanceof LitekeepError) return error;
  if (error instanceof Error && "errcode" in error && error.errcode === READONLY_ROLLBACK) {
    // litekeep opens live databases read-only, so it can never roll a hot journal back itself
    // (and must not: that is a write). Anything that opens the file for writing will.
    const word = /^[\w./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
    return new OperationError(
      `${doing} "${path}": it has a hot journal ("${path}-journal"): a writer stopped ` +
        "mid-transaction, and its changes must be rolled back before the database can be read",
      {
        cause: error,
        hint: `open it once with the application or \`sqlite3 ${word} "PRAGMA quick_check"\` ` +
          "to roll it back, then run again",
      },
    );
  }
  if (isBusy(error)) {
    return new BusyError(`${doing} "${path}": ${describeCause(error)}`, {
      cause: error,
      hint: busyHint,
    });
  }
  return new OperationError(`${doing} "${path}": ${describeCause(error)}`, { cause: error });
}

/** True when the database has a `-wal` or `-shm` beside it. */
export async function sideFilesOf(db: string): Promise<boolean> {
  for (const suffix of ["-wal", "-shm"]) {
    if (await Deno.lstat(db + suffix).then(() => true, () => false)) return true;
  }
  return false;
}

/**
 * True when `db` (whose header is `header`) is a WAL database with no `-wal`, `-shm` or
 * `-journal` beside it, as when its application is stopped: any reader creates the `-wal` and
 * `-shm`, and a read-only last connection cannot remove them as it closes, so the caller ends
 * with {@linkcode closeLeavingNoSideFiles}. Never beside a `-journal`: a read-write connection
 * would roll a hot journal back, which litekeep never does to a live database.
 */
export async function walWithoutSideFiles(db: string, header: FileHeader): Promise<boolean> {
  if (!header.wal || await sideFilesOf(db)) return false;
  return !await Deno.lstat(`${db}-journal`).then(() => true, () => false);
}

/**
 * Closes our last read-write connection on `db` the ordinary way, so that SQLite removes the
 * `-wal`/`-shm` our connections made on a database that had none (pull's local side, backup's
 * source, the agent's database).
 */
export function closeLeavingNoSideFiles(db: string, busyTimeoutMs?: number): void {
  try {
    const conn = openReadWrite(db, busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    try {
      // A read opens the WAL, so the close can end it.
      conn.prepare("SELECT count(*) FROM sqlite_schema").get();
    } finally {
      conn.close();
    }
  } catch {
    // Left as SQLite left them: harmless side files of a WAL database.
  }
}
