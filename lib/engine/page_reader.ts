/**
 * The pages of a live database at ONE instant, read straight from its file overlaid with that
 * instant's committed `-wal` frames: no temp file, no backup API.
 *
 * How (WAL mode):
 * 1. connection W takes `BEGIN IMMEDIATE`: the WAL write lock, so no commit (and no RESTART or
 *    TRUNCATE checkpoint, which take the write lock too) moves the WAL-index header while it is
 *    read;
 * 2. connection R (read-only) runs `BEGIN` and a read: its read transaction fixes the instant
 *    and holds a read mark (or read-lock 0), which it keeps until the last page is read;
 * 3. the WAL-index header is read from the `-shm` (two 48-byte copies that must be equal),
 *    with the checkpoint info's `nBackfill`;
 * 4. W rolls back (it wrote nothing): writers go on committing while the pages are read;
 * 5. the image is pages 1..nPage of the database file, each replaced by the LAST frame <= mxFrame
 *    that holds it, or the file alone when nBackfill >= mxFrame;
 * 6. R ends its transaction.
 *
 * Why the image is that instant's, although writers and checkpointers run meanwhile:
 * - Commits after W's rollback append frames past mxFrame (never read here), or restart the WAL
 *   from frame 1. A restart needs every read mark but read-lock 0 free: R holds its read mark,
 *   so frames 1..mxFrame stay as they were for as long as R's transaction lasts.
 * - A checkpoint backfills only up to the smallest read mark in use (it cannot take R's mark
 *   exclusively), so it writes into the database file only pages that have a frame <= R's mark
 *   <= mxFrame, and writes them with the content of their last such frame: exactly the frame
 *   this module reads instead of the file for those pages. Every page without such a frame is
 *   left alone in the file. The file is truncated only when a checkpoint backfills the whole
 *   WAL, which R's mark forbids while later frames exist; then its size is our instant's nPage.
 * - When nBackfill >= mxFrame, every frame of the instant is already in the file, and R may sit
 *   on read-lock 0 (it reads the file only). Then no checkpoint can backfill at all (it needs
 *   read-lock 0 exclusively), but a writer MAY restart the WAL and overwrite frames 1.., so the
 *   frames are not read: the file alone is the image.
 * - With mxFrame == 0 the header's nPage is 0: the page count is the database header's (offset
 *   28, valid when the change counter at 24 equals the version-valid-for at 92), else the size.
 * - The WAL-index header is written by writers under the write lock W holds, and its nBackfill
 *   only grows while R reads (a reset needs the write lock too), so the two reads agree.
 * - All raw reads go through `db_file.ts`: a close of any descriptor of the database or its side
 *   files would drop R's POSIX locks (its read mark) and with them every guarantee above.
 * - W is closed while R still holds its shared lock, so its close never checkpoints nor deletes
 *   the `-wal` (that needs an exclusive lock on the database file).
 *
 * Rollback-journal mode: R's shared lock alone keeps every writer from writing the file, so the
 * image is the file's pages 1..N as they are.
 *
 * The lock-byte page (the page holding byte offset 1 GiB) is never written by SQLite, nor by the
 * backup API: it is given as zeros. Page 1 is given as stored: its header still says WAL (bytes
 * 18-19 are 2) and its change counter and version-valid-for (24-27, 92-99) are as the last
 * writer left them; a caller writing a standalone file sets 18-19 to 1, as `makeSelfContained`
 * does (`snapshot.ts` also sets the page count at 28, which `readPages`'s `onImage` gives before
 * page 1, and 92 equal to 24, so SQLite trusts that count).
 *
 * Where the instant cannot be proved from the files (no `-shm`, as with a heap-memory WAL
 * index; an unknown WAL-index version; header copies that differ; read-only media, where no
 * write lock can be taken), a `PageFallback` says why, so the caller can use the backup API
 * (`snapshot.ts`) instead. An application in `locking_mode=EXCLUSIVE` holds the file's lock for
 * good: no connection of ours gets in, so that is a `BusyError`, as it is for the backup API.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { readAt, readInto, readWith } from "./db_file.ts";
import {
  checkDatabaseFile,
  openReadOnly,
  openReadWrite,
  pragmaValue,
  sqliteFailure,
} from "./sqlite.ts";
import { onReadOnlyMedia } from "./view.ts";
import { OperationError } from "../errors.ts";

/** The only WAL-index format SQLite has written (since 3.7.0). */
const WAL_INDEX_VERSION = 3007000;
const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** Byte offset of the lock-byte ("pending byte") page. */
const LOCK_BYTE_OFFSET = 0x40000000;
/** Pages read from the database file per read. */
const BATCH_PAGES = 64;

