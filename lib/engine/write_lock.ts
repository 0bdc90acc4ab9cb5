/**
 * Claiming the lock a write into a live database needs, within the busy timeout, and saying who
 * can hold it.
 *
 * @module
 */
import { openReadWrite, pragmaValue, sqliteFailure } from "./sqlite.ts";

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
  let mode: string | undefined;
  try {
    conn = openReadWrite(db, busyTimeoutMs);
    mode = String(pragmaValue(conn, "journal_mode"));
    // prepare() rather than exec(): only its errors carry SQLite's code, which tells "busy".
    conn.prepare(mode === "wal" ? "BEGIN IMMEDIATE" : "BEGIN EXCLUSIVE").run();
    conn.exec("ROLLBACK");
    return mode;
  } catch (cause) {
    // In rollback mode EXCLUSIVE also waits for readers.
    const holder = mode === "wal" ? "a writer" : "another connection (a reader or a writer)";
    throw heldTooLong(cause, doing, db, busyTimeoutMs, holder);
  } finally {
    conn?.close();
  }
}

/** The lock a write needs was not had within the busy timeout (or another SQLite failure). */
export function heldTooLong(
  cause: unknown,
  doing: string,
  db: string,
  busyTimeoutMs: number,
  holder: string,
): Error {
  return sqliteFailure(
    cause,
    doing,
    db,
    `${holder} held it for longer than --busy-timeout (${busyTimeoutMs} ms); ` +
      "retry later, or stop the application",
  );
}
