/**
 * Consistent online snapshots.
 *
 * A snapshot is first the page reader's image (`page_reader.ts`: the database file overlaid
 * with the instant's committed WAL frames, read under one held read transaction), written into
 * the new file. Where that reader cannot prove its image, it is SQLite's online backup API run
 * inside ONE read transaction on the source: the first read fixes the instant, every later step
 * reads that same instant, so writers in other processes (WAL mode) neither disturb nor restart
 * it, and it finishes in one pass however busy the database is. Step-wise copying without that
 * held transaction restarts on every foreign commit and may never finish under a steady writer.
 *
 * @module
 */
import { backup } from "node:sqlite";
import { dirname, join } from "node:path";
import { copyOut, type FileWriter, openWriter, readAt, writeAt } from "./db_file.ts";
import { type ChunkHasher, startHasher } from "./hasher.ts";
import { BusyError, describeCause, isDiskFull, OperationError } from "../errors.ts";
import {
  checkDatabaseFile,
  type FileHeader,
  openReadOnly,
  pragmaValue,
  sqliteFailure,
} from "./sqlite.ts";
import { type FallbackReason, type PinnedImage, withImage } from "./page_reader.ts";
import { makeTempFolder } from "../files/temp.ts";
import { exists, onReadOnlyMedia, tempView } from "./view.ts";

/** How to take a snapshot. */
export interface SnapshotOptions {
  /** How long to wait for a writer's lock (rollback-journal mode) before giving up, in ms. */
  busyTimeoutMs: number;
  /** Pages copied per step; progress is reported between steps. @default 4096 */
  stepPages?: number;
  /** Called between steps with the pages copied so far and the total. */
  onProgress?: (copiedPages: number, totalPages: number) => void;
  /**
   * The caller has checked the source (`checkDatabaseFile`) and has a connection to it that
   * holds a lock: a raw open and close of the file now would drop every lock of this process.
   */
  sourceChecked?: boolean;
  /**
   * The caller holds the source's write lock on a connection of this process (`BEGIN
   * IMMEDIATE`, as writeInto's `keep` does): the page reader then does not take it again (it
   * would wait on the caller). Only where it is really held: without it, a commit that restarts
   * the WAL could run while the page reader reads the WAL-index header and the frames.
   */
  writeLockHeld?: boolean;
  /**
   * Memory before speed: the hash on this thread (no worker's isolate) and two chunk buffers,
   * not `BUFFERS`. For a copy whose time is hidden behind other work (pull's early backup of the
   * old local database runs beside the transfer), where a worker and 16 MiB of buffers took a
   * 1 GB pull past its 150 MiB bound (158 MiB measured).
   */
  leanMemory?: boolean;
  /**
   * What to tell the user when the destination's disk is full.
   * @default "free some space there, or choose another backup folder"
   */
  spaceHint?: string;
  /**
   * Hash the snapshot with this algorithm as it is written (page reader only): the result's
   * `checksum` is then the hex of exactly the bytes written, in file order, with no pass that
   * reads the file back. The backup API path gives none; its caller hashes the file.
   */
  checksum?: "sha256" | "md5";
}

/** Why a snapshot was copied by the backup API rather than from the page reader. */
export type SnapshotFallbackReason =
  | FallbackReason
  /** The page reader waited for a lock longer than it may (see `PAGE_READER_WAIT_MS`). */
  | "busy"
  /** A `-journal` is beside the database: see `snapshotFromPages`. */
  | "journal"
  /** The page reader failed before it gave a page (its error is the detail). */
  | "reader-error";

/** A fallback to the backup API, and why. */
export interface SnapshotFallback {
  reason: SnapshotFallbackReason;
  /** What was found, in words. */
  detail: string;
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
  /** How the pages were copied: from the page reader, or by SQLite's backup API. */
  method: "pages" | "backup-api";
  /** Why the backup API was used (absent when the page reader made the snapshot). */
  fallback?: SnapshotFallback;
  /** The hash of the bytes written, when `checksum` was asked and the page reader copied. */
  checksum?: { algorithm: "sha256" | "md5"; hex: string };
}

/**
 * How long the page reader may wait for the write lock (or, in rollback-journal mode, for a
 * committing writer) before the backup API is used instead, which needs no write lock: a long
 * write transaction of the application then costs a backup at most this, not --busy-timeout.
 */
