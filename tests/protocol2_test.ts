/**
 * Protocol 2's encoders and decoders (lib/remote/protocol2.ts), the ones both ends use: frames,
 * the header's checks, page and block hashes, DIFF/WANT, PAGES records and their compression.
 */
import assert from "node:assert/strict";
import {
  BLOCK_PAGES,
  blockHashes,
  checkDiffSize,
  checkHeader2,
  checkTrailer2,
  type Compress2,
  compressPayload,
  decodePages,
  decodeWant,
  decompressPayload,
  Diff,
  DIFF_PIECE_BYTES,
  diffFrame,
  encodeDiff,
  encodeFrame,
  encodeWant,
  FRAME,
  HAS_ZSTD,
  type Header2,
  headerLine,
  ImageHashes,
  jsonFrame,
  MAX_WANT_PAGES,
  maxPagesPayload,
  needFrame,
  PageBatcher,
  pageDigest,
  readFrame,
  readHeader2,
  selfContainedPage1,
  wantedPages,
} from "../lib/remote/protocol2.ts";
import { StreamReader } from "../lib/remote/stream.ts";
import { OperationError } from "../lib/errors.ts";

function readerOf(...chunks: Uint8Array[]): StreamReader {
  return new StreamReader(new Blob(chunks.map((c) => c.slice())).stream(), { host: "pi" });
}

function page(fill: number, size = 4096): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

const HEADER: Header2 = {
  tool: "litekeep",
  version: "0.1.0",
  sqlite: "3.50.0",
  journalMode: "wal",
  pageSize: 4096,
  pages: 3,
  size: 3 * 4096,
  mode: "delta",
  compress: "zstd",
  reader: "pages",
  fallback: null,
};

Deno.test("readFrame() reads frames in order, and refuses types, lengths and cut-offs", async (t) => {
  await t.step("two frames, then the end", async () => {
    const r = readerOf(
      encodeFrame(FRAME.DIFF, new Uint8Array([1, 2, 3])),
      jsonFrame(FRAME.TRAILER, { a: 1 }),
    );
    const a = await needFrame(r, [FRAME.DIFF], "pi");
    assert.deepEqual([a.type, [...a.payload]], [FRAME.DIFF, [1, 2, 3]]);
    const b = await needFrame(r, [FRAME.TRAILER], "pi");
    assert.equal(new TextDecoder().decode(b.payload), '{"a":1}');
    assert.equal(await readFrame(r, [FRAME.PAGES], "pi"), undefined);
  });
  await t.step("a type not expected", async () => {
    const r = readerOf(encodeFrame(FRAME.WANT, new Uint8Array(0)));
    await assert.rejects(needFrame(r, [FRAME.DIFF], "pi"), /type 3 where 16 was expected/);
  });
  await t.step("a length past the limit", async () => {
    const head = new Uint8Array([FRAME.PAGES, 0xff, 0xff, 0xff, 0xff]);
    await assert.rejects(needFrame(readerOf(head), [FRAME.PAGES], "pi"), /more than/);
  });
  await t.step("a frame cut off by a lost connection", async () => {
    const whole = encodeFrame(FRAME.PAGES, new Uint8Array(100));
    await assert.rejects(
      needFrame(readerOf(whole.subarray(0, 50)), [FRAME.PAGES], "pi"),
      /connection to "pi" was lost/,
    );
    await assert.rejects(needFrame(readerOf(), [FRAME.PAGES], "pi"), /was lost/);
  });
});

