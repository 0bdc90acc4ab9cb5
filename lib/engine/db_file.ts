/**
 * The one owner of raw (not through SQLite) access to database files: a database, its `-wal`,
 * `-shm` and `-journal`, backups and snapshots.
 *
 * Why one owner: SQLite's locks are POSIX advisory locks, which belong to the process and the
 * file, not to a descriptor. Closing ANY descriptor of a database file drops EVERY lock this
 * process holds on it, those of SQLite's connections included ("How To Corrupt An SQLite
 * Database File", 2.2). A header read that opens and closes the file while one of our
 * connections holds a read transaction silently lets another process checkpoint, restart or
 * delete the `-wal` under that reader (measured: 137 of 150 wrong page images when reads opened
 * and closed the files, 0 of ~1,000 when descriptors stayed open).
 *
 * The rule, by construction:
 * - every connection is opened through `lib/engine/sqlite.ts`'s helpers, which call
 *   `connectionOpened()` and its release on close;
 * - every raw read or write of a database file goes through this module, which never closes a
 *   descriptor of a file while a connection on its database is open: it keeps it in a
 *   process-wide table instead, and closes the kept ones when the last connection closes.
 * `tests/db_file_test.ts` fails when lib/ opens files elsewhere without saying why that is safe.
 *
 * Reads are positioned and synchronous (seek and read in one turn of the event loop), so async
 * users sharing a kept descriptor cannot interleave their seeks.
 *
 * Workers (`check_worker.ts`) are other isolates with their own copy of this table, but the
 * same process: they only open private snapshot temps and backups, and the caller registers the
 * file here for as long as the worker runs (see `inspectInWorker`), so the main thread's
 * hashing of the same file keeps its descriptor until the worker's connection is closed.
 *
 * @module
 */
import { resolve } from "node:path";
import { OperationError } from "../errors.ts";

const SIDE_SUFFIXES = ["-wal", "-shm", "-journal"];

/** Connections (or workers) open per database, by canonical path. */
const connections = new Map<string, number>();
/** Descriptors kept per database while it has connections: file path -> descriptors. */
const kept = new Map<string, Map<string, Kept[]>>();

interface Kept {
  file: Deno.FsFile;
  write: boolean;
  ino: number | null;
}

/**
 * Real paths of databases, by absolute name: `realpath(3)` costs a syscall per path component,
 * and the page reader and protocol 2's delta read through here once a batch or a page (~0.1 s of
 * a 100 MB delta pull). See {@linkcode canonical} for why a cached one is safe.
 */
const realPaths = new Map<string, string>();
/** More distinct databases than this in one run is not a use litekeep has: start over. */
const REAL_PATHS_MAX = 1024;

/**
 * The database a file belongs to (itself, or the one its suffix names), by real path, and the
 * absolute name it was given by (`shown`) when that is not `file`.
 *
 * `fresh` (what `connectionOpened` asks) always resolves the name; reads may use the real path
 * cached for it. Why a cached one never sends a read to another file than a fresh one would:
 * - `realpath` depends on names only, never on which inode a name holds: a file replaced or
 *   renamed over under the same name (a new `-wal`, a restore's rename) resolves to the same
 *   path as before, and `acquire` then stats and opens that path, so it reaches the new file
 *   exactly as before, and tells a kept descriptor of the old inode from it by `ino`.
 * - A name that resolved to itself (no symlink in it) names, when opened, whatever a fresh
 *   `realpath` of it would name: the kernel follows the same components. A read reaches the
 *   same inode; only the table key could differ, if a component became a symlink since, and
 *   `connectionOpened` resolves afresh and updates the cache, so a connection's key and the
 *   reads after it agree (a rename of the path under an open connection is outside what the
 *   locks can survive anyway: the connection's own key was fixed at its open).
 * - A name that went through a symlink (`shown` differs from `file`): `acquire` checks that both
 *   names still show the same inode, else it resolves afresh. A retargeted symlink is followed.
 * A name that does not exist is not cached: it may appear later, as a symlink.
 */
