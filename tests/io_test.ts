import assert from "node:assert/strict";
import { join } from "node:path";
import { backupDatabase } from "../lib/backup_set/backup.ts";
import { cliCommand, smallDb, tempDir } from "./_helpers.ts";

Deno.test("processIo() lets a run whose stdout reader went away finish with its own exit code", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  smallDb(db);
  for (let i = 0; i < 3; i++) await backupDatabase({ db, now: new Date(2025, 9, 19, 3, 0, i) });
  // `litekeep verify DIR | head -1`: the reader closes the pipe before the run is done.
  const child = new Deno.Command(Deno.execPath(), {
    args: cliCommand(["verify", join(dir.path, "backups")]),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdout.cancel();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  assert.doesNotMatch(stderr, /internal error|BrokenPipe/);
  assert.equal(status.code, 0, stderr);
});
