import assert from "node:assert/strict";
import { join } from "node:path";
import { have, makeDb, python3Until, runCli, sqlite3, tempDir } from "./_helpers.ts";

/**
 * Another process (python3's sqlite3) that holds the write lock of a rollback-journal database:
 * BEGIN EXCLUSIVE, so no reader may start. It lets go after `releaseAfterMs` (never when
 * omitted) and is killed on dispose.
 */
async function holdWriteLock(
  db: string,
  releaseAfterMs = 600_000,
): Promise<AsyncDisposable> {
  return await python3Until(
    `import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
c.execute("DELETE FROM payments WHERE id < 10")
print("locked", flush=True)
time.sleep(float(sys.argv[2]) / 1000)
c.execute("ROLLBACK")
time.sleep(600)`,
    [db, String(releaseAfterMs)],
    "locked",
  );
}

/** The commands that read a live database, with `--busy-timeout MS`. */
function readers(db: string, dir: string, ms: number): Record<string, string[]> {
  return {
    backup: ["backup", db, "-d", join(dir, "backups"), "--busy-timeout", String(ms)],
    stats: ["stats", db, "--busy-timeout", String(ms)],
    info: ["info", db, "--busy-timeout", String(ms)],
  };
}

Deno.test("--busy-timeout 1000 gives up in about a second on a rollback-journal database", async (t) => {
  if (!await have("python3")) return;
  await using dir = await tempDir();
  const db = join(dir.path, "journal.db");
  makeDb(db, { wal: false, payments: 100 });
  await using _writer = await holdWriteLock(db);
  for (const [name, args] of Object.entries(readers(db, dir.path, 1000))) {
    await t.step(name, async () => {
      const t0 = performance.now();
      const res = await runCli(args);
      const waited = performance.now() - t0;
      assert.equal(res.code, 75, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, /the database is locked by another process/);
      // SQLite's own default (5 s) must not win over the flag; generous for loaded machines.
      assert.ok(waited >= 900 && waited < 4000, `gave up after ${Math.round(waited)} ms`);
    });
  }
});

Deno.test("--busy-timeout 7000 waits about 7 s on a rollback-journal database", async (t) => {
  if (!await have("python3")) return;
  await using dir = await tempDir();
  const db = join(dir.path, "journal.db");
  makeDb(db, { wal: false, payments: 100 });
  await using _writer = await holdWriteLock(db);
  for (const [name, args] of Object.entries(readers(db, dir.path, 7000))) {
    await t.step(name, async () => {
      const t0 = performance.now();
      const res = await runCli(args);
      const waited = performance.now() - t0;
      assert.equal(res.code, 75, res.stderr);
      assert.ok(waited >= 6000, `gave up after ${Math.round(waited)} ms`);
    });
  }
});

Deno.test("--busy-timeout 7000 succeeds when the writer lets go after 3 s", async (t) => {
  if (!await have("python3")) return;
  for (const name of ["backup", "stats", "info"]) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "journal.db");
      makeDb(db, { wal: false, payments: 100 });
      await using _writer = await holdWriteLock(db, 3000);
      const t0 = performance.now();
      const res = await runCli(readers(db, dir.path, 7000)[name]);
      const waited = performance.now() - t0;
      assert.equal(res.code, 0, res.stderr);
      assert.ok(waited >= 2000, `did not wait for the writer: ${Math.round(waited)} ms`);
    });
  }
});

/**
 * A rollback-journal database with a hot `-journal` beside it: a python3 writer starts a big
 * transaction with a small cache, so changed pages spill into the database file, and is killed
 * with SIGKILL before it commits.
 */
async function crashMidTransaction(db: string): Promise<void> {
  // Killed (SIGKILL, on dispose) once its pages have spilled: the journal stays hot.
  await using _writer = await python3Until(
    `import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode = DELETE")
c.execute("PRAGMA cache_size = 10")
c.execute("BEGIN")
c.execute("UPDATE payments SET note = hex(randomblob(200))")
print("spilled", flush=True)
time.sleep(600)`,
    [db],
    "spilled",
  );
}

Deno.test("a hot journal is named with how to roll it back, exit 1", async (t) => {
  if (!await have("python3")) return;
  for (const name of ["backup", "stats", "info"]) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "journal.db");
      makeDb(db, { wal: false, payments: 2000 });
      await crashMidTransaction(db);
      const journal = await Deno.stat(`${db}-journal`);
      assert.ok(journal.size > 0);
      const res = await runCli(readers(db, dir.path, 1000)[name]);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(
        res.stderr,
        /error: Cannot read database ".*journal\.db": it has a hot journal \(".*journal\.db-journal"\): a writer stopped mid-transaction/,
      );
      assert.match(
        res.stderr,
        /hint: open it once with the application or `sqlite3 .*journal\.db "PRAGMA quick_check"` to roll it back/,
      );
      // Read-only: litekeep neither rolled it back nor removed the journal.
      assert.equal((await Deno.stat(`${db}-journal`)).size, journal.size);
      // The hint works: sqlite3 rolls the journal back, then the same command succeeds.
      assert.equal(await sqlite3(db, "PRAGMA quick_check"), "ok");
      const again = await runCli(readers(db, dir.path, 1000)[name]);
      assert.equal(again.code, 0, again.stderr);
    });
  }
});