/** Why the page reader could not prove an image, so the backup API should be used. */
export type FallbackReason =
  | "no-shm"
  | "wal-index-version"
  | "wal-index-torn"
  | "page-size-mismatch"
  | "frame-salt-mismatch"
  | "short-read"
  | "read-only-media";

/** The page reader could not prove an image: use the backup API. Nothing was given to `onPage`. */
export interface PageFallback {
  kind: "fallback";
  reason: FallbackReason;
  /** What was found, in words. */
  detail: string;
}

/** An image was given to `onPage`, pages 1..`pageCount` in order. */
export interface PageImage {
  kind: "image";
  pageSize: number;
  pageCount: number;
  journalMode: "wal" | "rollback";
  /** The instant's last committed WAL frame (0 in rollback-journal mode). */
  mxFrame: number;
  /** Pages taken from the `-wal` rather than the database file. */
  walPages: number;
}

/** What `readPages` did. */
export type PageReadResult = PageImage | PageFallback;

/** How to read pages. */
export interface PageReaderOptions {
  /** How long to wait for a writer's lock before giving up, in ms. */
  busyTimeoutMs: number;
  /**
   * Called once at the image's instant, while the write lock is held (no commit can happen):
   * e.g. to open another read transaction that sees exactly what the image holds.
   */
  onInstant?: () => void;
  /**
   * The caller holds the database's write lock itself, through a connection of its own (a
   * `BEGIN IMMEDIATE` it keeps until the pages are read): step 1's lock is then already held,
   * and taking it again would wait on the caller for `busyTimeoutMs`.
   */
  writeLockHeld?: boolean;
}

/** The shape of a pinned image, known before its first page: see {@linkcode ReadPagesOptions}. */
export type ImageShape = Omit<PageImage, "kind" | "walPages">;

/** How `readPages` reads, and what it tells before the first page. */
export interface ReadPagesOptions extends PageReaderOptions {
  /**
   * Called once the instant is pinned (after step 4: the write lock is released, R's read
   * transaction still holds the instant), before the first `onPage`, with the image's shape: a
   * writer of a standalone file can then make page 1 self-contained (its page count) as soon as
   * it is given, and write and hash the file in order, in one pass. Not called on a fallback.
   */
  onImage?: (shape: ImageShape) => void;
}

/** The fields of a WAL-index header (`-shm`) that the reader uses. */
export interface WalIndex {
  pageSize: number;
  mxFrame: number;
  nPage: number;
  nBackfill: number;
  /** The WAL header's salts as stored (frames of this generation carry the same bytes). */
  salt: Uint8Array;
}

/**
 * Parses the first 136 bytes of a `-shm`: the two copies of the WAL-index header (48 bytes each,
 * native byte order: little-endian everywhere SQLite is built for here) and the checkpoint
 * info's nBackfill (offset 96).
 *
 * @returns the fields, or why they cannot be trusted
 */
