import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { backupDatabase, type BackupProgress } from "../lib/backup_set/backup.ts";
import { backupStatus } from "../lib/commands/_backup_report.ts";
import { formatBytes } from "../lib/cli/format.ts";
import { dirLockPath } from "../lib/files/lock.ts";
import {
  assertWriterInstant,
  cliCommand,
  corruptIndexPage,
  count,
  have,
  holdLock,
  ls,
  makeDb,
  mountTmpfs,
  runCli,
  spawnCli,
  sqlite3,
  startWriter,
  tempDir,
} from "./_helpers.ts";

const NOW = new Date(2025, 9, 19, 15, 55, 38);

Deno.test("backupDatabase() includes transactions that are still only in the -wal", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym_system.db");
  makeDb(db);
  // Keep a connection open with auto-checkpoint off: the new rows live only in the WAL.
  const app = new DatabaseSync(db);
  app.exec("PRAGMA wal_autocheckpoint = 0");
  app.exec("INSERT INTO members (name, joined_at) VALUES ('only in wal', '2025-10-19')");
  const walSize = (await Deno.stat(`${db}-wal`)).size;
  assert.ok(walSize > 0, "the test needs a non-empty WAL");

  const result = await backupDatabase({ db, now: NOW });
  app.close();

  assert.equal(result.file, join(dir.path, "backups", "gym_system_backup_20251019_155538.db"));
  assert.equal(result.journalMode, "wal");
  assert.equal(
    await sqlite3(result.file, "SELECT count(*) FROM members WHERE name = 'only in wal'"),
    "1",
  );
  assert.deepEqual(result.tables.find((t) => t.name === "members"), { name: "members", rows: 345 });
});

Deno.test("backupDatabase() writes a self-contained file in rollback-journal mode", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const { file } = await backupDatabase({ db, now: NOW });
  assert.equal(await sqlite3(file, "PRAGMA journal_mode"), "delete");
  assert.equal(await sqlite3(file, "PRAGMA integrity_check"), "ok");
  assert.equal(await sqlite3(file, "SELECT count(*) FROM payments"), "2000");
  // Opening it (above, three times) created no side files.
  assert.deepEqual(await ls(join(dir.path, "backups")), [
    ".litekeep-sets.json",
    ".litekeep.lock",
    "gym_backup_20251019_155538.db",
    "gym_backup_20251019_155538.db.sha256",
  ]);
});

Deno.test("backupDatabase() completes in one pass while a writer commits continuously", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "busy.db");
  // About 120 MB: long enough for many foreign commits during the copy.
  makeDb(db, { payments: 400_000, noteBytes: 200 });
  await using writer = await startWriter(db, dir.path);
  const before = count(db, "ledger");
  let steps = 0;
  let backwards = 0;
  let last = -1;
  const result = await backupDatabase({
    db,
    now: NOW,
    onProgress: (p) => {
      if (p.phase !== "copy") return;
      const copied = p.copiedPages;
      steps++;
      if (copied < last) backwards++;
      last = copied;
    },
  });
  const after = count(db, "ledger");
  const report = await writer.stop();

  // What makes the test able to fail is foreign commits during the copy, not its duration
  // (a fast machine copies 120 MB in under a second).
  assert.ok(after - before > 10, `the writer committed only ${after - before} times meanwhile`);
  assert.equal(report.busy, 0, "the writer must never see SQLITE_BUSY");
  assert.ok(steps > 5, "progress must come in several steps");
  assert.equal(backwards, 0, "a restarted backup would report fewer pages copied");
  await assertWriterInstant(result.file, before, after);
});

Deno.test("backupDatabase() never overwrites a backup made in the same second", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const first = await backupDatabase({ db, now: NOW });
  const second = await backupDatabase({ db, now: NOW });
  const third = await backupDatabase({ db, now: NOW, checksum: "md5" });
  assert.match(first.file, /gym_backup_20251019_155538\.db$/);
  assert.match(second.file, /gym_backup_20251019_155538_2\.db$/);
  assert.match(third.file, /gym_backup_20251019_155538_3\.db$/);
});

