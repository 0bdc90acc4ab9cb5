/**
 * pull writes the copy INTO the local database beside the copy's check (issue 10, item 5): the
 * write's last step waits for the check's verdict, so a copy that fails it reaches the write
 * and is rolled back there. Through a real sshd, with a remote whose index is corrupt: the pull
 * fails with the check's message (exit 1), the local database is byte for byte as it was, and
 * no backup of the failed pull is left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pullDatabase } from "../lib/remote/pull.ts";
import { LitekeepError } from "../lib/errors.ts";
import { inspectInWorker, VERDICT } from "../lib/engine/verify.ts";
import type { VerifyMode } from "../lib/engine/sqlite.ts";
import {
  corruptIndexPage,
  ls,
  makeDb,
  remoteLitekeep,
  sha256Of,
  sqlite3,
  startSshd,
  tempDir,
} from "./_helpers.ts";

for (const wal of [true, false]) {
  const mode = wal ? "WAL" : "rollback journal";

  Deno.test(`pull of a copy that fails its check beside the write leaves the local database as it was (${mode})`, async () => {
    await using sshd = await startSshd();
    await using dir = await tempDir();
    const remote = join(dir.path, "remote.db");
    makeDb(remote, { wal: false, payments: 20_000 });
    const local = join(dir.path, "local.db");
    await Deno.copyFile(remote, local);
    if (wal) assert.equal(await sqlite3(local, "PRAGMA journal_mode=WAL"), "wal");
    // The remote changes (so a delta is sent), then its index goes bad: the copy's sha256 is
    // the remote's, and its integrity_check fails.
    const app = new DatabaseSync(remote);
    app.exec("UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 50 = 3");
    app.close();
    await corruptIndexPage(remote);
    const sha = await sha256Of(local);
    const dump = await sqlite3(local, ".dump");
    const bin = await remoteLitekeep(dir.path);
    let writes = 0;
    await assert.rejects(
      pullDatabase({
        source: { host: sshd.host, path: remote },
        localDb: local,
        method: "auto",
        remote: { ssh: {}, bin },
        now: new Date(),
        onWrite: () => writes++,
      }),
      (error: Error) => {
        assert.ok(error instanceof LitekeepError && error.exitCode === 1, String(error));
        assert.match(error.message, /failed its integrity check/);
        assert.match(error.hint ?? "", /the local database was not changed/);
        return true;
      },
    );
    assert.equal(writes, 1, "the write ran beside the check");
    assert.equal(await sha256Of(local), sha, "the local database's file changed");
    assert.equal(await sqlite3(local, ".dump"), dump);
    assert.equal(await sqlite3(local, "PRAGMA journal_mode"), wal ? "wal" : "delete");
    const backups = join(dir.path, "backups");
    const left = (await ls(backups).catch(() => [])).filter((f) => !f.startsWith("."));
    assert.deepEqual(left.filter((f) => f.endsWith(".db") || f.includes(".db.")), []);
  });
}

Deno.test("the check's worker leaves its verdict in shared memory: row counts (--verify none) and integrity", async () => {
  await using dir = await tempDir();
  const good = join(dir.path, "good.db");
  const counts = makeDb(good, { wal: false });
  const tables = Object.entries(counts).map(([name, rows]) => ({ name, rows }));
  const bad = join(dir.path, "bad.db");
  makeDb(bad, { wal: false, payments: 20_000 });
  await corruptIndexPage(bad);
  const verdictOf = async (path: string, mode: VerifyMode, expected?: typeof tables) => {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    // A file that cannot be opened rejects, and leaves its verdict too.
    await inspectInWorker(path, mode, { buffer: flag.buffer, expectedTables: expected })
      .catch(() => {});
    return Atomics.load(flag, 0);
  };
  assert.equal(await verdictOf(good, "none", tables), VERDICT.passed);
  assert.equal(await verdictOf(good, "full", tables), VERDICT.passed);
  const wrong = tables.map((t) => t.name === "members" ? { ...t, rows: t.rows + 1 } : t);
  assert.equal(await verdictOf(good, "none", wrong), VERDICT.failed, "a row count differs");
  assert.equal(await verdictOf(good, "none", [...tables, { name: "x", rows: 0 }]), VERDICT.failed);
  // Counted in another snapshot (scp): the counts only warn, so they are not given.
  assert.equal(await verdictOf(good, "none", undefined), VERDICT.passed);
  assert.equal(await verdictOf(bad, "full"), VERDICT.failed, "integrity_check fails");
  assert.equal(await verdictOf(bad, "quick"), VERDICT.failed, "quick_check fails");
  assert.equal(await verdictOf(join(dir.path, "missing.db"), "full"), VERDICT.failed);
});
