/**
 * Protocol 2: litekeep to litekeep. This module is its specification; both ends use its
 * encoders and decoders. (The python3 and sqlite3 remotes, and `info`, speak protocol 1:
 * `protocol.ts`.)
 *
 * ## Starting it
 * The local side runs `DISPATCH` (scripts.ts) over ssh with the op `pull2`. When litekeep is on
 * the remote, the dispatcher runs
 *
 * ```
 * <bin> agent --protocol 2 pull DB TMPDIR COMPRESS ORDERBY
 * ```
 *
 * `DB` is the remote database; `TMPDIR` the folder for the one case that needs a temp file (the
 * fallback below; empty: $TMPDIR or /tmp); `COMPRESS` is `zstd`, `gzip` or `none`; `ORDERBY` is
 * lines of `table<TAB>column`. With only python3 or the sqlite3 CLI on the remote the dispatcher
 * answers `LITEKEEP-ERROR noproto2 ...` at once (no database is opened) and the local side runs
 * protocol 1 instead.
 *
 * ## Version handshake
 * - A local litekeep that speaks 2, meeting a remote litekeep that speaks only 1: the remote
 *   refuses `--protocol 2` with `LITEKEEP-ERROR protocol ...` (exit 3) before it reads anything;
 *   the local side warns ("the remote litekeep speaks only protocol 1: update it") and pulls
 *   again with protocol 1 (`snapshot`/`delta`). One extra ssh start, nothing else lost.
 * - A local litekeep that speaks only 1, meeting a remote that speaks 2: the remote litekeep
 *   still serves protocol 1 (`agent --protocol 1 snapshot|delta|info ...`) unchanged.
 * - A remote that speaks neither (a future one that dropped 1): both attempts fail with
 *   `protocol`, and the error says to install the same version on both hosts.
 *
 * ## The conversation
 * Every message after the header is a frame: `type` (1 byte), `length` (4 bytes, big-endian,
 * at most {@linkcode MAX_FRAME_BYTES}), `payload`. The local side writes to the agent's stdin,
 * the agent to its stdout:
 *
 * 1. local -> agent: `REQUEST` (JSON {@linkcode Request}): `mode` `snapshot` (no local copy) or
 *    `delta`; for a delta also the local image's page size and count, `blockPages` and its
 *    content hash; then, for a delta, `BLOCK_HASHES`: {@linkcode HASH_BYTES} bytes per block of
 *    `blockPages` pages (the last block may be shorter).
 * 2. agent -> local: the header line `LITEKEEP 2 <JSON Header>\n` (after any banner lines the
 *    remote's shell printed), once the agent has pinned its instant.
 * 3. snapshot mode (also when the page sizes differ, or the local copy had no pages): `PAGES`
 *    frames with every page 1..pages in order, then `TRAILER`.
 * 4. delta mode: the agent hashes its whole image (pass 1). If its content hash equals the
 *    local one, it sends `TRAILER` with `unchanged: true` and ends: nothing else travels. Else
 *    it sends `DIFF`: for each block whose hash differs (or that the local copy lacks), the
 *    block number (4 bytes) and the hashes of its pages. The local side answers `WANT`: the
 *    numbers (4 bytes each, ascending) of the pages it needs; page 1 always, every page of a
 *    differing block whose hash differs, every page past the local copy's end. The agent sends
 *    those pages in `PAGES` frames (pass 2, same instant), then `TRAILER`.
 *
 * `PAGES` payloads are records (page number, 4 bytes; the page), about 256 KiB of records per
 * frame, each frame compressed on its own as the header's `compress` says (a zstd frame, or gzip
 * level 1): a frame is a unit both ends can (de)compress in memory, no stream state to flush
 * before the agent waits for `WANT`. zstd's level is the sender's choice, frame by frame, and
 * not on the wire: a zstd frame decodes the same at any level, so a receiver takes whatever
 * comes. The litekeep agent adapts it to backpressure (lib/remote/zstd_level.ts: harder when
 * its writes wait on the link, lighter when it is CPU-bound; levels 1-8, starting at 3), for
 * the snapshot's and the delta's pages alike. Tests only: `LITEKEEP_ZSTD_LEVELS=1,19,6` in the
 * agent's environment makes it cycle through those levels instead (lib/commands/agent.ts).
 * Page 1 is sent as the local file will hold it: bytes 18-19 set to 1 (rollback-journal mode,
 * self-contained).
 *
 * ## Hashes
 * - page hash: sha256 of the page; for page 1 with bytes 18-19, 24-27, 40-43 and 92-99 zeroed
 *   (journal mode, change counter, schema cookie, version-valid-for: what SQLite or the backup
 *   API rewrite when the same content is written elsewhere). On the wire: its first 8 bytes.
 * - block hash: first 8 bytes of sha256 of the block's full page hashes, concatenated.
 * - content hash: sha256 of all full page hashes, concatenated: equal content, equal hash.
 *   Only this (full 256 bits) decides "unchanged".
 * - snapshot sha256 (`TRAILER.sha256`): sha256 of the image exactly as the local side writes it
 *   (page 1 self-contained). The local copy's sha256 must equal it: a page hash collision can
 *   only make a pull fail, never make it wrong. Null when unchanged: then nothing is written and
 *   the agent skips that second hash of every page (in a delta it is taken in pass 2, which
 *   reads every page of the instant again and sends the ones asked for).
 *
 * ## Failures and exit codes
 * The agent exits 0 after the trailer. A failure is one line `LITEKEEP-ERROR <kind> <message>`
 * on stderr and exit 3, as in protocol 1; kinds: {@linkcode ERROR_KINDS}. A lost connection
 * (broken pipe, SIGHUP/SIGTERM) ends it with exit 4. The agent writes nothing of the database's
 * size on the remote, except in the fallback: when the page reader cannot prove an image
 * (`PageFallback`: no `-shm`, read-only media, ...) it snapshots with the backup API into a temp
 * file in TMPDIR named with the ordinary temp prefix (`.litekeep-tmp-`, removed on every way
 * out), and the header says `reader: "backup-api"` and why (`fallback`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { constants, gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { describeCause, OperationError } from "../errors.ts";
import type { TableSummary } from "../engine/sqlite.ts";
import { malformed, type StreamReader } from "./stream.ts";
import { findHeaderLine } from "./protocol.ts";

/** The protocol version of this module. */
export const PROTOCOL2 = 2;
/** The dispatcher's op for a protocol-2 pull; the agent's op is `pull`. */
export const PULL2_OP = "pull2";