Deno.test("backupDatabase() writes sidecars that sha256sum -c and md5sum -c accept", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  for (const [algorithm, tool] of [["sha256", "sha256sum"], ["md5", "md5sum"]] as const) {
    await t.step(tool, async () => {
      assert.ok(await have(tool));
      const backupDir = join(dir.path, algorithm);
      const result = await backupDatabase({ db, backupDir, now: NOW, checksum: algorithm });
      assert.equal(result.sidecar, `${result.file}.${algorithm}`);
      const out = await new Deno.Command(tool, {
        args: ["-c", `${result.file.split("/").pop()}.${algorithm}`],
        cwd: backupDir,
        stdout: "piped",
      }).output();
      assert.ok(out.success, `${tool} -c failed`);
      assert.match(new TextDecoder().decode(out.stdout), /: OK\n$/);
      // And it catches a change: flip one byte of the backup.
      using f = await Deno.open(result.file, { read: true, write: true });
      await f.seek(5000, Deno.SeekMode.Start);
      await f.write(new Uint8Array([0x5a]));
      f.close();
      const bad = await new Deno.Command(tool, {
        args: ["-c", `${result.file.split("/").pop()}.${algorithm}`],
        cwd: backupDir,
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(bad.success, false);
    });
  }
});

Deno.test("backupDatabase() writes no sidecar with checksum none", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const result = await backupDatabase({ db, now: NOW, checksum: "none", verify: "none" });
  assert.equal(result.sidecar, null);
  // --verify none reads nothing back: tables are listed, rows not counted.
  assert.deepEqual(result.tables.map((t) => t.rows), [null, null, null, null]);
  assert.equal(await sqlite3(result.file, "SELECT count(*) FROM members"), "344");
  assert.deepEqual(await ls(join(dir.path, "backups")), [
    ".litekeep-sets.json",
    ".litekeep.lock",
    "gym_backup_20251019_155538.db",
  ]);
});

Deno.test("backup discards a snapshot that fails verification and exits 1", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "broken.db");
  makeDb(db, { wal: false, payments: 5000 });
  await corruptIndexPage(db);
  const res = await runCli(["backup", db]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /error: Backup of ".*broken\.db" failed verification/);
  assert.deepEqual(await ls(join(dir.path, "backups")), [".litekeep.lock"]);
});

Deno.test("backup --checkpoint truncate empties the WAL after the snapshot", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const app = new DatabaseSync(db);
  app.exec("PRAGMA wal_autocheckpoint = 0");
  app.exec("UPDATE members SET status = 'paused' WHERE id < 100");
  assert.ok((await Deno.stat(`${db}-wal`)).size > 0);
  const res = await runCli(["backup", db, "--checkpoint=truncate", "--json"]);
  assert.equal(res.code, 0, res.stderr);
  const walAfter = (await Deno.stat(`${db}-wal`)).size;
  app.close();
  const out = JSON.parse(res.stdout);
  assert.equal(out.checkpoint.mode, "truncate");
  assert.equal(out.checkpoint.busy, false);
  assert.equal(walAfter, 0);
});

Deno.test("backup --checkpoint truncate reports the -wal it emptied, not 0 of 0 frames", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 3000 });
  const app = new DatabaseSync(db);
  app.exec("PRAGMA wal_autocheckpoint = 0");
  app.exec("UPDATE payments SET note = 'x' || note");
  const walBefore = (await Deno.stat(`${db}-wal`)).size;
  assert.ok(walBefore > 100_000, `${walBefore}`);
  const res = await runCli(["backup", db, "--checkpoint", "truncate"]);
  app.close();
  assert.equal(res.code, 0, res.stderr);
  assert.doesNotMatch(res.stdout, /0 of 0 frames/);
  assert.match(
    res.stdout,
    new RegExp(`checkpoint truncate: done, -wal ${formatBytes(walBefore)} -> 0 B`),
  );
});

