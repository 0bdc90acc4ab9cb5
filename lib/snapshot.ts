/**
 * Consistent online snapshots, and WAL checkpoints.
 *
 * A snapshot is SQLite's online backup API run inside ONE read transaction on the source: the
 * first read fixes the instant, every later step reads that same instant, so writers in other
 * processes (WAL mode) neither disturb nor restart it, and it finishes in one pass however busy
 * the database is. Step-wise copying without that held transaction restarts on every foreign
 * commit and may never finish under a steady writer.
 *
 * @module
 */
import { backup } from "node:sqlite";
import { dirname, join } from "node:path";
import { BusyError, describeCause, isDiskFull, OperationError, UsageError } from "./errors.ts";
import {
  checkDatabaseFile,
  openBackupFile,
  openReadOnly,
  openReadWrite,
  pragmaValue,
  sqliteFailure,
} from "./sqlite.ts";

/** How to take a snapshot. */
export interface SnapshotOptions {
  /** How long to wait for a writer's lock (rollback-journal mode) before giving up, in ms. */
  busyTimeoutMs: number;
  /** Pages copied per step; progress is reported between steps. @default 4096 */
  stepPages?: number;
  /** Called between steps with the pages copied so far and the total. */
  onProgress?: (copiedPages: number, totalPages: number) => void;
}

/** What a snapshot copied. */
export interface SnapshotResult {
  /** Pages in the snapshot. */
  pages: number;
  pageSize: number;
  /** Journal mode of the source database (`wal`, `delete`, ...). */
  journalMode: string;
  /** Permission bits of the source (`mode & 0o777`); files made from it get no more. */
  mode: number;
}

/**
 * Copies every committed transaction of `source` (WAL content included) at one instant into a
 * new file `dest`, in rollback-journal mode, so the copy needs no `-wal`/`-shm` to be opened.
 * `dest` gets at most the source's permission bits (and never more than the umask allows).
 * `dest` must not exist; on failure it may be left partial and the caller removes it.
 *
 * @throws {OperationError} when the source cannot be read or `dest` cannot be written
 * @throws {BusyError} when the source stays locked past `busyTimeoutMs`
 */
export async function snapshotDatabase(
  source: string,
  dest: string,
  options: SnapshotOptions,
): Promise<SnapshotResult> {
  await checkDatabaseFile(source);
  const mode = await createLikeSource(source, dest);
  let db;
  try {
    db = openReadOnly(source, options.busyTimeoutMs);
  } catch (error) {
    throw sqliteFailure(error, "Cannot open database", source);
  }
  try {
    let journalMode: string, pageSize: number, pages: number;
    try {
      db.exec("BEGIN");
      // This read takes the shared lock and fixes the snapshot for the whole copy.
      db.prepare("SELECT count(*) FROM sqlite_schema").get();
      journalMode = String(pragmaValue(db, "journal_mode"));
      pageSize = Number(pragmaValue(db, "page_size"));
      // Inside the transaction, page_count is the snapshot's size.
      pages = Number(pragmaValue(db, "page_count"));
    } catch (error) {
      throw sqliteFailure(
        error,
        "Cannot read database",
        source,
        `a writer held it for longer than --busy-timeout (${options.busyTimeoutMs} ms); retry later or raise --busy-timeout`,
      );
    }
    // The kernel keeps written pages dirty (up to a tenth of RAM) and flushes them all at the
    // commit's fsync: the application's own commits then wait behind a flush of the whole
    // copy (0.3-1 s measured for 0.4-1 GB). Flushing every 32 MiB as the copy goes keeps its
    // commits fast (under 0.1 s measured), for a few percent more copy time.
    const flushEvery = Math.max(1, Math.floor((32 << 20) / pageSize));
    let flushed = 0;
    let handle: Deno.FsFile | undefined;
    try {
      await backup(db, dest, {
        rate: options.stepPages ?? 4096,
        progress: ({ totalPages, remainingPages }) => {
          const copied = totalPages - remainingPages;
          if (copied - flushed >= flushEvery) {
            handle ??= Deno.openSync(dest, { read: true, write: true });
            handle.syncDataSync();
            flushed = copied;
          }
          options.onProgress?.(copied, totalPages);
        },
      });
    } catch (error) {
      const folder = dirname(dest);
      throw new OperationError(
        `Cannot write the snapshot of "${source}" into "${folder}": ${describeCause(error)}`,
        {
          cause: error,
          hint: isDiskFull(error)
            ? "free some space there, or choose another backup folder"
            : "check the folder's permissions and free space",
        },
      );
    } finally {
      handle?.close();
    }
    db.exec("COMMIT");
    await makeSelfContained(dest);
    // Only a source its owner may not write (0400, 0440) needs this: dest had to be writable
    // while SQLite wrote it.
    if ((mode & 0o600) !== 0o600) {
      await Deno.chmod(dest, ((await Deno.stat(dest)).mode ?? 0) & mode);
    }
    return { pages, pageSize, journalMode, mode };
  } finally {
    db.close();
  }
}

