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
          await snapshotDatabase(db, copy, { busyTimeoutMs: 5000, sourceChecked: true });
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