export function parseWalIndex(bytes: Uint8Array): WalIndex | PageFallback {
  if (bytes.length < 100) {
    return fallback("no-shm", `the -shm holds ${bytes.length} bytes, not a WAL-index header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(0, true);
  if (version !== WAL_INDEX_VERSION) {
    return fallback("wal-index-version", `WAL-index version ${version}, not ${WAL_INDEX_VERSION}`);
  }
  for (let i = 0; i < 48; i++) {
    if (bytes[i] !== bytes[48 + i]) {
      return fallback("wal-index-torn", `the two WAL-index header copies differ at byte ${i}`);
    }
  }
  if (bytes[12] !== 1) return fallback("wal-index-torn", "the WAL-index header is not initialised");
  const size = view.getUint16(14, true);
  return {
    pageSize: (size & 0xfe00) + ((size & 1) << 16),
    mxFrame: view.getUint32(16, true),
    nPage: view.getUint32(20, true),
    nBackfill: view.getUint32(96, true),
    salt: bytes.slice(32, 40),
  };
}

/**
 * Gives `onPage` every page of the live database `path` at one instant, in order from page 1
 * (see the module doc for why the pages are consistent); `options.onImage` is told the image's
 * page count and size first. The read transaction that holds the
 * instant lasts until the last `onPage` has returned (or its promise settled). `bytes` is a view
 * of a buffer reused for the next pages: valid until `onPage` returns (or its promise settles);
 * copy what must outlive that.
 *
 * @returns the image's shape, or a `PageFallback` (before any page is given) saying why the
 *   backup API must be used instead
 * @throws {OperationError} when the database cannot be opened or read
 * @throws {BusyError} when a writer holds it past `busyTimeoutMs`
 */
export async function readPages(
  path: string,
  onPage: (pageNumber: number, bytes: Uint8Array) => void | Promise<void>,
  options: ReadPagesOptions,
): Promise<PageReadResult> {
  return await pinned(path, options, (instant) => {
    const { pageSize, pageCount, journalMode, mxFrame } = instant;
    options.onImage?.({ pageSize, pageCount, journalMode, mxFrame });
    return emitPages(path, instant, onPage);
  });
}

/**
 * Opens `path`, pins its instant (`pinInstant`) and gives it to `use`; the read transaction that
 * holds the instant ends when `use`'s promise settles. The one way in for `readPages` and
 * `withImage`.
 */
async function pinned<T>(
  path: string,
  options: PageReaderOptions,
  use: (instant: Instant) => Promise<T>,
): Promise<T | PageFallback> {
  const header = await checkDatabaseFile(path);
  // No write lock can be taken there, and SQLite cannot create a -shm: snapshot.ts's view of
  // the file is the way.
  if (header.wal && onReadOnlyMedia(dirname(path))) {
    return fallback("read-only-media", `"${dirname(path)}" is on read-only media`);
  }
  let reader: DatabaseSync;
  try {
    reader = openReadOnly(path, options.busyTimeoutMs);
  } catch (error) {
    throw sqliteFailure(error, "Cannot open database", path);
  }
  try {
    const instant = pinInstant(path, reader, options);
    if (instant.kind === "fallback") return instant;
    return await use(instant);
  } finally {
    try {
      reader.exec("ROLLBACK");
    } catch {
      // No transaction was open.
    }
    reader.close();
  }
}

/** What the pinned instant is made of. */
interface Instant {
  kind: "instant";
  pageSize: number;
  pageCount: number;
  journalMode: "wal" | "rollback";
  mxFrame: number;
  /** Page number -> byte offset of its frame's data in the `-wal`. */
  frames: Map<number, number>;
}

/** Steps 1-4: the write lock, R's read transaction, the WAL-index header, the release. */
function pinInstant(
  path: string,
  reader: DatabaseSync,
  options: PageReaderOptions,
): Instant | PageFallback {
  let writer: DatabaseSync | undefined;
  try {
    try {
      if (!options.writeLockHeld) {
        writer = openReadWrite(path, options.busyTimeoutMs);
        // prepare(), not exec(): only its errors carry SQLite's code, which tells "busy".
        writer.prepare("BEGIN IMMEDIATE").run();
      }
      reader.exec("BEGIN");
      // The first read fixes the instant and takes the read mark (or the shared lock).
      reader.prepare("SELECT count(*) FROM sqlite_schema").get();
    } catch (error) {
      throw sqliteFailure(error, "Cannot read database", path);
    }
    const wal = String(pragmaValue(reader, "journal_mode")).toLowerCase() === "wal";
    const instant = wal ? walInstant(path) : rollbackInstant(path);
    if (instant.kind === "instant") options.onInstant?.();
    return instant;
  } finally {
    try {
      writer?.exec("ROLLBACK");
    } catch {
      // BEGIN IMMEDIATE failed: nothing to release.
    }
    // While R holds its lock, so this close cannot checkpoint or delete the -wal.
    writer?.close();
  }
}

/** The page size and count the database file's own header gives. */
function fileShape(path: string): { pageSize: number; pageCount: number } | PageFallback {
  const head = readAt(path, 0, 100);
  if (head.length < 100) return fallback("short-read", "the database header is incomplete");
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const raw = view.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const valid = view.getUint32(24) === view.getUint32(92);
  const size = Deno.statSync(path).size;
  const pageCount = valid && view.getUint32(28) > 0
    ? view.getUint32(28)
    : Math.floor(size / pageSize);
  return { pageSize, pageCount };
}

function rollbackInstant(path: string): Instant | PageFallback {
  const shape = fileShape(path);
  if ("kind" in shape) return shape;
  return { kind: "instant", ...shape, journalMode: "rollback", mxFrame: 0, frames: new Map() };
}

function walInstant(path: string): Instant | PageFallback {
  let shm: Uint8Array;
  try {
    shm = readAt(`${path}-shm`, 0, 136);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return fallback("no-shm", "there is no -shm (exclusive locking mode, or heap-memory WAL)");
    }
    throw error;
  }
  const index = parseWalIndex(shm);
  if ("kind" in index) return index;
  const shape = fileShape(path);
  if ("kind" in shape) return shape;
  const base = { kind: "instant" as const, journalMode: "wal" as const, mxFrame: index.mxFrame };
  if (index.mxFrame === 0) return { ...base, ...shape, frames: new Map() };
  if (index.pageSize !== shape.pageSize) {
    return fallback(
      "page-size-mismatch",
      `the WAL index says ${index.pageSize}-byte pages, the file ${shape.pageSize}`,
    );
  }
  const pageCount = index.nPage;
  // All of the instant is in the file; R may be on read-lock 0, so the WAL may restart.
  if (index.nBackfill >= index.mxFrame) {
    return { ...base, pageSize: index.pageSize, pageCount, frames: new Map() };
  }
  const frames = walFrames(path, index);
  if ("kind" in frames) return frames;
  return { ...base, pageSize: index.pageSize, pageCount, frames };
}

/** The last frame <= mxFrame of each page, checked to be of this WAL generation. */
function walFrames(path: string, index: WalIndex): Map<number, number> | PageFallback {
  return readWith(`${path}-wal`, (read) => {
    const frames = new Map<number, number>();
    const stride = FRAME_HEADER_BYTES + index.pageSize;
    for (let frame = 1; frame <= index.mxFrame; frame++) {
      const offset = WAL_HEADER_BYTES + (frame - 1) * stride;
      const head = read(offset, FRAME_HEADER_BYTES);
      if (head.length < FRAME_HEADER_BYTES) {
        return fallback("short-read", `the -wal ends before frame ${frame} of ${index.mxFrame}`);
      }
      for (let i = 0; i < 8; i++) {
        if (head[8 + i] !== index.salt[i]) {
          return fallback("frame-salt-mismatch", `frame ${frame} is not of this WAL's generation`);
        }
      }
      const page = new DataView(head.buffer, head.byteOffset).getUint32(0);
      frames.set(page, offset + FRAME_HEADER_BYTES);
    }
    return frames;
  });
}

