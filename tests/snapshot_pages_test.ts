/**
 * `snapshotDatabase()` through the page reader: the file it writes is the backup API's file of
 * the same database (header bytes SQLite rewrites in a copy aside), self-contained and trusted
 * by SQLite; under a live writer every snapshot is one instant; and each fallback really runs
 * the backup API and says which one ran.
 *
 * @module
 */
import assert from "node:assert/strict";
import { backup, DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { ls, makeDb, python3Until, runCli, sqlite3, tempDir } from "./_helpers.ts";
import { ledgerIds, startLedgerWriter } from "./support/ledger.ts";

/** Page 1 bytes a backup API copy rewrites (change counter, schema cookie, version-valid-for); 18-19 are checked apart. */
const COPY_NOISE = [[18, 20], [24, 28], [40, 44], [92, 100]];

/**
 * A WAL database of `pageSize` whose last rows are only in its `-wal`: the writer is killed
 * before any checkpoint, as an application killed mid-run leaves it.
 */
async function walOnlyRows(path: string, pageSize: number): Promise<void> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, os, signal, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA page_size = ${pageSize}")
c.execute("PRAGMA journal_mode = WAL")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
c.execute("CREATE INDEX t_v ON t (v)")
c.execute("INSERT INTO t (v) SELECT randomblob(300) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) SELECT i FROM n)")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("INSERT INTO t (v) SELECT randomblob(200) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) SELECT i FROM n)")
c.execute("DELETE FROM t WHERE id % 5 = 0")
os.kill(os.getpid(), signal.SIGKILL)`,
      path,
    ],
  }).output();
  assert.equal(out.signal, "SIGKILL", new TextDecoder().decode(out.stderr));
}

/** Asserts that `mine` equals `theirs` page for page, page 1's copy noise aside. */
function assertSamePages(mine: Uint8Array, theirs: Uint8Array, pageSize: number): void {
  assert.equal(mine.length, theirs.length, "file sizes");
  const a = mine.slice(0, pageSize);
  const b = theirs.slice(0, pageSize);
  for (const [from, to] of COPY_NOISE) {
    a.fill(0, from, to);
    b.fill(0, from, to);
  }
  assert.deepEqual(a, b, "page 1");
  for (let at = pageSize; at < mine.length; at += pageSize) {
    const x = mine.subarray(at, at + pageSize);
    const y = theirs.subarray(at, at + pageSize);
    if (!x.every((byte, i) => byte === y[i])) assert.fail(`page ${at / pageSize + 1} differs`);
  }
}

for (const pageSize of [512, 4096, 65536]) {
  Deno.test(`snapshotDatabase() writes the page reader's image: the backup API's file (${pageSize}-byte pages)`, async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "live.db");
    await walOnlyRows(db, pageSize);
    await Deno.chmod(db, 0o600);
    assert.ok((await Deno.stat(`${db}-wal`)).size > 0, "the rows must be in the -wal");
    const copy = join(dir.path, "copy.db");
    const result = await snapshotDatabase(db, copy, { busyTimeoutMs: 5000 });
    assert.equal(result.method, "pages");
    assert.equal(result.fallback, undefined);
    assert.equal(result.journalMode, "wal");
    assert.equal(result.pageSize, pageSize);
    // The backup API's copy of the same (idle) database.
    const judge = new DatabaseSync(db, { readOnly: true });
    const theirs = join(dir.path, "theirs.db");
    await backup(judge, theirs);
    judge.close();
    const mine = await Deno.readFile(copy);
    assertSamePages(mine, await Deno.readFile(theirs), pageSize);
    // Self-contained, and its header trusted: rollback mode, the page count at 28 valid.
    const view = new DataView(mine.buffer);
    assert.deepEqual([mine[18], mine[19]], [1, 1]);
    assert.equal(view.getUint32(28), result.pages);
    assert.equal(view.getUint32(92), view.getUint32(24));
    assert.equal(mine.length, result.pages * pageSize);
    assert.equal((await Deno.stat(copy)).mode! & 0o777, 0o600);
    assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
    assert.equal(await sqlite3(copy, "SELECT count(*) FROM t"), "560");
    assert.equal(await sqlite3(copy, "PRAGMA journal_mode"), "delete");
    assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith("copy")), ["copy.db"]);
  });
}

Deno.test("snapshotDatabase() through the page reader under a 300 commits/s writer: one instant each", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 3000 });
  await using writer = await startLedgerWriter(db, dir.path, 300);
  const copies: string[] = [];
  for (let n = 0; n < 40; n++) {
    const copy = join(dir.path, `copy-${n}.db`);
    const result = await snapshotDatabase(db, copy, { busyTimeoutMs: 5000 });
    assert.equal(result.method, "pages", JSON.stringify(result.fallback));
    copies.push(copy);
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  const ledger = await writer.stop();
  assert.ok(ledger.committed.length > 200, `only ${ledger.committed.length} commits`);
  const committed = new Set(ledger.committed);
  let last = 0;
  for (const copy of copies) {
    assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok", copy);
    const ids = ledgerIds([copy]);
    const max = Math.max(0, ...ids);
    // One instant: every id in it committed, and every id committed before its last is in it.
    for (const id of ids) assert.ok(committed.has(id), `${copy}: id ${id} never committed`);
    for (const id of ledger.committed) {
      if (id <= max) assert.ok(ids.has(id), `${copy}: id ${id} missing (it has up to ${max})`);
    }
    assert.ok(max >= last, "snapshots go forward");
    last = max;
  }
  assert.ok(last > 0, "the snapshots saw no commit");
});

/** Another process holding a write transaction with one uncommitted row. */
function holdWrite(db: string): Promise<AsyncDisposable> {
  return python3Until(
    `import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO members (name, joined_at) VALUES ('uncommitted', '2025-10-20')")
print("ready", flush=True)
time.sleep(600)`,
    [db],
    "ready",
  );
}

for (const wal of [true, false]) {
  const reason = wal ? "busy" : "journal";
  Deno.test(`snapshotDatabase() falls back to the backup API and says so (${reason})`, async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "gym.db");
    makeDb(db, { wal, payments: 500 });
    const members = await sqlite3(db, "SELECT count(*) FROM members");
    // WAL: the page reader may not wait for the write lock; rollback: the -journal is there.
    await using _app = await holdWrite(db);
    if (!wal) assert.ok((await ls(dir.path)).includes("gym.db-journal"));
    const copy = join(dir.path, "copy.db");
    const result = await snapshotDatabase(db, copy, { busyTimeoutMs: 10_000 });
    assert.equal(result.method, "backup-api");
    assert.equal(result.fallback?.reason, reason, JSON.stringify(result.fallback));
    assert.match(result.fallback?.detail ?? "", wal ? /held its lock/ : /gym\.db-journal/);
    assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
    assert.equal(await sqlite3(copy, "SELECT count(*) FROM members"), members);
    assert.equal(await sqlite3(copy, "PRAGMA journal_mode"), "delete");
  });
}

Deno.test("backup --json and --verbose say how the snapshot was copied", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 300 });
  const res = await runCli(["backup", db, "--json", "--verbose"]);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout).snapshot, { method: "pages", fallback: null });
  assert.match(res.stderr, /debug: snapshot: copied by the page reader/);
  // A writer mid-transaction in rollback mode: the backup API copies, and both say why.
  const journal = join(dir.path, "journal.db");
  makeDb(journal, { wal: false, payments: 300 });
  await using _app = await holdWrite(journal);
  const fell = await runCli(["backup", journal, "--json", "--verbose"]);
  assert.equal(fell.code, 0, fell.stderr);
  const snapshot = JSON.parse(fell.stdout).snapshot;
  assert.equal(snapshot.method, "backup-api");
  assert.equal(snapshot.fallback.reason, "journal");
  assert.match(fell.stderr, /debug: snapshot: copied by SQLite's backup API, .*\(journal: /);
  const quiet = await runCli(["backup", db]);
  assert.doesNotMatch(quiet.stderr, /snapshot: copied/);
});