Deno.test("backup waits --busy-timeout for a writer's lock, then exits 75", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "journal.db");
  makeDb(db, { wal: false });
  // A writer in rollback-journal mode holding an exclusive lock: no reader may start.
  const app = new DatabaseSync(db);
  app.exec("BEGIN EXCLUSIVE");
  app.exec("DELETE FROM payments WHERE id < 10");
  const t0 = performance.now();
  const res = await runCli(["backup", db, "--busy-timeout", "300"]);
  const waited = performance.now() - t0;
  app.exec("ROLLBACK");
  app.close();
  assert.equal(res.code, 75, res.stderr);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /error: Cannot read database ".*journal\.db": the database is locked/);
  assert.match(res.stderr, /hint: .*--busy-timeout \(300 ms\)/);
  assert.ok(waited >= 250, `gave up after ${waited} ms`);
  assert.deepEqual(await ls(join(dir.path, "backups")), [".litekeep.lock"]);
});

Deno.test("backup exits 75 while another process holds the lock, and runs once it is killed", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const backupDir = join(dir.path, "backups");
  await Deno.mkdir(backupDir);
  {
    // A process takes the folder lock the way litekeep does, then dies by SIGKILL.
    await using holder = await holdLock(dirLockPath(backupDir));
    const busy = await runCli(["backup", db]);
    assert.equal(busy.code, 75);
    assert.equal(busy.stdout, "");
    assert.match(
      busy.stderr,
      new RegExp(
        `Another litekeep run is working on backup folder ".*backups" \\(pid ${holder.pid}\\)`,
      ),
    );
  }
  const res = await runCli(["backup", db]);
  assert.equal(res.code, 0, res.stderr);
});

Deno.test("backup killed with SIGKILL leaves no backup, and the next run cleans up", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 300_000, noteBytes: 200 });
  const backupDir = join(dir.path, "backups");
  const child = new Deno.Command(Deno.execPath(), {
    args: cliCommand(["backup", db]),
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Wait until its temporary file exists and has grown, then kill it mid-copy.
  for (let i = 0;; i++) {
    const names = await ls(backupDir).catch(() => [] as string[]);
    const temp = names.find((n) => n.startsWith(".litekeep-tmp-") && n.endsWith(".db"));
    if (temp && (await Deno.stat(join(backupDir, temp))).size > 1 << 20) break;
    assert.ok(i < 2000, "the backup never started writing");
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill("SIGKILL");
  await child.status;
  const left = await ls(backupDir);
  assert.ok(left.every((n) => n.startsWith(".")), `a backup appeared: ${left}`);
  assert.ok(left.some((n) => n.startsWith(".litekeep-tmp-")), "expected the killed run's temp");
  // verify ignores the leftover; the next backup removes it.
  assert.equal((await runCli(["verify", backupDir])).code, 1);
  const res = await runCli(["backup", db, "--verify", "quick"]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /removed leftover of an interrupted run: \.litekeep-tmp-/);
  assert.equal((await ls(backupDir)).filter((n) => n.startsWith(".litekeep-tmp-")).length, 0);
});

Deno.test("backup of a bad input names the path, exits 1 and creates nothing", async (t) => {
  await using dir = await tempDir();
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ["missing file", () => Promise.resolve(join(dir.path, "missing.db")), /no such file/],
    ["a folder", async () => {
      const p = join(dir.path, "folder.db");
      await Deno.mkdir(p);
      return p;
    }, /it is a folder/],
    ["not SQLite", async () => {
      const p = join(dir.path, "notes.db");
      await Deno.writeTextFile(p, "these are not the pages you are looking for\n".repeat(10));
      return p;
    }, /file is not a SQLite database/],
    ["empty file", async () => {
      const p = join(dir.path, "empty.db");
      await Deno.writeFile(p, new Uint8Array());
      return p;
    }, /the database is empty \(0 bytes\)/],
  ];
  for (const [name, make, why] of cases) {
    await t.step(name, async () => {
      const path = await make();
      const res = await runCli(["backup", path]);
      assert.equal(res.code, 1);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, /error: Cannot open database "/);
      assert.ok(res.stderr.includes(path), res.stderr);
      assert.match(res.stderr, why);
      assert.match(res.stderr, /hint: /);
      assert.equal((await ls(dir.path)).includes("backups"), false);
    });
  }
});

