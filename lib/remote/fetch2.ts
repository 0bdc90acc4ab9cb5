/**
 * The local side of a protocol-2 pull (see `protocol2.ts`): the local database is read with the
 * page reader as the delta's base (no snapshot copy of it), its hashes are computed while ssh
 * starts, and the temp is written once, in page order, from the local pages and the pages that
 * arrive, hashed as it is written. When the remote's content equals the local copy's, nothing is
 * written at all.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { type PinnedImage, withImage } from "../engine/page_reader.ts";
import { OperationError } from "../errors.ts";
import { closeLeavingNoSideFiles, sideFilesOf } from "../engine/sqlite.ts";
import { idleTimeoutMs, normalize, remoteFailure, startRemote } from "./ops.ts";
import {
  BLOCK_PAGES,
  checkTrailer2,
  decodePages,
  decompressPayload,
  encodeFrame,
  encodeWant,
  FRAME,
  type Header2,
  ImageHashes,
  jsonFrame,
  maxPagesPayload,
  needFrame,
  parseJsonPayload,
  readHeader2,
  type Request,
  type Trailer2,
  wantedPages,
} from "./protocol2.ts";
import { checkTables } from "./headers.ts";
import { malformed, type StreamReader } from "./stream.ts";
import type { Fetched, FetchOptions } from "./fetch.ts";

/** Local pages per read of the local image (see PinnedImage.readRun). */
const RUN_PAGES = 64;

/** What a protocol-2 fetch adds to `Fetched`. */
export interface Fetched2 extends Fetched {
  protocol: 2;
  header: Header2;
  unchanged: boolean;
}

/**
 * Pulls by protocol 2 into `temp` (created only when something is to be written). `delta`:
 * the local database holds data to start from.
 */
export async function fetchPull2(
  options: FetchOptions,
  temp: string,
  delta: boolean,
  warnings: string[],
): Promise<Fetched2> {
  const { source } = options;
  const host = source.host;
  // ssh starts (the slowest step of an unchanged pull) while the local pages are hashed.
  const { child, reader } = startRemote("pull2", source, options.remote, "stream");
  await using _child = child;
  try {
    let result: Fetched2;
    if (delta) {
      const sideFiles = await sideFilesOf(options.localDb);
      let pinned;
      try {
        pinned = await withImage(
          options.localDb,
          { busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS },
          (image) => converse(image),
        );
      } finally {
        // Our connections' -wal/-shm, on a database that had none: an ordinary close of one
        // read-write connection (the last one) checkpoints nothing and removes them, as the
        // app's own last close would.
        if (!sideFiles) closeLeavingNoSideFiles(options.localDb, options.busyTimeoutMs);
      }
      if (pinned.kind === "fallback") {
        warnings.push(
          `the local database could not be read page by page (${pinned.detail}): the whole ` +
            "database travelled",
        );
        result = await converse(undefined);
      } else result = pinned.value;
    } else {
      result = await converse(undefined);
    }
    await child.finish(idleTimeoutMs(options.remote));
    return result;
  } catch (error) {
    // An agent waiting for WANT (this side failed on the DIFF) reads until its stdin ends:
    // without this it would end only when the grace runs out, and be blamed for the failure.
    await child.closeStdin();
    throw await remoteFailure(child, reader, source, error);
  }

  async function converse(image: PinnedImage | undefined): Promise<Fetched2> {
    let hashes: ImageHashes | undefined;
    if (image) {
      hashes = new ImageHashes(image.pageCount, BLOCK_PAGES);
      // Runs of pages into one reused buffer: nothing allocated per page.
      for (let first = 1; first <= image.pageCount; first += RUN_PAGES) {
        const count = Math.min(RUN_PAGES, image.pageCount - first + 1);
        const run = image.readRun(first, count);
        const size = image.pageSize;
        for (let i = 0; i < count; i++) {
          hashes.add(first + i, run.subarray(i * size, (i + 1) * size));
        }
      }
      const request: Request = {
        mode: "delta",
        pageSize: image.pageSize,
        pageCount: image.pageCount,
        blockPages: BLOCK_PAGES,
        contentSha256: hashes.contentSha256(),
      };
      await child.writeStdin(jsonFrame(FRAME.REQUEST, request));
      await child.writeStdin(encodeFrame(FRAME.BLOCK_HASHES, hashes.blockHashes()));
    } else {
      await child.writeStdin(jsonFrame(FRAME.REQUEST, { mode: "snapshot" } satisfies Request));
    }
    const header = await readHeader2(reader, host);
    if (header.mode === "delta" && hashes === undefined) {
      throw malformed(host, "header", "a delta came where a whole snapshot was asked for");
    }
    // Local pages are spliced into a delta: only pages of the same size can be.
    if (header.mode === "delta" && header.pageSize !== image!.pageSize) {
      throw malformed(
        host,
        "header",
        `a delta in pages of ${header.pageSize} bytes, where the local copy's page size is ` +
          `${image!.pageSize}`,
      );
    }
    let want: number[] | undefined;
    if (header.mode === "delta") {
      const frame = await needFrame(reader, [FRAME.DIFF, FRAME.TRAILER], host);
      if (frame.type === FRAME.TRAILER) {
        const trailer = checkTrailer2(parseJsonPayload(frame.payload, host), host);
        if (!trailer.unchanged) throw malformed(host, "trailer", "a trailer where DIFF was due");
        // "Unchanged" leaves the local copy as it is: only the content hash may decide it, and
        // this side checks it (and the shape) itself rather than take the remote's word.
        if (
          trailer.contentSha256 !== hashes!.contentSha256() ||
          header.pages !== image!.pageCount || header.pageSize !== image!.pageSize
        ) {
          throw malformed(
            host,
            "trailer",
            "it says unchanged, but its content hash or size is not the local copy's",
          );
        }
        await endOfStream(reader, host);
        await child.closeStdin();
        return fetched(header, trailer, true);
      }
      want = wantedPages(frame.payload, hashes!.pageHashes, header.pages, BLOCK_PAGES, host);
      await child.writeStdin(encodeFrame(FRAME.WANT, encodeWant(want)));
    } else if (image !== undefined) {
      warnings.push(
        `the remote's page size (${header.pageSize}) is not the local copy's (${image.pageSize}): ` +
          "the whole database travelled",
      );
    }
    await child.closeStdin();
    options.onChanged?.();
    const trailer = await receivePages(
      reader,
      header,
      temp,
      host,
      image,
      want,
      (done, changed) =>
        options.onProgress?.({
          phase: "transfer",
          received: done,
          expected: header.size,
          ...(want === undefined
            ? {}
            : { changedPages: { received: changed, wanted: want.length } }),
        }),
    );
    return fetched(header, trailer, false);
  }
}

