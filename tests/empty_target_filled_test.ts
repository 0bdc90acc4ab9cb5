/**
 * Found by the second attack round: pull into a 0-byte local database decides "empty: nothing to back up" once, at the
 * start (checkLocalTarget), then travels for as long as the remote takes. An application that
 * fills the file meanwhile (its schema and first rows: the reason it was 0 bytes) has its data
 * overwritten by the pull, and no backup of it is made. Expected: the application's commits are
 * in a local backup, or the pull refuses (nothing changed).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { localSsh, ls, remoteLitekeep, spawnCli, tempDir } from "./_helpers.ts";

Deno.test("pull into a 0-byte database the app fills during the transfer keeps the app's data", async () => {
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  const r = new DatabaseSync(remote);
  r.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v)");
  r.exec("INSERT INTO t (v) VALUES (1), (2), (3)");
  r.close();
  const bin = await remoteLitekeep(dir.path);
  // A slow link: the remote answers 3 s after the connection.
  const path = await localSsh(join(dir.path, "bin"), "sleep 3; ");
  const local = join(dir.path, "local.db");
  await Deno.writeFile(local, new Uint8Array());
  const bk = join(dir.path, "bk");
  const run = spawnCli(
    ["pull", `pi:${remote}`, local, "--remote-bin", bin, "--backup-dir", bk, "--json"],
    { env: { PATH: path } },
  );
  await new Promise((res) => setTimeout(res, 1500));
  // The application's first start: its schema and its first (precious) rows.
  const app = new DatabaseSync(local);
  app.exec("PRAGMA journal_mode = WAL; CREATE TABLE orders (id INTEGER PRIMARY KEY, what)");
  app.exec("INSERT INTO orders (what) VALUES ('first order'), ('second order')");
  app.close();
  const res = await run;
  const backups = await ls(bk).catch(() => [] as string[]);
  const found = backups.filter((n) => n.endsWith(".db")).some((n) => {
    const c = new DatabaseSync(join(bk, n), { readOnly: true });
    try {
      return (c.prepare("SELECT count(*) AS n FROM orders").get() as { n: number }).n === 2;
    } catch {
      return false;
    } finally {
      c.close();
    }
  });
  const check = new DatabaseSync(local, { readOnly: true });
  const stillThere = check.prepare(
    "SELECT count(*) AS n FROM sqlite_schema WHERE name = 'orders'",
  ).get() as { n: number };
  check.close();
  assert.ok(
    found || stillThere.n === 1,
    `pull exited ${res.code}: the app's 2 orders are neither in ${local} nor in a backup ` +
      `(backups: ${JSON.stringify(backups)}); stdout ${
        res.stdout.slice(0, 300)
      } stderr ${res.stderr}`,
  );
});
