import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { backupDatabase } from "../lib/backup_set/backup.ts";
import { hashFile } from "../lib/backup_set/checksum.ts";
import { restoreDatabase } from "../lib/backup_set/restore.ts";
import {
  cliCommand,
  count as rows,
  foreignWal,
  ls,
  makeDb,
  mountTmpfs,
  runCli,
  sqlite3,
  tempDir,
} from "./_helpers.ts";
import { assertNoCommitLost, startLedgerWriter } from "./support/ledger.ts";

const NOW = new Date(2025, 9, 20, 3, 0, 10);

/**
 * A database and a backup of it, then the database changed: 100 members fewer and one more
 * that only the current database has. Returns the paths.
 */
async function changedSince(
  dir: string,
  options: { wal?: boolean } = {},
): Promise<{ db: string; backup: string }> {
  const db = join(dir, "gym.db");
  makeDb(db, { wal: options.wal ?? true, payments: 500 });
  const { file } = await backupDatabase({ db, now: new Date(2025, 9, 19, 3, 0, 5) });
  const conn = new DatabaseSync(db);
  conn.exec(
    "DELETE FROM rentals WHERE member_id > 244; DELETE FROM payments WHERE member_id > 244",
  );
  conn.exec("DELETE FROM members WHERE id > 244");
  conn.exec("INSERT INTO members (name, joined_at) VALUES ('after the backup', '2025-10-19')");
  conn.close();
  return { db, backup: file };
}

/** The header's file format bytes: 2,2 for WAL, 1,1 for rollback journal. */
async function formatBytes(db: string): Promise<number[]> {
  using f = await Deno.open(db);
  const b = new Uint8Array(20);
  await f.read(b);
  return [b[18], b[19]];
}

/** Hash and mtime of each file, "-" for a missing one. */
async function fingerprint(paths: string[]): Promise<string[]> {
  return await Promise.all(paths.map(async (p) => {
    try {
      return `${p} ${await hashFile(p, "sha256")} ${(await Deno.stat(p)).mtime?.getTime()}`;
    } catch {
      return `${p} -`;
    }
  }));
}

Deno.test("restore over a database with a stale -wal never lets the -wal meet restored data", async () => {
  await using dir = await tempDir();
  const { db, backup } = await changedSince(dir.path);
  // A crash image: the application committed into the -wal and died; its -wal stays behind.
  const app = new DatabaseSync(db);
  app.exec("PRAGMA wal_autocheckpoint = 0");
  app.exec("INSERT INTO members (name, joined_at) VALUES ('only in the wal', '2025-10-19')");
  const walImage = await Deno.readFile(`${db}-wal`);
  const dbImage = await Deno.readFile(db);
  app.close();
  await Deno.writeFile(db, dbImage);
  await Deno.writeFile(`${db}-wal`, walImage);
  await Deno.remove(`${db}-shm`).catch(() => {});

  const res = await runCli(["restore", backup, db, "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.preRestore, `${db}.pre-restore-20251020_030010`);
  assert.equal(out.journalModeBefore, "wal");
  assert.equal(out.journalMode, "wal");

  // The restored database is the backup, exactly: nothing of the old -wal was replayed into it.
  assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
  assert.equal(await sqlite3(db, "SELECT count(*) FROM members"), "344");
  assert.equal(
    await sqlite3(
      db,
      "SELECT count(*) FROM members WHERE name IN ('only in the wal', 'after the backup')",
    ),
    "0",
  );
  assert.equal(await sqlite3(db, "PRAGMA journal_mode"), "wal");
  assert.deepEqual(await formatBytes(db), [2, 2]);
  // The copy kept first has everything the old database had committed, its -wal included,
  // and is self-contained.
  const pre = out.preRestore;
  assert.equal(await sqlite3(pre, "SELECT count(*) FROM members"), "246");
  assert.equal(
    await sqlite3(pre, "SELECT count(*) FROM members WHERE name = 'only in the wal'"),
    "1",
  );
  assert.deepEqual(await formatBytes(pre), [1, 1]);
  assert.deepEqual(await ls(dir.path), [
    ".gym.db.litekeep.lock",
    "backups",
    "gym.db",
    "gym.db.pre-restore-20251020_030010",
  ]);
});

/** A process that holds `db` open read-only: it counts members, waits for `go`, counts again. */
async function startReader(db: string, dir: string) {
  const go = join(dir, "go");
  const code = `
    import { DatabaseSync } from "node:sqlite";
    const conn = new DatabaseSync(${JSON.stringify(db)}, { readOnly: true });
    const count = () => conn.prepare("SELECT count(*) AS n FROM members").get().n;
    console.log(count());
    for (;;) {
      try { Deno.statSync(${
    JSON.stringify(go)
  }); break; } catch { await new Promise((r) => setTimeout(r, 10)); }
    }
    console.log(count(), conn.prepare("PRAGMA quick_check").get().quick_check);
    conn.close();`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await lines.read()).value ?? "";
  return {
    first: text.trim(),
    async finish(): Promise<string> {
      await Deno.writeTextFile(go, "");
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        text += value;
      }
      await child.status;
      return text.trim().split("\n").pop()!;
    },
  };
}

