/**
 * Found by the second attack round: writeInto() picked its version check (data_version in WAL, file size+header in
 * rollback mode) from the journal mode read ONCE, in claimWriteLock(), before the attempts. An
 * application that opens the database and sets `PRAGMA journal_mode=WAL` (as most do on every
 * open) after that moment turns the database into WAL mode while writeInto still watches the
 * main file's header: a commit that slips into the gap then goes to the -wal, leaves the main
 * file untouched, is not detected, and is overwritten by the write: it is neither in the kept
 * copy nor in the result. Expected: every commit made before the write is in the kept copy.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { writeInto } from "../lib/engine/write_into.ts";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { makeDb, smallDb, sqlite3, tempDir } from "./_helpers.ts";

Deno.test("writeInto() loses no commit when the app switches the database to WAL between attempts", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { wal: false, payments: 3000 });
  const source = join(dir.path, "source.db");
  smallDb(source, 2000);
  const copies: string[] = [];
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
      await Deno.remove(copy);
    },
    onGap: () => {
      // Two gaps: a switch to WAL with a commit, then a commit in WAL mode; the third write wins.
      if (gaps >= 2) return;
      const app = new DatabaseSync(db, { timeout: 5000 });
      // The application's usual start-up: WAL mode, then a commit.
      app.exec("PRAGMA journal_mode=WAL");
      app.exec(`INSERT INTO members (name, joined_at) VALUES ('gap ${gaps++}', '2025-10-20')`);
      app.close();
    },
  });
  const kept = result.kept as string;
  assert.equal(result.attempts, 3);
  assert.equal(result.journalModeBefore, "wal", "the mode the write met, not the first claim's");
  const inKept = Number(
    await sqlite3(kept, "SELECT count(*) FROM members WHERE name LIKE 'gap %'"),
  );
  // Every gap commit but none (all were made before the write that won) must be in the copy kept.
  assert.equal(
    inKept,
    gaps,
    `${gaps} commits were made before the write (attempts ${result.attempts}); the kept copy has ` +
      `${inKept}: ${gaps - inKept} lost`,
  );
});
