import assert from "node:assert/strict";
import { join } from "node:path";
import { corruptIndexPage, ls, makeDb, pull, startSshd, tempDir } from "./_helpers.ts";

Deno.test("pull --method scp of a copy that fails its check says it was likely torn, not to check the remote", async () => {
  // Found by the new-user trial: a copy torn by the app's writes was blamed on the remote.
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { wal: false });
  await corruptIndexPage(remote);
  const res = await pull(sshd, remote, join(dir.path, "local.db"), "--method", "scp");
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /failed its integrity check/);
  assert.match(res.stderr, /hint: .*torn by the application writing meanwhile.*--method snapshot/);
});

Deno.test("pull --method scp --quiet says nothing when nothing is wrong", async () => {
  // Found by the new-user trial: every quiet scp pull warned, so cron mailed every hour.
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { wal: false });
  const local = join(dir.path, "local.db");
  const quiet = await pull(sshd, remote, local, "--method", "scp", "--quiet");
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
  assert.equal(quiet.stdout, "");
  // Without --quiet the caveat is still said, as information.
  const loud = await pull(sshd, remote, local, "--method", "scp");
  assert.equal(loud.code, 0, loud.stderr);
  assert.match(loud.stderr, /^\S+ scp copies the raw files: .*--method snapshot/m);
  assert.doesNotMatch(loud.stderr, /warning:/);
});

Deno.test("pull of a copy that fails its check into an existing database leaves it and its backups as they were", async () => {
  // The check runs beside the backup of the old local database: a failed copy must not leave
  // that backup behind, nor change the database.
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { wal: false });
  await corruptIndexPage(remote);
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 3000, seed: 7 });
  const before = await Deno.readFile(local);
  const res = await pull(sshd, remote, local, "--method", "scp");
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /failed its integrity check/);
  assert.deepEqual(await Deno.readFile(local), before, "the local database is as it was");
  // No backup file or sidecar (the folder's own lock and set registry may be there).
  const backups = await ls(join(dir.path, "backups")).catch(() => []);
  assert.deepEqual(backups.filter((n) => !n.startsWith(".")), []);
  assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp-")), []);
});