/** Frame types. */
export const FRAME = {
  REQUEST: 0x01,
  BLOCK_HASHES: 0x02,
  WANT: 0x03,
  DIFF: 0x10,
  PAGES: 0x11,
  TRAILER: 0x12,
} as const;
/** A frame type. */
export type FrameType = typeof FRAME[keyof typeof FRAME];

/**
 * The largest frame accepted. A DIFF costs 8 bytes a page of each differing block, so one
 * where every block differs fits up to ~32 GiB of 4 KiB pages ({@linkcode diffFrame}); a WANT
 * lists up to 16M pages ({@linkcode MAX_WANT_PAGES}).
 */
export const MAX_FRAME_BYTES = 64 << 20;
/** Bytes of a page or block hash on the wire. */
export const HASH_BYTES = 8;
/** Pages per block of the delta's first level: 1 GiB of 4 KiB pages is 2,048 blocks, 16 KiB. */
export const BLOCK_PAGES = 128;
/** Bytes of records per PAGES frame, before compression. */
export const PAGES_FRAME_BYTES = 256 << 10;
/**
 * zstd's default level (on one core of this machine level 3 runs ~590 MB/s, 1 about as fast).
 * The agent adapts it per frame (lib/remote/zstd_level.ts); a frame decodes at any level.
 */
export const ZSTD_LEVEL = 3;
/** gzip's level: 1 runs ~680 MB/s where 6 runs 155 MB/s, for 20% smaller frames. */
export const GZIP_LEVEL = 1;

/** How PAGES frames are compressed. */
export type Compress2 = "zstd" | "gzip" | "none";
/** The `LITEKEEP-ERROR` kinds the agent reports. */
export const ERROR_KINDS = [
  "busy",
  "usage",
  "notfound",
  "empty",
  "notdb",
  "space",
  "tmpdir",
  "protocol",
  "io",
] as const;
/** The agent's exit codes. */
export const EXIT = { ok: 0, failed: 3, lost: 4 } as const;

/** True when this runtime has zstd (`node:zlib` in Deno 2.9.6 has). */
export const HAS_ZSTD = typeof zstdCompressSync === "function";

