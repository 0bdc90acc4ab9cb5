/**
 * pull backs the old local database up beside the transfer, without its write lock, and keeps
 * that backup only when no local commit came after it: a commit that lands between the early
 * backup and the write makes the pull take the backup again, under the lock.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pullDatabase } from "../lib/remote/pull.ts";
import { localSsh, ls, makeDb, remoteLitekeep, sqlite3, tempDir, withPath } from "./_helpers.ts";

/** A local database and a remote one that differs from it by a few rows. */
async function setUp(dir: string, wal: boolean) {
  const local = join(dir, "local.db");
  makeDb(local, { wal, payments: 3000 });
  const remote = join(dir, "remote.db");
  await Deno.copyFile(local, remote);
  const conn = new DatabaseSync(remote);
  conn.exec("UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 50 = 3");
  conn.close();
  const bin = await remoteLitekeep(dir);
  const path = await localSsh(join(dir, "bin"));
  return { local, remote, bin, path };
}

async function pullWith(
  s: Awaited<ReturnType<typeof setUp>>,
  onEarlyBackup: (file: string) => Promise<void> | void,
) {
  return await withPath(s.path, () =>
    pullDatabase({
      source: { host: "pi", path: s.remote },
      localDb: s.local,
      method: "auto",
      remote: { ssh: {}, bin: s.bin },
      now: new Date(),
      onEarlyBackup,
    }));
}

for (const wal of [true, false]) {
  const mode = wal ? "WAL" : "rollback journal";

  Deno.test(`pull keeps its early backup when no local commit came after it (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    const before = await sqlite3(s.local, "SELECT sum(amount_cents) FROM payments");
    let early: string | undefined;
    const res = await pullWith(s, (file) => {
      early = file;
    });
    assert.equal(res.method, "delta");
    assert.ok(early, "no backup was taken beside the transfer");
    assert.equal(res.localBackup, early);
    assert.equal(await sqlite3(early, "SELECT sum(amount_cents) FROM payments"), before);
    assert.equal(await sqlite3(early, "PRAGMA integrity_check"), "ok");
    assert.equal(
      await sqlite3(s.local, "SELECT sum(amount_cents) FROM payments"),
      await sqlite3(s.remote, "SELECT sum(amount_cents) FROM payments"),
    );
  });

  Deno.test(`a local commit after the early backup makes pull take it again (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    let early: string | undefined;
    const res = await pullWith(s, async (file) => {
      early = file;
      // Another process commits between the early backup and the write.
      await sqlite3(s.local, "CREATE TABLE late (v); INSERT INTO late VALUES ('kept')");
    });
    assert.ok(early, "no backup was taken beside the transfer");
    assert.ok(res.localBackup, "no backup was kept");
    // Taken again under the lock (it may get the stale one's free name), and only it is left.
    const backups = (await ls(join(dir.path, "backups"))).filter((n) => n.endsWith(".db"));
    assert.deepEqual(backups, [basename(res.localBackup)]);
    // The commit is in the backup kept before the write that replaced it.
    assert.equal(await sqlite3(res.localBackup, "SELECT v FROM late"), "kept");
    assert.equal(await sqlite3(res.localBackup, "PRAGMA integrity_check"), "ok");
    assert.equal(
      await sqlite3(s.local, "SELECT count(*) FROM sqlite_schema WHERE name = 'late'"),
      "0",
    );
  });
}
