/**
 * A differential proof of `readPages()`: under a writer process that commits transactions of
 * random sizes, checkpoints in every mode and vacuums, each image the page reader gives is
 * compared page for page with the backup API's image of the same instant (a read transaction
 * opened in `onInstant`, while the reader holds the write lock), and checked by
 * `integrity_check` and the row count of that instant.
 *
 * @module
 */
import assert from "node:assert/strict";
import { backup, DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { mountTmpfs, tempDir } from "./_helpers.ts";
import { type PageImage, parseWalIndex, readPages } from "../lib/engine/page_reader.ts";
import { openReadOnly } from "../lib/engine/sqlite.ts";

/** Page 1 bytes SQLite rewrites in a copy: file format, change counter, schema cookie, version. */
const HEADER_NOISE = [[18, 20], [24, 28], [40, 44], [92, 100]];

/**
 * The writer: random transactions (inserts with overflow payloads, updates, deletes), and now
 * and then a checkpoint of a random mode or a VACUUM, until the stop file appears.
 */
const WRITER = `
import { DatabaseSync } from "node:sqlite";
const [db, stop, pageSize, maxRows, seedText] = Deno.args;
let seed = Number(seedText);
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const conn = new DatabaseSync(db);
conn.exec("PRAGMA busy_timeout = 10000");
const insert = conn.prepare("INSERT INTO t (k, v) VALUES (?, randomblob(?))");
const modes = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"];
let commits = 0, checkpoints = 0, vacuums = 0, busy = 0;
for (let i = 0;; i++) {
  if (i % 8 === 0) { try { Deno.statSync(stop); break; } catch { /* go on */ } }
  const r = rnd();
  try {
    if (r < 0.08) {
      conn.exec("PRAGMA wal_checkpoint(" + modes[Math.floor(rnd() * 4)] + ")");
      checkpoints++;
    } else if (r < 0.095) {
      conn.exec("VACUUM");
      vacuums++;
    } else {
      conn.exec("BEGIN IMMEDIATE");
      const n = 1 + Math.floor(rnd() * 20);
      for (let j = 0; j < n; j++) {
        insert.run(Math.floor(rnd() * 1e6), Math.floor(rnd() * Number(pageSize) * 1.5));
      }
      if (rnd() < 0.3) conn.exec("UPDATE t SET k = k + 1 WHERE id % 7 = " + Math.floor(rnd() * 7));
      const rows = conn.prepare("SELECT count(*) AS n FROM t").get().n;
      if (rows > Number(maxRows)) {
        conn.exec("DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT " +
          Math.floor(rows / 2) + ")");
      }
      conn.exec("COMMIT");
      commits++;
    }
  } catch {
    busy++;
    try { conn.exec("ROLLBACK"); } catch { /* none open */ }
  }
  await new Promise((resolve) => setTimeout(resolve, rnd() * 3));
}
conn.close();
console.log(JSON.stringify({ commits, checkpoints, vacuums, busy }));
`;

/** A database of `pageSize` in `mode`, with the writer's table and an index. */
function createDb(path: string, pageSize: number, mode: "WAL" | "DELETE"): void {
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA page_size = ${pageSize}`);
  db.exec(`PRAGMA journal_mode = ${mode}`);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v BLOB)");
  db.exec("CREATE INDEX t_k ON t (k)");
  db.close();
}

/** Starts the writer on `db`; the returned stop ends it and gives its report. */
async function startWriter(dir: string, db: string, pageSize: number, maxRows: number) {
  const script = join(dir, "writer.ts");
  const stopFile = join(dir, "stop");
  await Deno.writeTextFile(script, WRITER);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, db, stopFile, String(pageSize), String(maxRows), "7"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return async () => {
    await Deno.writeTextFile(stopFile, "");
    const out = await child.output();
    const text = new TextDecoder();
    assert.ok(out.success, `the writer failed: ${text.decode(out.stderr)}`);
    return JSON.parse(text.decode(out.stdout)) as Record<string, number>;
  };
}

/**
 * One snapshot: the page reader's image must pass integrity_check and hold exactly the rows a
 * read transaction saw at its instant. With `backupApi`, that transaction stays open while the
 * pages are read and the backup API's image of it must equal the reader's page for page; without,
 * it ends at once, so only the reader's own read transaction keeps its instant (a reader that
 * let its instant go would be caught by the rows or the integrity check).
 */
async function compareOnce(
  db: string,
  dir: string,
  n: number,
  backupApi: boolean,
): Promise<PageImage> {
  const pages: Uint8Array[] = [];
  const judge = openReadOnly(db, 10_000);
  try {
    let rows = "";
    const result = await readPages(db, (page, bytes) => {
      assert.equal(page, pages.length + 1);
      pages.push(bytes.slice());
    }, {
      busyTimeoutMs: 10_000,
      onInstant: () => {
        judge.exec("BEGIN");
        rows = digest(judge);
        if (!backupApi) judge.exec("COMMIT");
      },
    });
    assert.equal(result.kind, "image", JSON.stringify(result));
    const image = result as PageImage;
    assert.equal(pages.length, image.pageCount);
    if (backupApi) {
      // Still inside the transaction opened at the image's instant.
      const copy = join(dir, `backup-${n}.db`);
      await backup(judge, copy);
      judge.exec("COMMIT");
      const theirs = await Deno.readFile(copy);
      await Deno.remove(copy);
      assert.equal(theirs.length, image.pageCount * image.pageSize, `snapshot ${n}: page count`);
      for (let p = 0; p < pages.length; p++) {
        const mine = pages[p].slice();
        const other = theirs.slice(p * image.pageSize, (p + 1) * image.pageSize);
        if (p === 0) {
          for (const [from, to] of HEADER_NOISE) {
            mine.fill(0, from, to);
            other.fill(0, from, to);
          }
        }
        if (!equalBytes(mine, other)) assert.fail(`snapshot ${n}: page ${p + 1} differs`);
      }
    }
    await checkImage(join(dir, `image-${n}.db`), pages, rows);
    return image;
  } finally {
    judge.close();
  }
}

/** The rows of `t` in one string: their count and an FNV-1a hash of every id, k and v. */
function digest(db: DatabaseSync): string {
  let hash = 0x811c9dc5;
  let count = 0;
  const mix = (byte: number) => {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  };
  for (const row of db.prepare("SELECT id, k, v FROM t ORDER BY id").iterate()) {
    const { id, k, v } = row as { id: number; k: number; v: Uint8Array };
    count++;
    for (const c of `${id}:${k}:`) mix(c.charCodeAt(0));
    for (const b of v) mix(b);
  }
  return `${count} rows, hash ${hash}`;
}

/** Writes the image as a standalone file; it must pass integrity_check and hold `rows`. */
async function checkImage(path: string, pages: Uint8Array[], rows: string): Promise<void> {
  const bytes = new Uint8Array(pages.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const page of pages) {
    bytes.set(page, at);
    at += page.length;
  }
  bytes[18] = 1;
  bytes[19] = 1;
  await Deno.writeFile(path, bytes);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const check = db.prepare("PRAGMA integrity_check").all().map((r) => Object.values(r)[0]);
    assert.deepEqual(check, ["ok"]);
    assert.equal(digest(db), rows);
  } finally {
    db.close();
  }
  await Deno.remove(path);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Snapshots taken per page size (a smaller table for 64 KiB pages). */
const CASES = [
  { pageSize: 512, maxRows: 400, snapshots: 100 },
  { pageSize: 4096, maxRows: 300, snapshots: 100 },
  { pageSize: 65536, maxRows: 40, snapshots: 40 },
];

for (const { pageSize, maxRows, snapshots } of CASES) {
  Deno.test(`readPages() matches the backup API under a writer (${pageSize}-byte pages)`, async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "live.db");
    createDb(db, pageSize, "WAL");
    const stop = await startWriter(dir.path, db, pageSize, maxRows);
    const seen = { wal: 0, fileOnly: 0, walPages: 0 };
    try {
      // Let the writer start.
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (let n = 0; n < snapshots; n++) {
        const image = await compareOnce(db, dir.path, n, n % 2 === 0);
        assert.equal(image.journalMode, "wal");
        if (image.walPages > 0) seen.wal++;
        else seen.fileOnly++;
        seen.walPages += image.walPages;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      }
    } finally {
      const report = await stop();
      // The numbers behind the proof, in the test's output.
      // deno-lint-ignore no-console
      console.log(`${pageSize}: ${snapshots} snapshots`, seen, report);
    }
    // The images must have been taken from the -wal as well as from the file alone.
    assert.ok(seen.wal > 0, "no image used the -wal");
    assert.ok(seen.fileOnly > 0, "every image used the -wal: none met a backfilled WAL");
  });
}

Deno.test("readPages() reads a rollback-journal database under a writer", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "live.db");
  createDb(db, 4096, "DELETE");
  const stop = await startWriter(dir.path, db, 4096, 300);
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let n = 0; n < 15; n++) {
      const image = await compareOnce(db, dir.path, n, n % 2 === 0);
      assert.equal(image.journalMode, "rollback");
      assert.equal(image.walPages, 0);
    }
  } finally {
    await stop();
  }
});

Deno.test("readPages() falls back on read-only media", async () => {
  await using dir = await tempDir();
  const mnt = join(dir.path, "mnt");
  await using mount = await mountTmpfs(mnt, 4096);
  if (!mount) return; // Not root, outside CI: mounting is not allowed here.
  const db = join(mnt, "live.db");
  createDb(db, 4096, "WAL");
  const remount = await new Deno.Command("mount", {
    args: ["-o", "remount,ro", mnt],
    stderr: "piped",
  }).output();
  assert.ok(remount.success, new TextDecoder().decode(remount.stderr));
  let pages = 0;
  const result = await readPages(db, () => {
    pages++;
  }, { busyTimeoutMs: 1000 });
  assert.equal(result.kind, "fallback");
  assert.equal(result.kind === "fallback" && result.reason, "read-only-media");
  assert.equal(pages, 0);
});

Deno.test("parseWalIndex() says why a WAL-index header cannot be trusted", async (t) => {
  const good = () => {
    const bytes = new Uint8Array(136);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 3007000, true);
    bytes[12] = 1;
    view.setUint16(14, 4096, true);
    view.setUint32(16, 10, true);
    view.setUint32(20, 3, true);
    bytes.copyWithin(48, 0, 48);
    view.setUint32(96, 4, true);
    return bytes;
  };
  await t.step("a sound header gives its fields", () => {
    const index = parseWalIndex(good());
    assert.ok(!("kind" in index));
    assert.deepEqual(
      [index.pageSize, index.mxFrame, index.nPage, index.nBackfill],
      [4096, 10, 3, 4],
    );
  });
  await t.step("page size 1 reads as 65536", () => {
    const bytes = good();
    bytes[14] = 1;
    bytes[15] = 0;
    bytes.copyWithin(48, 0, 48);
    const index = parseWalIndex(bytes);
    assert.equal("kind" in index ? 0 : index.pageSize, 65536);
  });
  const cases: Array<[string, (b: Uint8Array) => void, string]> = [
    ["an unknown version", (b) => {
      b[0] ^= 1;
      b[48] ^= 1;
    }, "wal-index-version"],
    ["copies that differ", (b) => {
      b[16] ^= 1;
    }, "wal-index-torn"],
    ["an uninitialised header", (b) => {
      b[12] = 0;
      b[60] = 0;
    }, "wal-index-torn"],
    ["a short -shm", () => {}, "no-shm"],
  ];
  for (const [name, spoil, reason] of cases) {
    await t.step(name, () => {
      let bytes = good();
      spoil(bytes);
      if (reason === "no-shm") bytes = bytes.subarray(0, 40);
      const result = parseWalIndex(bytes);
      assert.equal("kind" in result && result.reason, reason);
    });
  }
});
