import assert from "node:assert/strict";
import { join } from "node:path";
import {
  backupName,
  dbStem,
  freeBackupPath,
  listBackups,
  parseBackupName,
  SETS_MANIFEST,
} from "../lib/backup_set/names.ts";
import { cleanTemps, isTempName, removeTempDb, tempPathFor } from "../lib/files/atomic.ts";
import { fakeBackups, ls, runCli, smallDb, tempDir } from "./_helpers.ts";

Deno.test("backupName() and parseBackupName() agree, in local time", () => {
  const at = new Date(2025, 9, 19, 15, 55, 38);
  assert.equal(backupName("gym_system", at), "gym_system_backup_20251019_155538.db");
  assert.equal(backupName("gym_system", at, 2), "gym_system_backup_20251019_155538_2.db");
  assert.deepEqual(parseBackupName("gym_system_backup_20251019_155538_2.db"), {
    stem: "gym_system",
    time: at,
    seq: 2,
  });
});

Deno.test("parseBackupName() rejects names that are not backups", async (t) => {
  for (
    const name of [
      "gym_system.db",
      "gym_backup_20251019_155538.db.sha256",
      "gym_backup_20251319_155538.db",
      "gym_backup_20250230_120000.db",
      "gym_backup_2025101_155538.db",
      ".litekeep-tmp-1-a-gym_backup_20251019_155538.db",
      "notes_backup_20251019_155538.txt",
    ]
  ) {
    await t.step(name, () => assert.equal(parseBackupName(name), undefined));
  }
});

Deno.test("dbStem() drops only the last extension", () => {
  assert.equal(dbStem("instance/gym_system.db"), "gym_system");
  assert.equal(dbStem("/x/app.sqlite3"), "app");
  assert.equal(dbStem("/x/archive.2024.db"), "archive.2024");
  assert.equal(dbStem("/x/noext"), "noext");
  assert.equal(dbStem("/x/.hidden"), ".hidden");
});

Deno.test("listBackups() lists only backups, oldest first, ignoring temps and others", async () => {
  await using dir = await tempDir();
  for (
    const name of [
      "gym_backup_20251019_155538_2.db",
      "gym_backup_20251019_155538.db",
      "gym_backup_20240101_000000.db",
      "gym_backup_20251019_155538.db.sha256",
      "other_backup_20250101_000000.db",
      "gym.db",
      "README.txt",
      ".litekeep-tmp-1-x-gym.db",
    ]
  ) {
    await Deno.writeTextFile(join(dir.path, name), "x");
  }
  assert.deepEqual((await listBackups(dir.path, "gym")).map((b) => b.name), [
    "gym_backup_20240101_000000.db",
    "gym_backup_20251019_155538.db",
    "gym_backup_20251019_155538_2.db",
  ]);
  assert.equal((await listBackups(dir.path)).length, 4);
});

Deno.test("freeBackupPath() skips a second whose name or sidecar is taken", async () => {
  await using dir = await tempDir();
  const at = new Date(2025, 9, 19, 15, 55, 38);
  await Deno.writeTextFile(join(dir.path, "gym_backup_20251019_155538.db"), "x");
  await Deno.writeTextFile(join(dir.path, "gym_backup_20251019_155538_2.db.md5"), "x");
  assert.equal(
    await freeBackupPath(dir.path, "gym", at),
    join(dir.path, "gym_backup_20251019_155538_3.db"),
  );
});

Deno.test("cleanTemps() removes only temporary files, and only old enough ones", async () => {
  await using dir = await tempDir();
  const named = tempPathFor(dir.path, "gym.db");
  assert.ok(isTempName(named.split("/").pop()!));
  await removeTempDb(named);
  // A temp without an "alive" marker (an older litekeep's): only its age tells it is a leftover.
  // (A temp this process has in flight is never removed; a marked one goes when its run dies.)
  const temp = join(dir.path, ".litekeep-tmp-1234-abc-gym.db");
  await Deno.writeTextFile(temp, "x");
  await Deno.writeTextFile(`${temp}-journal`, "x");
  await Deno.writeTextFile(join(dir.path, "gym_backup_20251019_155538.db"), "x");
  const now = new Date();
  assert.deepEqual(await cleanTemps(dir.path, now, 3_600_000), []);
  const removed = await cleanTemps(dir.path, new Date(now.getTime() + 7_200_000), 3_600_000);
  assert.deepEqual(removed.sort(), [temp, `${temp}-journal`]);
});