/**
 * Creates the empty `dest` that SQLite's backup then writes into, with the source's permission
 * bits (plus owner read and write, for the copy itself): left to SQLite, a copy of a 0600
 * database would be 0644, and member data readable by every local user from the first page on.
 * The mode passed to open is masked by the umask, so it is never more than the default either.
 *
 * @returns the source's permission bits
 */
async function createLikeSource(source: string, dest: string): Promise<number> {
  const mode = ((await Deno.stat(source)).mode ?? 0o644) & 0o777;
  try {
    (await Deno.open(dest, { write: true, createNew: true, mode: (mode & 0o666) | 0o600 }))
      .close();
  } catch (error) {
    throw new OperationError(
      `Cannot create the snapshot of "${source}" in "${dirname(dest)}": ${describeCause(error)}`,
      {
        cause: error,
        hint: isDiskFull(error)
          ? "free some space there, or choose another backup folder"
          : "check the folder's permissions and free space",
      },
    );
  }
  return mode;
}

/**
 * Marks a database file as rollback-journal mode (file format bytes 18 and 19 set to 1), which
 * is what `PRAGMA journal_mode=DELETE` does to a checkpointed database. The backup API copies
 * page 1 as it is, so a snapshot of a WAL database says "WAL"; opening it would then create
 * `-wal`/`-shm` files. Done on the unpublished file, before it is synced and hashed.
 */
export async function makeSelfContained(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true, write: true });
  const versions = new Uint8Array(2);
  await file.seek(18, Deno.SeekMode.Start);
  if (await file.read(versions) !== 2) {
    throw new OperationError(`Snapshot "${path}" is shorter than a SQLite header`);
  }
  if (versions[0] === 1 && versions[1] === 1) return;
  await file.seek(18, Deno.SeekMode.Start);
  await file.write(new Uint8Array([1, 1]));
}

/**
 * Takes and drops the lock a write into `db` needs (the WAL write lock; in rollback mode an
 * exclusive lock), waiting up to `busyTimeoutMs`. SQLite's backup INTO a database retries a
 * busy target without end, so a writer that holds the database must be found here, where a
 * timeout applies.
 *
 * @returns the database's journal mode
 * @throws {BusyError} when it stays locked past the timeout
 */
export function claimWriteLock(
  db: string,
  busyTimeoutMs: number,
  doing = "Cannot write into",
): string {
  let conn;
  try {
    conn = openReadWrite(db, busyTimeoutMs);
    const mode = String(pragmaValue(conn, "journal_mode"));
    // prepare() rather than exec(): only its errors carry SQLite's code, which tells "busy".
    conn.prepare(mode === "wal" ? "BEGIN IMMEDIATE" : "BEGIN EXCLUSIVE").run();
    conn.exec("ROLLBACK");
    return mode;
  } catch (cause) {
    throw sqliteFailure(
      cause,
      doing,
      db,
      `a writer held it for longer than --busy-timeout (${busyTimeoutMs} ms); ` +
        "retry later, or stop the application",
    );
  } finally {
    conn?.close();
  }
}

/**
 * Writes the whole content of `source` (a self-contained file nothing else writes) INTO the
 * live database `db` with SQLite's backup API, in one step: one transaction of the target.
 * Connections that have it open see the old content or the new, never a mix; SQLite itself owns
 * the `-wal`, `-shm` and `-journal` beside it, so the new pages can never be paired with a stale
 * WAL; and its journal mode is kept (WAL stays WAL). SQLite refuses to change the page size of
 * a WAL database, so for a source whose page size differs the database leaves WAL mode for the
 * write (possible only while no other connection is open) and goes back to it after.
 *
 * @param hint what to tell the user when the write fails (SQLite rolled it back)
 * @returns the journal mode before, whether WAL mode was left for a page size change, and
 *   whether it could be entered again after (false: the caller must say so)
 * @throws {BusyError} when a writer holds it past `busyTimeoutMs`, or the page size must change
 *   while another connection is open
 * @throws {OperationError} when the write fails; the database is then as it was
 */
