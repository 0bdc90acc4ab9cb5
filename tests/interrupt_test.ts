import assert from "node:assert/strict";
import { join } from "node:path";
import { backupDatabase } from "../lib/backup_set/backup.ts";
import { cliCommand, count, makeDb, tempDir } from "./_helpers.ts";

/**
 * A SIGINT at any moment of a restore leaves a run whose exit code says what happened: 130 and
 * the database as it was, or the run's own result (0) with the database restored. Found by the
 * new-user trial: a SIGINT after the write had committed exited 130, silently, with the database
 * already restored.
 */
Deno.test("restore's exit code tells the truth whenever SIGINT lands", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 150_000, noteBytes: 100 });
  const { file: backup } = await backupDatabase({ db, now: new Date(2025, 9, 19, 3, 0, 0) });
  const restoredCount = count(db, "payments");
  // One restore without a signal times the whole run; the signals then land across it.
  const t0 = performance.now();
  const whole = await new Deno.Command(Deno.execPath(), {
    args: cliCommand(["restore", backup, db]),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(whole.code, 0);
  const runMs = performance.now() - t0;
  let outcomes = "";
  for (const share of [0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]) {
    const delayMs = Math.round(runMs * share);
    await t.step(`SIGINT after ${share} of a run`, async () => {
      // Make the live database differ from the backup, so a restore shows.
      const { DatabaseSync } = await import("node:sqlite");
      const conn = new DatabaseSync(db);
      conn.exec("DELETE FROM payments WHERE rowid % 2 = 0");
      conn.close();
      const before = count(db, "payments");
      const child = new Deno.Command(Deno.execPath(), {
        args: cliCommand(["restore", backup, db]),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = child.output();
      await new Promise((r) => setTimeout(r, delayMs));
      try {
        child.kill("SIGINT");
      } catch {
        // Ended already.
      }
      const out = await output;
      const stderr = new TextDecoder().decode(out.stderr);
      const now = count(db, "payments");
      if (now === before) {
        assert.equal(out.code, 130, `not restored, yet exit ${out.code}: ${stderr}`);
        outcomes += "i";
      } else {
        assert.equal(now, restoredCount, "restored, and whole");
        assert.equal(out.code, 0, `restored, yet exit ${out.code}: ${stderr}`);
        assert.match(new TextDecoder().decode(out.stdout), /pre-restore/);
        outcomes += "r";
      }
    });
  }
  // Both sides of the commit were hit, or the test proved nothing about the window.
  assert.match(outcomes, /r/, `outcomes ${outcomes}`);
});
