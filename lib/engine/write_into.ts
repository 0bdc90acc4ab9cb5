/**
 * Writing a whole database INTO a live one through SQLite (restore, pull), never losing a
 * commit made meanwhile, and publishing a database where none was.
 *
 * @module
 */
import { backup, type DatabaseSync } from "node:sqlite";
import { readWith } from "./db_file.ts";
import { deferSignalsToTheEnd } from "../files/interrupt.ts";
import { BusyError, describeCause, isBusy, isDiskFull, OperationError } from "../errors.ts";
import {
  checkDatabaseFile,
  openBackupFile,
  openReadWrite,
  pragmaValue,
  sqliteFailure,
} from "./sqlite.ts";
import { selfContainedCopy } from "./snapshot.ts";
import { claimWriteLock, heldTooLong } from "./write_lock.ts";
import { VERDICT } from "./verify.ts";

/** How to write into a live database. */
export interface WriteIntoOptions<T> {
  /** How long to wait for the database's writers (and, to leave WAL mode, readers), in ms. */
  busyTimeoutMs: number;
  /** The start of error messages. @default "Cannot write into" */
  doing?: string;
  /**
   * Takes the copy of the old content that must hold every commit (a pre-restore copy, pull's
   * local backup). It runs while the database's write lock is held, so no other connection can
   * commit between the copy's instant and the write. It must not open the file itself (closing
   * any descriptor of it drops that lock): `db` is checked already (`sourceChecked`).
   */
  keep?: () => Promise<T>;
  /** Removes a copy made by `keep` that a commit slipped past, before the next attempt. */
  discard?: (kept: T) => Promise<void>;
  /**
   * What to tell the user when the write failed; `asItWas` is false when SQLite's rollback
   * could not be confirmed to have left the file as it was.
   */
  failureHint?: (kept: T | undefined, asItWas: boolean) => string;
  /** For tests: runs in the gap between the lock's release and the write's first step. */
  onGap?: () => void;
  /**
   * The caller found the database empty (0 bytes) and keeps no copy: the write is refused if
   * the application has written to it since, checked under the write lock (found by the attack
   * round: a pull into a 0-byte file overwrote what the app wrote during the transfer).
   */
  mustBeEmpty?: boolean;
  /**
   * The source's check, running beside the write (in a worker, which the main thread cannot
   * hear while the backup blocks it): the worker stores its verdict in `flag[0]` (0 pending,
   * 1 passed, 2 failed) and notifies. The step before the one that commits waits for it, at
   * most `timeoutMs`; a failed verdict rolls the write back (`VerdictFailed`), a missing one
   * too (`OperationError`). Without it, the caller checks the source before the write.
   */
  verdict?: { flag: Int32Array; timeoutMs: number };
}

/** What `writeInto` did. */
export interface WriteIntoResult<T> {
  /** The journal mode before (`wal`, `delete`, ...). */
  journalModeBefore: string;
  /** True when the database left WAL mode for a page size change. */
  leftWal: boolean;
  /** False when it left WAL mode and could not go back (the caller must say so). */
  backToWal: boolean;
  /** What `keep` returned, for the attempt that wrote. */
  kept: T | undefined;
  /** Attempts made: more than one when a commit slipped in before a write. */
  attempts: number;
}

/** How often `writeInto` starts over when a commit slips in before its write. */
const WRITE_ATTEMPTS = 5;

/** Thrown from the backup's first progress callback: a foreign commit slipped in. */
class SlippedCommit extends Error {}

/**
 * The source's check (`verdict`) failed: the write was rolled back and the database is as it
 * was. The caller has the check's own report (the worker's message) to tell the user.
 */
export class VerdictFailed extends OperationError {}

/** Thrown from the backup's progress callback: no verdict came within its timeout. */
class NoVerdict extends Error {}

