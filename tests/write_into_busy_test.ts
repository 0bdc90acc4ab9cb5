/**
 * restore into a rollback-journal database while a reader starts a read transaction during the
 * pre-restore copy (found by the attack round): the write needs EXCLUSIVE, which the reader's
 * SHARED lock keeps it from, and Deno's backup() retried that without end, ignoring
 * --busy-timeout and spinning a core. Expected: exit 75 within about --busy-timeout, nothing
 * changed, no pre-restore copy left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, ls, makeDb, runCli, sqlite3, tempDir } from "./_helpers.ts";

Deno.test("restore gives up within --busy-timeout on a reader that starts during the copy, and changes nothing", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { wal: false, payments: 20000, noteBytes: 400 });
  const bk = join(dir.path, "bk");
  const made = await runCli(["backup", db, "--backup-dir", bk, "--json"]);
  assert.equal(made.code, 0, made.stderr);
  const backup = JSON.parse(made.stdout).file as string;

  // The reader waits for the pre-restore copy's temp, then holds a read transaction for 15 s.
  const reader = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `
      import { DatabaseSync } from "node:sqlite";
      const dir = ${JSON.stringify(dir.path)};
      const c = new DatabaseSync(${JSON.stringify(db)}, { timeout: 60000 });
      const t0 = Date.now();
      for (;;) {
        if ([...Deno.readDirSync(dir)].some((e) => e.name.startsWith(".litekeep-tmp-") && e.name.includes("pre-restore"))) break;
        if (Date.now() - t0 > 20000) Deno.exit(3);
      }
      c.exec("BEGIN"); c.prepare("SELECT count(*) FROM members").get();
      console.log("in");
      const until = Date.now() + 15000;
      while (Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      c.exec("COMMIT");`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  await new Promise((r) => setTimeout(r, 500));
  const started = Date.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: cliCommand(["restore", backup, db, "--busy-timeout", "1000"]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const took = Date.now() - started;
  try {
    reader.kill("SIGKILL");
  } catch {
    // already ended
  }
  await reader.status;
  await reader.stdout.cancel().catch(() => {});
  assert.ok(
    took < 12_000,
    `restore took ${took} ms with --busy-timeout 1000 (exit ${out.code}): it waited for the reader`,
  );
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 75, stderr);
  assert.match(stderr, /held the database for longer than --busy-timeout \(1000 ms\)/);
  assert.ok(!(await ls(dir.path)).some((n) => n.includes("pre-restore")), "a copy was left");
  assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
});