/** Step 5: the pages, from the file in batches, each replaced by its frame when it has one. */
async function emitPages(
  path: string,
  instant: Instant,
  onPage: (pageNumber: number, bytes: Uint8Array) => void | Promise<void>,
): Promise<PageReadResult> {
  const { pageSize, pageCount, frames } = instant;
  // One batch buffer for the whole image: a fresh one per batch left up to V8's external
  // memory limit (~64 MB) of dead buffers before a collection (a 100 MB backup peaked at
  // 140 MB RSS).
  const buffer = new Uint8Array(Math.min(BATCH_PAGES, Math.max(1, pageCount)) * pageSize);
  for (let first = 1; first <= pageCount; first += BATCH_PAGES) {
    const count = Math.min(BATCH_PAGES, pageCount - first + 1);
    const batch = buffer.subarray(0, count * pageSize);
    fillRun(path, instant, first, batch);
    for (let page = first; page < first + count; page++) {
      await onPage(page, batch.subarray((page - first) * pageSize, (page - first + 1) * pageSize));
    }
  }
  return {
    kind: "image",
    pageSize,
    pageCount,
    journalMode: instant.journalMode,
    mxFrame: instant.mxFrame,
    // Frames of pages past the end (a VACUUM shrank the database) are not part of the image.
    walPages: [...frames.keys()].filter((page) => page <= pageCount).length,
  };
}

/**
 * Fills `out` (a whole number of pages) with the instant's pages from `first` on: one read of
 * the database file, each page then replaced by its frame when it has one; the lock-byte page is
 * zeros.
 *
 * @throws {OperationError} when a page cannot be read whole
 */
function fillRun(path: string, instant: Instant, first: number, out: Uint8Array): void {
  const { pageSize, frames } = instant;
  const count = out.length / pageSize;
  const lockBytePage = Math.floor(LOCK_BYTE_OFFSET / pageSize) + 1;
  // Pages past the file's end must all come from the -wal: read what the file has.
  const got = count === 0 ? 0 : readInto(path, (first - 1) * pageSize, out);
  for (let page = first; page < first + count; page++) {
    const slot = out.subarray((page - first) * pageSize, (page - first + 1) * pageSize);
    const at = frames.get(page);
    let length = pageSize;
    if (page === lockBytePage) slot.fill(0);
    else if (at !== undefined) length = readInto(`${path}-wal`, at, slot);
    else length = Math.max(0, Math.min(pageSize, got - (page - first) * pageSize));
    if (length !== pageSize) {
      throw new OperationError(
        `Cannot read page ${page} of "${path}": ${length} of ${pageSize} bytes found`,
      );
    }
  }
}

