/**
 * One litekeep run at a time per database and per backup folder. The lock is an advisory
 * `flock` on a small file: the kernel drops it when the holder exits, even on `kill -9`, so a
 * lock left by a killed run can never block the next one.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { BusyError, describeCause, OperationError } from "./errors.ts";

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

/** Lock files this process holds. */
const held = new Set<string>();

/**
 * Takes the lock at `path` without waiting. A lock this process already holds is taken again
 * (nested: `pull` backs up the database it holds locked); only the outer holder frees it, and
 * nested scopes end before the outer one.
 *
 * @param what names the locked thing in the message, e.g. `backup folder "data/backups"`
 * @throws {BusyError} when another process holds it (exit 75)
 * @throws {OperationError} when the lock file cannot be created
 */
export async function acquireLock(path: string, what: string): Promise<Lock> {
  if (held.has(path)) {
    const nested = () => Promise.resolve();
    return { path, release: nested, [Symbol.asyncDispose]: nested };
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (cause) {
    throw new OperationError(`Cannot create lock file "${path}": ${describeCause(cause)}`, {
      cause,
      hint: `make sure the folder is writable by this user`,
    });
  }
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (cause) {
    file.close();
    throw new OperationError(`Cannot lock "${path}": ${describeCause(cause)}`, { cause });
  }
  if (!locked) {
    const holder = await readHolder(path);
    file.close();
    throw new BusyError(
      `Another litekeep run is working on ${what}${holder ? ` (pid ${holder})` : ""}`,
      { hint: "retry later; the lock frees itself when that run ends, even if it is killed" },
    );
  }
  // Record who holds it, for the message above; the flock itself is what counts.
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  held.add(path);
  let released = false;
  async function release(): Promise<void> {
    if (released) return;
    released = true;
    held.delete(path);
    try {
      await file.unlock();
    } finally {
      file.close();
    }
  }
  return { path, release, [Symbol.asyncDispose]: release };
}

async function readHolder(path: string): Promise<string | undefined> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return /^\d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Takes several locks in order; on failure releases those already taken. */
export async function acquireLocks(
  wanted: Array<{ path: string; what: string }>,
): Promise<AsyncDisposable & { release(): Promise<void> }> {
  const taken: Lock[] = [];
  const release = async () => {
    for (const lock of taken.reverse()) await lock.release();
    taken.length = 0;
  };
  try {
    for (const { path, what } of wanted) taken.push(await acquireLock(path, what));
  } catch (error) {
    await release();
    throw error;
  }
  return { release, [Symbol.asyncDispose]: release };
}