Deno.test("backup refuses a second database with the same file name in one backup folder", async () => {
  await using dir = await tempDir();
  const site1 = join(dir.path, "site1", "app.db");
  const site2 = join(dir.path, "site2", "app.db");
  await Deno.mkdir(join(dir.path, "site1"));
  await Deno.mkdir(join(dir.path, "site2"));
  smallDb(site1);
  smallDb(site2);
  const backups = join(dir.path, "backups");
  for (const day of [1, 2]) {
    const res = await runCli(["backup", site1, "-d", backups], { now: new Date(2025, 9, day) });
    assert.equal(res.code, 0, res.stderr);
  }
  const before = await ls(backups);
  const res = await runCli(
    ["backup", site2, "-d", backups, "--prune", "--keep-last", "2"],
    { now: new Date(2025, 9, 3) },
  );
  assert.equal(res.code, 2, res.stderr);
  assert.equal(res.stdout, "");
  assert.ok(res.stderr.includes(`"${site1}"`), res.stderr);
  assert.ok(res.stderr.includes(`"${site2}"`), res.stderr);
  assert.ok(res.stderr.includes(`"${backups}"`), res.stderr);
  assert.match(res.stderr, /hint: .*--backup-dir/);
  assert.match(res.stderr, /\.litekeep-sets\.json/);
  // Nothing written, nothing pruned: site1's backups are intact.
  assert.deepEqual(await ls(backups), before);
  assert.equal(before.filter((n) => n.endsWith(".db")).length, 2);
});

Deno.test("backup records which database a backup set belongs to", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const backups = join(dir.path, "backups");
  await t.step("an old set without a manifest is recorded on its next backup", async () => {
    await fakeBackups(backups, ["20250101_030000"], { stem: "app" });
    const res = await runCli(["backup", db, "-d", backups], { now: new Date(2025, 9, 1) });
    assert.equal(res.code, 0, res.stderr);
    const manifest = JSON.parse(await Deno.readTextFile(join(backups, SETS_MANIFEST)));
    assert.deepEqual(manifest.sets, { app: await Deno.realPath(db) });
  });
  await t.step("the same database through a symlink is the same database", async () => {
    await Deno.mkdir(join(dir.path, "via"));
    await Deno.symlink(db, join(dir.path, "via", "app.db"));
    const res = await runCli(["backup", join(dir.path, "via", "app.db"), "-d", backups], {
      now: new Date(2025, 9, 2),
    });
    assert.equal(res.code, 0, res.stderr);
  });
  await t.step("a moved database backs up again once its entry is deleted", async () => {
    await Deno.mkdir(join(dir.path, "moved"));
    const moved = join(dir.path, "moved", "app.db");
    await Deno.rename(db, moved);
    const refused = await runCli(["backup", moved, "-d", backups], { now: new Date(2025, 9, 3) });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /moved.*delete the "app" entry|delete the "app" entry/);
    await Deno.remove(join(backups, SETS_MANIFEST));
    const res = await runCli(["backup", moved, "-d", backups], { now: new Date(2025, 9, 3) });
    assert.equal(res.code, 0, res.stderr);
  });
  await t.step("prune of the folder still works per stem", async () => {
    const res = await runCli(["prune", backups, "--keep-last", "1"], { now: new Date(2025, 9, 4) });
    assert.equal(res.code, 0, res.stderr);
    assert.ok((await ls(backups)).includes(SETS_MANIFEST));
  });
});
