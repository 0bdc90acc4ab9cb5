/**
 * One litekeep run at a time per database and per backup folder. The lock is an advisory
 * `flock` on a small file: the kernel drops it when the holder exits, even on `kill -9`, so a
 * lock left by a killed run can never block the next one.
 *
 * Lock files sit in folders that other users may write (the app user's folder, locked by root's
 * cron), so they are opened with care: anything but a plain file with one link is refused, never
 * written through, and the opened file must be the one the path names.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { BusyError, describeCause, isReadOnlyFs, OperationError } from "../errors.ts";

/** A held lock; release it with `await using` or `release()`. */
export interface Lock extends AsyncDisposable {
  readonly path: string;
  release(): Promise<void>;
}

/** The lock file of a backup folder. */
export function dirLockPath(dir: string): string {
  return join(dir, ".litekeep.lock");
}

/** The lock file of a database: a hidden file beside it. */
export function dbLockPath(db: string): string {
  return join(dirname(db), `.${basename(db)}.litekeep.lock`);
}

/**
 * Mode of new lock files (before the umask): others may read them, which is all a lock needs
 * (flock works on a read-only descriptor), but only the creator may write the pid note.
 */
const LOCK_MODE = 0o644;

/** A lock file that does not exist and cannot be created: the folder is read-only to this user. */
class LockFileUnavailable extends OperationError {
  constructor(readonly path: string, readonly reason: string, cause: unknown) {
    super(`Cannot create lock file "${path}": ${reason}`, {
      cause,
      hint: "make sure the folder is writable by this user",
    });
  }
}

/**
 * Takes the lock at `path` without waiting. Not re-entrant: a lock this process holds already is
 * busy like any other (each flock is on its own open file), so a caller that holds a lock passes
 * it down rather than taking it again (`pull` backs up the database it holds locked through
 * `backupHoldingLocks`).
 *
 * @param what names the locked thing in the message, e.g. `backup folder "data/backups"`
 * @throws {BusyError} when another process holds it (exit 75)
 * @throws {OperationError} when the lock file cannot be created, or is not a plain file (a
 *   symlink, FIFO, device or folder is refused, never written through)
 */
export async function acquireLock(path: string, what: string): Promise<Lock> {
  const { file, writable } = await openLockFile(path);
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (cause) {
    file.close();
    throw new OperationError(`Cannot lock "${path}": ${describeCause(cause)}`, { cause });
  }
  if (!locked) {
    const holder = await readHolder(file);
    file.close();
    throw new BusyError(
      `Another litekeep run is working on ${what}${holder ? ` (pid ${holder})` : ""}`,
      { hint: "retry later; the lock frees itself when that run ends, even if it is killed" },
    );
  }
  // Record who holds it, for the message above; the flock itself is what counts. Only now,
  // once the handle is known to be this plain file: truncating earlier could hit a swapped-in
  // link's target. A lock file of another user is only readable: then there is no note.
  if (writable) {
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  }
  let released = false;
  async function release(): Promise<void> {
    if (released) return;
    released = true;
    try {
      await file.unlock();
    } finally {
      file.close();
    }
  }
  return { path, release, [Symbol.asyncDispose]: release };
}

/**
 * Opens (or creates) the lock file without following a link and without truncating: lstat says
 * what the path is; the open creates only with O_EXCL (which refuses any link); the opened
 * handle must be a plain file with the same device and inode as the path after the open, which
 * catches a swap between the checks. Nothing is written before all of that holds.
 */