Deno.test("readHeader2() skips a banner, checks the fields, and refuses protocol 1", async (t) => {
  await t.step("banner then header", async () => {
    const banner = new TextEncoder().encode("Welcome to the Pi\n");
    assert.deepEqual(await readHeader2(readerOf(banner, headerLine(HEADER)), "pi"), HEADER);
  });
  await t.step("protocol 1 answering", async () => {
    const v1 = new TextEncoder().encode('LITEKEEP 1 {"tool":"python3"}\n');
    await assert.rejects(readHeader2(readerOf(v1), "pi"), /protocol 1 where 2 was asked for/);
  });
  await t.step("fields", () => {
    for (
      const [bad, field] of [
        [{ pageSize: 1000 }, "pageSize"],
        [{ size: 5 }, "size"],
        [{ mode: "x" }, "mode"],
        [{ compress: "lz4" }, "compress"],
        [{ reader: "magic" }, "reader"],
        [{ tool: "python3" }, "tool"],
      ] as const
    ) {
      assert.throws(() => checkHeader2({ ...HEADER, ...bad }, "pi"), new RegExp(`"${field}"`));
    }
  });
  await t.step("nothing at all", async () => {
    await assert.rejects(readHeader2(readerOf(), "pi"), /nothing \(the connection closed\)/);
  });
});

Deno.test("pageDigest() ignores only page 1's header bytes that SQLite rewrites", () => {
  const a = page(7);
  const b = a.slice();
  for (const at of [18, 19, 24, 27, 40, 43, 92, 99]) b[at] = 0xee;
  assert.deepEqual(pageDigest(1, a), pageDigest(1, b));
  // The same bytes on another page, and any other byte of page 1, count.
  assert.notDeepEqual(pageDigest(2, a), pageDigest(2, b));
  for (const at of [17, 20, 28, 44, 100, 4095]) {
    const c = a.slice();
    c[at] ^= 1;
    assert.notDeepEqual(pageDigest(1, a), pageDigest(1, c), `byte ${at}`);
  }
  const self = selfContainedPage1(a);
  assert.deepEqual([self[18], self[19], a[18]], [1, 1, 7]);
});

Deno.test("ImageHashes: equal content, equal hashes; one changed page, one differing block", () => {
  const pages = 3 * BLOCK_PAGES + 5;
  const make = (changed?: number) => {
    const h = new ImageHashes(pages);
    for (let p = 1; p <= pages; p++) h.add(p, page(changed === p ? 255 : p % 251));
    return h;
  };
  const a = make();
  const b = make();
  assert.equal(a.contentSha256(), b.contentSha256());
  const c = make(BLOCK_PAGES + 3);
  assert.notEqual(a.contentSha256(), c.contentSha256());
  const diff = encodeDiff(c.pageHashes, a.blockHashes(), BLOCK_PAGES);
  // One block: its number and its pages' hashes.
  assert.equal(diff.length, 4 + BLOCK_PAGES * 8);
  assert.equal(new DataView(diff.buffer).getUint32(0), 1);
  assert.deepEqual(wantedPages(diff, a.pageHashes, pages, BLOCK_PAGES, "pi"), [1, BLOCK_PAGES + 3]);
  assert.equal(encodeDiff(a.pageHashes, a.blockHashes(), BLOCK_PAGES).length, 0);
  assert.throws(() => new ImageHashes(2).add(2, page(1)), /out of order/);
});

Deno.test("wantedPages() asks for every page past the local end, and refuses a bad DIFF", () => {
  const local = new ImageHashes(10, 4);
  for (let p = 1; p <= 10; p++) local.add(p, page(p));
  const remote = new ImageHashes(13, 4);
  for (let p = 1; p <= 13; p++) remote.add(p, page(p));
  const diff = encodeDiff(remote.pageHashes, local.blockHashes(), 4);
  // Block 2 (pages 9-12: 11 and 12 are new) and block 3 (page 13).
  assert.deepEqual(wantedPages(diff, local.pageHashes, 13, 4, "pi"), [1, 11, 12, 13]);
  // Even a DIFF that omits them cannot leave holes.
  assert.deepEqual(wantedPages(new Uint8Array(0), local.pageHashes, 13, 4, "pi"), [1, 11, 12, 13]);
  assert.throws(
    () => wantedPages(new Uint8Array(3), local.pageHashes, 13, 4, "pi"),
    OperationError,
  );
  const twice = new Uint8Array([...diff.subarray(0, 4 + 32), ...diff.subarray(0, 4 + 32)]);
  assert.throws(() => wantedPages(twice, local.pageHashes, 13, 4, "pi"), /out of order/);
  assert.equal(blockHashes(local.pageHashes, 4).length, 3 * 8);
});