Deno.test("backup into a folder that cannot be created exits 1 naming it", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  await Deno.writeTextFile(join(dir.path, "file"), "");
  const target = join(dir.path, "file", "backups");
  const res = await runCli(["backup", db, "--backup-dir", target]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.ok(res.stderr.includes(`Cannot create backup folder "${target}"`), res.stderr);
});

Deno.test("backup into a read-only folder exits 1 and leaves nothing", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const target = join(dir.path, "ro");
  await using mount = await mountTmpfs(target, 1024, true);
  if (!mount) return;
  const res = await runCli(["backup", db, "--backup-dir", target]);
  assert.equal(res.code, 1);
  assert.ok(res.stderr.includes(`"${target}`), res.stderr);
  assert.deepEqual(await ls(target), []);
});

Deno.test("backup onto a disk that fills up exits 1 and leaves no partial file", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 20_000, noteBytes: 100 });
  const target = join(dir.path, "small");
  await using mount = await mountTmpfs(target, 512);
  if (!mount) return;
  const res = await runCli(["backup", db, "--backup-dir", target]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /no space left on the device/);
  assert.ok(res.stderr.includes(target), res.stderr);
  assert.deepEqual(await ls(target), [".litekeep.lock"]);
});

Deno.test("backup exits with the real process exit codes", async () => {
  await using dir = await tempDir();
  const missing = await spawnCli(["backup", join(dir.path, "nope.db")]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
  assert.match(
    missing.stderr,
    /^\S+[+-]\d\d:\d\d error: Cannot open database ".*nope\.db": no such file/m,
  );
  const usage = await spawnCli(["backup", "--no-such-flag"]);
  assert.equal(usage.code, 2);
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const ok = await spawnCli(["--json", "backup", db]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).ok, true);
});

Deno.test("backup draws a progress line on a terminal, and none in cron", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  // The one-second delay before progress shows is the logger's, tested in log_test.ts.
  const tty = await runCli(["backup", db], { terminal: true, progressDelayMs: 0 });
  assert.equal(tty.code, 0, tty.stderr);
  assert.match(
    tty.stderr,
    // The terminal's "clear line" sequence is the point of this assertion.
    // deno-lint-ignore no-control-regex
    /\r\x1b\[Kbackup: (copying \d+% \(\d+\/\d+ pages\)|checking the copy) \d+\.\d s/,
  );
  const cron = await runCli(["backup", db], { terminal: false, progressDelayMs: 0 });
  assert.equal(cron.code, 0, cron.stderr);
  assert.equal(cron.stderr, "");
});

Deno.test("backupStatus() names only the work the check step does", () => {
  // Found by the new-user trial: "checking and hashing the copy" while only the check ran, the
  // page reader having hashed the copy as it wrote it.
  const check = (checking: boolean, hashing: boolean) =>
    backupStatus({ phase: "check", checking, hashing });
  assert.equal(check(true, false), "backup: checking the copy");
  assert.equal(check(true, true), "backup: checking and hashing the copy");
  assert.equal(check(false, true), "backup: hashing the copy");
  assert.equal(check(false, false), "backup: listing the copy's tables");
});