function fallback(reason: FallbackReason, detail: string): PageFallback {
  return { kind: "fallback", reason, detail };
}

/** Random access to the pages of one pinned instant (see {@linkcode withImage}). */
export interface PinnedImage {
  pageSize: number;
  pageCount: number;
  journalMode: "wal" | "rollback";
  /** The instant's last committed WAL frame (0 in rollback-journal mode). */
  mxFrame: number;
  /**
   * Page `pageNo` (1..pageCount) as of the instant: from its last frame <= mxFrame, else from
   * the file; the lock-byte page as zeros. A fresh array the caller may change.
   *
   * @throws {OperationError} when the page cannot be read whole
   */
  read(pageNo: number): Uint8Array;
  /**
   * Pages `first`..`first + count - 1`, back to back, as {@linkcode read} gives them, read with
   * one read of the file (plus one per page that has a frame). The array is a view of a buffer
   * reused by the next `readRun`: for loops over the whole image, which allocate nothing per
   * page (a fresh array per page lets tens of MB of dead buffers pile up before V8 collects them).
   *
   * @throws {OperationError} when a page cannot be read whole
   */
  readRun(first: number, count: number): Uint8Array;
  /**
   * Fills `out` (a whole number of pages) with pages `first`.. as {@linkcode read} gives them,
   * read straight into `out` with one read of the file (plus one per page that has a frame): for
   * a writer of the whole image that reads into its own write buffers, so no page is copied
   * twice in memory (a snapshot's).
   *
   * @throws {OperationError} when a page cannot be read whole
   */
  readRunInto(first: number, out: Uint8Array): void;
}

/**
 * Pins one instant of the live database `path` (exactly as {@linkcode readPages} does, with the
 * same consistency argument) and gives `fn` random access to its pages, in any order and as many
 * times as it likes, for as long as `fn` runs: the read transaction that holds the instant ends
 * when `fn`'s promise settles. For work that needs two passes over one instant (protocol 2's
 * delta: hashes first, then the pages asked for).
 *
 * @returns what `fn` returned, or a `PageFallback` (before `fn` ran) saying why the backup API
 *   must be used instead
 * @throws {OperationError} when the database cannot be opened or read
 * @throws {BusyError} when a writer holds it past `busyTimeoutMs`
 */
export async function withImage<T>(
  path: string,
  options: PageReaderOptions,
  fn: (image: PinnedImage) => Promise<T>,
): Promise<{ kind: "image"; value: T } | PageFallback> {
  return await pinned(path, options, async (instant) => {
    const { pageSize, pageCount } = instant;
    const read = (page: number): Uint8Array => {
      if (!Number.isInteger(page) || page < 1 || page > pageCount) {
        throw new RangeError(`page ${page} is not in 1..${pageCount}`);
      }
      const bytes = new Uint8Array(pageSize);
      fillRun(path, instant, page, bytes);
      return bytes;
    };
    let run = new Uint8Array(0);
    const readRun = (first: number, count: number): Uint8Array => {
      const last = first + count - 1;
      if (!Number.isInteger(first) || !Number.isInteger(count) || first < 1 || last > pageCount) {
        throw new RangeError(`pages ${first}..${last} are not in 1..${pageCount}`);
      }
      if (run.length < count * pageSize) run = new Uint8Array(count * pageSize);
      const out = run.subarray(0, count * pageSize);
      fillRun(path, instant, first, out);
      return out;
    };
    const readRunInto = (first: number, out: Uint8Array): void => {
      const count = out.length / pageSize;
      const last = first + count - 1;
      if (!Number.isInteger(first) || !Number.isInteger(count) || first < 1 || last > pageCount) {
        throw new RangeError(`pages ${first}..${last} are not in 1..${pageCount}`);
      }
      fillRun(path, instant, first, out);
    };
    const value = await fn({
      pageSize,
      pageCount,
      journalMode: instant.journalMode,
      mxFrame: instant.mxFrame,
      read,
      readRun,
      readRunInto,
    });
    return { kind: "image" as const, value };
  });
}