/**
 * Writes the whole content of `source` (a self-contained file nothing else writes) INTO the
 * live database `db` with SQLite's backup API, as one transaction of the target. Connections
 * that have it open see the old content or the new, never a mix; SQLite itself owns the `-wal`,
 * `-shm` and `-journal` beside it, so the new pages can never be paired with a stale WAL; and
 * its journal mode is kept (WAL stays WAL). SQLite refuses to change the page size of a WAL
 * database, so for a source whose page size differs the database leaves WAL mode for the write
 * (possible only while no other connection is open, checked before anything is copied) and
 * goes back to it after.
 *
 * No commit is lost between `options.keep`'s copy and the write. The race: a copy taken, then a
 * write that starts later, drops every commit made in between (neither in the copy nor in the
 * result). So a connection L takes the write lock (`BEGIN IMMEDIATE`: the WAL write lock, or
 * RESERVED in rollback mode; readers go on) and reads the database's version, the copy is
 * taken beside it, L ends its transaction and the backup starts at once. The backup takes the
 * target's write lock at its first step and holds it until it commits, so in the first progress
 * callback no one can commit any more: if the version differs there, a commit slipped into the
 * gap between L's end and that step, and throwing from the callback rolls the write back; the
 * copy is discarded and all starts over. The version is `PRAGMA data_version` on L in WAL
 * mode; in rollback mode the backup holds EXCLUSIVE from its first step (L cannot read), so it
 * is the file's size and header (its change counter moves at every commit), read through
 * db_file.ts, which never closes a descriptor while our connections are open. The
 * first step is small (~1 MiB) so that its pages stay in the target's page cache: nothing of the
 * new content reaches the file before the check.
 *
 * The source's check may run beside the write (`options.verdict`) and still come before the
 * commit. node:sqlite's backup() (measured with Deno 2.9.6, a 502-page source) calls `progress`
 * after every step that returns SQLITE_OK, with `totalPages` the source's page count and
 * `remainingPages` what is left after that step (rate 100: 402, 302, 202, 102, 2), and never
 * after the step that copies the last page: that step returns SQLITE_DONE and has committed
 * when backup() returns. So the callback that sees `remainingPages <= rate` runs before the
 * committing step, and the step size (at most `pages - 1`) guarantees at least one callback.
 * There, the main thread (whose event loop the backup blocks) waits for the verdict in shared
 * memory with `Atomics.wait`: the write holds the target's write lock all the while, and its
 * pages are uncommitted (in the -wal past its last commit frame, or in the file with their old
 * content in the -journal, when the cache spills); a throw from the callback makes backup()
 * reject with that error after SQLite rolled the write back (measured: the file byte-identical
 * after, in both modes). A failed verdict, or none within `timeoutMs`, throws there.
 *
 * @returns the journal mode before, whether WAL mode was left for a page size change and
 *   entered again, and what `keep` returned
 * @throws {BusyError} when a writer holds it past `busyTimeoutMs`, the page size must change
 *   while another connection is open, or commits kept slipping in
 * @throws {VerdictFailed} when the source's check (`options.verdict`) failed: the write was
 *   rolled back
 * @throws {OperationError} when the write fails, or no verdict came in time; SQLite rolled it
 *   back (checked in rollback mode: the file's size and header are as before) and the database
 *   is as it was
 */
export async function writeInto<T = undefined>(
  source: string,
  db: string,
  options: WriteIntoOptions<T>,
): Promise<WriteIntoResult<T>> {
  const { busyTimeoutMs } = options;
  const doing = options.doing ?? "Cannot write into";
  // Raw reads of `db` come first, while no connection of ours has it open.
  const from = await checkDatabaseFile(source);
  const to = await checkDatabaseFile(db, "database", { allowEmpty: true });
  const journalModeBefore = claimWriteLock(db, busyTimeoutMs, doing);
  const leftWal = journalModeBefore === "wal" && from.pageSize !== to.pageSize;
  // Before any copy is taken: a restore that cannot happen leaves nothing behind.
  if (leftWal) leaveWal(db, from.pageSize, to.pageSize, busyTimeoutMs, doing);
  await using guarded = await padded(source);
  let written: { attempts: number; kept: T | undefined; mode: string } | undefined;
  let failed: { error: unknown } | undefined;
  try {
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS && !written; attempt++) {
      const done = await writeAttempt(guarded.path, guarded.pages, from.pageSize, db, options);
      if (done.wrote) written = { attempts: attempt, kept: done.value, mode: done.mode };
    }
  } catch (error) {
    failed = { error };
  }
  // Back to WAL whatever happened: the data is written (or rolled back) either way, so a
  // failure here is a warning for the caller, not a failed write.
  const backToWal = leftWal ? switchBack(db, busyTimeoutMs) : true;
  if (failed) throw failed.error;
  if (!written) {
    throw new BusyError(
      `${doing} "${db}": other connections kept committing in the instant before the write ` +
        `(${WRITE_ATTEMPTS} attempts); nothing was changed`,
      { hint: "retry later, when the application writes less, or stop it for the restore" },
    );
  }
  // The mode the database had when the write took it: the application may switch it (most
  // switch to WAL at every open) between the first claim and the write.
  const { mode, ...rest } = written;
  return { journalModeBefore: leftWal ? journalModeBefore : mode, leftWal, backToWal, ...rest };
}