Deno.test("backupDatabase() reports a hash step only for a copy not hashed as it was written", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const checkStep = async (options: { checksum?: "md5" | "none"; verify?: "none" }) => {
    const steps: BackupProgress[] = [];
    await backupDatabase({
      db,
      backupDir: join(dir.path, "backups"),
      now: new Date(),
      ...options,
      onProgress: (p) => void steps.push(p),
    });
    return steps.find((p) => p.phase === "check");
  };
  await t.step("the page reader hashes as it writes (sha256, md5)", async () => {
    assert.deepEqual(await checkStep({}), { phase: "check", checking: true, hashing: false });
    assert.deepEqual(await checkStep({ checksum: "md5" }), {
      phase: "check",
      checking: true,
      hashing: false,
    });
  });
  await t.step("--verify none and --checksum none", async () => {
    assert.deepEqual(await checkStep({ verify: "none" }), {
      phase: "check",
      checking: false,
      hashing: false,
    });
    assert.deepEqual(await checkStep({ checksum: "none" }), {
      phase: "check",
      checking: true,
      hashing: false,
    });
  });
  await t.step("the backup API's copy is hashed from the file", async () => {
    // A -journal beside the database sends the snapshot to the backup API (snapshot.ts).
    await Deno.writeFile(`${db}-journal`, new Uint8Array());
    try {
      assert.deepEqual(await checkStep({}), { phase: "check", checking: true, hashing: true });
    } finally {
      await Deno.remove(`${db}-journal`);
    }
  });
});

Deno.test("backupDatabase() gives the backup and its sidecar at most the database's permission bits", async (t) => {
  for (const mode of [0o600, 0o640, 0o400]) {
    await t.step(`a ${mode.toString(8)} database`, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { payments: 50 });
      await Deno.chmod(db, mode);
      for (const checksum of ["sha256", "md5"] as const) {
        const result = await backupDatabase({ db, checksum, now: NOW });
        assert.equal((await Deno.stat(result.file)).mode! & 0o777, mode, result.file);
        assert.equal((await Deno.stat(result.sidecar!)).mode! & 0o777, mode, result.sidecar!);
      }
    });
  }
});

Deno.test("backup --verify none says its table rows were not counted, not a bare '-'", async () => {
  // Found by the new-user trial: "payments  -" under "tables" read like an empty table.
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  makeDb(db);
  const res = await runCli(["backup", db, "--verify", "none", "--checksum", "md5"]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^ {2}verified {2}not verified \(--verify none\)$/m);
  assert.match(res.stdout, /^ {2}tables \(rows not counted with --verify none\)\n {4}\S+ +-$/m);
  const full = await runCli(["backup", db]);
  assert.equal(full.code, 0, full.stderr);
  assert.match(full.stdout, /^ {2}tables\n/m);
});

Deno.test("backup of a WAL database whose application is stopped leaves no -wal or -shm beside it", async () => {
  // Found by the new-user trial: a nightly backup of a stopped app's database left an empty
  // -wal and a -shm beside it, which no SQLite close removed (the snapshot's last connection is
  // read-only).
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  assert.deepEqual(await ls(dir.path), ["gym.db"]);
  const res = await runCli(["backup", db, "--backup-dir", join(dir.path, "backups")]);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(
    (await ls(dir.path)).filter((name) => name.startsWith("gym.db")),
    ["gym.db"],
  );
  // With the application running (its -wal and -shm there), they are the application's.
  const app = new DatabaseSync(db);
  try {
    app.exec("INSERT INTO members (name, joined_at) VALUES ('open', '2026-12-02')");
    const busy = await runCli(["backup", db, "--backup-dir", join(dir.path, "backups")]);
    assert.equal(busy.code, 0, busy.stderr);
    assert.deepEqual(
      (await ls(dir.path)).filter((name) => name.startsWith("gym.db")),
      ["gym.db", "gym.db-shm", "gym.db-wal"],
    );
    assert.equal(count(db, "members"), 345);
  } finally {
    app.close();
  }
});
