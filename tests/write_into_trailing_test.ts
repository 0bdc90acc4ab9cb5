/**
 * Found by the final review: writeInto() counted the source's pages by its file size. A file
 * with bytes after its last page (another tool's backup) made the first step as large as the
 * whole database: the write ran in one step, its slipped-commit check never ran, and a commit
 * made in the gap was in neither the kept copy nor the result.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { writeInto } from "../lib/engine/write_into.ts";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { makeDb, smallDb, sqlite3, tempDir } from "./_helpers.ts";

Deno.test("writeInto() checks for a slipped commit even when the source has bytes after its last page", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 500 });
  const source = join(dir.path, "source.db");
  smallDb(source, 50);
  const pages = Number(await sqlite3(source, "PRAGMA page_count"));
  // Trailing bytes: a whole page count's worth more than SQLite's own count.
  const file = await Deno.open(source, { append: true });
  await file.write(new Uint8Array(4096 * pages));
  file.close();
  let gaps = 0;
  const result = await writeInto(source, db, {
    busyTimeoutMs: 5000,
    keep: async () => {
      const copy = join(dir.path, `copy-${Date.now()}-${Math.random()}.db`);
      await snapshotDatabase(db, copy, {
        busyTimeoutMs: 5000,
        sourceChecked: true,
        writeLockHeld: true,
      });
      return copy;
    },
    discard: (copy) => Deno.remove(copy),
    onGap: () => {
      if (gaps++ > 0) return;
      const app = new DatabaseSync(db);
      app.exec("INSERT INTO members (name, joined_at) VALUES ('in the gap', '2025-10-20')");
      app.close();
    },
  });
  assert.equal(result.attempts, 2, "the slipped commit was seen and the write started over");
  const kept = result.kept as string;
  assert.equal(await sqlite3(kept, "SELECT count(*) FROM members WHERE name = 'in the gap'"), "1");
});