function fetched(header: Header2, trailer: Trailer2, unchanged: boolean): Fetched2 {
  return {
    protocol: 2,
    header,
    tool: "litekeep",
    bytes: header.size,
    sha256: trailer.sha256,
    tables: trailer.tables.map((t) => ({ ...t, newest: normalize(t.newest) })),
    sameSnapshot: true,
    counted: true,
    pagesSent: header.mode === "delta" ? trailer.pagesSent : undefined,
    pages: header.pages,
    unchanged,
  };
}

async function endOfStream(reader: StreamReader, host: string): Promise<void> {
  if (!await reader.atEnd()) throw malformed(host, "stream", "more data after the trailer");
}

/**
 * Writes the temp in page order: each page from the stream when it was wanted (or the whole
 * image travels), else from the local image; hashed as written, and the hash must equal the
 * trailer's.
 *
 * @returns the checked trailer
 */
async function receivePages(
  reader: StreamReader,
  header: Header2,
  temp: string,
  host: string,
  image: PinnedImage | undefined,
  want: number[] | undefined,
  onProgress: (bytes: number, changedPages: number) => void,
): Promise<Trailer2> {
  const { pageSize, pages } = header;
  const hash = createHash("sha256");
  using file = await Deno.open(temp, { read: true, write: true, create: true, truncate: true });
  // Writes go out in ~1 MiB runs: one syscall per 256 pages, not per page.
  const buffer = new Uint8Array(Math.max(1 << 20, pageSize));
  let buffered = 0;
  const flush = async () => {
    let offset = 0;
    while (offset < buffered) offset += await file.write(buffer.subarray(offset, buffered));
    buffered = 0;
  };
  let next = 1;
  // Wanted pages received so far (a delta), for the progress line.
  let wanted = 0;
  const put = async (page: Uint8Array) => {
    // Never more than announced: a remote that keeps sending must not fill the local disk.
    if (next > pages) throw malformed(host, "pages", `more than the ${pages} pages announced`);
    hash.update(page);
    buffer.set(page, buffered);
    buffered += page.length;
    next++;
    if (buffered + pageSize > buffer.length) {
      await flush();
      onProgress((next - 1) * pageSize, wanted);
    }
  };
  // Local pages up to (not including) `until`: only pages the remote did not send.
  const localUpTo = async (until: number) => {
    while (next < until) {
      if (image === undefined || next > image.pageCount) {
        throw malformed(host, "pages", `page ${next} was neither sent nor held locally`);
      }
      // A run of local pages at once (put copies them out of the reused run buffer).
      const count = Math.min(RUN_PAGES, until - next, image.pageCount - next + 1);
      const run = image.readRun(next, count);
      for (let i = 0; i < count; i++) await put(run.subarray(i * pageSize, (i + 1) * pageSize));
    }
  };
  const limit = maxPagesPayload(pageSize);
  for (;;) {
    const frame = await needFrame(reader, [FRAME.PAGES, FRAME.TRAILER], host);
    if (frame.type === FRAME.TRAILER) {
      const trailer = checkTrailer2(parseJsonPayload(frame.payload, host), host);
      trailer.tables = checkTables(trailer.tables, host);
      if (want !== undefined) await localUpTo(pages + 1);
      if (next !== pages + 1 || (want !== undefined && wanted !== want.length)) {
        throw new OperationError(
          `The copy from "${host}" has ${next - 1} of the remote snapshot's ${pages} pages`,
          { hint: "run the pull again; the local database was not changed" },
        );
      }
      // Not synced here: the temp is a source written INTO the local database (SQLite's commit
      // makes that durable) or, on a first pull, synced by pull beside its check (pull.ts).
      await flush();
      onProgress(pages * pageSize, wanted);
      if (hash.digest("hex") !== trailer.sha256) {
        throw new OperationError(`The copy from "${host}" does not match the remote's sha256`, {
          hint: "run the pull again; if it persists, check the network and the remote's disk",
        });
      }
      await endOfStream(reader, host);
      return trailer;
    }
    const payload = decompressPayload(frame.payload, header.compress, limit, host);
    for (const [pageNo, page] of decodePages(payload, pageSize, host)) {
      if (want === undefined) {
        if (pageNo !== next) throw malformed(host, "pages", `page ${pageNo} where ${next} was due`);
      } else {
        if (pageNo !== want[wanted]) {
          throw malformed(host, "pages", `page ${pageNo} where ${want[wanted]} was asked for`);
        }
        wanted++;
        await localUpTo(pageNo);
      }
      await put(page);
    }
  }
}
