import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cleanTemps,
  removeTempDb,
  removeTempsInFlightSync,
  STALE_TEMP_MS,
  TEMP_PREFIX,
  tempPathFor,
} from "../lib/files/atomic.ts";
import { backupDatabase } from "../lib/backup_set/backup.ts";
import { restoreDatabase } from "../lib/backup_set/restore.ts";
import { fakeSsh, ls, makeDb, spawnCli, tempDir, tempWriter } from "./_helpers.ts";

Deno.test("cleanTemps() removes a killed run's temps however fresh, and keeps a live run's however old", async () => {
  await using dir = await tempDir();
  await using killed = await tempWriter(dir.path, "gym.db");
  await killed.kill();
  await using live = await tempWriter(dir.path, "gym.db");
  const long = new Date(2020, 0, 1);
  for (const name of live.names) await Deno.utime(join(dir.path, name), long, long);
  // Temps without a marker (an older litekeep's): the age rule decides, as before.
  const [fresh, old] = [`${TEMP_PREFIX}1-zz-gym.db`, `${TEMP_PREFIX}2-yy-gym.db`];
  for (const name of [fresh, old]) await Deno.writeTextFile(join(dir.path, name), "partial");
  await Deno.utime(join(dir.path, old), long, long);

  const removed = await cleanTemps(dir.path, new Date(), STALE_TEMP_MS);

  assert.deepEqual(removed.sort(), [...killed.names, old].map((n) => join(dir.path, n)).sort());
  const left = await ls(dir.path);
  assert.deepEqual(left.filter((n) => !n.endsWith(".alive")), [...live.names, fresh].sort());
  assert.equal(left.filter((n) => n.endsWith(".alive")).length, 1, "the live run's marker only");
});

Deno.test("cleanTemps() never removes a temp this process has in flight", async () => {
  await using dir = await tempDir();
  const temp = tempPathFor(dir.path, "gym_backup.db");
  try {
    await Deno.writeTextFile(temp, "in flight");
    const removed = await cleanTemps(dir.path, new Date(), 0, () => true);
    assert.deepEqual(removed, []);
  } finally {
    await removeTempDb(temp);
  }
});

Deno.test("removeTempsInFlightSync() removes the temps in flight and their side files only", async () => {
  await using dir = await tempDir();
  const temp = tempPathFor(dir.path, "gym.db");
  const done = tempPathFor(dir.path, "other.db");
  for (const path of [temp, `${temp}-journal`, `${temp}.raw`, `${temp}.raw-wal`, done]) {
    await Deno.writeTextFile(path, "x");
  }
  await removeTempDb(done);
  await Deno.writeTextFile(join(dir.path, "gym.db"), "the real one");

  removeTempsInFlightSync();

  assert.deepEqual(await ls(dir.path), ["gym.db"]);
});

Deno.test("cleanTemps() rids backup, restore and pull of dead runs' temps, and keeps live ones", async (t) => {
  const NOW = new Date(2025, 9, 19, 15, 55, 38);
  /** A killed run's temp of `kind` (with a -journal) and a live run's, in `folder`. */
  async function leftovers(folder: string, kind: string) {
    const killed = await tempWriter(folder, kind);
    await killed.kill();
    const live = await tempWriter(folder, "other.db");
    return { gone: killed.names, kept: live.names, [Symbol.asyncDispose]: live.kill };
  }

  await t.step("backup, in the backup folder (a pull's temp there, not a backup's)", async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "gym.db");
    makeDb(db, { payments: 20 });
    const backups = join(dir.path, "backups");
    await Deno.mkdir(backups);
    await using temps = await leftovers(backups, "gym.db");
    const result = await backupDatabase({ db, backupDir: backups, now: NOW });
    assert.deepEqual(result.cleaned.sort(), temps.gone.sort());
    assert.deepEqual(await tempsIn(backups), temps.kept);
  });
  await t.step("restore, beside the database (its own pre-restore temp)", async () => {
    await using dir = await tempDir();
    const db = join(dir.path, "gym.db");
    makeDb(db, { payments: 20 });
    const { file } = await backupDatabase({ db, now: NOW });
    await using temps = await leftovers(dir.path, "gym.db.pre-restore-20251019_155500");
    const result = await restoreDatabase({ backup: file, db, now: NOW, busyTimeoutMs: 5000 });
    assert.deepEqual(result.cleaned.sort(), temps.gone.sort());
    assert.deepEqual(await tempsIn(dir.path), temps.kept);
  });
  await t.step("pull, in the target folder, even when the pull then fails", async () => {
    await using dir = await tempDir();
    const path = await fakeSsh(
      join(dir.path, "bin"),
      'echo "ssh: connect to host pi port 22: Connection refused" >&2; exit 255',
    );
    const local = join(dir.path, "local");
    await Deno.mkdir(local);
    await using temps = await leftovers(local, "gym.db");
    const r = await spawnCli(["pull", "pi:/srv/gym.db", join(local, "gym.db")], {
      env: { PATH: path },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(await tempsIn(local), temps.kept);
  });
});

/** The temps in `folder`, markers left out, sorted. */
async function tempsIn(folder: string): Promise<string[]> {
  return (await ls(folder)).filter((n) => n.startsWith(TEMP_PREFIX) && !n.endsWith(".alive"));
}

Deno.test("cleanTemps() does not hang on a FIFO planted as a marker", async () => {
  await using dir = await tempDir();
  const marker = join(dir.path, `${TEMP_PREFIX}1-zz.alive`);
  const out = await new Deno.Command("mkfifo", { args: [marker] }).output();
  assert.ok(out.success, "mkfifo");
  const temp = join(dir.path, `${TEMP_PREFIX}1-zz-gym.db`);
  await Deno.writeTextFile(temp, "partial");
  // Without a usable marker the age rule decides: this fresh temp stays.
  assert.deepEqual(await cleanTemps(dir.path, new Date(), STALE_TEMP_MS), []);
  assert.deepEqual(await ls(dir.path), [`${TEMP_PREFIX}1-zz-gym.db`, `${TEMP_PREFIX}1-zz.alive`]);
});
