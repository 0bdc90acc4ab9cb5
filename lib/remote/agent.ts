/**
 * The remote side of `pull`, `info` and `compare` when litekeep itself is installed on the
 * remote (`litekeep agent`): the same protocol 1 as the python3 and sqlite3 fallbacks, written
 * by the same core as local backups.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createGzip } from "node:zlib";
import { describeCause, OperationError } from "../errors.ts";
import { openBackupFile, pragmaValue, tableSummaries } from "../engine/sqlite.ts";
import type { SnapshotHeader } from "./headers.ts";
import type { Compression } from "./ops.ts";
import type { DatabaseSync } from "node:sqlite";
import { UsageError } from "../errors.ts";
import {
  checkDatabaseFile,
  closeLeavingNoSideFiles,
  openReadOnly,
  walWithoutSideFiles,
} from "../engine/sqlite.ts";
import { type PinnedImage, withImage } from "../engine/page_reader.ts";
import { VERSION } from "../version.ts";
import type { StreamReader } from "./stream.ts";
import {
  checkDiffSize,
  collectEvery,
  collectNow,
  type Compress2,
  compressPayload,
  decodeWant,
  Diff,
  FRAME,
  frameHead,
  type FrameType,
  type Header2,
  headerLine,
  ImageHashes,
  jsonFrame,
  needFrame,
  PageBatcher,
  parseJsonPayload,
  type Request,
  selfContainedPage1,
  type Trailer2,
} from "./protocol2.ts";
import { LevelController } from "./zstd_level.ts";

// Protocol 1 (`snapshot`, `delta`, `info`) and protocol 2's backup-API fallback are loaded when
// used: a protocol-2 pull never loads them (each module costs the agent memory: its peak RSS
// is held under 64 MiB on a Pi).
const protocol1 = () =>
  Promise.all([
    import("./scripts.ts"),
    import("./protocol.ts"),
    import("../engine/db_file.ts"),
  ]).then(([scripts, protocol, dbFile]) => ({
    PROTOCOL: scripts.PROTOCOL,
    PAGE_HASH_BYTES: protocol.PAGE_HASH_BYTES,
    readChunks: dbFile.readChunks,
  }));
const tempFiles = () => import("../files/atomic.ts");
const snapshots = () => import("../engine/snapshot.ts");

/**
 * Where the agent writes its answer. A chunk is the caller's again once the promise resolves
 * (PAGES payloads and DIFF pieces are views of reused buffers): write or copy it before then.
 */
export type Sink = (chunk: Uint8Array) => Promise<void>;

/** How the agent works. */
export interface AgentOptions {
  /** Folder for the snapshot's temporary file; empty for $TMPDIR or /tmp. */
  tmpDir: string;
  compress: Compression;
  orderBy: Record<string, string>;
  busyTimeoutMs: number;
  /** Read from $TMPDIR when `tmpDir` is empty. */
  envTmpDir?: string;
}

const encoder = new TextEncoder();

async function headerLine1(value: unknown): Promise<Uint8Array> {
  const { PROTOCOL } = await protocol1();
  return encoder.encode(`LITEKEEP ${PROTOCOL} ${JSON.stringify(value)}\n`);
}

/** Answers `info` for `db`. */
export async function serveInfo(db: string, options: AgentOptions, sink: Sink): Promise<void> {
  const { localInfo } = await import("./info.ts");
  await sink(await headerLine1(await localInfo(db, options.orderBy, options.busyTimeoutMs)));
}

/**
 * The folder for a snapshot's temporary file: `tmpDir`, else $TMPDIR, else /tmp.
 *
 * @throws {OperationError} when it is missing or not a folder
 */
async function tempFolder(options: AgentOptions): Promise<string> {
  const dir = options.tmpDir || options.envTmpDir || "/tmp";
  const folder = await Deno.stat(dir).catch((cause) => cause as Error);
  if (folder instanceof Error || !folder.isDirectory) {
    throw new OperationError(
      `cannot create a temporary file in "${dir}": ${
        folder instanceof Error ? describeCause(folder) : "it is not a folder"
      }`,
    );
  }
  return dir;
}

