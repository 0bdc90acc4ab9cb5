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
import { backupDatabase, backupTestHooks } from "../lib/backup_set/backup.ts";
import { have, ls, makeDb, python3Until, runCli, sqlite3, tempDir } from "./_helpers.ts";
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

const NOW = new Date(2025, 9, 19, 15, 55, 38);
const TOOLS = { sha256: "sha256sum", md5: "md5sum" } as const;

/** What `sha256sum` / `md5sum` print for `file`: the independent judge of a sidecar's hex. */
async function toolHex(file: string, algorithm: "sha256" | "md5"): Promise<string> {
  const out = await new Deno.Command(TOOLS[algorithm], { args: [file], stdout: "piped" }).output();
  assert.ok(out.success, `${TOOLS[algorithm]} ${file} failed`);
  return new TextDecoder().decode(out.stdout).split(" ")[0];
}

/** Runs `sha256sum -c` / `md5sum -c` on the backup's sidecar from inside its folder. */
async function sidecarChecks(file: string, algorithm: "sha256" | "md5"): Promise<boolean> {
  const slash = file.lastIndexOf("/");
  const out = await new Deno.Command(TOOLS[algorithm], {
    args: ["-c", `${file.slice(slash + 1)}.${algorithm}`],
    cwd: file.slice(0, slash),
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

for (const pageSize of [512, 4096, 65536]) {
  Deno.test(`the page reader's snapshot is hashed as it is written: sha256sum -c and md5sum -c agree (${pageSize}-byte pages)`, async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "live.db");
    await walOnlyRows(db, pageSize);
    assert.ok((await Deno.stat(`${db}-wal`)).size > 0, "the rows must be in the -wal");
    for (const algorithm of ["sha256", "md5"] as const) {
      assert.ok(await have(TOOLS[algorithm]), `${TOOLS[algorithm]} is needed`);
      // The snapshot itself gives the hex of the bytes it wrote.
      const copy = join(dir.path, `copy-${algorithm}.db`);
      const snap = await snapshotDatabase(db, copy, { busyTimeoutMs: 5000, checksum: algorithm });
      assert.equal(snap.method, "pages");
      assert.deepEqual(snap.checksum, { algorithm, hex: await toolHex(copy, algorithm) });
      // And a backup's sidecar, made from that hex, passes the coreutils check.
      const backupDir = join(dir.path, `backups-${algorithm}`);
      const result = await backupDatabase({
        db,
        backupDir,
        now: NOW,
        checksum: algorithm,
        verify: "none",
      });
      assert.equal(result.snapshot.method, "pages");
      assert.equal(result.checksum?.hex, await toolHex(result.file, algorithm));
      assert.ok(await sidecarChecks(result.file, algorithm), `${TOOLS[algorithm]} -c failed`);
      assert.equal(await sqlite3(result.file, "SELECT count(*) FROM t"), "560");
    }
  });
}

Deno.test("sidecars hashed as the copy is written pass sha256sum -c under a 300 commits/s writer", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 20_000 });
  await using writer = await startLedgerWriter(db, dir.path, 300);
  const backupDir = join(dir.path, "backups");
  const files: string[] = [];
  for (let n = 0; n < 12; n++) {
    const algorithm = n % 2 ? "md5" : "sha256";
    const result = await backupDatabase({
      db,
      backupDir,
      now: new Date(NOW.getTime() + n * 1000),
      checksum: algorithm,
      verify: n % 3 ? "none" : "quick",
    });
    assert.equal(result.snapshot.method, "pages", JSON.stringify(result.snapshot.fallback));
    assert.ok(await sidecarChecks(result.file, algorithm), `${result.file}: sidecar wrong`);
    files.push(result.file);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  const ledger = await writer.stop();
  assert.ok(ledger.committed.length > 100, `only ${ledger.committed.length} commits`);
  const counts = new Set<number>();
  for (const file of files) {
    assert.equal(await sqlite3(file, "PRAGMA integrity_check"), "ok", file);
    counts.add(ledgerIds([file]).size);
  }
  assert.ok(counts.size > 1, "the writer's commits must land between the backups");
});

Deno.test("the sidecar is the hash of what was written: no pass reads the backup back", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 3000 });
  let written = "";
  // Once the copy is written and synced, and before the sidecar is made, a byte of the file
  // changes on disk: a hash that read the file back would hash the changed byte.
  backupTestHooks.afterCopy = async (temp) => {
    written = await toolHex(temp, "sha256");
    const size = (await Deno.stat(temp)).size;
    using f = await Deno.open(temp, { read: true, write: true });
    await f.seek(size - 100, Deno.SeekMode.Start);
    const byte = new Uint8Array(1);
    await f.read(byte);
    await f.seek(size - 100, Deno.SeekMode.Start);
    await f.write(new Uint8Array([byte[0] ^ 0xff]));
  };
  try {
    const result = await backupDatabase({ db, now: NOW, verify: "none" });
    assert.equal(result.snapshot.method, "pages");
    assert.ok(written.length === 64, "the hook must have run");
    assert.equal(result.checksum?.hex, written);
    assert.notEqual(await toolHex(result.file, "sha256"), written, "the file must have changed");
    assert.equal(await sidecarChecks(result.file, "sha256"), false);
  } finally {
    backupTestHooks.afterCopy = undefined;
  }
});
