/**
 * Protocol 1: how a remote snapshot or info travels back over ssh's stdout.
 *
 * ```
 * LITEKEEP 1 <header JSON>\n
 * body                      (snapshot only)
 * <trailer JSON>\n          (snapshot only: {"sha256": hex or null})
 * ```
 *
 * The header of a snapshot says `size` (bytes of the database file), `encoding` (`raw` or
 * `gzip`) and `framing`: `sized` (exactly `size` raw bytes) or `chunked` (`<hex length>\n<bytes>`
 * repeated, ended by `0\n`). The sha256 is of the database bytes, so the copy is proven equal to
 * the remote's snapshot, not just to what crossed the wire.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { hashFile } from "../backup_set/checksum.ts";
import { describeCause, OperationError } from "../errors.ts";
import { PROTOCOL } from "./scripts.ts";

import { LineTooLongError, malformed, MAX_HEADER_BYTES, type StreamReader } from "./stream.ts";
import { checkSnapshotHeader, type SnapshotHeader } from "./headers.ts";

/** The longest trailer line accepted (`{"sha256": "<64 hex>"}` is 78 bytes). */
const MAX_TRAILER_BYTES = 1024;
/** The longest chunk accepted; senders use 1 MiB blocks (a delta block adds 4 bytes a page). */
const MAX_CHUNK_BYTES = 64 << 20;

/** No header came: the remote printed nothing, or only text that is not protocol 1. */
export class NoHeaderError extends OperationError {}

/**
 * Reads the `LITEKEEP 1 {...}` header. Lines before it (a banner printed by the remote's shell
 * startup files) are skipped, up to 64 KiB. The header is only parsed JSON: the callers check
 * its fields (`checkSnapshotHeader`, `checkInfoHeader`).
 *
 * @throws {NoHeaderError} when no header comes
 * @throws {OperationError} when another protocol version answers, or a line is endless
 */
export async function readHeader<T>(reader: StreamReader, host: string): Promise<T> {
  const { version, json } = await findHeaderLine(reader, host);
  if (version !== PROTOCOL) {
    throw new OperationError(
      `"${host}" speaks litekeep protocol ${version}, this litekeep speaks ${PROTOCOL}`,
      {
        hint:
          "the remote litekeep is older or newer: install the same version on both hosts, or use --remote-tool python3",
      },
    );
  }
  return parseJson<T>(json, host);
}

/**
 * Finds a `LITEKEEP <version> {...}` line of any version, skipping up to 64 KiB of banner
 * lines before it: the one header search of protocols 1 and 2.
 *
 * @returns the version and the header's JSON text
 * @throws {NoHeaderError} when no header comes
 * @throws {OperationError} when a line is endless
 */
export async function findHeaderLine(
  reader: StreamReader,
  host: string,
): Promise<{ version: number; json: string }> {
  let skipped = 0;
  let first: string | undefined;
  for (;;) {
    let line: string | undefined;
    try {
      line = await reader.line(MAX_HEADER_BYTES);
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      throw malformed(host, "header", `a line longer than ${MAX_HEADER_BYTES >> 20} MiB`);
    }
    if (line === undefined) break;
    const m = /^LITEKEEP (\d+) (\{.*\})$/.exec(line);
    if (m) return { version: Number(m[1]), json: m[2] };
    first ??= line;
    skipped += line.length + 1;
    if (skipped > 1 << 16) break;
  }
  throw new NoHeaderError(
    `Unexpected answer from "${host}": ${
      first === undefined ? "nothing (the connection closed)" : JSON.stringify(first.slice(0, 80))
    }`,
    { hint: "something on the remote printed text; check its shell startup files" },
  );
}

/** Reads the trailer line: `{"sha256": 64 hex digits or null}`, and nothing after it. */
async function readTrailer(reader: StreamReader, host: string): Promise<{ sha256: string | null }> {
  let line: string | undefined;
  try {
    line = await reader.line(MAX_TRAILER_BYTES);
  } catch (error) {
    if (!(error instanceof LineTooLongError)) throw error;
    throw malformed(host, "trailer", `a line longer than ${MAX_TRAILER_BYTES} bytes`);
  }
  if (line === undefined) throw lost(host);
  const value = parseJson<unknown>(line, host);
  const sha256 = (value as { sha256?: unknown } | null)?.sha256;
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    !(sha256 === null || (typeof sha256 === "string" && /^[0-9a-f]{64}$/.test(sha256)))
  ) {
    throw malformed(host, "trailer", 'expected {"sha256": 64 hex digits or null}');
  }
  // The stream ends with the trailer; anything after it means the two sides disagree on framing.
  if (!await reader.atEnd()) throw malformed(host, "stream", "more data after the trailer");
  return { sha256 };
}