Deno.test("Diff.pieces(): the same bytes at every piece size, blocks split across pieces, one buffer", () => {
  // 10 blocks of 4 pages and a short one; the local copy has 9 blocks, 3 of them changed.
  const local = new ImageHashes(36, 4);
  for (let p = 1; p <= 36; p++) local.add(p, page(p));
  const remote = new ImageHashes(43, 4);
  for (let p = 1; p <= 43; p++) remote.add(p, page([6, 17, 30].includes(p) ? 250 : p));
  const diff = new Diff(remote.pageHashes, local.blockHashes(), 4);
  // Blocks 1, 4 and 7 changed; 9 and 10 the local copy lacks (10 holds 3 pages).
  assert.deepEqual(diff.blocks, [1, 4, 7, 9, 10]);
  assert.equal(diff.length, 4 * (4 + 32) + 4 + 24);
  const whole = diff.bytes();
  assert.equal(whole.length, diff.length);
  assert.deepEqual(wantedPages(whole, local.pageHashes, 43, 4, "pi"), [
    1,
    6,
    17,
    30,
    ...Array.from({ length: 7 }, (_, i) => 37 + i),
  ]);
  assert.deepEqual([...whole.subarray(0, 4)], [0, 0, 0, 1]);
  assert.deepEqual(whole.subarray(4, 36), remote.pageHashes.subarray(32, 64));
  for (const size of [1, 3, 4, 35, 36, 37, 100, diff.length - 1, diff.length, DIFF_PIECE_BYTES]) {
    const pieces: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for (const piece of diff.pieces(size)) {
      buffers.add(piece.buffer);
      // A view of a buffer the next piece overwrites: keep a copy.
      pieces.push(piece.slice());
    }
    assert.equal(buffers.size, 1, `one buffer for pieces of ${size}`);
    assert.ok(pieces.slice(0, -1).every((p) => p.length === size), `pieces of ${size}`);
    assert.ok(pieces.at(-1)!.length > 0 && pieces.at(-1)!.length <= size);
    assert.deepEqual(new Uint8Array(pieces.flatMap((p) => [...p])), whole, `pieces of ${size}`);
  }
  // Nothing differs: no piece at all.
  const same = new Diff(local.pageHashes, local.blockHashes(), 4);
  assert.deepEqual([same.length, [...same.pieces()], same.bytes().length], [0, [], 0]);
});

Deno.test("wantedPages() refuses a header of more pages than one WANT can list, allocating nothing", () => {
  const local = new ImageHashes(10, 4);
  for (let p = 1; p <= 10; p++) local.add(p, page(p));
  // A hostile header's 2^32 - 2 pages: without the bound, a Set of 16M numbers, then RangeError.
  assert.throws(
    () => wantedPages(new Uint8Array(0), local.pageHashes, 0xfffffffe, 4, "pi"),
    (e: unknown) =>
      e instanceof OperationError && /"pi" announced 4294967294 pages/.test(e.message),
  );
  // Exactly as many as fit: page 1 and every page past the local end.
  const fit = MAX_WANT_PAGES + 9;
  assert.equal(wantedPages(new Uint8Array(0), local.pageHashes, fit, 4, "pi").length, fit - 9);
  assert.throws(
    () => wantedPages(new Uint8Array(0), local.pageHashes, fit + 1, 4, "pi"),
    OperationError,
  );
});

