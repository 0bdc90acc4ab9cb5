/**
 * Publishing a database where none was, never over one that appeared meanwhile.
 *
 * @module
 */
import { backup } from "node:sqlite";
import { deferSignalsToTheEnd } from "../files/interrupt.ts";
import { BusyError, describeCause, OperationError } from "../errors.ts";
import { openBackupFile } from "./sqlite.ts";

/**
 * Puts the synced file `temp` at `db`, a path where no database was when the work began, but
 * never over a file that appeared meanwhile. The race: while a pull travels, the application
 * may create `db` in WAL mode; a rename would put the new pages beside its `-wal`/`-shm`, and
 * the next connection would replay its WAL into them. `link(2)` publishes atomically and fails
 * if `db` exists; where the file system has no hard links, `db` is created exclusively and the
 * content written into it through SQLite.
 *
 * Used as the `publish` of `withTempFile` (lib/files/atomic.ts), which syncs the temp before
 * and the folder after.
 *
 * @param doing the start of messages, e.g. "Cannot restore into"
 * @throws {BusyError} when `db` or one of its side files appeared meanwhile: nothing was
 *   changed, and the next run treats it as the existing database it now is
 */
export async function publishNew(temp: string, db: string, doing: string): Promise<void> {
  const appeared = (what: string) =>
    new BusyError(`${doing} "${db}": ${what} appeared while litekeep worked; nothing was changed`, {
      hint: "run again: the next run keeps a copy of that database, then writes through SQLite",
    });
  for (const suffix of ["-wal", "-journal"]) {
    if (await Deno.lstat(db + suffix).then(() => true, () => false)) {
      throw appeared(`"${db}${suffix}"`);
    }
  }
  try {
    deferSignalsToTheEnd();
    await Deno.link(temp, db);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw appeared("the database");
    await createThroughSqlite(temp, db, () => appeared("the database"));
  }
}

/** Where `link(2)` is not possible: `db` created exclusively, then written through SQLite. */
async function createThroughSqlite(temp: string, db: string, appeared: () => Error) {
  try {
    (await Deno.open(db, { write: true, createNew: true })).close();
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw appeared();
    throw new OperationError(`Cannot create "${db}": ${describeCause(error)}`, {
      cause: error,
      hint: "check the folder's permissions and free space",
    });
  }
  const src = openBackupFile(temp);
  deferSignalsToTheEnd();
  try {
    await backup(src, db, { rate: -1 });
  } catch (error) {
    // Said in plain words (not an "internal error"); the empty file made above goes again
    // unless something wrote into it meanwhile.
    await Deno.stat(db).then((info) => info.size === 0 ? Deno.remove(db) : undefined)
      .catch(() => {});
    throw new OperationError(`Cannot write "${db}": ${describeCause(error)}`, {
      cause: error,
      hint: "free some space there or fix its permissions; run again",
    });
  } finally {
    src.close();
  }
}
