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
import { withTempFile } from "../files/atomic.ts";
import { readChunks } from "../engine/db_file.ts";
import { describeCause, OperationError } from "../errors.ts";
import { localInfo } from "./info.ts";
import { PROTOCOL } from "./scripts.ts";
import { snapshotDatabase } from "../engine/snapshot.ts";
import { openBackupFile, pragmaValue, tableSummaries } from "../engine/sqlite.ts";
import { PAGE_HASH_BYTES } from "./protocol.ts";
import { type SnapshotHeader } from "./headers.ts";
import type { Compression } from "./ops.ts";

/** Where the agent writes its answer. */
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

function headerLine(value: unknown): Uint8Array {
  return encoder.encode(`LITEKEEP ${PROTOCOL} ${JSON.stringify(value)}\n`);
}

/** Answers `info` for `db`. */
export async function serveInfo(db: string, options: AgentOptions, sink: Sink): Promise<void> {
  await sink(headerLine(await localInfo(db, options.orderBy, options.busyTimeoutMs)));
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
  const dir = options.tmpDir || options.envTmpDir || "/tmp";
  const folder = await Deno.stat(dir).catch((cause) => cause as Error);
  if (folder instanceof Error || !folder.isDirectory) {
    throw new OperationError(
      `cannot create a temporary file in "${dir}": ${
        folder instanceof Error ? describeCause(folder) : "it is not a folder"
      }`,
    );
  }
  // A temp like every other (registered, with its "alive" marker), only read, never published:
  // removed on every way out, including a broken pipe when the connection drops.
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
  await sink(headerLine(header));
  const sendChunk = async (data: Uint8Array) => {
    if (data.length === 0) return;
    await sink(encoder.encode(`${data.length.toString(16)}\n`));
    await sink(data);
  };
  const hash = createHash("sha256");
  // Through db_file.ts, as every raw read of a database file (see there).
  const chunks = readChunks(temp);
  const skip = request === undefined ? undefined : knownPages(request, header.pageSize);
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
