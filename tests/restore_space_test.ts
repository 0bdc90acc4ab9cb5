import assert from "node:assert/strict";
import { join } from "node:path";
import { backupDatabase } from "../lib/backup_set/backup.ts";
import { hashFile } from "../lib/backup_set/checksum.ts";
import { ls, makeDb, mountTmpfs, runCli, tempDir } from "./_helpers.ts";

Deno.test("restore with no room for the pre-restore copy says so, and changes nothing", async () => {
  // Found by the new-user trial: the hint said "choose another backup folder", which restore
  // has no option for; what did not fit was the copy of the current database beside it.
  await using dir = await tempDir();
  const small = join(dir.path, "small");
  await using mount = await mountTmpfs(small, 1024);
  if (!mount) return;
  const db = join(small, "gym.db");
  makeDb(db, { wal: false, payments: 5000, noteBytes: 40 });
  const size = (await Deno.stat(db)).size;
  assert.ok(size > 512 * 1024 && size < 1000 * 1024, `${size} bytes: no room for a second copy`);
  const { file } = await backupDatabase({
    db,
    backupDir: join(dir.path, "bk"),
    now: new Date(2025, 9, 19, 3, 0, 0),
  });
  const before = await hashFile(db, "sha256");
  const res = await runCli(["restore", file, db]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /no space left/i);
  assert.match(res.stderr, /hint: free some space beside the database: a restore first keeps/);
  assert.doesNotMatch(res.stderr, /backup folder/);
  assert.equal(await hashFile(db, "sha256"), before);
  assert.deepEqual((await ls(small)).filter((n) => n !== "gym.db" && !n.endsWith(".lock")), []);
});