const PAGE_READER_WAIT_MS = 1000;
/** Bytes per read of the page reader's image, and per write (and hash) of the snapshot. */
const CHUNK_BYTES = 4 << 20;
/**
 * Chunk buffers in flight: one being read while the others are hashed and written. Measured on
 * a 1 GB backup: see docs/BENCHMARKS.md, Stop 15.
 */
const BUFFERS = 4;
/**
 * From this size on (the source file's), the snapshot is hashed in a worker, on the other core;
 * below it, a worker's start costs more than the hash it moves.
 */
const HASH_WORKER_MIN_BYTES = 64 << 20;
/** See the backup API path: written pages are flushed as the copy goes, every this many bytes. */
const FLUSH_BYTES = 32 << 20;

/**
 * Copies every committed transaction of `source` (WAL content included) at one instant into a
 * new file `dest`, in rollback-journal mode, so the copy needs no `-wal`/`-shm` to be opened.
 * `dest` gets at most the source's permission bits (and never more than the umask allows).
 * `dest` must not exist; on failure it may be left partial and the caller removes it.
 *
 * The pages come from the page reader (`page_reader.ts`: the database file overlaid with the
 * instant's WAL frames, no SQLite in the copy); where it cannot prove an image (read-only media,
 * no `-shm`, a lock it may not wait for, ...) SQLite's backup API copies the same instant, and
 * the result says which ran and why.
 *
 * @throws {OperationError} when the source cannot be read or `dest` cannot be written
 * @throws {BusyError} when the source stays locked past `busyTimeoutMs`
 */
export async function snapshotDatabase(
  source: string,
  dest: string,
  options: SnapshotOptions,
): Promise<SnapshotResult> {
  const header = options.sourceChecked ? undefined : await checkDatabaseFile(source);
  const spaceHint = options.spaceHint ?? "free some space there, or choose another backup folder";
  const mode = await createLikeSource(source, dest, spaceHint);
  const paged = await snapshotFromPages(source, dest, options, spaceHint);
  if ("pages" in paged) {
    await restrictMode(dest, mode);
    return { ...paged, mode, method: "pages" };
  }
  const copied = await snapshotWithBackupApi(source, dest, header, options, spaceHint);
  await restrictMode(dest, mode);
  return { ...copied, mode, method: "backup-api", fallback: paged };
}

/** Only a source its owner may not write (0400, 0440) needs this: dest had to be writable. */
async function restrictMode(dest: string, mode: number): Promise<void> {
  if ((mode & 0o600) !== 0o600) {
    await Deno.chmod(dest, ((await Deno.stat(dest)).mode ?? 0) & mode);
  }
}

/**
 * The snapshot from the page reader, written into the empty `dest` in large positioned writes in
 * file order, page 1 made self-contained as it is read (rollback-journal mode, the instant's
 * page count at 28 and the version-valid-for at 92 equal to the change counter at 24, so SQLite
 * trusts that count, as it does a file the backup API wrote). Each chunk's bytes are hashed
 * (`options.checksum`) in file order, from the same buffer that is written, and the buffer is
 * reused only once both are done: the file is written once, from offset 0 to its end, so the
 * hash is the file's. Or why the backup API must be used, with nothing written.
 *
 * A `-journal` beside the database sends the snapshot to the backup API: the page reader's
 * write-lock connection is read-write, and a read-write connection rolls a hot journal back,
 * which litekeep never does to a live database (see `sqliteFailure`). Errors of the reader
 * before its first page (a source the user may not write, so no write lock) fall back too; the
 * backup API then says what is wrong, if anything still is.
 */
