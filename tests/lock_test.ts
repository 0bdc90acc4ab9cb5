import assert from "node:assert/strict";
import { join } from "node:path";
import { dbLockPath, dirLockPath } from "../lib/files/lock.ts";
import {
  cliCommand,
  have,
  holdLock,
  IN_CI,
  makeDb,
  mountTmpfs,
  runCli,
  smallDb,
  tempDir,
} from "./_helpers.ts";

const NOBODY = 65534;

/** True when this test may run things as another user: root, and setpriv installed. */
async function canSwitchUser(): Promise<boolean> {
  if (Deno.uid() !== 0) {
    if (IN_CI) throw new Error("CI must run the lock tests as root, to act as another user");
    return false;
  }
  return await have("setpriv");
}

/** Runs the real CLI as the user `nobody`, with a Deno cache of its own under `home`. */
async function spawnAsNobody(
  args: string[],
  home: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "env",
      `HOME=${home}`,
      `DENO_DIR=${join(home, "deno")}`,
      Deno.execPath(),
      ...cliCommand(args),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** A folder owned by `nobody`, inside a tree it can traverse. */
async function nobodyFolder(path: string): Promise<string> {
  await Deno.mkdir(path, { recursive: true });
  await Deno.chown(path, NOBODY, NOBODY);
  return path;
}

Deno.test("acquireLock() refuses a lock file that is a symlink and leaves its target untouched", async (t) => {
  for (const which of ["backup folder", "database"] as const) {
    await t.step(which, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { payments: 20 });
      const backups = join(dir.path, "backups");
      await Deno.mkdir(backups);
      const victim = join(dir.path, "victim");
      await Deno.writeTextFile(victim, "precious\n");
      await Deno.chmod(victim, 0o600);
      const lock = which === "database" ? dbLockPath(db) : dirLockPath(backups);
      await Deno.symlink(victim, lock);

      const r = await runCli(["backup", db, "--backup-dir", backups]);

      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, new RegExp(`"${lock.replaceAll(".", "\\.")}".*symbolic link`));
      assert.match(r.stderr, /hint: /);
      assert.equal(await Deno.readTextFile(victim), "precious\n");
      assert.ok((await Deno.lstat(lock)).isSymlink, "the symlink itself is left for the user");
    });
  }
});

Deno.test("acquireLock() refuses a FIFO or a folder in place of the lock file, without hanging", async (t) => {
  await t.step("FIFO", async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "gym.db");
    makeDb(db, { payments: 20 });
    const out = await new Deno.Command("mkfifo", { args: [dbLockPath(db)] }).output();
    assert.ok(out.success, "mkfifo");
    const r = await runCli(["backup", db]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: Cannot use lock file ".*gym\.db\.litekeep\.lock": it is a FIFO/);
    assert.match(r.stderr, /hint: /);
  });
  await t.step("folder", async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "gym.db");
    makeDb(db, { payments: 20 });
    await Deno.mkdir(dbLockPath(db));
    const r = await runCli(["backup", db]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: Cannot use lock file ".*": it is a folder/);
  });
});

Deno.test("acquireLock() refuses a lock file with a second hard link", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 20 });
  const victim = join(dir.path, "victim");
  await Deno.writeTextFile(victim, "precious\n");
  await Deno.link(victim, dbLockPath(db));
  const r = await runCli(["backup", db]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /hard link/);
  assert.equal(await Deno.readTextFile(victim), "precious\n");
});

Deno.test("acquireLock() takes a lock file another user left, read-only, and still excludes", async (t) => {
  if (!await canSwitchUser()) return;
  await using dir = await tempDir();
  await Deno.chmod(dir.path, 0o755);
  const home = await nobodyFolder(join(dir.path, "home"));
  const app = await nobodyFolder(join(dir.path, "app"));
  const db = join(app, "gym.db");
  makeDb(db, { payments: 20, wal: false });
  await Deno.chown(db, NOBODY, NOBODY);
  const backups = await nobodyFolder(join(app, "backups"));
  // One run as root ("sudo litekeep backup") leaves root-owned 0644 lock files.
  const asRoot = await runCli(["backup", db]);
  assert.equal(asRoot.code, 0, asRoot.stderr);
  for (const lock of [dbLockPath(db), dirLockPath(backups)]) {
    const info = await Deno.stat(lock);
    assert.equal(info.uid, 0);
    assert.equal(info.mode! & 0o777, 0o644);
  }

  await t.step("the app user's cron still backs up", async () => {
    const r = await spawnAsNobody(["backup", db], home);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Backup written/);
  });
  await t.step("and a run that holds the lock still keeps it out (exit 75)", async () => {
    await using _held = await holdLock(dbLockPath(db));
    const r = await spawnAsNobody(["backup", db], home);
    assert.equal(r.code, 75, r.stderr);
    assert.match(r.stderr, /Another litekeep run is working on database/);
  });
});

Deno.test("backupDatabase() of a database in a folder it cannot write locks the backup folder only", async (t) => {
  await t.step("a folder this user cannot write (EACCES)", async () => {
    if (!await canSwitchUser()) return;
    await using dir = await tempDir();
    await Deno.chmod(dir.path, 0o755);
    const home = await nobodyFolder(join(dir.path, "home"));
    // Root's database in root's folder, readable by all; nobody backs it up into its own folder.
    const db = join(dir.path, "gym.db");
    makeDb(db, { payments: 20, wal: false });
    await Deno.chmod(db, 0o644);
    const backups = await nobodyFolder(join(dir.path, "backups"));
    const r = await spawnAsNobody(["backup", db, "--backup-dir", backups], home);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*locked the backup folder only/);
    assert.match(r.stdout, /Backup written/);
  });
  await t.step("a read-only file system (EROFS)", async () => {
    await using dir = await tempDir();
    const media = join(dir.path, "media");
    const mounted = await mountTmpfs(media, 4096);
    if (mounted === undefined) return;
    await using _mounted = mounted;
    const db = join(media, "gym.db");
    smallDb(db, 200);
    const ro = await new Deno.Command("mount", {
      args: ["-o", "remount,ro", media],
      stderr: "piped",
    }).output();
    assert.ok(ro.success, new TextDecoder().decode(ro.stderr));
    const backups = join(dir.path, "backups");

    const r = await runCli(["backup", db, "--backup-dir", backups, "--json"]);

    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*read-only file system.*locked the backup folder only/);
    const result = JSON.parse(r.stdout);
    assert.equal(result.warnings.length, 1);
    assert.equal(result.tables[0].rows, 200);
  });
  await t.step("a read-only file system with a lock file from before", async () => {
    await using dir = await tempDir();
    const media = join(dir.path, "media");
    const mounted = await mountTmpfs(media, 4096);
    if (mounted === undefined) return;
    await using _mounted = mounted;
    const db = join(media, "gym.db");
    smallDb(db, 200);
    const backups = join(dir.path, "backups");
    assert.equal((await runCli(["backup", db, "--backup-dir", backups])).code, 0);
    const ro = await new Deno.Command("mount", { args: ["-o", "remount,ro", media] }).output();
    assert.ok(ro.success);

    const r = await runCli(["backup", db, "--backup-dir", backups, "--json"]);

    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).warnings, [], "its lock file is locked read-only");
  });
});