Deno.test("encodeWant() and decodeWant() round-trip; decodeWant() refuses disorder and range", () => {
  assert.deepEqual([...decodeWant(encodeWant([1, 5, 9]), 9, "pi")], [1, 5, 9]);
  assert.throws(() => decodeWant(encodeWant([5, 1]), 9, "pi"), /out of order/);
  assert.throws(() => decodeWant(encodeWant([10]), 9, "pi"), /out of order or range/);
  assert.throws(() => decodeWant(new Uint8Array(3), 9, "pi"), /whole page numbers/);
});

Deno.test("PageBatcher and decodePages() carry records through each compression", () => {
  const choices: Compress2[] = ["none", "gzip", ...(HAS_ZSTD ? ["zstd" as const] : [])];
  for (const how of choices) {
    const batcher = new PageBatcher(4096);
    const payloads: Uint8Array[] = [];
    for (let p = 1; p <= 200; p++) {
      // A payload is a view of the batcher's buffer, valid until the next add: keep a copy.
      const full = batcher.add(p, page(p % 256));
      if (full) payloads.push(full.slice());
    }
    payloads.push(batcher.flush()!.slice());
    assert.equal(batcher.flush(), undefined);
    const seen: number[] = [];
    for (const payload of payloads) {
      const wire = compressPayload(payload, how);
      if (how !== "none") assert.ok(wire.length < payload.length / 10, how);
      const back = decompressPayload(wire, how, maxPagesPayload(4096), "pi");
      for (const [no, bytes] of decodePages(back, 4096, "pi")) {
        assert.equal(bytes[0], no % 256);
        seen.push(no);
      }
    }
    assert.deepEqual(seen, Array.from({ length: 200 }, (_, i) => i + 1), how);
  }
  assert.throws(() => [...decodePages(new Uint8Array(4099), 4096, "pi")], /whole/);
  assert.throws(() => decompressPayload(new Uint8Array([1, 2, 3]), "gzip", 100, "pi"), /Garbled/);
  // A frame that inflates past one batch's size is refused, never allocated.
  const bomb = compressPayload(new Uint8Array(4 << 20), "gzip");
  assert.throws(() => decompressPayload(bomb, "gzip", maxPagesPayload(4096), "pi"), /Garbled/);
});

Deno.test("checkTrailer2() refuses a trailer without its hashes", () => {
  const ok = {
    sha256: "a".repeat(64),
    contentSha256: null,
    unchanged: false,
    pagesSent: 3,
    tables: [],
  };
  assert.equal(checkTrailer2(ok, "pi").pagesSent, 3);
  assert.throws(() => checkTrailer2({ ...ok, sha256: "x" }, "pi"), /"sha256"/);
  // Only an unchanged answer may leave the snapshot hash out.
  assert.equal(checkTrailer2({ ...ok, sha256: null, unchanged: true }, "pi").sha256, null);
  assert.throws(() => checkTrailer2({ ...ok, sha256: null }, "pi"), /"sha256"/);
  assert.throws(() => checkTrailer2({ ...ok, unchanged: "no" }, "pi"), /"unchanged"/);
  assert.throws(() => checkTrailer2({ ...ok, pagesSent: -1 }, "pi"), /"pagesSent"/);
});

Deno.test("checkDiffSize() refuses a DIFF larger than a frame with the remedy, not a RangeError", () => {
  // 8.4M pages (32 GiB of 4 KiB pages), every block differing from an empty local copy: the
  // length is known, and refused, before any of the payload is built.
  const diff = new Diff(new Uint8Array(8 * 8_400_000), new Uint8Array(0), 128);
  const remedy = (e: unknown) => e instanceof OperationError && /--method snapshot/.test(e.message);
  assert.throws(() => checkDiffSize(diff.length), remedy);
  assert.throws(() => diffFrame(new Uint8Array(64 << 20 | 1)), remedy);
  assert.equal(diffFrame(new Uint8Array(12)).length, 5 + 12);
});