function lost(host: string): OperationError {
  return new OperationError(`The connection to "${host}" was lost in the middle of the transfer`, {
    hint: "run the pull again; the local database was not changed",
  });
}

/** JSON from the remote; anything unreadable is a garbled transfer, not a bug. */
function parseJson<T>(text: string, host: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw garbled(host, cause);
  }
}

function garbled(host: string, cause: unknown): OperationError {
  return new OperationError(`Garbled transfer from "${host}": ${describeCause(cause)}`, {
    cause,
    hint: "run again; if it persists, check the remote's litekeep/python3/sqlite3 and the network",
  });
}

/** Progress of a transfer. */
export type TransferProgress = (received: number, expected: number) => void;

/**
 * Reads a body (sized or chunked, raw or gzip) and hands the decoded bytes to `consume`.
 *
 * @returns the trailer
 * @throws {OperationError} when the stream ends early or is garbled
 */
async function decodeBody(
  reader: StreamReader,
  header: SnapshotHeader,
  host: string,
  consume: (data: Uint8Array) => Promise<void>,
): Promise<{ sha256: string | null }> {
  try {
    return await decodeBodyRaw(reader, header, host, consume);
  } catch (error) {
    // A broken gzip stream throws TypeError; local file errors (full disk) pass through.
    if (error instanceof TypeError) throw garbled(host, error);
    throw error;
  }
}

async function decodeBodyRaw(
  reader: StreamReader,
  header: SnapshotHeader,
  host: string,
  consume: (data: Uint8Array) => Promise<void>,
): Promise<{ sha256: string | null }> {
  let inflate:
    | { writer: WritableStreamDefaultWriter<BufferSource>; done: Promise<void> }
    | undefined;
  if (header.encoding === "gzip") {
    const stream = new DecompressionStream("gzip");
    const out = stream.readable.getReader();
    const writer = stream.writable.getWriter();
    const done = (async () => {
      for (;;) {
        const { value, done } = await out.read();
        if (done) return;
        await consume(value);
      }
    })();
    // A failed write (disk full) must not leave the network side waiting forever.
    done.catch((error) => writer.abort(error).catch(() => {}));
    inflate = { writer, done };
  }
  const sink = inflate
    ? async (piece: Uint8Array) => {
      try {
        await inflate!.writer.write(piece.slice());
      } catch {
        await inflate!.done; // throws the cause
        throw new OperationError(`Garbled compressed transfer from "${host}"`);
      }
    }
    : consume;
  if (header.framing === "sized") {
    if (!await reader.bytes(header.size, sink)) throw lost(host);
  } else {
    for (;;) {
      let line: string | undefined;
      try {
        line = await reader.line(16);
      } catch (error) {
        if (!(error instanceof LineTooLongError)) throw error;
        throw malformed(host, "chunk length", "a line longer than 16 bytes");
      }
      if (line === undefined) throw lost(host);
      if (!/^[0-9a-f]{1,8}$/.test(line)) throw garbled(host, "a chunk length is not hex");
      const length = parseInt(line, 16);
      if (length > MAX_CHUNK_BYTES) {
        throw malformed(host, "chunk length", `${length} bytes, more than ${MAX_CHUNK_BYTES}`);
      }
      if (length === 0) break;
      if (!await reader.bytes(length, sink)) throw lost(host);
    }
  }
  if (inflate) {
    await inflate.writer.close();
    await inflate.done;
  }
  return await readTrailer(reader, host);
}

function mismatch(host: string): OperationError {
  return new OperationError(`The copy from "${host}" does not match the remote's sha256`, {
    hint: "run the pull again; if it persists, check the network and the remote's disk",
  });
}

/**
 * Receives a whole snapshot into `file`, checking its sha256 against the trailer.
 *
 * @returns the sha256 of the database bytes
 * @throws {OperationError} when the stream ends early or the checksum does not match
 */
