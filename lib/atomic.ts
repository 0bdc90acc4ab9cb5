/**
 * Durable writes. Every file litekeep creates is first written under a temporary name in the
 * same folder, synced, then renamed into place and the folder synced, so a crash or `kill -9`
 * at any moment leaves the old state or the new one, never half of one.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Prefix of every temporary name. No backup name starts with a dot, so no command mistakes one. */
export const TEMP_PREFIX = ".litekeep-tmp-";

/** Temps older than this belong to no live run, whoever wrote them. */
export const STALE_TEMP_MS = 3_600_000;

/**
 * Whether process `pid` runs: true or false where `/proc` tells (Linux), undefined where that
 * cannot be known (macOS). A zombie or a pid reused by another program counts as alive, which
 * errs on the side of keeping things.
 */
export function processAlive(pid: number): boolean | undefined {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return undefined;
  }
  try {
    Deno.statSync("/proc/self");
    return false;
  } catch {
    return undefined;
  }
}

/** True when `name` (a base name) is one of litekeep's temporary files or their side files. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/**
 * A fresh temporary path in `dir` for a file that will become `finalName`.
 * The pid and a random part make it unique between concurrent processes.
 */
export function tempPathFor(dir: string, finalName: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return join(dir, `${TEMP_PREFIX}${Deno.pid}-${random}-${finalName}`);
}

/**
 * Flushes a file's data and metadata to the device. Opened read-only: fsync needs no write
 * access, and a copy of a 0400 database is 0400 itself.
 */
export async function syncFile(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true });
  await file.sync();
}

/**
 * Flushes a folder's entries, so that a rename inside it survives a power cut.
 * Some platforms cannot open folders for syncing; there the rename is as durable as the OS makes it.
 */
export async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(dir, { read: true });
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // EINVAL/EBADF on folders on some systems: nothing more can be done there.
  } finally {
    handle.close();
  }
}

/** Removes `path` if it exists; never throws. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Already gone, or never created.
  }
}

/** Removes a temporary database and the side files SQLite may have left beside it. */
export async function removeTempDb(path: string): Promise<void> {
  for (const suffix of ["", "-journal", "-wal", "-shm"]) await removeQuietly(path + suffix);
}

/** Renames a synced temporary file into place, then syncs the folder so the rename is durable. */
export async function publish(tempPath: string, finalPath: string): Promise<void> {
  await Deno.rename(tempPath, finalPath);
  await syncDir(dirname(finalPath));
}

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileOptions {
  /** Permission bits of the new file, masked by the umask. @default 0o666 */
  mode?: number;
}

/**
 * Writes `data` to `path` atomically: temp in the same folder, write, fsync, rename, fsync the
 * folder. The temp file is removed on any failure.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileOptions = {},
): Promise<void> {
  const temp = tempPathFor(dirname(path), basename(path));
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    {
      // The mode applies from creation on: a sidecar is never readable by more than its backup.
      using file = await Deno.open(temp, {
        write: true,
        createNew: true,
        mode: (options.mode ?? 0o666) & 0o666,
      });
      let offset = 0;
      while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
      await file.sync();
    }
    await publish(temp, path);
  } finally {
    await removeQuietly(temp);
  }
}

/**
 * Removes leftovers of killed runs (temporary files and their SQLite side files) from `dir`.
 *
 * @param olderThanMs only files last modified at least this long ago: temps of other kinds may
 *   belong to a live run that does not hold this folder's lock (a pull into the same folder)
 * @param isOwn temps of the caller's own kind, removed whatever their age: call with it only
 *   while holding the lock that every writer of that kind holds
 * @returns the paths removed
 */
export async function cleanTemps(
  dir: string,
  now: Date,
  olderThanMs = 0,
  isOwn: (name: string) => boolean = () => false,
): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !isTempName(entry.name)) continue;
    const path = join(dir, entry.name);
    try {
      const info = await Deno.stat(path);
      const age = now.getTime() - (info.mtime?.getTime() ?? 0);
      if (age < olderThanMs && !isOwn(entry.name)) continue;
      await Deno.remove(path);
      removed.push(path);
    } catch {
      // Vanished meanwhile: nothing to clean.
    }
  }
  return removed;
}