Deno.test("restore while another process holds the database open read-only", async (t) => {
  for (const wal of [true, false]) {
    await t.step(wal ? "WAL" : "rollback journal", async () => {
      await using dir = await tempDir();
      const { db, backup } = await changedSince(dir.path, { wal });
      const reader = await startReader(db, dir.path);
      assert.equal(reader.first, "245");
      const res = await runCli(["restore", backup, db], { now: NOW });
      const seen = await reader.finish();
      assert.equal(res.code, 0, res.stderr);
      // The open connection sees the restored data on its next read, and sound.
      assert.equal(seen, "344 ok");
      assert.equal(await sqlite3(db, "PRAGMA journal_mode"), wal ? "wal" : "delete");
      assert.match(res.stdout, new RegExp(`journal mode  ${wal ? "wal" : "delete"}`));
    });
  }
});

Deno.test("restore refuses a backup that fails verification and leaves the database untouched", async (t) => {
  const cases: Array<[string, (backup: string) => Promise<void>, RegExp]> = [
    ["checksum mismatch", (backup) => {
      const conn = new DatabaseSync(backup);
      conn.exec("UPDATE members SET name = 'tampered' WHERE id = 1");
      conn.close();
      return Promise.resolve();
    }, /sha256 mismatch/],
    ["corrupt pages", async (backup) => {
      await Deno.remove(`${backup}.sha256`);
      using f = await Deno.open(backup, { read: true, write: true });
      await f.seek(4096 * 3 - 300, Deno.SeekMode.Start);
      await f.write(new Uint8Array(300).fill(0xff));
    }, /integrity: /],
    [
      "not a database",
      (backup) => Deno.writeTextFile(backup, "x".repeat(500)),
      /file is not a SQLite database/,
    ],
  ];
  for (const [name, spoil, why] of cases) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      const { db, backup } = await changedSince(dir.path);
      await spoil(backup);
      const before = await fingerprint([db, `${db}-wal`, `${db}-shm`]);
      const names = await ls(dir.path);
      const res = await runCli(["restore", backup, db], { now: NOW });
      assert.equal(res.code, 1);
      assert.equal(res.stdout, "");
      assert.ok(
        res.stderr.includes(
          `error: Backup "${backup}" failed verification, so "${db}" was not touched`,
        ),
        res.stderr,
      );
      assert.match(res.stderr, why);
      assert.match(res.stderr, /hint: choose another backup/);
      assert.deepEqual(await fingerprint([db, `${db}-wal`, `${db}-shm`]), before);
      assert.deepEqual(await ls(dir.path), names);
    });
  }
});

Deno.test("restore into a folder that does not exist exits 1 naming it and creates nothing", async () => {
  await using dir = await tempDir();
  const { backup } = await changedSince(dir.path);
  const target = join(dir.path, "instance", "gym.db");
  const res = await runCli(["restore", backup, target], { now: NOW });
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.ok(
    res.stderr.includes(
      `error: Cannot restore into folder "${join(dir.path, "instance")}": no such file or folder`,
    ),
    res.stderr,
  );
  assert.match(res.stderr, /hint: create the folder first/);
  assert.equal((await ls(dir.path)).includes("instance"), false);
});