function canonical(path: string, fresh = false): { db: string; file: string; shown?: string } {
  const abs = resolve(path);
  const suffix = SIDE_SUFFIXES.find((s) => abs.endsWith(s)) ?? "";
  const name = abs.slice(0, abs.length - suffix.length);
  let db = fresh ? undefined : realPaths.get(name);
  if (db === undefined) {
    db = name;
    try {
      // Locks belong to the file, not to the name: a symlink must share the table entry.
      db = Deno.realPathSync(name);
      if (realPaths.size >= REAL_PATHS_MAX) realPaths.clear();
      realPaths.set(name, db);
    } catch {
      // Not there (yet): the name is all there is.
      realPaths.delete(name);
    }
  }
  const file = db + suffix;
  return file === abs ? { db, file } : { db, file, shown: abs };
}

/**
 * Records that a connection (or a worker's) on `path` is open: until the returned release is
 * called, no descriptor of the database or its side files is closed by this process.
 *
 * @returns the release; calling it more than once is harmless
 */
export function connectionOpened(path: string): () => void {
  const { db } = canonical(path, true);
  connections.set(db, (connections.get(db) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (connections.get(db) ?? 1) - 1;
    if (left > 0) {
      connections.set(db, left);
      return;
    }
    connections.delete(db);
    // The last connection is closed, so this process holds no lock there that a close can drop.
    for (const list of kept.get(db)?.values() ?? []) for (const k of list) k.file.close();
    kept.delete(db);
  };
}

/** A descriptor for `path`: a kept one when its database has connections open. */
function acquire(path: string, write: boolean): { file: Deno.FsFile; done: () => void } {
  let { db, file: name, shown } = canonical(path);
  // One stat serves both checks below: reads of WAL frames come here once a page.
  let info: Deno.FileInfo | undefined;
  if (shown !== undefined) {
    // Through a symlink: its target may have changed since the real path was cached.
    try {
      info = Deno.statSync(name);
      const now = Deno.statSync(shown);
      if (now.ino !== info.ino || now.dev !== info.dev) info = undefined;
    } catch {
      info = undefined;
    }
    if (info === undefined) ({ db, file: name } = canonical(path, true));
  }
  info ??= Deno.statSync(name);
  // A FIFO or device under a database's name would block open(2) forever.
  if (!info.isFile) {
    throw new OperationError(`"${name}" is not a regular file (a FIFO, a device or a socket)`, {
      hint: `if no program uses "${name}", remove it and run again`,
    });
  }
  if (connections.has(db)) {
    // The file may have been replaced (a -journal, a new -wal): use the one the name shows.
    const ino = info.ino;
    const reuse = kept.get(db)?.get(name)?.find((k) => k.ino === ino && (k.write || !write));
    if (reuse) return { file: reuse.file, done: () => {} };
  }
  const file = Deno.openSync(name, { read: true, write });
  return {
    file,
    done: () => {
      if (!connections.has(db)) {
        file.close();
        return;
      }
      // A connection opened meanwhile: closing now would drop its locks. Keep it (never
      // replaced, only added to: an old descriptor may still be the inode a lock is on).
      const files = kept.get(db) ?? new Map<string, Kept[]>();
      kept.set(db, files);
      const list = files.get(name) ?? [];
      files.set(name, list);
      list.push({ file, write, ino: file.statSync().ino });
    },
  };
}

/** Reads up to `buffer.length` bytes at `offset` into `buffer`; the view of what was read. */
function readFromInto(file: Deno.FsFile, offset: number, buffer: Uint8Array): Uint8Array {
  file.seekSync(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < buffer.length) {
    const n = file.readSync(buffer.subarray(read));
    if (n === null || n === 0) break;
    read += n;
  }
  return buffer.subarray(0, read);
}

/** Reads up to `length` bytes at `offset` of an acquired descriptor, in one synchronous turn. */
function readFrom(file: Deno.FsFile, offset: number, length: number): Uint8Array {
  const buffer = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < length) {
    const n = file.readSync(buffer.subarray(read));
    if (n === null || n === 0) break;
    read += n;
  }
  return read === length ? buffer : buffer.subarray(0, read);
}

/**
 * Reads up to `length` bytes of `path` at `offset` (fewer at the end of the file).
 *
 * @throws {Deno.errors.NotFound} and other file errors, as `Deno.open` does
 */
export function readAt(path: string, offset: number, length: number): Uint8Array {
  const { file, done } = acquire(path, false);
  try {
    return readFrom(file, offset, length);
  } finally {
    done();
  }
}

