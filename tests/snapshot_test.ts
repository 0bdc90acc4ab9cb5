import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { writeInto } from "../lib/engine/write_into.ts";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { ls, makeDb, smallDb, sqlite3, tempDir } from "./_helpers.ts";

Deno.test("writeInto() starts over when a commit slips in before the write", async (t) => {
  for (const wal of [true, false]) {
    await t.step(wal ? "WAL" : "rollback journal", async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { wal, payments: 3000 });
      const source = join(dir.path, "source.db");
      smallDb(source, 2000);
      const copies: string[] = [];
      const discarded: string[] = [];
      let gaps = 0;
      const result = await writeInto(source, db, {
        busyTimeoutMs: 5000,
        keep: async () => {
          const copy = join(dir.path, `copy-${copies.length}.db`);
          await snapshotDatabase(db, copy, {
            busyTimeoutMs: 5000,
            sourceChecked: true,
            writeLockHeld: true,
          });
          copies.push(copy);
          return copy;
        },
        discard: async (copy) => {
          discarded.push(copy);
          await Deno.remove(copy);
        },
        // Another connection commits in the gap, once: the write must not start after it.
        onGap: () => {
          if (gaps++ > 0) return;
          const app = new DatabaseSync(db);
          app.exec("INSERT INTO members (name, joined_at) VALUES ('slipped in', '2025-10-20')");
          app.close();
        },
      });
      assert.equal(result.attempts, 2);
      assert.deepEqual(discarded, [copies[0]]);
      assert.equal(result.kept, copies[1]);
      // The commit that slipped in is in the copy kept, and the database is the source.
      assert.equal(
        await sqlite3(copies[1], "SELECT count(*) FROM members WHERE name = 'slipped in'"),
        "1",
      );
      assert.equal(await sqlite3(db, "SELECT count(*) FROM t"), "2000");
      assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
      assert.equal(await sqlite3(db, "PRAGMA journal_mode"), wal ? "wal" : "delete");
      assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith("copy-")), ["copy-1.db"]);
    });
  }
});

Deno.test("snapshotDatabase() takes the write lock for its instant unless the caller holds it", async (t) => {
  for (const wal of [true, false]) {
    await t.step(wal ? "WAL" : "rollback journal", async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { wal, payments: 500 });
      // Another process (the application) holds the write lock for the whole snapshot.
      const app = new Deno.Command("python3", {
        args: [
          "-c",
          "import sqlite3,sys\n" +
          "c=sqlite3.connect(sys.argv[1], isolation_level=None)\n" +
          "c.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\nsys.stdin.read()",
          db,
        ],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      try {
        const reader = app.stdout.getReader();
        assert.match(new TextDecoder().decode((await reader.read()).value), /locked/);
        reader.releaseLock();
        // sourceChecked alone (an open connection, no lock: pull's early backup) must not skip
        // the page reader's write lock: it waits for it and, busy, falls back to the backup API.
        const copy = join(dir.path, "copy.db");
        const unlocked = await snapshotDatabase(db, copy, {
          busyTimeoutMs: 300,
          sourceChecked: true,
        });
        assert.equal(unlocked.method, "backup-api");
        assert.equal(unlocked.fallback?.reason, "busy");
        // writeLockHeld (the caller's own BEGIN IMMEDIATE, as in writeInto's keep) skips it;
        // here that is the application's lock, which is exactly why only a holder may say so.
        const held = join(dir.path, "held.db");
        const trusted = await snapshotDatabase(db, held, {
          busyTimeoutMs: 300,
          sourceChecked: true,
          writeLockHeld: true,
        });
        assert.equal(trusted.method, "pages");
        assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
      } finally {
        await app.stdin.close();
        await app.stdout.cancel().catch(() => {});
        await app.status;
      }
    });
  }
});
