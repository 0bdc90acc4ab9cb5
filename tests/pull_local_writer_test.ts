/**
 * A pull while the local application keeps committing to the local database: the old local
 * database's backup (taken beside the transfer, kept only when no commit came after it) and the
 * write must lose no commit. Each writer commit is numbered (`writer:N`); every commit is in
 * exactly one place: the backup of the pull it preceded, or the local database after the last
 * pull. Both paths: the checks together (the verdict beside the write) and in turns.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pullDatabase } from "../lib/remote/pull.ts";
import {
  localSsh,
  makeDb,
  remoteLitekeep,
  sqlite3,
  startWriter,
  tempDir,
  withPath,
} from "./_helpers.ts";

/** The writer's commit numbers in `db`, after checking the copy is sound and not torn. */
async function writerCommits(db: string): Promise<number[]> {
  assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
  const ledger = Number(await sqlite3(db, "SELECT count(*) FROM ledger"));
  const text = await sqlite3(
    db,
    "SELECT substr(note, 8) FROM payments WHERE note LIKE 'writer:%' ORDER BY id",
  );
  const numbers = text === "" ? [] : text.split("\n").map(Number);
  assert.equal(ledger, numbers.length, `${db}: payments without ledger rows (a torn copy)`);
  return numbers;
}

for (const wal of [true, false]) {
  for (const turns of [false, true]) {
    const mode = wal ? "WAL" : "rollback journal";
    const path = turns ? "checks in turns" : "checks together";
    Deno.test(`pull with a local writer committing loses no commit (${mode}, ${path})`, async () => {
      await using dir = await tempDir();
      const local = join(dir.path, "local.db");
      makeDb(local, { wal, payments: 20_000 });
      const setup = new DatabaseSync(local);
      setup.exec("CREATE TABLE ledger (id INTEGER PRIMARY KEY, payment_id INTEGER NOT NULL)");
      setup.close();
      const remote = join(dir.path, "remote.db");
      await Deno.copyFile(local, remote);
      const bin = await remoteLitekeep(dir.path);
      const bindir = await localSsh(join(dir.path, "bin"));
      const backups: string[] = [];
      const report = await withPath(bindir, async () => {
        await using writer = await startWriter(local, dir.path, 150);
        for (let round = 0; round < 4; round++) {
          const conn = new DatabaseSync(remote);
          conn.exec(`UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 40 = ${round}`);
          conn.close();
          const result = await pullDatabase({
            source: { host: "pi", path: remote },
            localDb: local,
            method: "auto",
            remote: { ssh: {}, bin },
            now: new Date(2030, 0, 1, 0, 0, round),
            ...(turns ? { checksTogetherMaxBytes: 0 } : {}),
          });
          assert.ok(result.localBackup, `round ${round}: no backup was kept`);
          backups.push(result.localBackup);
        }
        return await writer.stop();
      });
      assert.ok(report.commits > 20, `the writer committed only ${report.commits} times`);
      // Every commit once, in order: backups first (each holds what came since the pull
      // before it), then what came after the last pull.
      const seen: number[] = [];
      for (const file of backups) seen.push(...await writerCommits(file));
      seen.push(...await writerCommits(local));
      assert.deepEqual(seen, Array.from({ length: report.commits }, (_, i) => i));
    });
  }
}