function switchBack(db: string, busyTimeoutMs: number): boolean {
  try {
    return switchJournalMode(db, "WAL", busyTimeoutMs);
  } catch {
    return false;
  }
}

/** One guarded attempt; `wrote` is false when a commit slipped in and the copy was discarded. */
async function writeAttempt<T>(
  source: string,
  pages: number,
  pageSize: number,
  db: string,
  options: WriteIntoOptions<T>,
): Promise<{ wrote: boolean; value: T | undefined; mode: string }> {
  const { busyTimeoutMs } = options;
  const doing = options.doing ?? "Cannot write into";
  const lock = openReadWrite(db, busyTimeoutMs);
  try {
    let before: string;
    let mode: string;
    // In rollback mode (`raw`: the database's path) the version is read from the file, through
    // db_file.ts, which keeps the descriptor while our connections are open.
    let raw: string | undefined;
    try {
      // prepare() rather than exec(): only its errors carry SQLite's code, which tells "busy".
      lock.prepare("BEGIN IMMEDIATE").run();
      // A read inside the transaction: the version is the one no other connection can change.
      lock.prepare("SELECT count(*) FROM sqlite_schema").get();
      // The mode decides how the version is read, so it is read here, under the lock, at every
      // attempt: a database switched to WAL after the first claim commits into its -wal, which
      // a header check would never see (found by the attack round). Leaving WAL needs no other
      // connection open, so with this one open the mode holds until the write.
      mode = String(pragmaValue(lock, "journal_mode"));
      raw = mode === "wal" ? undefined : db;
      before = version(lock, raw);
    } catch (cause) {
      // BEGIN IMMEDIATE waits for writers only, in either mode.
      throw heldTooLong(cause, doing, db, busyTimeoutMs, "a writer");
    }
    if (options.mustBeEmpty && readWith(db, (_, size) => size) > 0) {
      lock.exec("ROLLBACK");
      throw new BusyError(
        `${doing} "${db}": it was empty when litekeep began, and another program has written ` +
          "to it since; nothing was changed",
        { hint: "run again: the next run keeps a copy of what is in it first" },
      );
    }
    let value: T | undefined;
    try {
      value = options.keep ? await options.keep() : undefined;
    } finally {
      lock.exec("ROLLBACK");
    }
    if (raw !== undefined) {
      try {
        waitForReaders(lock);
      } catch (cause) {
        if (value !== undefined) await options.discard?.(value);
        throw stuck(cause, doing, db, busyTimeoutMs);
      }
    }
    options.onGap?.();
    const src = openBackupFile(source);
    const watch = stepWatch(busyTimeoutMs);
    // Once pages may reach the database, a signal must not cut the run short of its report.
    deferSignalsToTheEnd();
    // At least two steps, so that the checks run before the commit.
    const rate = Math.max(1, Math.min(Math.floor((1 << 20) / pageSize), pages - 1));
    let verdictDue = options.verdict !== undefined;
    try {
      await backup(src, db, {
        rate,
        progress: ({ totalPages, remainingPages }) => {
          // The page count stays 0 until a step succeeds: only then does the write hold the
          // target's lock, and only from then on can no commit slip in. A busy first step
          // (another connection holds the lock) is not that moment.
          if (totalPages > 0 && !watch.checked) {
            watch.checked = true;
            if (version(lock, raw) !== before) throw new SlippedCommit();
          }
          watch.step(remainingPages);
          // The next step copies the last pages and commits: the verdict must be in first.
          if (verdictDue && totalPages > 0 && remainingPages <= rate) {
            verdictDue = false;
            awaitVerdict(options.verdict!);
          }
        },
      });
    } catch (cause) {
      const refused = cause instanceof VerdictFailed || cause instanceof NoVerdict;
      if (cause instanceof SlippedCommit || cause instanceof StuckWrite || refused) {
        if (value !== undefined) await options.discard?.(value);
      }
      if (cause instanceof SlippedCommit) return { wrote: false, value: undefined, mode };
      if (cause instanceof StuckWrite) throw stuck(cause, doing, db, busyTimeoutMs);
      const asItWas = raw === undefined || rolledBack(lock, raw, before);
      if (refused) throw notWritten(cause, doing, db, asItWas, options.verdict!.timeoutMs);
      const hint = options.failureHint?.(value, asItWas) ??
        (asItWas
          ? "SQLite rolled the write back: the database is as it was"
          : "SQLite could not confirm that its rollback left the database as it was");
      throw new OperationError(`${doing} "${db}": ${describeCause(cause)}`, {
        cause,
        hint: isDiskFull(cause) ? `free some space there; ${hint}` : hint,
      });
    } finally {
      src.close();
    }
    return { wrote: true, value, mode };
  } finally {
    lock.close();
  }
}

