/**
 * Above `CHECKS_TOGETHER_MAX_BYTES` (512 MiB) a pull's two integrity checks take turns (two at
 * once took a 1 GB pull past its memory bound): the early backup's, taken beside the transfer,
 * ends before the copy's starts, and the copy's ends before the write starts (no verdict).
 * `checksTogetherMaxBytes: 0` takes that path with small databases. The same guarantees hold
 * there: the early backup is kept only when no commit came after it, a commit after it is in
 * the backup retaken, and a copy that fails its check leaves the local database byte for byte
 * as it was, with no backup left.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pullDatabase, type PullOptions, verdictTimeoutMs } from "../lib/remote/pull.ts";
import { CHECK_CACHE_MAX_KIB, checkCacheKiB } from "../lib/engine/verify.ts";
import { LitekeepError } from "../lib/errors.ts";
import {
  corruptIndexPage,
  localSsh,
  ls,
  makeDb,
  remoteLitekeep,
  sha256Of,
  sqlite3,
  startSshd,
  tempDir,
  withPath,
} from "./_helpers.ts";

/** A local database and a remote one that differs from it by a few rows (its index corrupt). */
async function setUp(dir: string, wal: boolean, corrupt = false) {
  const local = join(dir, "local.db");
  makeDb(local, { wal, payments: 20_000 });
  const remote = join(dir, "remote.db");
  await Deno.copyFile(local, remote);
  const conn = new DatabaseSync(remote);
  conn.exec("PRAGMA journal_mode = DELETE");
  conn.exec("UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 50 = 3");
  conn.close();
  if (corrupt) await corruptIndexPage(remote);
  const bin = await remoteLitekeep(dir);
  const path = await localSsh(join(dir, "bin"));
  return { local, remote, bin, path };
}

async function pullInTurns(s: Awaited<ReturnType<typeof setUp>>, more: Partial<PullOptions>) {
  return await withPath(s.path, () =>
    pullDatabase({
      source: { host: "pi", path: s.remote },
      localDb: s.local,
      method: "auto",
      remote: { ssh: {}, bin: s.bin },
      now: new Date(),
      checksTogetherMaxBytes: 0,
      ...more,
    }));
}

const sum = "SELECT sum(amount_cents) FROM payments";

/** The backups left in the test's folder. */
async function backupsIn(dir: string): Promise<string[]> {
  return (await ls(join(dir, "backups")).catch(() => [])).filter((f) =>
    f.endsWith(".db") || f.includes(".db.")
  );
}

for (const wal of [true, false]) {
  const mode = wal ? "WAL" : "rollback journal";

  Deno.test(`checks in turns: the early backup is kept, the copy written (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    const before = await sqlite3(s.local, sum);
    let early: string | undefined;
    let writes = 0;
    const res = await pullInTurns(s, {
      onEarlyBackup: (file) => {
        early = file;
      },
      onWrite: () => writes++,
    });
    assert.equal(res.method, "delta");
    assert.ok(early, "no backup was taken beside the transfer");
    assert.equal(res.localBackup, early);
    assert.equal(writes, 1);
    assert.equal(await sqlite3(early, sum), before);
    assert.equal(await sqlite3(early, "PRAGMA integrity_check"), "ok");
    assert.equal(await sqlite3(s.local, sum), await sqlite3(s.remote, sum));
    assert.equal(await sqlite3(s.local, "PRAGMA journal_mode"), wal ? "wal" : "delete");
  });

  Deno.test(`checks in turns: a commit after the early backup is in the backup retaken (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    const res = await pullInTurns(s, {
      // Another process commits between the early backup and the write: the backup is taken
      // again under the lock.
      onEarlyBackup: async () => {
        await sqlite3(s.local, "CREATE TABLE late (v); INSERT INTO late VALUES (1)");
      },
    });
    assert.ok(res.localBackup, "no backup was kept");
    assert.deepEqual(
      await backupsIn(dir.path),
      [
        basename(res.localBackup),
        `${basename(res.localBackup)}.sha256`,
      ].sort(),
    );
    assert.equal(await sqlite3(res.localBackup, "SELECT v FROM late"), "1");
    assert.equal(await sqlite3(res.localBackup, "PRAGMA integrity_check"), "ok");
    assert.equal(await sqlite3(s.local, sum), await sqlite3(s.remote, sum));
  });

  Deno.test(`checks in turns: a copy that fails its check before the write changes nothing (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal, true);
    const file = await sha256Of(s.local);
    const dump = await sqlite3(s.local, ".dump");
    let writes = 0;
    await assert.rejects(
      pullInTurns(s, { onWrite: () => writes++ }),
      (error: Error) => {
        assert.ok(error instanceof LitekeepError && error.exitCode === 1, String(error));
        assert.match(error.message, /failed its integrity check/);
        return true;
      },
    );
    assert.equal(writes, 0, "the write started before the copy's check ended");
    assert.equal(await sha256Of(s.local), file, "the local database's file changed");
    assert.equal(await sqlite3(s.local, ".dump"), dump);
    // The early backup (taken beside the transfer) is not left behind.
    assert.deepEqual(await backupsIn(dir.path), []);
  });
}

for (const together of [true, false]) {
  const what = together ? "beside the write (a small copy)" : "before the write (in turns)";
  Deno.test(`an scp pull (no early backup) of a copy that fails runs its check ${what}`, async () => {
    await using sshd = await startSshd();
    await using dir = await tempDir();
    const s = await setUp(dir.path, true, true);
    const file = await sha256Of(s.local);
    let writes = 0;
    // scp starts no early backup: the old database's backup is taken under the lock, and in
    // turns the copy's check must end before it (one check at a time), so no write starts.
    await assert.rejects(
      pullDatabase({
        source: { host: sshd.host, path: s.remote },
        localDb: s.local,
        method: "scp",
        remote: { ssh: {}, bin: s.bin },
        now: new Date(),
        checksTogetherMaxBytes: together ? undefined : 0,
        onWrite: () => writes++,
      }),
      /failed its integrity check/,
    );
    assert.equal(writes, together ? 1 : 0);
    assert.equal(await sha256Of(s.local), file);
    assert.deepEqual(await backupsIn(dir.path), []);
  });
}

Deno.test("a check's page cache is 1/128 of the file, between 2 and 8 MiB", () => {
  assert.equal(checkCacheKiB(0), 2048);
  assert.equal(checkCacheKiB(100e6), 2048);
  assert.equal(checkCacheKiB(512 << 20), 4096);
  assert.equal(checkCacheKiB(1 << 30), 8192);
  // The cap holds whatever the size: two checks' memory stays bounded.
  assert.equal(checkCacheKiB(64 * 2 ** 30), CHECK_CACHE_MAX_KIB);
});

Deno.test("the write waits for a large copy's verdict longer than for a small one's", () => {
  assert.equal(verdictTimeoutMs(100e6), 120_000);
  assert.equal(verdictTimeoutMs(1 << 30), 1_024_000);
  assert.ok(verdictTimeoutMs(8 * 2 ** 30) > verdictTimeoutMs(1 << 30));
});