/** The compression used when none is asked for, between two litekeeps. */
export function defaultCompress2(): Compress2 {
  return HAS_ZSTD ? "zstd" : "gzip";
}

/** The first message: what the local side has and wants. */
export interface Request {
  mode: "snapshot" | "delta";
  /** The local image's page size (delta). */
  pageSize?: number;
  /** The local image's page count (delta). */
  pageCount?: number;
  /** Pages per block of BLOCK_HASHES (delta). */
  blockPages?: number;
  /** The local image's content hash, hex (delta). */
  contentSha256?: string;
}

/** The header line's JSON. */
export interface Header2 {
  tool: "litekeep";
  /** The remote litekeep's version. */
  version: string;
  sqlite: string;
  journalMode: string;
  pageSize: number;
  pages: number;
  size: number;
  /** The mode the agent answers in: a delta request may be answered with a snapshot. */
  mode: "snapshot" | "delta";
  compress: Compress2;
  /** How the image was read: the page reader, or the backup API into a remote temp file. */
  reader: "pages" | "backup-api";
  /** Why the page reader fell back (reason: detail), or null. */
  fallback: string | null;
}

/** The last frame's JSON. */
export interface Trailer2 {
  /** sha256 of the image as the local side writes it; null when unchanged (not computed). */
  sha256: string | null;
  /** Content hash (see the module doc); null in snapshot mode, which does not compute it. */
  contentSha256: string | null;
  /** True when the content equals the local copy's: nothing was sent. */
  unchanged: boolean;
  pagesSent: number;
  /** Row counts and newest rows, counted at the image's instant. */
  tables: TableSummary[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A frame's first 5 bytes (type, length), for writers that send the payload after it as it is
 * (no copy of a large payload into one array).
 */
export function frameHead(type: FrameType, length: number): Uint8Array {
  if (length > MAX_FRAME_BYTES) throw new RangeError("frame too large");
  const out = new Uint8Array(5);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, length);
  return out;
}

/** One frame's bytes. */
export function encodeFrame(type: FrameType, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_BYTES) throw new RangeError("frame too large");
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** A JSON frame. */
export function jsonFrame(type: FrameType, value: unknown): Uint8Array {
  return encodeFrame(type, encoder.encode(JSON.stringify(value)));
}

/** The header line. */
export function headerLine(header: Header2): Uint8Array {
  return encoder.encode(`LITEKEEP ${PROTOCOL2} ${JSON.stringify(header)}\n`);
}

/**
 * Reads one frame; `expect` lists the types allowed here.
 *
 * @returns the frame, or undefined when the stream ended cleanly before it
 * @throws {OperationError} for a type not expected, a length past the limit, a cut-off frame
 */
export async function readFrame(
  reader: StreamReader,
  expect: readonly FrameType[],
  who: string,
): Promise<{ type: FrameType; payload: Uint8Array } | undefined> {
  const head = await readExact(reader, 5);
  if (head === undefined) return undefined;
  if (head.length < 5) throw lost(who);
  const type = head[0] as FrameType;
  const length = new DataView(head.buffer, head.byteOffset, 5).getUint32(1);
  if (!expect.includes(type)) {
    throw malformed(who, "frame", `type ${type} where ${expect.join(" or ")} was expected`);
  }
  if (length > MAX_FRAME_BYTES) {
    throw malformed(who, "frame", `${length} bytes, more than ${MAX_FRAME_BYTES}`);
  }
  const payload = await readExact(reader, length);
  if (payload === undefined || payload.length < length) throw lost(who);
  return { type, payload };
}

/** Exactly `n` bytes; undefined when the stream had ended before any; shorter when cut off. */
async function readExact(reader: StreamReader, n: number): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(n);
  let filled = 0;
  if (n === 0) return out;
  const complete = await reader.bytes(n, (piece) => {
    out.set(piece, filled);
    filled += piece.length;
    return Promise.resolve();
  });
  if (complete) return out;
  return filled === 0 ? undefined : out.subarray(0, filled);
}

/** Reads a frame that must come. */
export async function needFrame(
  reader: StreamReader,
  expect: readonly FrameType[],
  who: string,
): Promise<{ type: FrameType; payload: Uint8Array }> {
  const frame = await readFrame(reader, expect, who);
  if (frame === undefined) throw lost(who);
  return frame;
}