async function openLockFile(path: string): Promise<{ file: Deno.FsFile; writable: boolean }> {
  for (let attempt = 0;; attempt++) {
    const before = await lstatOrUndefined(path);
    if (before) refuseOdd(path, before);
    let file: Deno.FsFile;
    let writable = true;
    try {
      file = await Deno.open(
        path,
        before
          ? { read: true, write: true }
          : { read: true, write: true, createNew: true, mode: LOCK_MODE },
      );
    } catch (cause) {
      // Another run created it (or someone planted something) between lstat and open: look again.
      if (cause instanceof Deno.errors.AlreadyExists && attempt < 3) continue;
      if (!before && (cause instanceof Deno.errors.PermissionDenied || isReadOnlyFs(cause))) {
        throw new LockFileUnavailable(path, describeCause(cause), cause);
      }
      if (!(before && (cause instanceof Deno.errors.PermissionDenied || isReadOnlyFs(cause)))) {
        throw cannotOpen(path, cause);
      }
      // Another user's lock file (left by a run as root), or one on media mounted read-only
      // since: flock works on a read-only descriptor.
      try {
        file = await Deno.open(path, { read: true });
        writable = false;
      } catch (again) {
        throw cannotOpen(path, again);
      }
    }
    try {
      const opened = await file.stat();
      refuseOdd(path, opened);
      const now = await Deno.lstat(path);
      if (opened.dev !== now.dev || opened.ino !== now.ino) {
        throw new OperationError(
          `Cannot use lock file "${path}": it was replaced while opening it`,
          {
            hint: "make sure only litekeep's user can write that folder, then run again",
          },
        );
      }
    } catch (error) {
      file.close();
      if (error instanceof OperationError) throw error;
      throw cannotOpen(path, error);
    }
    return { file, writable };
  }
}

async function lstatOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return undefined;
    throw cannotOpen(path, cause);
  }
}

/** Refuses anything but a plain file with one link: writing through it would hit another file. */
function refuseOdd(path: string, info: Deno.FileInfo): void {
  const kind = info.isSymlink
    ? "a symbolic link"
    : info.isDirectory
    ? "a folder"
    : info.isFifo
    ? "a FIFO"
    : info.isCharDevice || info.isBlockDevice
    ? "a device"
    : info.isSocket
    ? "a socket"
    : !info.isFile
    ? "not a regular file"
    : info.nlink !== null && info.nlink > 1
    ? `a file with ${info.nlink} hard links`
    : undefined;
  if (kind === undefined) return;
  throw new OperationError(`Cannot use lock file "${path}": it is ${kind}`, {
    hint: "a lock file is only ever a plain file that litekeep creates: remove that one " +
      "(and find out who put it there), then run again",
  });
}

function cannotOpen(path: string, cause: unknown): OperationError {
  return new OperationError(`Cannot open lock file "${path}": ${describeCause(cause)}`, {
    cause,
    hint: cause instanceof Deno.errors.PermissionDenied
      ? "it belongs to another user and this one cannot read it: remove it when no litekeep " +
        "run is working (it is only a lock), or run as that user"
      : "make sure the folder is writable by this user",
  });
}

/**
 * The pid note in the lock file. A holder that could open it only read-only wrote none, so the
 * note may then name the run before it.
 */
async function readHolder(file: Deno.FsFile): Promise<string | undefined> {
  try {
    await file.seek(0, Deno.SeekMode.Start);
    const buffer = new Uint8Array(32);
    const n = await file.read(buffer);
    const text = new TextDecoder().decode(buffer.subarray(0, n ?? 0)).trim();
    return /^\d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** A lock that was wanted but done without; see {@linkcode acquireLocks}. */
export interface SkippedLock {
  path: string;
  what: string;
  /** Why, in plain words: "read-only file system", "permission denied". */
  reason: string;
}

/** Locks held together; `skipped` lists optional ones that could not be created. */
export interface HeldLocks extends AsyncDisposable {
  release(): Promise<void>;
  skipped: SkippedLock[];
}

/**
 * Takes several locks in order; on failure releases those already taken.
 *
 * @param wanted `optional` locks are done without when their file does not exist and cannot be
 *   created (a read-only file system, a folder this user cannot write); held or odd ones still fail
 */
export async function acquireLocks(
  wanted: Array<{ path: string; what: string; optional?: boolean }>,
): Promise<HeldLocks> {
  const taken: Lock[] = [];
  const skipped: SkippedLock[] = [];
  const release = async () => {
    for (const lock of taken.reverse()) await lock.release();
    taken.length = 0;
  };
  try {
    for (const { path, what, optional } of wanted) {
      try {
        taken.push(await acquireLock(path, what));
      } catch (error) {
        if (!(optional && error instanceof LockFileUnavailable)) throw error;
        skipped.push({ path, what, reason: error.reason });
      }
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { release, skipped, [Symbol.asyncDispose]: release };
}
