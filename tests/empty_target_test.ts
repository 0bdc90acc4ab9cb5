/**
 * An application creates its database by opening it: until its first write the file is 0
 * bytes, which SQLite treats as an empty database. Restore and pull write INTO such a file
 * (through SQLite, so the application's open connection stays safe) rather than refuse it
 * (found by the attack round: restore said "the database is empty", pull "not a SQLite
 * database ... move it away", both exit 1).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { count, ls, makeDb, pull, runCli, startSshd, tempDir } from "./_helpers.ts";

Deno.test("restore into a 0-byte database the application has just created restores, keeping nothing", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "gym.db");
  makeDb(src, { payments: 50 });
  const made = await runCli(["backup", src, "--backup-dir", join(dir.path, "bk"), "--json"]);
  assert.equal(made.code, 0, made.stderr);
  const target = join(dir.path, "app.db");
  await Deno.writeFile(target, new Uint8Array());
  // The application has it open (no transaction): it must see the restored content after.
  const app = new DatabaseSync(target);
  const res = await runCli(["restore", JSON.parse(made.stdout).file, target, "--json"]);
  assert.equal(res.code, 0, res.stderr);
  const result = JSON.parse(res.stdout);
  assert.equal(result.created, false);
  assert.equal(result.preRestore, null);
  assert.ok(result.steps.some((s: string) => s.includes("was empty (0 bytes): nothing to keep")));
  assert.equal(
    Number((app.prepare("SELECT count(*) AS n FROM payments").get() as { n: number }).n),
    50,
  );
  app.close();
  assert.equal(count(target, "payments"), 50);
  assert.ok(!(await ls(dir.path)).some((n) => n.includes("pre-restore")));
});

Deno.test("pull into a 0-byte local database writes into it, with no local backup", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 40 });
  const local = join(dir.path, "local.db");
  await Deno.writeFile(local, new Uint8Array());
  const res = await pull(sshd, remote, local, "--json");
  assert.equal(res.code, 0, res.stderr);
  const result = JSON.parse(res.stdout);
  assert.equal(result.localBackup, null);
  assert.equal(result.created, false);
  assert.equal(count(local, "payments"), 40);
});