/** Parses a JSON payload; anything unreadable is a garbled transfer. */
export function parseJsonPayload<T>(payload: Uint8Array, who: string): T {
  try {
    return JSON.parse(decoder.decode(payload)) as T;
  } catch (cause) {
    throw new OperationError(`Garbled transfer from "${who}": ${describeCause(cause)}`, {
      cause,
      hint: "run again; if it persists, check both litekeep versions and the network",
    });
  }
}

function lost(who: string): OperationError {
  return new OperationError(`The connection to "${who}" was lost in the middle of the transfer`, {
    hint: "run the pull again; the local database was not changed",
  });
}

/**
 * Reads the `LITEKEEP 2 {...}` header, skipping banner lines (up to 64 KiB) as protocol 1 does.
 *
 * @throws {NoHeaderError} when none comes
 * @throws {OperationError} when another version answers or a field is wrong
 */
export async function readHeader2(reader: StreamReader, host: string): Promise<Header2> {
  const { version, json } = await findHeaderLine(reader, host);
  if (version !== PROTOCOL2) {
    throw new OperationError(
      `"${host}" answered in litekeep protocol ${version} where ${PROTOCOL2} was asked for`,
      { hint: "install the same litekeep version on both hosts" },
    );
  }
  return checkHeader2(parseJsonPayload(encoder.encode(json), host), host);
}

