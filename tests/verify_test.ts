import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { backupDatabase } from "../lib/backup_set/backup.ts";
import { verifyBackup } from "../lib/engine/verify.ts";
import {
  cliCommand,
  type CliResult,
  fakeBackups,
  foreignWal,
  ls,
  makeDb,
  runCli,
  tempDir,
} from "./_helpers.ts";

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
  // What to do, in the cron log too (a quiet job's log has only its errors).
  assert.match(
    res.stderr,
    /failed: sha256 mismatch.*\n(\S+ )?hint: make a fresh backup \("litekeep backup"\)/,
  );
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
  assert.deepEqual([report.integrity, report.integrityMode], ["failed", "full"]);
});

Deno.test("verify --json gives the integrity check's result and, apart, its mode", async (t) => {
  await using dir = await tempDir();
  const [good, corrupt] = await backupSet(dir.path);
  const text = join(dir.path, "text.db");
  await Deno.writeTextFile(text, "not a database ".repeat(100));
  {
    using f = await Deno.open(corrupt, { read: true, write: true });
    await f.seek(4096 * 3 - 200, Deno.SeekMode.Start);
    await f.write(new Uint8Array(200).fill(0xff));
  }
  const cases: Array<[string[], string, string, string]> = [
    [[good], "ok", "full", "good, full"],
    [[good, "--quick"], "ok", "quick", "good, quick"],
    [[corrupt], "failed", "full", "corrupt"],
    [[text], "skipped", "full", "not a database"],
  ];
  for (const [args, integrity, mode, name] of cases) {
    await t.step(name, async () => {
      const res = await runCli(["verify", ...args, "--json"]);
      const [result] = JSON.parse(res.stdout).results;
      assert.equal(result.integrity, integrity);
      assert.equal(result.integrityMode, mode);
      assert.equal(res.code, integrity === "ok" ? 0 : 1);
      const out = JSON.parse(res.stdout);
      if (integrity === "ok") assert.equal(out.error, undefined);
      else assert.equal(out.error.message, `1 of 1 backup(s) failed: ${args[0]}`);
    });
  }
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

/** Runs the CLI as a real process, killed after `ms`: a test of "does not hang" must end. */
async function spawnWithTimeout(
  args: string[],
  ms = 20_000,
): Promise<CliResult & { killed: boolean }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: cliCommand(args),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
    killed: out.signal !== null,
  };
}

async function mkfifo(path: string): Promise<void> {
  const out = await new Deno.Command("mkfifo", { args: [path] }).output();
  if (!out.success) throw new Error(`mkfifo ${path} failed`);
}

Deno.test("verify, prune and restore do not hang on a sidecar that is a FIFO, a device or huge", async (t) => {
  await using dir = await tempDir();
  const cases: Array<[string, (sidecar: string) => Promise<void>, RegExp]> = [
    ["a FIFO", mkfifo, /not a regular file/],
    ["a symlink to /dev/zero", (p) => Deno.symlink("/dev/zero", p), /symbolic link/],
    [
      "a 10 MiB file",
      (p) => Deno.writeFile(p, new Uint8Array(10 << 20).fill(0x61)),
      /more than the 4096/,
    ],
  ];
  for (const [name, make, why] of cases) {
    await t.step(name, async () => {
      const backups = join(dir.path, name.replace(/\W+/g, "_"));
      const [older, newest] = await fakeBackups(backups, ["20251018_030005", "20251019_030005"]);
      await Deno.remove(`${newest}.sha256`);
      await make(`${newest}.sha256`);
      const verify = await spawnWithTimeout(["verify", newest]);
      assert.equal(verify.killed, false, "verify hung");
      assert.equal(verify.code, 1, verify.stderr);
      assert.match(verify.stdout + verify.stderr, /sidecar ".*\.sha256" cannot be read/);
      assert.match(verify.stdout + verify.stderr, why);
      const target = join(backups, "restored.db");
      const restore = await spawnWithTimeout(["restore", newest, target]);
      assert.equal(restore.killed, false, "restore hung");
      assert.equal(restore.code, 1, restore.stderr);
      assert.match(restore.stderr, /cannot be read/);
      const prune = await spawnWithTimeout(["prune", backups, "--keep-days", "1", "--json"]);
      assert.equal(prune.killed, false, "prune hung");
      assert.equal(prune.code, 0, prune.stderr);
      // The newest is not good, so the older one is kept as the newest good backup.
      assert.deepEqual(JSON.parse(prune.stdout).newestVerified, [older.split("/").pop()]);
      assert.ok((await ls(backups)).includes(older.split("/").pop()!));
    });
  }
});

Deno.test("verify of a backup that is a FIFO or a device says so and does not hang", async (t) => {
  await using dir = await tempDir();
  const fifo = join(dir.path, "gym_backup_20251019_030005.db");
  await mkfifo(fifo);
  const device = join(dir.path, "gym_backup_20251020_030005.db");
  await Deno.symlink("/dev/zero", device);
  for (const path of [fifo, device]) {
    await t.step(path.split("/").pop()!, async () => {
      const res = await spawnWithTimeout(["verify", path]);
      assert.equal(res.killed, false, "verify hung");
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stdout + res.stderr, /it is not a regular file/);
    });
  }
});