/**
 * Answers `snapshot` (or `delta`, when `request` holds the local copy's page hashes) for `db`:
 * a consistent snapshot into a temporary file, then the header, the chunked (optionally gzip
 * level 1) body and the sha256 trailer. The temporary file is removed on every way out,
 * including a broken pipe when the connection drops.
 */
export async function serveSnapshot(
  db: string,
  options: AgentOptions,
  sink: Sink,
  request?: Uint8Array,
): Promise<void> {
  const dir = await tempFolder(options);
  // A temp like every other (registered, with its "alive" marker), only read, never published:
  // removed on every way out, including a broken pipe when the connection drops.
  const { withTempFile } = await tempFiles();
  await withTempFile(dir, "remote.db", (temp) => streamSnapshot(db, temp, options, sink, request), {
    publish: "none",
  });
}

/** Snapshots `db` into `temp` and streams it (whole, or the pages `request` lacks) to `sink`. */
async function streamSnapshot(
  db: string,
  temp: string,
  options: AgentOptions,
  sink: Sink,
  request?: Uint8Array,
): Promise<void> {
  const { snapshotDatabase } = await snapshots();
  const { PAGE_HASH_BYTES, readChunks } = await protocol1();
  const snap = await snapshotDatabase(db, temp, { busyTimeoutMs: options.busyTimeoutMs });
  const conn = openBackupFile(temp);
  let header: SnapshotHeader;
  try {
    header = {
      tool: "litekeep",
      sqlite: String((conn.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v),
      journalMode: snap.journalMode,
      pageSize: snap.pageSize,
      pages: Number(pragmaValue(conn, "page_count")),
      size: (await Deno.stat(temp)).size,
      encoding: options.compress === "gzip" ? "gzip" : "raw",
      framing: "chunked",
      tables: tableSummaries(conn, options.orderBy),
      delta: request !== undefined,
    };
  } finally {
    conn.close();
  }
  await sink(await headerLine1(header));
  const sendChunk = async (data: Uint8Array) => {
    if (data.length === 0) return;
    await sink(encoder.encode(`${data.length.toString(16)}\n`));
    await sink(data);
  };
  const hash = createHash("sha256");
  // Through db_file.ts, as every raw read of a database file (see there).
  const chunks = readChunks(temp);
  const skip = request === undefined
    ? undefined
    : knownPages(request, header.pageSize, PAGE_HASH_BYTES);
  let pageNo = 0;
  // The body: the file, or only the pages the local copy lacks as (number, page) records.
  const body = (block: Uint8Array): Uint8Array => {
    if (skip === undefined) return block;
    const records: Uint8Array[] = [];
    for (let at = 0; at < block.length; at += header.pageSize) {
      const page = block.subarray(at, at + header.pageSize);
      pageNo++;
      if (skip(pageNo, page)) continue;
      const record = new Uint8Array(4 + page.length);
      new DataView(record.buffer).setUint32(0, pageNo);
      record.set(page, 4);
      records.push(record);
    }
    const out = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
    let offset = 0;
    for (const r of records) {
      out.set(r, offset);
      offset += r.length;
    }
    return out;
  };
  if (options.compress === "gzip") {
    // Level 1: on a Pi's CPU the faster level wins over a slow link (see docs/BENCHMARKS.md).
    const gzip = createGzip({ level: 1 });
    let failed: unknown;
    const pump = (async () => {
      for await (const out of gzip) await sendChunk(out as Uint8Array);
    })();
    // A dead connection stops the pump; destroying the stream wakes a writer waiting for
    // "drain", which would otherwise wait forever.
    pump.catch((error) => {
      failed = error;
      gzip.destroy(error);
    });
    for await (const block of chunks) {
      if (failed !== undefined) throw failed;
      hash.update(block);
      if (!gzip.write(body(block))) await once(gzip, "drain");
    }
    gzip.end();
    await pump;
  } else {
    for await (const block of chunks) {
      hash.update(block);
      await sendChunk(body(block));
    }
  }
  await sink(encoder.encode(`0\n${JSON.stringify({ sha256: hash.digest("hex") })}\n`));
}

/**
 * Reads a delta request (`"<page size>\n"` + 8 bytes of sha256 per page) into a test: true
 * when the local copy already has this page. A different page size means no page is known.
 */
function knownPages(
  request: Uint8Array,
  pageSize: number,
  PAGE_HASH_BYTES: number,
): (pageNo: number, page: Uint8Array) => boolean {
  const newline = request.indexOf(10);
  const localPageSize = Number(new TextDecoder().decode(request.subarray(0, newline)));
  const hashes = request.subarray(newline + 1);
  if (localPageSize !== pageSize) return () => false;
  return (pageNo, page) => {
    const at = (pageNo - 1) * PAGE_HASH_BYTES;
    if (at + PAGE_HASH_BYTES > hashes.length) return false;
    const digest = createHash("sha256").update(page).digest();
    for (let i = 0; i < PAGE_HASH_BYTES; i++) if (digest[i] !== hashes[at + i]) return false;
    return true;
  };
}

/** How the protocol-2 agent works. */
export interface Agent2Options {
  /** Folder for the fallback's temporary file; empty for $TMPDIR or /tmp. */
  tmpDir: string;
  compress: Compress2;
  orderBy: Record<string, string>;
  busyTimeoutMs: number;
  envTmpDir?: string;
  /**
   * zstd levels to cycle through frame by frame instead of the adaptive choice (tests only:
   * `LITEKEEP_ZSTD_LEVELS`, see lib/commands/agent.ts).
   */
  zstdLevels?: number[];
}

const LOCAL = "the local litekeep";
/** Pages per read of the image: 256 KiB of 4 KiB pages, one buffer reused for every run. */
const RUN_PAGES = 64;

/**
 * Answers a protocol-2 pull (see `protocol2.ts`) for `db`: reads the request from `input`, pins
 * one instant with the page reader and streams its pages as they are read, hashing them on the
 * way; a delta takes two passes over that one instant (hashes, then the pages asked for). No file
 * is written on the remote, unless the page reader cannot prove an image: then the backup API
 * snapshots into a temp file in `tmpDir`, removed on every way out, and the header says so.
 */
export async function servePull2(
  db: string,
  options: Agent2Options,
  sink: Sink,
  input: StreamReader,
): Promise<void> {
  const request = checkRequest(
    parseJsonPayload<Request>((await needFrame(input, [FRAME.REQUEST], LOCAL)).payload, LOCAL),
  );
  const localBlocks = request.mode === "delta"
    ? (await needFrame(input, [FRAME.BLOCK_HASHES], LOCAL)).payload
    : undefined;
  // The page reader's last connection is read-only: the -wal and -shm it made beside a stopped
  // application's database are removed by a read-write close at the end, as the application's
  // own would, so a pull leaves the remote folder as it found it.
  const tidy = await walWithoutSideFiles(db, await checkDatabaseFile(db));
  // A second read transaction opened at the image's instant (while the page reader holds the
  // write lock): the row counts it gives are those of the pages sent.
  let counter: DatabaseSync | undefined;
  const closeCounter = () => {
    try {
      counter?.exec("ROLLBACK");
    } catch {
      // No transaction.
    }
    counter?.close();
    counter = undefined;
  };
  const serve = (reader: Header2["reader"], fallback: string | null) => (image: PinnedImage) =>
    streamImage(image, {
      request,
      localBlocks,
      sink,
      input,
      compress: options.compress,
      zstdLevels: options.zstdLevels,
      orderBy: options.orderBy,
      conn: () => counter!,
      reader,
      fallback,
    });
  try {
    const result = await withImage(db, {
      busyTimeoutMs: options.busyTimeoutMs,
      onInstant: () => {
        counter = openReadOnly(db, options.busyTimeoutMs);
        counter.exec("BEGIN");
        counter.prepare("SELECT count(*) FROM sqlite_schema").get();
      },
    }, serve("pages", null));
    if (result.kind === "image") return;
    closeCounter();
    const why = `${result.reason}: ${result.detail}`;
    const dir = await tempFolder(options);
    const [{ withTempFile }, { snapshotDatabase }] = await Promise.all([tempFiles(), snapshots()]);
    await withTempFile(dir, "remote.db", async (temp) => {
      await snapshotDatabase(db, temp, { busyTimeoutMs: options.busyTimeoutMs });
      counter = openBackupFile(temp);
      const again = await withImage(
        temp,
        { busyTimeoutMs: options.busyTimeoutMs },
        serve("backup-api", why),
      );
      if (again.kind === "fallback") {
        throw new OperationError(`cannot read the snapshot of "${db}": ${again.detail}`);
      }
    }, { publish: "none" });
  } finally {
    closeCounter();
    if (tidy) closeLeavingNoSideFiles(db, options.busyTimeoutMs);
  }
}

function checkRequest(r: Request): Request {
  const bad = (why: string): never => {
    throw new UsageError(`protocol 2 request: ${why}`);
  };
  if (typeof r !== "object" || r === null) bad("not an object");
  if (r.mode === "snapshot") return { mode: "snapshot" };
  if (r.mode !== "delta") bad(`mode ${JSON.stringify(r.mode)}`);
  const int = (v: unknown, min: number, max: number) =>
    typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;
  if (!int(r.pageSize, 512, 65536)) bad("pageSize");
  if (!int(r.pageCount, 0, 0xfffffffe)) bad("pageCount");
  if (!int(r.blockPages, 1, 1 << 16)) bad("blockPages");
  if (typeof r.contentSha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.contentSha256)) {
    bad("contentSha256");
  }
  return r;
}

