/**
 * pull's copies of the old local database follow the keep policy (config `keep`, or --keep-*
 * on the pull line), pruned only after a successful pull. Found by the new-user trial and the
 * attack round: with keep.count 2, five pulls left four backups, and an hourly cron pull fills
 * the disk.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { localSsh, ls, remoteLitekeep, spawnCli, tempDir } from "./_helpers.ts";

async function setUp(dir: string, keep?: Record<string, number>): Promise<string> {
  const remote = join(dir, "remote.db");
  const conn = new DatabaseSync(remote);
  conn.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v)");
  conn.exec("INSERT INTO t (v) VALUES (1), (2), (3)");
  conn.close();
  const bin = await remoteLitekeep(dir);
  await Deno.writeTextFile(
    join(dir, "litekeep.json"),
    JSON.stringify({
      db: "local.db",
      backupDir: "bk",
      ...(keep ? { keep } : {}),
      remote: { host: "pi", db: remote, bin },
    }),
  );
  return await localSsh(join(dir, "bin"));
}

/** Backups in the folder, after `runs` pulls one second apart (backup names have seconds). */
async function pulls(dir: string, path: string, runs: number, extra: string[] = []) {
  for (let i = 0; i < runs; i++) {
    // The remote changes between pulls: an unchanged one writes (and backs up) nothing.
    const conn = new DatabaseSync(join(dir, "remote.db"));
    conn.exec("INSERT INTO t (v) VALUES (4)");
    conn.close();
    const res = await spawnCli(["pull", "--quiet", ...extra], { cwd: dir, env: { PATH: path } });
    assert.equal(res.code, 0, res.stderr);
    await new Promise((r) => setTimeout(r, 1100));
  }
  return (await ls(join(dir, "bk"))).filter((n) => n.endsWith(".db"));
}

Deno.test("pull prunes its local backups by the config's keep policy", async () => {
  await using dir = await tempDir();
  const path = await setUp(dir.path, { count: 2 });
  const backups = await pulls(dir.path, path, 5);
  assert.equal(backups.length, 2, `keep.count 2 left ${backups}`);
});

Deno.test("pull prunes its local backups by --keep-* on its own line, and keeps all without rules", async () => {
  await using dir = await tempDir();
  const path = await setUp(dir.path);
  assert.equal((await pulls(dir.path, path, 3)).length, 2, "no rule: every backup stays");
  assert.equal((await pulls(dir.path, path, 1, ["--keep-last", "1"])).length, 1);
});

Deno.test("a first pull into an empty backup folder prints no empty prune report", async () => {
  await using dir = await tempDir();
  const path = await setUp(dir.path, { count: 2 });
  await Deno.mkdir(join(dir.path, "bk"));
  const first = await spawnCli(["pull"], { cwd: dir.path, env: { PATH: path } });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Pulled /);
  assert.doesNotMatch(first.stdout, /Prune of|no backups/);
});