/** Checks every field of a protocol-2 header. @throws {OperationError} naming the field */
export function checkHeader2(value: unknown, host: string): Header2 {
  const bad = (field: string, why: string): never => {
    throw malformed(host, "header", `"${field}" ${why}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad("header", "is not a JSON object");
  }
  const v = value as Record<string, unknown>;
  const int = (name: string, min: number, max: number) => {
    const n = v[name];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || n > max) {
      bad(name, `is not a whole number from ${min} to ${max}`);
    }
    return n as number;
  };
  const text = (name: string) => {
    if (typeof v[name] !== "string" || (v[name] as string).length > 256) bad(name, "is not text");
    return v[name] as string;
  };
  const pageSize = int("pageSize", 512, 65536);
  if ((pageSize & (pageSize - 1)) !== 0) bad("pageSize", "is not a power of two");
  const pages = int("pages", 1, 0xfffffffe);
  const size = int("size", 0, Number.MAX_SAFE_INTEGER);
  if (size !== pages * pageSize) bad("size", `is not pages * pageSize = ${pages * pageSize}`);
  if (v.tool !== "litekeep") bad("tool", "is not litekeep");
  if (v.mode !== "snapshot" && v.mode !== "delta") bad("mode", "is not snapshot or delta");
  if (!["zstd", "gzip", "none"].includes(v.compress as string)) {
    bad("compress", "is not zstd, gzip or none");
  }
  if (v.compress === "zstd" && !HAS_ZSTD) bad("compress", "is zstd, which this runtime lacks");
  if (v.reader !== "pages" && v.reader !== "backup-api") bad("reader", "is not pages/backup-api");
  if (v.fallback !== null && typeof v.fallback !== "string") bad("fallback", "is not text");
  return {
    tool: "litekeep",
    version: text("version"),
    sqlite: text("sqlite"),
    journalMode: text("journalMode"),
    pageSize,
    pages,
    size,
    mode: v.mode as Header2["mode"],
    compress: v.compress as Compress2,
    reader: v.reader as Header2["reader"],
    fallback: v.fallback as string | null,
  };
}

/** Checks the trailer's fields. @throws {OperationError} naming the field */
export function checkTrailer2(value: unknown, host: string): Trailer2 {
  const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const hex = (name: string) => {
    if (typeof v[name] !== "string" || !/^[0-9a-f]{64}$/.test(v[name] as string)) {
      throw malformed(host, "trailer", `"${name}" is not 64 hex digits`);
    }
    return v[name] as string;
  };
  if (typeof v.unchanged !== "boolean") throw malformed(host, "trailer", '"unchanged" missing');
  const pagesSent = v.pagesSent;
  if (typeof pagesSent !== "number" || !Number.isSafeInteger(pagesSent) || pagesSent < 0) {
    throw malformed(host, "trailer", '"pagesSent" is not a count');
  }
  if (!Array.isArray(v.tables)) throw malformed(host, "trailer", '"tables" is not a list');
  return {
    sha256: v.sha256 === null && v.unchanged === true ? null : hex("sha256"),
    contentSha256: v.contentSha256 === null ? null : hex("contentSha256"),
    unchanged: v.unchanged,
    pagesSent,
    tables: v.tables as TableSummary[],
  };
}

/**
 * Compresses one PAGES payload.
 *
 * @param level zstd's level (the sender's choice; gzip is always {@linkcode GZIP_LEVEL})
 */
export function compressPayload(
  data: Uint8Array,
  how: Compress2,
  level: number = ZSTD_LEVEL,
): Uint8Array {
  if (how === "zstd") return zstdCompressSync(data, { params: zstdParams(level) });
  if (how === "gzip") return gzipSync(data, { level: GZIP_LEVEL });
  return data;
}

/**
 * zstd's parameters for one frame at `level`. Its window is held to 512 KiB (a frame is about
 * 256 KiB: a longer window finds nothing more, and costs the receiver's decoder memory), and
 * above level 4 its hash and chain tables to 2^18 entries: level 8's defaults (2^20 and 2^19)
 * took the agent from 54 to 61 MiB peak (level 9's to 73) for the same bytes, at no gain in
 * speed (measured on 256 KiB frames of a gym database).
 */
function zstdParams(level: number): Record<number, number> {
  const params: Record<number, number> = {
    [constants.ZSTD_c_compressionLevel]: level,
    [constants.ZSTD_c_windowLog]: 19,
  };
  if (level > 4) {
    params[constants.ZSTD_c_hashLog] = 18;
    params[constants.ZSTD_c_chainLog] = 18;
  }
  return params;
}

/**
 * Decompresses one PAGES payload, refusing more than `limit` bytes (a frame is at most a few
 * hundred KiB of records: a remote must not make the local side allocate without bound).
 *
 * @throws {OperationError} for a garbled frame
 */
export function decompressPayload(
  data: Uint8Array,
  how: Compress2,
  limit: number,
  who: string,
): Uint8Array {
  if (how === "none") return data;
  try {
    const out = how === "zstd"
      ? zstdDecompressSync(data, { maxOutputLength: limit })
      : gunzipSync(data, { maxOutputLength: limit });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (cause) {
    throw new OperationError(`Garbled compressed transfer from "${who}": ${describeCause(cause)}`, {
      cause,
      hint: "run the pull again; the local database was not changed",
    });
  }
}

/** Page 1's bytes that differ legitimately between two files of the same content. */
const PAGE1_VOLATILE: ReadonlyArray<[number, number]> = [[18, 20], [24, 28], [40, 44], [92, 100]];

/** The full (32-byte) hash of page `pageNo` (see the module doc: page 1 is masked). */
export function pageDigest(pageNo: number, page: Uint8Array): Uint8Array {
  const hash = createHash("sha256");
  if (pageNo === 1) {
    const masked = page.slice(0, 100);
    for (const [from, to] of PAGE1_VOLATILE) masked.fill(0, from, to);
    hash.update(masked).update(page.subarray(100));
  } else {
    hash.update(page);
  }
  return new Uint8Array(hash.digest());
}

/** Page 1 as the local file holds it: a copy with bytes 18-19 set to 1 (self-contained). */
export function selfContainedPage1(page: Uint8Array): Uint8Array {
  const out = page.slice();
  out[18] = 1;
  out[19] = 1;
  return out;
}

/**
 * Every page hash is a `createHash` whose native context V8 frees only in a full collection,
 * which the agent's small JS heap never asks for: hashing a 1 GB image grew the agent to 103 MB
 * RSS (88 MB for 250,000 hashes in a bare loop, 55 MB with a full GC every 16,384). So a full
 * collection runs every {@linkcode GC_EVERY_PAGES} pages where `gc` is exposed (the binary and
 * the remote's stand-in run with `--expose-gc`: lib/permissions.ts `V8_FLAGS`); elsewhere none.
 */
const GC_EVERY_PAGES = 16_384;
const collectGarbage = (globalThis as { gc?: () => void }).gc;

/**
 * For loops over every page of an image: a full collection at every
 * {@linkcode GC_EVERY_PAGES}th page where `gc` is exposed (see above; the agent's pass that
 * sends pages also leaves one compressed frame's output per frame for V8 to find).
 */
export function collectEvery(pageNo: number): void {
  if (pageNo % GC_EVERY_PAGES === 0) collectGarbage?.();
}

/** A full collection now, where `gc` is exposed (see above); elsewhere nothing. */
export function collectNow(): void {
  collectGarbage?.();
}

/**
 * The hashes of one image, built page by page: the short page hashes, the content hash, and the
 * block hashes over them.
 */
export class ImageHashes {
  readonly pageHashes: Uint8Array;
  #content = createHash("sha256");
  #digest: string | undefined;
  #count = 0;

  constructor(readonly pageCount: number, readonly blockPages = BLOCK_PAGES) {
    this.pageHashes = new Uint8Array(pageCount * HASH_BYTES);
  }

  /** Adds page `pageNo` (the next one: pages come in order from 1). */
  add(pageNo: number, page: Uint8Array): void {
    if (pageNo !== this.#count + 1) throw new RangeError(`page ${pageNo} out of order`);
    collectEvery(pageNo);
    const digest = pageDigest(pageNo, page);
    this.#content.update(digest);
    this.pageHashes.set(digest.subarray(0, HASH_BYTES), (pageNo - 1) * HASH_BYTES);
    this.#count++;
  }

  /** The content hash (hex), once every page was added. */
  contentSha256(): string {
    if (this.#count !== this.pageCount) throw new RangeError("not every page was added");
    return this.#digest ??= this.#content.digest("hex");
  }

  /** Block hashes, {@linkcode HASH_BYTES} each. */
  blockHashes(): Uint8Array {
    return blockHashes(this.pageHashes, this.blockPages);
  }
}

/** Block hashes of short page hashes: the first 8 bytes of sha256 of each block's hashes. */
export function blockHashes(pageHashes: Uint8Array, blockPages: number): Uint8Array {
  const pages = pageHashes.length / HASH_BYTES;
  const blocks = Math.ceil(pages / blockPages);
  const out = new Uint8Array(blocks * HASH_BYTES);
  const span = blockPages * HASH_BYTES;
  for (let b = 0; b < blocks; b++) {
    const digest = createHash("sha256").update(pageHashes.subarray(b * span, (b + 1) * span))
      .digest();
    out.set(digest.subarray(0, HASH_BYTES), b * HASH_BYTES);
  }
  return out;
}

/** Bytes per piece of a DIFF written in pieces ({@linkcode Diff.pieces}). */
export const DIFF_PIECE_BYTES = 64 << 10;

/**
 * The DIFF payload: for each block of `remote` whose hash is not `local`'s (or that `local`
 * lacks), its number and its pages' short hashes. Planned first (which blocks, so the length),
 * then written in pieces after the frame's head: for a 1 GB database whose blocks all differ it
 * is 2 MB, which the agent need not hold whole, nor hand whole to one write of its stdout.
 */
export class Diff {
  /** The differing blocks, ascending. */
  readonly blocks: number[] = [];
  /** The payload's length in bytes. */
  readonly length: number = 0;
  readonly #pageHashes: Uint8Array;
  readonly #span: number;

  constructor(remotePageHashes: Uint8Array, localBlockHashes: Uint8Array, blockPages: number) {
    this.#pageHashes = remotePageHashes;
    this.#span = blockPages * HASH_BYTES;
    const remoteBlocks = blockHashes(remotePageHashes, blockPages);
    for (let b = 0; b * HASH_BYTES < remoteBlocks.length; b++) {
      const at = b * HASH_BYTES;
      const same = at + HASH_BYTES <= localBlockHashes.length &&
        equalBytes(
          remoteBlocks.subarray(at, at + HASH_BYTES),
          localBlockHashes.subarray(at, at + HASH_BYTES),
        );
      if (same) continue;
      this.blocks.push(b);
      this.length += 4 + Math.min(this.#span, remotePageHashes.length - b * this.#span);
    }
  }

  /**
   * The payload's bytes, in order, in pieces of `pieceBytes` (the last may be shorter; a block
   * may straddle two). Each piece is a view of one buffer that the next piece overwrites: write
   * or copy it before asking for the next.
   */
  *pieces(pieceBytes: number = DIFF_PIECE_BYTES): Generator<Uint8Array> {
    const buffer = new Uint8Array(Math.max(1, Math.min(pieceBytes, this.length)));
    let used = 0;
    // Copies `bytes` into the buffer, yielding it each time it fills.
    const put = function* (bytes: Uint8Array): Generator<Uint8Array> {
      for (let at = 0; at < bytes.length;) {
        const n = Math.min(bytes.length - at, buffer.length - used);
        buffer.set(bytes.subarray(at, at + n), used);
        used += n;
        at += n;
        if (used === buffer.length) {
          yield buffer;
          used = 0;
        }
      }
    };
    const number = new Uint8Array(4);
    const view = new DataView(number.buffer);
    for (const b of this.blocks) {
      view.setUint32(0, b);
      yield* put(number);
      yield* put(this.#pageHashes.subarray(b * this.#span, (b + 1) * this.#span));
    }
    if (used > 0) yield buffer.subarray(0, used);
  }

  /** The payload whole (one piece: for tests and small payloads). */
  bytes(): Uint8Array {
    // One piece of the whole length is the payload (a buffer no later piece overwrites).
    const [whole] = this.pieces(this.length);
    return whole ?? new Uint8Array(0);
  }
}

/** The DIFF payload whole ({@linkcode Diff}). */
export function encodeDiff(
  remotePageHashes: Uint8Array,
  localBlockHashes: Uint8Array,
  blockPages: number,
): Uint8Array {
  return new Diff(remotePageHashes, localBlockHashes, blockPages).bytes();
}

/**
 * The DIFF frame. Every differing block costs 8 bytes a page: a remote of more than ~32 GiB of
 * 4 KiB pages whose blocks all differ (after a VACUUM, or against an unrelated local copy)
 * needs more than one frame holds, and is refused with the remedy rather than a RangeError.
 *
 * @throws {OperationError} when the DIFF is larger than {@linkcode MAX_FRAME_BYTES}
 */
export function diffFrame(diff: Uint8Array): Uint8Array {
  checkDiffSize(diff.length);
  return encodeFrame(FRAME.DIFF, diff);
}

/**
 * Checks that one frame holds a DIFF of `length` bytes (before any of it is written).
 *
 * @throws {OperationError} when it does not (a database of tens of GiB whose blocks all differ)
 */
export function checkDiffSize(length: number): void {
  if (length > MAX_FRAME_BYTES) {
    throw new OperationError(
      `the pages that differ from the local copy need a DIFF of ${length} bytes, more ` +
        `than one frame holds (${MAX_FRAME_BYTES}): pull with --method snapshot`,
    );
  }
}

/**
 * The WANT list from a DIFF: page 1 always (its header bytes differ legitimately, and it is one
 * page), every page of a listed block whose hash differs from the local one, and every page past
 * the local copy's end.
 *
 * @throws {OperationError} for a DIFF that does not fit the header
 */
export function wantedPages(
  diff: Uint8Array,
  localPageHashes: Uint8Array,
  remotePages: number,
  blockPages: number,
  who: string,
): number[] {
  const localPages = localPageHashes.length / HASH_BYTES;
  // Every page past the local end is listed, and WANT is one frame: a header that claims more
  // pages than it can list (a hostile remote's 2^32, or a remote 64 GiB larger than the local
  // copy) is refused before anything is allocated for them.
  const tooMany = (count: number) =>
    new OperationError(
      `"${who}" announced ${remotePages} pages: the ${count} the local copy would ask for are ` +
        `more than one request can list (${MAX_WANT_PAGES})`,
      { hint: "pull with --method snapshot; the local database was not changed" },
    );
  if (remotePages - localPages > MAX_WANT_PAGES) throw tooMany(remotePages - localPages);
  // Page 1, then the differing pages the local copy holds (ascending: blocks are), then every
  // page past its end.
  const want: number[] = [1];
  let at = 0;
  let lastBlock = -1;
  while (at < diff.length) {
    if (at + 4 > diff.length) throw malformed(who, "diff", "it ends inside a block number");
    const block = new DataView(diff.buffer, diff.byteOffset + at, 4).getUint32(0);
    at += 4;
    const first = block * blockPages + 1;
    if (block <= lastBlock || first > remotePages) {
      throw malformed(who, "diff", `block ${block} is out of order or past the end`);
    }
    lastBlock = block;
    const count = Math.min(blockPages, remotePages - first + 1);
    if (at + count * HASH_BYTES > diff.length) throw malformed(who, "diff", "a block is cut off");
    for (let i = 0; i < count; i++) {
      const pageNo = first + i;
      // Pages past the local end are in blocks the local side lacks, so the agent listed them;
      // they are all added below, so a DIFF that omits them cannot leave holes.
      if (pageNo === 1 || pageNo > localPages) continue;
      const remote = diff.subarray(at + i * HASH_BYTES, at + (i + 1) * HASH_BYTES);
      const local = localPageHashes.subarray((pageNo - 1) * HASH_BYTES, pageNo * HASH_BYTES);
      if (!equalBytes(remote, local)) want.push(pageNo);
    }
    at += count * HASH_BYTES;
  }
  const past = Math.max(0, remotePages - Math.max(localPages, 1));
  if (want.length + past > MAX_WANT_PAGES) throw tooMany(want.length + past);
  for (let p = Math.max(localPages, 1) + 1; p <= remotePages; p++) want.push(p);
  return want;
}

/** The most page numbers one WANT frame holds. */
export const MAX_WANT_PAGES = MAX_FRAME_BYTES / 4;

/** The WANT payload. */
export function encodeWant(pages: number[]): Uint8Array {
  const out = new Uint8Array(pages.length * 4);
  const view = new DataView(out.buffer);
  pages.forEach((p, i) => view.setUint32(i * 4, p));
  return out;
}

/**
 * Reads a WANT payload: ascending page numbers in 1..pages.
 *
 * @throws {OperationError} otherwise
 */
export function decodeWant(payload: Uint8Array, pages: number, who: string): Uint32Array {
  if (payload.length % 4 !== 0) throw malformed(who, "want", "not whole page numbers");
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const out = new Uint32Array(payload.length / 4);
  let last = 0;
  for (let i = 0; i < out.length; i++) {
    const p = view.getUint32(i * 4);
    if (p <= last || p > pages) throw malformed(who, "want", `page ${p} out of order or range`);
    out[i] = last = p;
  }
  return out;
}

/**
 * Gathers (number, page) records into PAGES payloads of about {@linkcode PAGES_FRAME_BYTES}.
 * The records are written into one buffer, reused: a payload `add` or `flush` returns is a view
 * valid until the next `add` (compress or copy it first), so a pass over a database allocates
 * nothing per page.
 */
export class PageBatcher {
  #buffer: Uint8Array;
  #view: DataView;
  #bytes = 0;
  #pages = 0;

  constructor(readonly pageSize: number) {
    this.#buffer = new Uint8Array(PAGES_FRAME_BYTES + 4 + pageSize);
    this.#view = new DataView(this.#buffer.buffer);
  }

  /** Adds a page; returns a full payload when one is ready. */
  add(pageNo: number, page: Uint8Array): Uint8Array | undefined {
    if (this.#bytes + 4 + page.length > this.#buffer.length) {
      const grown = new Uint8Array(this.#bytes + 4 + page.length);
      grown.set(this.#buffer.subarray(0, this.#bytes));
      this.#buffer = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#view.setUint32(this.#bytes, pageNo);
    this.#buffer.set(page, this.#bytes + 4);
    this.#bytes += 4 + page.length;
    this.#pages++;
    return this.#bytes >= PAGES_FRAME_BYTES ? this.flush() : undefined;
  }

  /** The pending payload, if any (a view: see the class doc). */
  flush(): Uint8Array | undefined {
    if (this.#bytes === 0) return undefined;
    const out = this.#buffer.subarray(0, this.#bytes);
    this.#bytes = 0;
    return out;
  }

  /** Pages added so far. */
  get pages(): number {
    return this.#pages;
  }
}

/** The largest decompressed PAGES payload: one frame's records (a page may overshoot by one). */
export function maxPagesPayload(pageSize: number): number {
  return PAGES_FRAME_BYTES + 2 * (4 + pageSize);
}

/**
 * Splits a PAGES payload into its records.
 *
 * @throws {OperationError} when it is not whole records
 */
export function* decodePages(
  payload: Uint8Array,
  pageSize: number,
  who: string,
): Generator<[number, Uint8Array]> {
  const record = 4 + pageSize;
  if (payload.length % record !== 0) {
    throw malformed(who, "pages", `${payload.length} bytes are not whole ${record}-byte records`);
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  for (let at = 0; at < payload.length; at += record) {
    yield [view.getUint32(at), payload.subarray(at + 4, at + record)];
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