Deno.test("restore creates a missing database, moving a stale -wal of a deleted one aside", async (t) => {
  await t.step("created, in rollback-journal mode", async () => {
    await using dir = await tempDir();
    const { backup } = await changedSince(dir.path);
    const target = join(dir.path, "new.db");
    const res = await runCli(["restore", backup, target, "--json"], { now: NOW });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.created, true);
    assert.equal(out.preRestore, null);
    assert.equal(await sqlite3(target, "SELECT count(*) FROM members"), "344");
    assert.equal(await sqlite3(target, "PRAGMA journal_mode"), "delete");
  });
  await t.step("beside a stale -wal and -shm, which are moved aside and kept", async () => {
    await using dir = await tempDir();
    const { db, backup } = await changedSince(dir.path);
    const target = join(dir.path, "gone.db");
    const app = new DatabaseSync(db);
    app.exec("PRAGMA wal_autocheckpoint = 0");
    app.exec("DELETE FROM payments");
    await Deno.copyFile(`${db}-wal`, `${target}-wal`);
    await Deno.copyFile(`${db}-shm`, `${target}-shm`);
    app.close();
    const wal = await hashFile(`${target}-wal`, "sha256");
    const res = await runCli(["restore", backup, target, "--json"], { now: NOW });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    const moved = [
      [`${target}-wal`, `${target}-wal.stale-20251020_030010`],
      [`${target}-shm`, `${target}-shm.stale-20251020_030010`],
    ];
    assert.deepEqual(out.movedAside, moved);
    assert.ok(out.steps.includes(`moved ${moved[0][0]} aside as ${moved[0][1]}`), out.steps);
    assert.equal(await hashFile(moved[0][1], "sha256"), wal);
    // The old -wal was not replayed: the payments it deleted are all there.
    assert.equal(
      await sqlite3(target, "SELECT count(*) FROM payments"),
      String(rows(backup, "payments")),
    );
    assert.equal(await sqlite3(target, "PRAGMA integrity_check"), "ok");
  });
});

Deno.test("restore --dry-run says what it would do and changes nothing", async () => {
  await using dir = await tempDir();
  const { db, backup } = await changedSince(dir.path);
  const before = await fingerprint([db, `${db}-wal`, `${db}-shm`]);
  const names = await ls(dir.path);
  const res = await runCli(["restore", backup, db, "--dry-run"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    "Dry run: nothing was changed. litekeep restore would:\n" +
      `  - verify ${backup}: checksum ok, integrity_check ok\n` +
      `  - keep the current database as ${db}.pre-restore-20251020_030010\n` +
      `  - restore through SQLite into ${db} (journal mode wal kept)\n`,
  );
  assert.deepEqual(await fingerprint([db, `${db}-wal`, `${db}-shm`]), before);
  assert.deepEqual(await ls(dir.path), names);
});

Deno.test("restore exits 75 while a writer holds the database past --busy-timeout", async (t) => {
  for (const wal of [true, false]) {
    await t.step(
      wal ? "WAL, a writer" : "rollback journal, a reader in a transaction",
      async () => {
        await using dir = await tempDir();
        const { db, backup } = await changedSince(dir.path, { wal });
        const app = new DatabaseSync(db);
        if (wal) {
          app.exec("BEGIN IMMEDIATE");
          app.exec("INSERT INTO members (name, joined_at) VALUES ('pending', '2025-10-20')");
        } else {
          app.exec("BEGIN");
          app.prepare("SELECT count(*) FROM members").get();
        }
        const res = await runCli(["restore", backup, db, "--busy-timeout", "200"], { now: NOW });
        app.exec(wal ? "COMMIT" : "ROLLBACK");
        app.close();
        assert.equal(res.code, 75, res.stderr);
        assert.equal(res.stdout, "");
        assert.match(res.stderr, /error: Cannot restore into ".*gym\.db": the database is locked/);
        assert.match(
          res.stderr,
          wal
            ? /hint: a writer held it for longer than --busy-timeout \(200 ms\)/
            : /hint: another connection \(a reader or a writer\) held it for longer than --busy-timeout \(200 ms\)/,
        );
        assert.equal(await sqlite3(db, "SELECT count(*) FROM members"), wal ? "246" : "245");
        assert.ok(!(await ls(dir.path)).some((n) => n.includes("pre-restore")));
      },
    );
  }
});

Deno.test("restoreDatabase() keeps every pre-restore copy, never over another", async () => {
  await using dir = await tempDir();
  const { db, backup } = await changedSince(dir.path);
  const first = await restoreDatabase({ backup, db, now: NOW, busyTimeoutMs: 1000 });
  const second = await restoreDatabase({ backup, db, now: NOW, busyTimeoutMs: 1000 });
  assert.equal(first.preRestore, `${db}.pre-restore-20251020_030010`);
  assert.equal(second.preRestore, `${db}.pre-restore-20251020_030010_2`);
  assert.equal(await sqlite3(first.preRestore!, "SELECT count(*) FROM members"), "245");
  assert.equal(await sqlite3(second.preRestore!, "SELECT count(*) FROM members"), "344");
});

Deno.test("restoreDatabase() restores a backup of another page size into a WAL database", async () => {
  await using dir = await tempDir();
  const old = join(dir.path, "old.db");
  makeDb(old, { payments: 200 });
  const conn = new DatabaseSync(old);
  conn.exec("PRAGMA journal_mode = DELETE; PRAGMA page_size = 8192; VACUUM");
  conn.close();
  const { file } = await backupDatabase({ db: old, now: NOW });
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 50 });
  const result = await restoreDatabase({ backup: file, db, now: NOW, busyTimeoutMs: 1000 });
  assert.equal(result.journalMode, "wal");
  assert.equal(await sqlite3(db, "PRAGMA page_size"), "8192");
  assert.equal(await sqlite3(db, "PRAGMA journal_mode"), "wal");
  assert.equal(await sqlite3(db, "SELECT count(*) FROM payments"), "200");
  assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
});

