import { walEmptied } from "../lib/engine/checkpoint.ts";
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { formatBytes } from "../lib/cli/format.ts";
import { have, ls, makeDb, python3Until, runCli, sqlite3, tempDir } from "./_helpers.ts";

/** A WAL database with an application connection that has committed into the -wal only. */
function appWithWal(db: string, commits = 10): DatabaseSync {
  makeDb(db, { payments: 500 });
  const app = new DatabaseSync(db);
  app.exec("PRAGMA wal_autocheckpoint = 0");
  for (let i = 0; i < commits; i++) app.exec(`UPDATE members SET status = 's${i}' WHERE id < 40`);
  return app;
}

Deno.test("checkpoint copies the whole WAL back and reports the frames", async (t) => {
  for (const mode of ["passive", "full", "restart", "truncate"]) {
    await t.step(mode, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      const app = appWithWal(db);
      const walBefore = (await Deno.stat(`${db}-wal`)).size;
      const res = await runCli(["checkpoint", db, "--mode", mode, "--json"]);
      const walAfter = (await Deno.stat(`${db}-wal`)).size;
      app.close();
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout);
      assert.equal(out.ok, true);
      assert.equal(out.mode, mode);
      assert.equal(out.busy, false);
      assert.equal(out.checkpointedFrames, out.logFrames);
      assert.equal(out.complete, true);
      assert.equal(out.walBytesBefore, walBefore);
      if (mode === "truncate") {
        assert.equal(walAfter, 0);
        assert.equal(out.walBytes, 0);
      } else {
        assert.equal(out.logFrames, (walBefore - 32) / (4096 + 24));
        assert.equal(walAfter, walBefore);
      }
    });
  }
});

/**
 * Another process (python3) that holds a read transaction on `db`, on the snapshot of the
 * moment it starts, until disposed.
 */
async function holdReader(db: string): Promise<AsyncDisposable> {
  return await python3Until(
    `import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN")
c.execute("SELECT count(*) FROM members").fetchone()
print("reading", flush=True)
time.sleep(600)`,
    [db],
    "reading",
  );
}

Deno.test("checkpoint --mode passive copies what a reader allows and succeeds", async (t) => {
  if (!await have("python3")) return;
  for (const json of [false, true]) {
    await t.step(json ? "json" : "text", async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      const app = appWithWal(db);
      {
        // The reader's snapshot: the frames committed after it cannot be copied back yet.
        await using _reader = await holdReader(db);
        app.exec("UPDATE members SET status = 'later' WHERE id < 40");
        const res = await runCli([
          "checkpoint",
          db,
          "--mode",
          "passive",
          ...(json ? ["--json"] : []),
        ]);
        assert.equal(res.code, 0, res.stderr);
        if (json) {
          const out = JSON.parse(res.stdout);
          assert.equal(out.ok, true);
          assert.equal(out.complete, false);
          assert.ok(out.checkpointedFrames > 0, res.stdout);
          assert.ok(out.checkpointedFrames < out.logFrames, res.stdout);
          assert.ok(out.walBytes > 0);
        } else {
          assert.match(res.stdout, /Checkpoint \(passive\) of .*gym\.db: partial/);
          assert.match(res.stdout, /checkpointed frames +\d+ of \d+/);
          assert.match(res.stdout, /a reader kept \d+ frames? back/);
          assert.match(res.stdout, /-wal +\d+(\.\d+)? [KM]?i?B -> \d/);
        }
      }
      app.close();
      assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
    });
  }
});

