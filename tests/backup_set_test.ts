import assert from "node:assert/strict";
import { join } from "node:path";
import {
  backupName,
  dbStem,
  freeBackupPath,
  listBackups,
  parseBackupName,
} from "../lib/backup_set.ts";
import { cleanTemps, isTempName, removeTempDb, tempPathFor } from "../lib/atomic.ts";
import { tempDir } from "./_helpers.ts";

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
