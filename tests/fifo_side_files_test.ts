/**
 * A FIFO (or device) named like a live database's `-wal` or `-journal`: SQLite and raw reads open
 * such names as plain files, and open(2) of a FIFO with no writer blocks forever, where no
 * signal handler runs. Found by the attack round: `timeout 10 litekeep stats DB` was still alive
 * ten minutes later; backup with a FIFO `-journal` hung the same way and then held the lock.
 * Expected: exit 1 within seconds, naming the file that is not a regular file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { cliCommand, tempDir } from "./_helpers.ts";

const CASES = [
  ["-wal", true, ["stats"]],
  ["-wal", true, ["backup"]],
  ["-wal", true, ["info"]],
  ["-journal", false, ["backup"]],
  ["-journal", false, ["stats"]],
  ["-journal", false, ["info"]],
] as const;

Deno.test("a FIFO named like a database's -wal or -journal ends the run with exit 1, never a hang", async (t) => {
  for (const [suffix, wal, command] of CASES) {
    await t.step(`${command.join(" ")} with a FIFO ${suffix}`, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      const conn = new DatabaseSync(db);
      conn.exec(
        `PRAGMA journal_mode = ${
          wal ? "WAL" : "DELETE"
        }; CREATE TABLE t (x); INSERT INTO t VALUES (1)`,
      );
      conn.close();
      for (const side of ["-wal", "-shm", "-journal"]) await Deno.remove(db + side).catch(() => {});
      const mk = await new Deno.Command("mkfifo", { args: [db + suffix] }).output();
      assert.ok(mk.success);
      const child = new Deno.Command(Deno.execPath(), {
        args: cliCommand([...command, db]),
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const status = await child.status;
      clearTimeout(timer);
      assert.equal(status.signal, null, `still running after 20 s: ${await stderr}`);
      assert.equal(status.code, 1, await stderr);
      assert.match(await stderr, new RegExp(`gym\\.db${suffix}" is not a regular file`));
    });
  }
});
