/**
 * `snapshotDatabase()` hashing images too large to hash on the main thread: the hash then runs
 * in a worker on the other core, over the shared buffers that are written, while the next
 * chunks are read. The judge is coreutils: the hex must be `sha256sum` / `md5sum` of the file
 * written, for the smallest and largest page sizes and past the 1 GiB lock-byte page.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { sqlite3, tempDir } from "./_helpers.ts";
import { BIG_PAGE, createPastLockByte, LOCK_BYTE_PAGE } from "./support/past_lock_byte.ts";

const TOOLS = { sha256: "sha256sum", md5: "md5sum" } as const;

/** What `sha256sum` / `md5sum` print for `file`. */
async function toolHex(file: string, algorithm: "sha256" | "md5"): Promise<string> {
  const out = await new Deno.Command(TOOLS[algorithm], { args: [file], stdout: "piped" }).output();
  assert.ok(out.success, `${TOOLS[algorithm]} ${file} failed`);
  return new TextDecoder().decode(out.stdout).split(" ")[0];
}

/**
 * Runs `setup` (Python, with `c` a connection to `path` in autocommit), then, with the WAL's
 * automatic checkpoint off, `walRows`, and kills itself before any checkpoint: those rows are
 * then only in the `-wal`, as an application killed mid-run leaves them.
 */
async function pythonThenKilled(path: string, setup: string, walRows: string): Promise<void> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, os, signal, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
${setup}
c.execute("PRAGMA journal_mode = WAL")
c.execute("PRAGMA wal_autocheckpoint = 0")
${walRows}
os.kill(os.getpid(), signal.SIGKILL)`,
      path,
    ],
  }).output();
  assert.equal(out.signal, "SIGKILL", new TextDecoder().decode(out.stderr));
}

for (const pageSize of [512, 65536]) {
  Deno.test(`snapshotDatabase() hashes a 70 MB image in a worker: sha256sum and md5sum of the file (${pageSize}-byte pages)`, async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "live.db");
    // Made in rollback-journal mode, unsynced: 70 MB of rows in seconds; then WAL-only rows.
    await pythonThenKilled(
      db,
      `c.execute("PRAGMA page_size = ${pageSize}")
c.execute("PRAGMA synchronous = OFF")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
c.execute("INSERT INTO t (v) SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70000) SELECT i FROM n)")`,
      `c.execute("INSERT INTO t (v) SELECT randomblob(3000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) SELECT i FROM n)")
c.execute("DELETE FROM t WHERE id % 7 = 0")`,
    );
    assert.ok((await Deno.stat(db)).size > 64 << 20, "the image must be large enough for a worker");
    assert.ok((await Deno.stat(`${db}-wal`)).size > 0, "rows must be in the -wal");
    for (const algorithm of ["sha256", "md5"] as const) {
      const copy = join(dir.path, `copy-${algorithm}.db`);
      const snap = await snapshotDatabase(db, copy, { busyTimeoutMs: 5000, checksum: algorithm });
      assert.equal(snap.method, "pages");
      assert.equal(snap.pageSize, pageSize);
      assert.equal((await Deno.stat(copy)).size, snap.pages * pageSize);
      assert.deepEqual(snap.checksum, { algorithm, hex: await toolHex(copy, algorithm) });
      assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
      assert.equal(await sqlite3(copy, "SELECT count(*) FROM t"), String(70300 - 10042));
      await Deno.remove(copy);
    }
  });
}

Deno.test("snapshotDatabase() hashes an image past the 1 GiB lock-byte page: sha256sum of the file", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "big.db");
  createPastLockByte(db);
  // New pages come from the freelist past the lock-byte page, and their frames stay in the -wal.
  await pythonThenKilled(
    db,
    "",
    `c.execute("INSERT INTO t (k, v) SELECT i, randomblob(100000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) SELECT i FROM n)")`,
  );
  assert.ok((await Deno.stat(`${db}-wal`)).size > 0, "rows must be in the -wal");
  const copy = join(dir.path, "copy.db");
  const snap = await snapshotDatabase(db, copy, { busyTimeoutMs: 5000, checksum: "sha256" });
  assert.equal(snap.method, "pages");
  assert.ok(snap.pages > LOCK_BYTE_PAGE, `only ${snap.pages} pages`);
  assert.equal(snap.checksum?.hex, await toolHex(copy, "sha256"));
  // The source's lock-byte page holds junk; the copy's is zeros, as the backup API leaves it.
  using file = await Deno.open(copy);
  await file.seek((LOCK_BYTE_PAGE - 1) * BIG_PAGE, Deno.SeekMode.Start);
  const lockByte = new Uint8Array(BIG_PAGE);
  assert.equal(await file.read(lockByte), BIG_PAGE);
  assert.ok(lockByte.every((b) => b === 0), "the lock-byte page must be zeros");
  assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
  assert.equal(await sqlite3(copy, "SELECT count(*), sum(length(v)) FROM t"), "50|5000000");
});