export async function writeInto(
  source: string,
  db: string,
  busyTimeoutMs: number,
  hint = "SQLite rolled the write back: the database is as it was",
): Promise<{ journalModeBefore: string; leftWal: boolean; backToWal: boolean }> {
  const journalModeBefore = claimWriteLock(db, busyTimeoutMs);
  let backToWal = true;
  const [from, to] = [await checkDatabaseFile(source), await checkDatabaseFile(db)];
  const leftWal = journalModeBefore === "wal" && from.pageSize !== to.pageSize;
  if (leftWal && !switchJournalMode(db, "DELETE", busyTimeoutMs)) {
    throw new BusyError(
      `Cannot write into "${db}": the new page size (${from.pageSize}) differs from the ` +
        `database's (${to.pageSize}), which SQLite can change only while no other ` +
        "connection has the database open",
      { hint: "stop the application, then run again" },
    );
  }
  const src = openBackupFile(source);
  try {
    await backup(src, db, { rate: -1 });
  } catch (cause) {
    throw new OperationError(`Cannot write into database "${db}": ${describeCause(cause)}`, {
      cause,
      hint: isDiskFull(cause) ? `free some space there; ${hint}` : hint,
    });
  } finally {
    src.close();
    // Back to WAL whatever happened: the data is written (or rolled back) either way, so
    // a failure here is a warning for the caller, not a failed write.
    if (leftWal) {
      try {
        backToWal = switchJournalMode(db, "WAL", busyTimeoutMs);
      } catch {
        backToWal = false;
      }
    }
  }
  return { journalModeBefore, leftWal, backToWal };
}

/** Sets the journal mode; true when SQLite took it (it refuses while other connections are open). */
function switchJournalMode(db: string, mode: "DELETE" | "WAL", busyTimeoutMs: number): boolean {
  const conn = openReadWrite(db, busyTimeoutMs);
  try {
    return String(pragmaValue(conn, `journal_mode = ${mode}`)).toUpperCase() === mode;
  } finally {
    conn.close();
  }
}

/**
 * A self-contained copy of `path` in a fresh folder of the system temp dir, removed on dispose:
 * how a file whose header says WAL (a backup made by another tool) is opened without SQLite
 * creating `-wal`/`-shm` beside the original.
 */
export async function selfContainedCopy(path: string): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "litekeep-copy-" });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  const copy = join(dir, "copy.db");
  try {
    await Deno.copyFile(path, copy);
    await makeSelfContained(copy);
  } catch (error) {
    await remove();
    throw error;
  }
  return { path: copy, [Symbol.asyncDispose]: remove };
}

/** The checkpoint modes of `PRAGMA wal_checkpoint`. */
export const CHECKPOINT_MODES = ["passive", "full", "restart", "truncate"] as const;
/** A checkpoint mode. */
export type CheckpointMode = typeof CHECKPOINT_MODES[number];

/** What `PRAGMA wal_checkpoint` reported. */
export interface CheckpointResult {
  mode: CheckpointMode;
  /** True when readers or writers kept the checkpoint from completing. */
  busy: boolean;
  /** Frames in the WAL (-1 when the database is not in WAL mode). */
  logFrames: number;
  /** Frames copied back into the database (-1 when not in WAL mode). */
  checkpointedFrames: number;
}

/**
 * True when a checkpoint did all it was asked: nothing kept it from finishing and every frame
 * of the log went back into the database. A database not in WAL mode has nothing to do.
 */
export function checkpointCompleted(result: CheckpointResult): boolean {
  if (result.logFrames === -1) return true;
  return !result.busy && result.checkpointedFrames === result.logFrames;
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
  try {
    const row = db.prepare(`PRAGMA wal_checkpoint(${mode.toUpperCase()})`).get() as Record<
      string,
      number
    >;
    const [busy, logFrames, checkpointedFrames] = Object.values(row).map(Number);
    return { mode, busy: busy !== 0, logFrames, checkpointedFrames };
  } catch (error) {
    throw sqliteFailure(error, "Cannot checkpoint database", path);
  } finally {
    db.close();
  }
}