export async function receiveBody(
  reader: StreamReader,
  header: SnapshotHeader,
  file: Deno.FsFile,
  host: string,
  onProgress?: TransferProgress,
): Promise<string> {
  header = checkSnapshotHeader(header, host, false);
  const hash = createHash("sha256");
  let written = 0;
  const { sha256 } = await decodeBody(reader, header, host, async (data) => {
    // Never more than announced: a remote that keeps sending must not fill the local disk.
    if (written + data.length > header.size) {
      throw malformed(host, "snapshot", `more than the ${header.size} bytes its header announced`);
    }
    hash.update(data);
    let offset = 0;
    while (offset < data.length) offset += await file.write(data.subarray(offset));
    written += data.length;
    onProgress?.(written, header.size);
  });
  const actual = hash.digest("hex");
  if (written !== header.size) {
    throw new OperationError(
      `The copy from "${host}" has ${written} bytes, the remote snapshot ${header.size}`,
      { hint: "run the pull again" },
    );
  }
  if (sha256 !== null && sha256 !== actual) throw mismatch(host);
  return actual;
}

/** Bytes of a page's hash in a delta request. */
export const PAGE_HASH_BYTES = 8;

/**
 * The delta request: `"<page size>\n"` then the first 8 bytes of the sha256 of every page of
 * the local copy, so the remote sends only pages whose hash differs.
 */
export async function pageHashes(path: string, pageSize: number): Promise<Uint8Array> {
  const size = (await Deno.stat(path)).size;
  const pages = Math.ceil(size / pageSize);
  const head = new TextEncoder().encode(`${pageSize}\n`);
  const out = new Uint8Array(head.length + pages * PAGE_HASH_BYTES);
  out.set(head);
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(pageSize * 256);
  let page = 0;
  for (;;) {
    const n = await readFull(file, buffer);
    if (n === 0) break;
    for (let at = 0; at < n; at += pageSize, page++) {
      const digest = createHash("sha256").update(buffer.subarray(at, Math.min(at + pageSize, n)))
        .digest();
      out.set(digest.subarray(0, PAGE_HASH_BYTES), head.length + page * PAGE_HASH_BYTES);
    }
  }
  return out;
}

async function readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/**
 * Receives a delta into the file at `path`, which holds the local copy the request was made
 * from: each record is a 4-byte big-endian page number and that page; then the file is cut to
 * the snapshot's size and its sha256 (by `hashFile`, as every checksum) must equal the remote's.
 *
 * @returns the sha256 of the result and how many pages travelled
 */
export async function receiveDelta(
  reader: StreamReader,
  header: SnapshotHeader,
  path: string,
  host: string,
  onProgress?: TransferProgress,
): Promise<{ sha256: string; pages: number }> {
  header = checkSnapshotHeader(header, host, true);
  const { pageSize, pages: pageCount } = header;
  const record = 4 + pageSize;
  let pending = new Uint8Array(0);
  let pages = 0;
  let sha256: string | null;
  {
    // Pull's private temp, no connection open on it; closed before the hash reads it back.
    using file = await Deno.open(path, { read: true, write: true });
    ({ sha256 } = await decodeBody(reader, header, host, async (data) => {
      const joined = new Uint8Array(pending.length + data.length);
      joined.set(pending);
      joined.set(data, pending.length);
      let at = 0;
      for (; at + record <= joined.length; at += record) {
        const view = new DataView(joined.buffer, joined.byteOffset + at, 4);
        const pageNo = view.getUint32(0);
        // Only pages of the announced file, each at most once: the loop is bounded by the header.
        if (pageNo < 1 || pageNo > pageCount) {
          throw malformed(host, "delta", `page ${pageNo} of a ${pageCount}-page snapshot`);
        }
        if (++pages > pageCount) {
          throw malformed(host, "delta", `more pages than the snapshot's ${pageCount}`);
        }
        await file.seek((pageNo - 1) * pageSize, Deno.SeekMode.Start);
        const page = joined.subarray(at + 4, at + record);
        let offset = 0;
        while (offset < page.length) offset += await file.write(page.subarray(offset));
        onProgress?.(pages * pageSize, header.size);
      }
      pending = joined.slice(at);
    }));
    if (pending.length !== 0) {
      throw malformed(host, "delta", `it ends inside a record (${pending.length} bytes left)`);
    }
    await file.truncate(header.size);
  }
  const actual = await hashFile(path, "sha256");
  if (sha256 === null || sha256 !== actual) throw mismatch(host);
  return { sha256: actual, pages };
}