/**
 * Waits (blocking: the backup holds the event loop) for the source's check to say passed.
 *
 * @throws {VerdictFailed} when it failed
 * @throws {NoVerdict} when it said nothing within its timeout (a worker that died)
 */
function awaitVerdict({ flag, timeoutMs }: { flag: Int32Array; timeoutMs: number }): void {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const now = Atomics.load(flag, 0);
    if (now === VERDICT.passed) return;
    if (now !== VERDICT.pending) throw new VerdictFailed("the source failed its check");
    const left = end - performance.now();
    if (left <= 0) throw new NoVerdict();
    Atomics.wait(flag, 0, VERDICT.pending, left);
  }
}

/** The write was refused for its source's verdict, and rolled back. */
function notWritten(
  cause: VerdictFailed | NoVerdict,
  doing: string,
  db: string,
  asItWas: boolean,
  timeoutMs: number,
): OperationError {
  const state = asItWas
    ? "the write was rolled back and the database is as it was"
    : "SQLite rolled the write back, but could not confirm that the database is as it was";
  if (cause instanceof VerdictFailed) {
    return new VerdictFailed(`${doing} "${db}": the source failed its check; ${state}`, { cause });
  }
  return new OperationError(
    `${doing} "${db}": the check of the source gave no verdict within ` +
      `${timeoutMs / 1000} s; ${state}`,
    { cause, hint: "run again" },
  );
}

/**
 * In rollback mode the backup's first step takes the target's EXCLUSIVE lock, and waits inside
 * SQLite, with a busy handler of its own that no timeout of ours bounds, for every reader to
 * finish: a reader that began during the safety copy (RESERVED lets readers in) kept a restore
 * waiting for as long as it read (found by the attack round). So the wait for readers happens
 * here, on our connection, within --busy-timeout (SQLITE_BUSY past it); the backup then takes
 * the lock the moment ours is released, before any reader sleeping in its busy handler wakes.
 */
function waitForReaders(lock: DatabaseSync): void {
  lock.prepare("BEGIN EXCLUSIVE").run();
  lock.exec("ROLLBACK");
}

/** The busy timeout ran out while the write waited: nothing was changed. */
function stuck(cause: unknown, doing: string, db: string, busyTimeoutMs: number): Error {
  if (!(cause instanceof StuckWrite) && !isBusy(cause)) return sqliteFailure(cause, doing, db);
  return new BusyError(
    `${doing} "${db}": another connection (a reader or a writer) held the database for ` +
      `longer than --busy-timeout (${busyTimeoutMs} ms) while the write waited; nothing was ` +
      "changed",
    { cause, hint: "retry later, or stop the application for the write" },
  );
}