/**
 * Reads up to `buffer.length` bytes of `path` at `offset` into `buffer` (no allocation: for
 * loops over many pages that reuse one buffer); returns how many bytes were read.
 */
export function readInto(path: string, offset: number, buffer: Uint8Array): number {
  const { file, done } = acquire(path, false);
  try {
    return readFromInto(file, offset, buffer).length;
  } finally {
    done();
  }
}

/**
 * Runs `use` with a positioned reader of `path` and its size, on one descriptor: for parsers
 * that read a file piece by piece (the `-wal`'s frames).
 */
export function readWith<T>(
  path: string,
  use: (read: (offset: number, length: number) => Uint8Array, size: number) => T,
): T {
  const { file, done } = acquire(path, false);
  try {
    return use((offset, length) => readFrom(file, offset, length), file.statSync().size);
  } finally {
    done();
  }
}

/**
 * The content of `path` in chunks of `chunkBytes`, from the start to the end it has when each
 * chunk is read. The descriptor is held across the awaits between chunks; every chunk is a
 * positioned read, so sharing it with other users is safe.
 *
 * With `reuse`, every chunk is a view of one buffer, valid until the next chunk is asked for:
 * for consumers done with a chunk by then (a hash, an awaited write). A fresh 1 MiB per chunk
 * let up to V8's external memory limit (~64 MB) of dead buffers pile up: hashing a 100 MB
 * backup peaked at 150 MB RSS.
 */
export async function* readChunks(
  path: string,
  chunkBytes = 1 << 20,
  options: { reuse?: boolean } = {},
): AsyncGenerator<Uint8Array> {
  const { file, done } = acquire(path, false);
  const buffer = options.reuse ? new Uint8Array(chunkBytes) : undefined;
  try {
    for (let offset = 0;; offset += chunkBytes) {
      const chunk = buffer
        ? readFromInto(file, offset, buffer)
        : readFrom(file, offset, chunkBytes);
      if (chunk.length === 0) return;
      yield chunk;
      if (chunk.length < chunkBytes) return;
    }
  } finally {
    done();
  }
}

/** Writes `bytes` at `offset` of `path` (an existing file). */
export function writeAt(path: string, offset: number, bytes: Uint8Array): void {
  const { file, done } = acquire(path, true);
  try {
    file.seekSync(offset, Deno.SeekMode.Start);
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
  } finally {
    done();
  }
}

/** A writer of one file on one kept descriptor: see {@linkcode openWriter}. */
export interface FileWriter extends Disposable {
  /** Writes `bytes` at byte `offset`. */
  writeAt(offset: number, bytes: Uint8Array): void;
  /**
   * Writes `bytes` at byte `offset` on a thread of Deno's pool (a write to the page cache blocks
   * while the disk catches up), so the caller goes on meanwhile. It seeks, then writes: no other
   * write of this writer may start before it settles, and `bytes` must not change until then.
   */
  writeAtAsync(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Flushes what was written so far to the disk (fdatasync) on a thread of Deno's pool, so that
   * the caller goes on writing meanwhile; the writer must not be disposed before it settles.
   */
  syncData(): Promise<void>;
}

/**
 * Writes the existing file `path` on one descriptor kept until disposed: how a snapshot made
 * from pages (a fresh temp that no connection holds) is written without an open and a close per
 * write. Writes are positioned (seek and write in one synchronous turn), like every write here.
 */
export function openWriter(path: string): FileWriter {
  const { file, done } = acquire(path, true);
  return {
    writeAt(offset, bytes) {
      file.seekSync(offset, Deno.SeekMode.Start);
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    },
    async writeAtAsync(offset, bytes) {
      file.seekSync(offset, Deno.SeekMode.Start);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
    },
    syncData() {
      return file.syncData();
    },
    [Symbol.dispose]: done,
  };
}

/**
 * Copies `path` into a new file `dest` (which must not exist): how a database is copied
 * without a close of its descriptor dropping this process's locks on it.
 */
export async function copyOut(path: string, dest: string): Promise<void> {
  using out = await Deno.open(dest, { write: true, createNew: true });
  for await (const chunk of readChunks(path, 1 << 20, { reuse: true })) {
    let written = 0;
    while (written < chunk.length) written += await out.write(chunk.subarray(written));
  }
}