async function snapshotFromPages(
  source: string,
  dest: string,
  options: SnapshotOptions,
  spaceHint: string,
): Promise<Omit<SnapshotResult, "mode" | "method"> | SnapshotFallback> {
  if (await exists(`${source}-journal`)) {
    return {
      reason: "journal",
      detail: `"${source}-journal" exists (a writer is in a transaction, or one stopped in it)`,
    };
  }
  const writeFailed = (error: unknown) =>
    new OperationError(
      `Cannot write the snapshot of "${source}" into "${dirname(dest)}": ${describeCause(error)}`,
      {
        cause: error,
        hint: isDiskFull(error) ? spaceHint : "check the folder's permissions and free space",
      },
    );
  // The file's size suggests the image's (the -wal may add some): a worker, started before the
  // instant is pinned so its start overlaps that, hashes a large one on the other core.
  const fileBytes = (await Deno.stat(source)).size;
  using hasher = options.checksum
    ? await startHasher(options.checksum, {
      inWorker: !options.leanMemory && fileBytes >= HASH_WORKER_MIN_BYTES,
    })
    : undefined;
  using out = openWriter(dest);
  const progress = { copied: 0 };
  const waitMs = Math.min(options.busyTimeoutMs, PAGE_READER_WAIT_MS);
  let result: Awaited<ReturnType<typeof withImage<CopiedImage>>>;
  try {
    result = await withImage(
      source,
      { busyTimeoutMs: waitMs, writeLockHeld: options.writeLockHeld },
      (image) => copyImage(image, out, hasher, { ...options, progress, writeFailed, fileBytes }),
    );
  } catch (error) {
    // Once a page is read, the snapshot is the page reader's: its failure is the snapshot's.
    if (progress.copied > 0) throw error;
    if (error instanceof BusyError) {
      return { reason: "busy", detail: `a writer held its lock for over ${waitMs} ms` };
    }
    return { reason: "reader-error", detail: describeCause(error) };
  }
  if (result.kind === "fallback") return { reason: result.reason, detail: result.detail };
  const image = result.value;
  // The hash is the file's only if the file is exactly what was written: every page, once.
  if (image.writtenBytes !== image.pageCount * image.pageSize) {
    throw new OperationError(
      `Cannot snapshot "${source}": ${image.writtenBytes} bytes were written of ${
        image.pageCount * image.pageSize
      }`,
    );
  }
  options.onProgress?.(image.pageCount, image.pageCount);
  return {
    pages: image.pageCount,
    pageSize: image.pageSize,
    // What a new connection says: a rollback-journal database is in the default mode there.
    journalMode: image.journalMode === "wal" ? "wal" : "delete",
    ...(hasher && options.checksum
      ? { checksum: { algorithm: options.checksum, hex: await hasher.digest() } }
      : {}),
  };
}

/** What `copyImage` wrote. */
interface CopiedImage {
  pageSize: number;
  pageCount: number;
  journalMode: "wal" | "rollback";
  /** Bytes written, from offset 0 on, with no gap. */
  writtenBytes: number;
}

/**
 * Copies the pinned image into `out`, chunk by chunk in file order: each chunk is read straight
 * into one of `BUFFERS` shared buffers (this thread), then hashed (the hasher's thread) and
 * written (Deno's thread pool) from that buffer at once; a buffer is read into again only once
 * its hash and its write are done. Writes go one at a time (a write seeks, then writes).
 */
async function copyImage(
  image: PinnedImage,
  out: FileWriter,
  hasher: ChunkHasher | undefined,
  o: SnapshotOptions & {
    progress: { copied: number };
    writeFailed: (error: unknown) => Error;
    fileBytes: number;
  },
): Promise<CopiedImage> {
  const { pageSize, pageCount } = image;
  const chunkPages = Math.max(1, Math.floor(CHUNK_BYTES / pageSize));
  const slots = Array.from(
    { length: Math.min(o.leanMemory ? 2 : BUFFERS, Math.ceil(pageCount / chunkPages)) },
    () => ({
      // Shared, so that a worker hashes the very bytes that are written, without a copy.
      bytes: new Uint8Array(new SharedArrayBuffer(chunkPages * pageSize)),
      done: Promise.resolve() as Promise<unknown>,
    }),
  );
  const step = o.stepPages ?? 4096;
  let writing: Promise<void> = Promise.resolve();
  // The flush of the last FLUSH_BYTES, running while the next ones are read and written.
  let syncing: Promise<void> | undefined;
  let writtenBytes = 0;
  try {
    for (let first = 1, n = 0; first <= pageCount; first += chunkPages, n++) {
      const count = Math.min(chunkPages, pageCount - first + 1);
      const slot = slots[n % slots.length];
      await slot.done;
      const bytes = slot.bytes.subarray(0, count * pageSize);
      image.readRunInto(first, bytes);
      if (first === 1) selfContainedPage1(bytes.subarray(0, pageSize), pageCount);
      o.progress.copied = first + count - 1;
      const offset = (first - 1) * pageSize;
      const hashed = hasher?.update(bytes);
      // One write at a time, in file order: the file is then exactly the bytes hashed.
      const wrote = writing.then(() => out.writeAtAsync(offset, bytes)).catch((error) => {
        throw o.writeFailed(error);
      });
      writing = wrote;
      slot.done = Promise.all([hashed, wrote]);
      // Its error is thrown where it is awaited, not reported as unhandled before that.
      slot.done.catch(() => {});
      writtenBytes = offset + bytes.length;
      // As in the backup API path: the application's commits must not wait behind a flush of
      // the whole copy at the caller's final sync. Unlike there, the flush overlaps the copy;
      // only a disk slower than the copy makes it wait (for the flush before).
      if (Math.floor(writtenBytes / FLUSH_BYTES) > Math.floor(offset / FLUSH_BYTES)) {
        await syncing;
        syncing = wrote.then(() =>
          out.syncData().catch((error) => {
            throw o.writeFailed(error);
          })
        );
        syncing.catch(() => {});
      }
      if (Math.floor(o.progress.copied / step) > Math.floor((first - 1) / step)) {
        o.onProgress?.(
          o.progress.copied,
          Math.max(o.progress.copied, Math.floor(o.fileBytes / pageSize)),
        );
      }
    }
    await Promise.all(slots.map((slot) => slot.done));
    await syncing;
  } finally {
    // The descriptor stays open until its writes and flush have settled (errors: above).
    await writing.catch(() => {});
    await syncing?.catch(() => {});
    await Promise.all(slots.map((slot) => slot.done.catch(() => {})));
  }
  return { pageSize, pageCount, journalMode: image.journalMode, writtenBytes };
}