interface StreamContext {
  request: Request;
  localBlocks?: Uint8Array;
  sink: Sink;
  input: StreamReader;
  compress: Compress2;
  zstdLevels?: number[];
  orderBy: Record<string, string>;
  conn: () => DatabaseSync;
  reader: Header2["reader"];
  fallback: string | null;
}

/** The header, then the pages (all, or the delta's two passes), then the trailer. */
async function streamImage(image: PinnedImage, s: StreamContext): Promise<void> {
  const { pageSize, pageCount } = image;
  const { request } = s;
  const conn = s.conn();
  // A delta needs a local copy of the same page size; anything else is answered whole.
  const delta = request.mode === "delta" && request.pageSize === pageSize &&
    (request.pageCount ?? 0) > 0 && s.localBlocks !== undefined;
  await s.sink(headerLine({
    tool: "litekeep",
    version: VERSION,
    sqlite: String((conn.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v),
    journalMode: String(pragmaValue(conn, "journal_mode")).toLowerCase(),
    pageSize,
    pages: pageCount,
    size: pageCount * pageSize,
    mode: delta ? "delta" : "snapshot",
    compress: s.compress,
    reader: s.reader,
    fallback: s.fallback,
  }));
  const snapshot = createHash("sha256");
  const batcher = new PageBatcher(pageSize);
  // The 5-byte head, then the payload as it is: no copy of either into one frame array.
  const sendFrame = async (type: FrameType, payload: Uint8Array) => {
    await s.sink(frameHead(type, payload.length));
    await s.sink(payload);
  };
  // zstd's level adapts to backpressure, for the snapshot's and the delta's pages alike: the
  // time a frame spent compressing against the time its write waited (zstd_level.ts). Any
  // level decodes the same, so the receiver needs nothing.
  const levels = new LevelController(s.zstdLevels);
  // The end of the last frame's write: a frame's whole time runs from there (the first's from
  // its compression).
  let lastWritten: number | undefined;
  const send = async (payload: Uint8Array | undefined) => {
    if (!payload) return;
    if (s.compress !== "zstd") {
      await sendFrame(FRAME.PAGES, compressPayload(payload, s.compress));
      return;
    }
    const started = performance.now();
    const wire = compressPayload(payload, "zstd", levels.level);
    const compressed = performance.now();
    await sendFrame(FRAME.PAGES, wire);
    const written = performance.now();
    levels.observe({
      bytes: payload.length,
      compressMs: compressed - started,
      waitMs: written - compressed,
      periodMs: written - (lastWritten ?? started),
    });
    lastWritten = written;
  };
  const asWritten = (pageNo: number, page: Uint8Array) =>
    pageNo === 1 ? selfContainedPage1(page) : page;
  const trailer = async (t: Omit<Trailer2, "tables">) => {
    await s.sink(jsonFrame(FRAME.TRAILER, { ...t, tables: tableSummaries(conn, s.orderBy) }));
  };
  // Every pass reads runs of pages into one reused buffer (see PinnedImage.readRun).
  const eachPage = async (
    visit: (pageNo: number, page: Uint8Array) => unknown,
    hashing = false,
  ) => {
    for (let first = 1; first <= pageCount; first += RUN_PAGES) {
      const count = Math.min(RUN_PAGES, pageCount - first + 1);
      const run = image.readRun(first, count);
      for (let i = 0; i < count; i++) {
        const done = visit(first + i, run.subarray(i * pageSize, (i + 1) * pageSize));
        if (done instanceof Promise) await done;
      }
      // Pass 1's hashes collect their own garbage (ImageHashes); the sending passes do here.
      if (!hashing) collectEvery(first + count - 1);
    }
  };
  if (!delta) {
    await eachPage(async (p, bytes) => {
      const page = asWritten(p, bytes);
      snapshot.update(page);
      await send(batcher.add(p, page));
    });
    await send(batcher.flush());
    await trailer({
      sha256: snapshot.digest("hex"),
      contentSha256: null,
      unchanged: false,
      pagesSent: pageCount,
    });
    return;
  }
  // Pass 1: every page hashed, nothing sent; the content hash alone decides "unchanged", so an
  // unchanged pull costs one hash of the database, not two (on a Pi 4, without SHA instructions,
  // a pass over 100 MB is about half a second). Then the DIFF: its head, then its payload in
  // pieces of one reused buffer (at 1 GB, when every block differs, 2 MB never held whole).
  // Both in a function of their own, so the page hashes (2 MB at 1 GB) are garbage once the
  // DIFF is out rather than held through pass 2.
  const hashAndDiff = async (): Promise<string | undefined> => {
    const hashes = new ImageHashes(pageCount, request.blockPages);
    await eachPage((p, page) => hashes.add(p, page), true);
    const contentSha256 = hashes.contentSha256();
    if (contentSha256 === request.contentSha256) {
      await trailer({ sha256: null, contentSha256, unchanged: true, pagesSent: 0 });
      return undefined;
    }
    const diff = new Diff(hashes.pageHashes, s.localBlocks!, request.blockPages!);
    checkDiffSize(diff.length);
    await s.sink(frameHead(FRAME.DIFF, diff.length));
    for (const piece of diff.pieces()) await s.sink(piece);
    return contentSha256;
  };
  const contentSha256 = await hashAndDiff();
  if (contentSha256 === undefined) return;
  // Before pass 2's compression adds its own: the page hashes, and the hash contexts of pass 1's
  // last pages (collected every GC_EVERY_PAGES, protocol2.ts), which would otherwise live into it.
  collectNow();
  const want = decodeWant(
    (await needFrame(s.input, [FRAME.WANT], LOCAL)).payload,
    pageCount,
    LOCAL,
  );
  // Pass 2, same instant: every page into the snapshot hash, the pages asked for onto the wire.
  let next = 0;
  await eachPage(async (p, bytes) => {
    const page = asWritten(p, bytes);
    snapshot.update(page);
    if (want[next] === p) {
      next++;
      await send(batcher.add(p, page));
    }
  });
  await send(batcher.flush());
  const sha256 = snapshot.digest("hex");
  await trailer({ sha256, contentSha256, unchanged: false, pagesSent: want.length });
}
