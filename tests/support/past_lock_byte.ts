/**
 * A WAL database that crosses the 1 GiB lock-byte page, made sparse in milliseconds: for the
 * tests of the page reader and of snapshots past that page.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";

/** Bytes of a page of the 1 GiB case, and where its lock-byte page is. */
export const BIG_PAGE = 65536;
export const LOCK_BYTE_PAGE = 0x40000000 / BIG_PAGE + 1;
/** Free pages past the lock-byte page: where the writer's new pages come from. */
const HIGH_FREE = 400;

/**
 * A WAL database of 64 KiB pages that crosses the 1 GiB lock-byte page, made sparse in a few
 * milliseconds: SQLite makes tables t and t_k (pages 1-3), then the file is extended (a hole)
 * and every page but the lock-byte page put on the freelist: trunk 4 lists 5..16384, and trunk
 * 16386, the list's head, lists the 400 pages after it, so that SQLite takes the writer's new
 * pages past 1 GiB. The lock-byte page holds junk, which no copy may carry (SQLite never reads
 * or writes that page; the backup API skips it).
 *
 * @returns the page count
 */
export function createPastLockByte(path: string): number {
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA page_size = ${BIG_PAGE}; PRAGMA journal_mode = DELETE`);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v BLOB)");
  db.exec("CREATE INDEX t_k ON t (k)");
  const used = Number(db.prepare("PRAGMA page_count").get()?.page_count);
  db.close();
  assert.equal(used, 3);
  const lowTrunk = used + 1;
  const highTrunk = LOCK_BYTE_PAGE + 1;
  const pages = highTrunk + HIGH_FREE;
  const trunk = (next: number, leaves: number[]) => {
    const bytes = new Uint8Array(BIG_PAGE);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, next);
    view.setUint32(4, leaves.length);
    leaves.forEach((leaf, i) => view.setUint32(8 + 4 * i, leaf));
    return bytes;
  };
  const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const low = range(lowTrunk + 1, LOCK_BYTE_PAGE - 1);
  const high = range(highTrunk + 1, pages);
  using file = Deno.openSync(path, { read: true, write: true });
  const writeAt = (page: number, bytes: Uint8Array) => {
    file.seekSync((page - 1) * BIG_PAGE, Deno.SeekMode.Start);
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
  };
  const page1 = new Uint8Array(BIG_PAGE);
  file.seekSync(0, Deno.SeekMode.Start);
  file.readSync(page1);
  const view = new DataView(page1.buffer);
  view.setUint32(28, pages);
  view.setUint32(32, highTrunk);
  view.setUint32(36, 2 + low.length + high.length);
  view.setUint32(92, view.getUint32(24));
  writeAt(1, page1);
  writeAt(lowTrunk, trunk(0, low));
  writeAt(highTrunk, trunk(lowTrunk, high));
  writeAt(LOCK_BYTE_PAGE, new Uint8Array(BIG_PAGE).fill(0x5a));
  file.truncateSync(pages * BIG_PAGE);
  const check = new DatabaseSync(path);
  try {
    assert.equal(check.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
    check.exec("PRAGMA journal_mode = WAL");
  } finally {
    check.close();
  }
  return pages;
}