Deno.test("restoreDatabase() restores a WAL-mode backup of another tool without touching it", async () => {
  await using dir = await tempDir();
  const backups = join(dir.path, "legacy");
  await Deno.mkdir(backups);
  const backup = join(backups, "gym_backup_20250101_000000.db");
  makeDb(backup, { payments: 300 });
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 10 });
  const result = await restoreDatabase({ backup, db, now: NOW, busyTimeoutMs: 1000 });
  assert.match(result.warnings.join(), /WAL mode/);
  assert.equal(await sqlite3(db, "SELECT count(*) FROM payments"), "300");
  assert.deepEqual(await ls(backups), ["gym_backup_20250101_000000.db"]);
});

Deno.test("restore restores the backup alone when a foreign -wal lies beside it", async () => {
  await using dir = await tempDir();
  const { db, backup } = await changedSince(dir.path);
  await foreignWal(backup);
  const res = await runCli(["restore", backup, db], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(await sqlite3(db, "SELECT count(*) FROM members"), "344");
  assert.equal(
    await sqlite3(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'injected'"),
    "0",
  );
  assert.equal(await sqlite3(db, "PRAGMA journal_mode"), "wal");
  // Nothing was created beside the backup.
  assert.deepEqual(
    await ls(dir.path + "/backups"),
    [
      ".litekeep-sets.json",
      ".litekeep.lock",
      backup.split("/").pop()!,
      `${backup.split("/").pop()!}-wal`,
      `${backup.split("/").pop()!}.sha256`,
    ].sort(),
  );
});

Deno.test("restore fails with a plain message for each error class", async (t) => {
  await using dir = await tempDir();
  const { db, backup } = await changedSince(dir.path);
  const missing = join(dir.path, "backups", "gym_backup_20200101_000000.db");
  const cases: Array<[string, string[], number, RegExp]> = [
    ["no backup", [], 2, /error: restore: no backup given\n.*hint: litekeep restore BACKUP/],
    ["no database", [backup], 2, /error: restore: no database given\n.*hint: name it/],
    ["the same file", [db, db], 2, /error: restore: the backup ".*gym\.db" is the database itself/],
    [
      "missing backup",
      [missing, db],
      1,
      /error: Backup ".*gym_backup_20200101_000000\.db" failed verification, so ".*gym\.db" was not touched: Cannot open backup ".*": no such file/,
    ],
  ];
  for (const [name, args, code, pattern] of cases) {
    await t.step(name, async () => {
      const before = await ls(dir.path);
      const res = await runCli(["restore", ...args], { cwd: dir.path, now: NOW });
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
      assert.match(res.stderr, /hint: /);
      assert.deepEqual(await ls(dir.path), before);
    });
  }
});

Deno.test("restoreDatabase() loses no commit of a writer that keeps committing", async (t) => {
  for (const wal of [true, false]) {
    await t.step(wal ? "WAL" : "rollback journal", async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { wal, payments: 30_000, noteBytes: 100 });
      const conn = new DatabaseSync(db);
      conn.exec("CREATE TABLE ledger_w (id INTEGER PRIMARY KEY)");
      conn.close();
      // The backup has the writer's table, empty: after each restore the writer goes on.
      const { file: backup } = await backupDatabase({ db, now: new Date(2025, 9, 19, 3, 0, 5) });
      await using writer = await startLedgerWriter(db, dir.path, 400);
      const copies: string[] = [];
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 150));
        const result = await restoreDatabase({ backup, db, now: NOW, busyTimeoutMs: 20_000 });
        copies.push(result.preRestore!);
      }
      await new Promise((r) => setTimeout(r, 150));
      // Each commit the writer saw succeed is in the copy kept before the write that replaced
      // it, or in the database after the last one.
      await assertNoCommitLost(writer, [...copies, db]);
      assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
    });
  }
});

