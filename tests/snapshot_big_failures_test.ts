/**
 * A backup large enough (64 MiB or more) that its page-reader copy is hashed in a worker, cut
 * short by a full disk or a signal mid-copy, as a real process: the run exits (no hash worker
 * keeps it alive), with the exit code that says why, and leaves no file but the folder's lock.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, ls, mountTmpfs, spawnCli, tempDir } from "./_helpers.ts";

/** A WAL database of about `mb` MB (rows of 1000 random bytes), made quickly by Python. */
async function bigDb(path: string, mb: number): Promise<void> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA synchronous = OFF")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
c.execute("INSERT INTO t (v) SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${
        mb * 1000
      }) SELECT i FROM n)")
c.execute("PRAGMA journal_mode = WAL")
c.close()`,
      path,
    ],
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test("a backup of 70 MB onto a disk that fills up mid-copy exits 1 and leaves nothing", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "big.db");
  await bigDb(db, 70);
  assert.ok((await Deno.stat(db)).size >= 64 << 20, "the copy must be hashed in a worker");
  const target = join(dir.path, "small");
  // 40 MiB: the copy fills it about half-way.
  await using mount = await mountTmpfs(target, 40 << 10);
  if (!mount) return;
  const res = await spawnCli(["backup", db, "--backup-dir", target]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /no space left on the device/);
  assert.deepEqual(await ls(target), [".litekeep.lock"]);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`a ${signal} mid-copy of a 300 MB backup ends the run and leaves nothing`, async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "big.db");
    await bigDb(db, 300);
    const target = join(dir.path, "backups");
    const child = new Deno.Command(Deno.execPath(), {
      args: cliCommand(["backup", db, "--backup-dir", target]),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // The signal lands once the copy has begun: its temp holds some pages.
    for (;;) {
      const temp = (await ls(target).catch(() => [])).find((n) => n.endsWith("_backup.db"));
      if (temp && (await Deno.stat(join(target, temp)).catch(() => undefined))?.size) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill(signal);
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, signal === "SIGINT" ? 130 : 143, stderr);
    assert.deepEqual(await ls(target), [".litekeep.lock"]);
  });
}
