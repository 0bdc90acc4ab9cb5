import assert from "node:assert/strict";
import { join } from "node:path";
import { pullStatus } from "../lib/commands/_pull_report.ts";
import { makeDb, runCli, startSshd, tempDir } from "./_helpers.ts";

Deno.test("pullStatus() shows no rate or time left until the data can say something", () => {
  // Found by the new-user trial: "30238 s left" from the first chunk after the remote's wait.
  const early = pullStatus({ phase: "transfer", received: 64 * 1024, expected: 2 ** 30 }, 0.2);
  assert.equal(early, "pull: 64.0 KiB of 1.0 GiB");
  const few = pullStatus({ phase: "transfer", received: 1024, expected: 2 ** 30 }, 5);
  assert.equal(few, "pull: 1.0 KiB of 1.0 GiB");
  const later = pullStatus({ phase: "transfer", received: 2 ** 29, expected: 2 ** 30 }, 4);
  assert.equal(later, "pull: 512.0 MiB of 1.0 GiB, 128.0 MiB/s, 4 s left");
});

Deno.test("pull on a terminal says at once that it waits for the host", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const res = await runCli(["pull", `${sshd.host}:${remote}`, join(dir.path, "local.db")], {
    terminal: true,
  });
  assert.equal(res.code, 0, res.stderr);
  assert.ok(
    res.stderr.startsWith(`\r\x1b[Kpull: waiting for ${sshd.host}...`),
    JSON.stringify(res.stderr.slice(0, 200)),
  );
  const quiet = await runCli(
    ["pull", `${sshd.host}:${remote}`, join(dir.path, "local.db"), "--quiet"],
    { terminal: true },
  );
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
});
