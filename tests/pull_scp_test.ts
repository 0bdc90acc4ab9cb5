import assert from "node:assert/strict";
import { join } from "node:path";
import { corruptIndexPage, makeDb, pull, startSshd, tempDir } from "./_helpers.ts";

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