/** Thrown from the backup's progress callback: it made no progress within the busy timeout. */
class StuckWrite extends Error {}

/**
 * Watches the backup's steps. Deno's backup() retries a busy step at once and without end (a
 * reader holding SHARED in rollback mode kept a restore spinning a core for as long as it read,
 * found by the attack round): each step that copies nothing waits a few ms, and once none has
 * copied anything for `busyTimeoutMs`, `StuckWrite` ends the write (SQLite rolls it back).
 */
function stepWatch(busyTimeoutMs: number): { checked: boolean; step(remaining: number): void } {
  let last = -1;
  let since = performance.now();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return {
    checked: false,
    step(remaining) {
      const now = performance.now();
      if (remaining !== last) {
        last = remaining;
        since = now;
        return;
      }
      if (now - since > busyTimeoutMs) throw new StuckWrite();
      Atomics.wait(pause, 0, 0, 5);
    },
  };
}

/**
 * The database's version: `data_version` in WAL mode, else (`raw`, the database's path) the
 * file's size and header, read while `lock` is open, so db_file.ts keeps the descriptor.
 */
function version(lock: DatabaseSync, raw: string | undefined): string {
  if (raw === undefined) return String(pragmaValue(lock, "data_version"));
  return readWith(raw, (read, size) => `${size}:${Array.from(read(0, 100)).join(",")}`);
}

/**
 * After a failed write in rollback mode (a full disk can leave the file grown, with a hot
 * journal beside it), makes SQLite roll the journal back now, under the write lock, and checks
 * that the file's size and header are what they were before the write.
 */
function rolledBack(lock: DatabaseSync, raw: string, before: string): boolean {
  try {
    // Reading replays a hot journal; the write lock keeps others from committing meanwhile.
    lock.prepare("BEGIN IMMEDIATE").run();
    lock.prepare("SELECT count(*) FROM sqlite_schema").get();
    try {
      return version(lock, raw) === before;
    } finally {
      lock.exec("ROLLBACK");
    }
  } catch {
    return false;
  }
}

/**
 * The source to write, as a file of at least two pages: a one-page source would be copied in
 * one step, with no callback before its commit to check in. Its padded copy has one free page
 * more, and the same content.
 */
async function padded(source: string): Promise<{ path: string; pages: number } & AsyncDisposable> {
  // SQLite's own page count, not the file's size: bytes after the last page (a file another
  // tool wrote) made the step as large as the whole database, so the write ran in one step and
  // its check never came (found by the final review: a commit lost).
  const pages = sqlitePageCount(source);
  if (pages >= 2) return { path: source, pages, [Symbol.asyncDispose]: () => Promise.resolve() };
  const copy = await selfContainedCopy(source);
  // A private copy: no one else has it open, so no wait is needed.
  const conn = openReadWrite(copy.path, 0);
  try {
    conn.exec("CREATE TABLE litekeep_pad (x); DROP TABLE litekeep_pad");
    return { ...copy, pages: Number(pragmaValue(conn, "page_count")) };
  } finally {
    conn.close();
  }
}

/** The page count SQLite reads in the header of `path` (a self-contained file nothing writes). */
function sqlitePageCount(path: string): number {
  const conn = openBackupFile(path);
  try {
    return Number(pragmaValue(conn, "page_count"));
  } finally {
    conn.close();
  }
}

/** Takes the database out of WAL mode for a page size change, or says why it cannot. */
function leaveWal(
  db: string,
  newSize: number,
  oldSize: number,
  busyTimeoutMs: number,
  doing: string,
): void {
  let left = false;
  try {
    left = switchJournalMode(db, "DELETE", busyTimeoutMs);
  } catch (cause) {
    // SQLITE_BUSY: another connection has it open. Anything else is a real failure.
    if (!isBusy(cause)) throw sqliteFailure(cause, doing, db);
  }
  if (!left) {
    throw new BusyError(
      `${doing} "${db}": the new page size (${newSize}) differs from the database's ` +
        `(${oldSize}), which SQLite can change only while no other connection has the ` +
        "database open",
      { hint: "stop the application, then run again" },
    );
  }
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
