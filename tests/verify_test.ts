import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { backupDatabase } from "../lib/backup.ts";
import { verifyBackup } from "../lib/verify.ts";
import { foreignWal, ls, makeDb, runCli, tempDir } from "./_helpers.ts";

async function backupSet(dir: string, n = 2): Promise<string[]> {
  const db = join(dir, "gym.db");
  makeDb(db);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    files.push((await backupDatabase({ db, now: new Date(2025, 9, 19, 15, 55, 38 + i) })).file);
  }
  return files;
}

Deno.test("verify checks every backup in a folder and prints tables and row counts", async () => {
  await using dir = await tempDir();
  await backupSet(dir.path);
  const backups = join(dir.path, "backups");
  const before = await ls(backups);
  const res = await runCli(["verify", backups]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^ok {4}.*gym_backup_20251019_155538\.db$/m);
  assert.match(res.stdout, /^ok {4}.*gym_backup_20251019_155539\.db$/m);
  assert.match(res.stdout, /sha256 ok, integrity_check ok, 4 tables, 2584 rows/);
  assert.match(res.stdout, /^ {6}members +344$/m);
  assert.match(res.stdout, /^2 ok, 0 failed$/m);
  // Verifying created and changed nothing.
  assert.deepEqual(await ls(backups), before);
});

Deno.test("verify exits 1 and names the backup whose checksum does not match", async () => {
  await using dir = await tempDir();
  const [first, second] = await backupSet(dir.path);
  // Change a row through SQLite: the file stays a sound database, only the checksum can tell.
  const conn = new DatabaseSync(second);
  conn.exec("UPDATE members SET name = 'tampered' WHERE id = 1");
  conn.close();
  const res = await runCli(["verify", first, second]);
  assert.equal(res.code, 1);
  assert.ok(res.stderr.includes(`error: Backup "${second}" failed: sha256 mismatch`), res.stderr);
  assert.ok(!res.stderr.includes(`Backup "${first}" failed`));
  assert.match(res.stdout, /^1 ok, 1 failed$/m);
});

Deno.test("verify reports a corrupt backup", async () => {
  await using dir = await tempDir();
  const [file] = await backupSet(dir.path, 1);
  await Deno.remove(`${file}.sha256`);
  {
    using f = await Deno.open(file, { read: true, write: true });
    await f.seek(4096 * 3 - 200, Deno.SeekMode.Start);
    await f.write(new Uint8Array(200).fill(0xff));
  }
  const report = await verifyBackup(file, "full");
  assert.equal(report.ok, false);
  assert.ok(report.problems.some((p) => p.startsWith("integrity: ")), report.problems.join());
});

Deno.test("verify reports a missing sidecar without failing", async () => {
  await using dir = await tempDir();
  const [file] = await backupSet(dir.path, 1);
  await Deno.remove(`${file}.sha256`);
  const res = await runCli(["verify", file, "--json"]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /warning: .*no \.sha256 or \.md5 sidecar/);
  const out = JSON.parse(res.stdout);
  assert.equal(out.results[0].checksum.status, "missing");
  assert.equal(out.results[0].ok, true);
});

Deno.test("verify checks a WAL-mode backup of another tool without touching it", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "legacy_backup_20250101_000000.db");
  makeDb(file);
  // Close leaves no -wal: a WAL-mode file such as Python's backup() produces.
  assert.deepEqual(await ls(dir.path), ["legacy_backup_20250101_000000.db"]);
  const report = await verifyBackup(file, "quick");
  assert.equal(report.ok, true, report.problems.join());
  assert.match(report.warnings.join(), /WAL mode/);
  assert.deepEqual(await ls(dir.path), ["legacy_backup_20250101_000000.db"]);
});

Deno.test("verify of a missing path exits 1 naming it", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "nothing_here.db");
  const res = await runCli(["verify", path]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.ok(res.stderr.includes(`error: Cannot verify "${path}": no such file`), res.stderr);
});

Deno.test("verify of a file that is not SQLite exits 1", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "x_backup_20250101_000000.db");
  await Deno.writeTextFile(path, "hello");
  const res = await runCli(["verify", path, "--quick"]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /file is not a SQLite database/);
});

Deno.test("verify checks the backup alone when a foreign -wal lies beside it", async () => {
  await using dir = await tempDir();
  const [file] = await backupSet(dir.path, 1);
  await foreignWal(file);
  const before = await ls(join(dir.path, "backups"));
  const res = await runCli(["verify", file, "--json"]);
  assert.equal(res.code, 0, res.stderr);
  const [report] = JSON.parse(res.stdout).results;
  assert.equal(report.checksum.status, "ok");
  // The backup's own tables, not the -wal's "injected" one.
  assert.deepEqual(report.tables.map((t: { name: string }) => t.name), [
    "lockers",
    "members",
    "payments",
    "rentals",
  ]);
  assert.match(res.stderr, /-wal" beside it is not part of the backup and was ignored/);
  assert.deepEqual(await ls(join(dir.path, "backups")), before);
});