Deno.test("restore from a hard link of the database itself is refused, not a wait forever", async () => {
  await using dir = await tempDir();
  const { db } = await changedSince(dir.path, { wal: false });
  const link = join(dir.path, "backups", "gym_backup_20251020_000000.db");
  await Deno.link(db, link);
  const out = await new Deno.Command(Deno.execPath(), {
    args: cliCommand(["restore", link, db]),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.match(stderr, /error: restore: the backup ".*" is the database itself/);
  assert.ok(!(await ls(dir.path)).some((n) => n.includes("pre-restore")));
});

Deno.test("restore that must change the page size while the database is open exits 75 and leaves nothing", async () => {
  await using dir = await tempDir();
  const other = join(dir.path, "other.db");
  makeDb(other, { payments: 200 });
  const conn = new DatabaseSync(other);
  conn.exec("PRAGMA journal_mode = DELETE; PRAGMA page_size = 8192; VACUUM");
  conn.close();
  const { file } = await backupDatabase({ db: other, now: NOW });
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 50 });
  const reader = await startReader(db, dir.path);
  const names = await ls(dir.path);
  const res = await runCli(["restore", file, db, "--busy-timeout", "300"], { now: NOW });
  await reader.finish();
  assert.equal(res.code, 75, res.stderr);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /error: Cannot restore into ".*gym\.db": the new page size \(8192\)/);
  assert.match(res.stderr, /hint: stop the application, then run again/);
  assert.doesNotMatch(res.stderr, /internal error|at /);
  // Only the database's own files and the lock file (a harmless flock target) are there.
  const own = (n: string) => n !== "go" && !/-(shm|wal)$|\.litekeep\.lock$/.test(n);
  assert.deepEqual((await ls(dir.path)).filter(own), names.filter(own));
  assert.equal(await sqlite3(db, "PRAGMA page_size"), "4096");
  assert.equal(await sqlite3(db, "SELECT count(*) FROM payments"), "50");
});

Deno.test("restore onto a full disk leaves the database byte for byte as it was", async () => {
  await using dir = await tempDir();
  const small = join(dir.path, "small");
  await using mount = await mountTmpfs(small, 1024);
  if (!mount) return;
  const big = join(dir.path, "big.db");
  makeDb(big, { payments: 30_000, noteBytes: 100 });
  const { file } = await backupDatabase({ db: big, now: NOW });
  const db = join(small, "gym.db");
  makeDb(db, { wal: false, payments: 500 });
  const before = await hashFile(db, "sha256");
  const res = await runCli(["restore", file, db], { now: NOW });
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /no space left/);
  assert.match(
    res.stderr,
    /hint: free some space there; SQLite rolled the restore back; the database is as it was/,
  );
  assert.equal(await hashFile(db, "sha256"), before);
  assert.equal((await ls(small)).some((n) => n.endsWith("-journal")), false);
});

Deno.test("restoreDatabase() keeps the pre-restore copy with at most the database's permission bits", async (t) => {
  for (const mode of [0o600, 0o640]) {
    await t.step(`a ${mode.toString(8)} database`, async () => {
      await using dir = await tempDir();
      const { db, backup } = await changedSince(dir.path);
      await Deno.chmod(db, mode);
      const result = await restoreDatabase({ backup, db, now: NOW, busyTimeoutMs: 5000 });
      assert.equal((await Deno.stat(result.preRestore!)).mode! & 0o777, mode);
    });
  }
});