/**
 * Makes the page reader's page 1 (in place) the header of a standalone file: rollback-journal
 * mode (18-19), the instant's page count at 28, and the version-valid-for at 92 equal to the
 * change counter at 24, so SQLite trusts that count, as it does a file the backup API wrote.
 */
function selfContainedPage1(page1: Uint8Array, pageCount: number): void {
  const view = new DataView(page1.buffer, page1.byteOffset, page1.byteLength);
  page1[18] = 1;
  page1[19] = 1;
  view.setUint32(28, pageCount);
  view.setUint32(92, view.getUint32(24));
}

/** The snapshot by SQLite's backup API inside one read transaction (see the module doc). */
async function snapshotWithBackupApi(
  source: string,
  dest: string,
  header: FileHeader | undefined,
  options: SnapshotOptions,
  spaceHint: string,
): Promise<{ pages: number; pageSize: number; journalMode: string }> {
  // A WAL database on read-only media (a mounted card, a snapshot) cannot be opened where it
  // is: SQLite needs a -shm beside it that it can write. Nothing can change it there, so a view
  // of it (its file and -wal, linked or copied to a temp folder) is the same snapshot.
  await using view = header?.wal && onReadOnlyMedia(dirname(source))
    ? await tempView(source, await exists(`${source}-wal`))
    : undefined;
  const readFrom = view?.path ?? source;
  let db;
  try {
    db = openReadOnly(readFrom, options.busyTimeoutMs);
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
          hint: isDiskFull(error) ? spaceHint : "check the folder's permissions and free space",
        },
      );
    } finally {
      handle?.close();
    }
    db.exec("COMMIT");
    await makeSelfContained(dest);
    return { pages, pageSize, journalMode };
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
async function createLikeSource(
  source: string,
  dest: string,
  spaceHint: string,
): Promise<number> {
  const mode = ((await Deno.stat(source)).mode ?? 0o644) & 0o777;
  try {
    (await Deno.open(dest, { write: true, createNew: true, mode: (mode & 0o666) | 0o600 }))
      .close();
  } catch (error) {
    throw new OperationError(
      `Cannot create the snapshot of "${source}" in "${dirname(dest)}": ${describeCause(error)}`,
      {
        cause: error,
        hint: isDiskFull(error) ? spaceHint : "check the folder's permissions and free space",
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
export function makeSelfContained(path: string): Promise<void> {
  const versions = readAt(path, 18, 2);
  if (versions.length !== 2) {
    throw new OperationError(`Snapshot "${path}" is shorter than a SQLite header`);
  }
  if (versions[0] !== 1 || versions[1] !== 1) writeAt(path, 18, new Uint8Array([1, 1]));
  return Promise.resolve();
}

/**
 * A self-contained copy of `path` in a fresh folder of the system temp dir, removed on dispose:
 * how a file whose header says WAL (a backup made by another tool) is opened without SQLite
 * creating `-wal`/`-shm` beside the original.
 */
export async function selfContainedCopy(path: string): Promise<{ path: string } & AsyncDisposable> {
  const dir = await makeTempFolder("litekeep-copy-");
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  const copy = join(dir, "copy.db");
  try {
    await copyOut(path, copy);
    await makeSelfContained(copy);
  } catch (error) {
    await remove();
    throw error;
  }
  return { path: copy, [Symbol.asyncDispose]: remove };
}