Deno.test("checkpoint exits 75 when a blocking mode cannot complete in --busy-timeout", async (t) => {
  const cases: Array<{ mode: string; hold: "reader" | "writer"; hint: RegExp }> = [
    { mode: "full", hold: "writer", hint: /raise --busy-timeout \(it was 150 ms\)/ },
    { mode: "truncate", hold: "reader", hint: /raise --busy-timeout/ },
  ];
  for (const c of cases) {
    await t.step(`${c.mode} with a ${c.hold}`, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      const app = appWithWal(db);
      const other = new DatabaseSync(db);
      if (c.hold === "reader") {
        // A reader on an old snapshot: the frames committed after it cannot be copied back.
        other.exec("BEGIN");
        other.prepare("SELECT count(*) FROM members").get();
        app.exec("UPDATE members SET status = 'later' WHERE id < 40");
      } else {
        other.exec("BEGIN IMMEDIATE");
        other.exec("UPDATE members SET status = 'held' WHERE id = 1");
      }
      const res = await runCli(["checkpoint", db, "--mode", c.mode, "--busy-timeout", "150"]);
      other.exec("ROLLBACK");
      other.close();
      app.close();
      assert.equal(res.code, 75, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(
        res.stderr,
        new RegExp(
          `error: Checkpoint \\(${c.mode}\\) of ".*gym\\.db" could not complete: readers or ` +
            `writers are using the database \\(\\d+ of \\d+ frames copied back\\)`,
        ),
      );
      assert.match(res.stderr, c.hint);
      assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
    });
  }
});

Deno.test("checkpoint of a database not in WAL mode has nothing to do", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "journal.db");
  makeDb(db, { wal: false, payments: 100 });
  const res = await runCli(["checkpoint", db]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /not in WAL mode, nothing to checkpoint/);
});

Deno.test("checkpoint fails with a plain message for each error class", async (t) => {
  await using dir = await tempDir();
  const missing = join(dir.path, "missing.db");
  const cases: Array<[string, string[], number, RegExp]> = [
    ["missing database", [missing], 1, /error: Cannot open database ".*missing\.db": no such file/],
    ["unknown mode", [missing, "--mode", "eager"], 2, /--mode must be one of passive, full/],
    ["no database", [], 2, /checkpoint: no database given/],
  ];
  for (const [name, args, code, pattern] of cases) {
    await t.step(name, async () => {
      const res = await runCli(["checkpoint", ...args], { cwd: dir.path });
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
    });
  }
  // SQLite would have created an empty database; litekeep creates nothing.
  assert.deepEqual(await ls(dir.path), []);
});

Deno.test("checkpoint --mode truncate says how much of the -wal it emptied", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  const app = appWithWal(db);
  const walBefore = (await Deno.stat(`${db}-wal`)).size;
  const res = await runCli(["checkpoint", db, "--mode", "truncate"]);
  app.close();
  assert.equal(res.code, 0, res.stderr);
  // TRUNCATE reports 0 of 0 frames once the -wal is empty: the sizes tell what it did.
  assert.doesNotMatch(res.stdout, /0 of 0/);
  assert.match(res.stdout, /: complete/);
  assert.match(res.stdout, new RegExp(`-wal +${formatBytes(walBefore)} -> 0 B`));
});

Deno.test("checkpoint of a stopped application's WAL database reports the -wal it leaves: none", async () => {
  // Found by the new-user trial: "-wal none -> 0 B", measured before the close that removed it.
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  assert.deepEqual(await ls(dir.path), ["gym.db"]);
  const res = await runCli(["checkpoint", db, "--mode", "truncate"]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /-wal +none -> none\n/);
  assert.ok(!(await ls(dir.path)).includes("gym.db-wal"));
  const json = JSON.parse((await runCli(["checkpoint", db, "--json"])).stdout);
  assert.deepEqual([json.walBytesBefore, json.walBytesAfter, json.walBytes], [null, null, null]);
});

Deno.test("walEmptied() is true for a complete TRUNCATE even when a writer has begun a new -wal", () => {
  // Found by the new-user trial: "-wal 3.9 MiB -> 32 B, 0 of 0 frames copied back".
  const truncated = {
    mode: "truncate" as const,
    busy: false,
    logFrames: 0,
    checkpointedFrames: 0,
    complete: true,
    walBytesBefore: 4_089_000,
    walBytesAfter: 32,
  };
  assert.equal(walEmptied(truncated), true);
  assert.equal(walEmptied({ ...truncated, mode: "passive" }), false);
  assert.equal(walEmptied({ ...truncated, complete: false, logFrames: 12 }), false);
});
