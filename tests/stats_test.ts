import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { hashFile } from "../lib/backup_set/checksum.ts";
import { backupFolderStats, databaseStats, growthPerDay } from "../lib/backup_set/stats.ts";
import { fakeBackups, ls, makeDb, runCli, sqlite3, startWriter, tempDir } from "./_helpers.ts";

const NOW = new Date(2025, 9, 20, 3, 0, 10);

Deno.test("backupFolderStats() counts, sizes, oldest, newest and trend per database", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, ["20251001_030005"], { rows: 10 });
  await fakeBackups(dir.path, ["20251011_030005"], { rows: 2000 });
  await fakeBackups(dir.path, ["20251019_030005"], { rows: 4000, checksum: null });
  await fakeBackups(dir.path, ["20251018_120000"], { stem: "shop" });
  await Deno.writeTextFile(join(dir.path, "notes.txt"), "not a backup");
  const stats = await backupFolderStats(dir.path, NOW);
  assert.equal(stats.count, 4);
  assert.deepEqual(stats.sets.map((s) => [s.stem, s.count]), [["gym", 3], ["shop", 1]]);
  const gym = stats.sets[0];
  const sizes = await Promise.all(
    ["20251001_030005", "20251011_030005", "20251019_030005"].map(async (s) =>
      (await Deno.stat(join(dir.path, `gym_backup_${s}.db`))).size
    ),
  );
  assert.equal(gym.bytes, sizes[0] + sizes[1] + sizes[2]);
  assert.equal(gym.oldest.name, "gym_backup_20251001_030005.db");
  assert.equal(gym.newest.name, "gym_backup_20251019_030005.db");
  assert.equal(gym.newestAgeSeconds, 24 * 3600 + 5);
  assert.deepEqual(gym.trend, {
    firstBytes: sizes[0],
    lastBytes: sizes[2],
    changeBytes: sizes[2] - sizes[0],
    bytesPerDay: Math.round((sizes[2] - sizes[0]) / 18),
  });
  assert.deepEqual(gym.withoutSidecar, ["gym_backup_20251019_030005.db"]);
});

Deno.test("stats of a backup folder prints the summary and warns of missing sidecars", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, ["20251018_030005"]);
  await fakeBackups(dir.path, ["20251019_030005"], { checksum: null });
  const res = await runCli(["stats", dir.path], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^Backups in .*: 2, 16\.0 KiB\n {2}gym: 2 backups, 16\.0 KiB\n/);
  assert.match(
    res.stdout,
    /newest {2}gym_backup_20251019_030005\.db {2}2025-10-19 03:00:05, 1 d 0 h ago/,
  );
  assert.match(
    res.stderr,
    /warning: 1 backup\(s\) of "gym" have no checksum sidecar.*: gym_backup_20251019_030005\.db/,
  );
});

Deno.test("stats --max-age exits 1 when the newest backup is older, a cron monitor", async (t) => {
  const cases: Array<
    { name: string; stamps: string[]; maxAge: string; code: number; error?: RegExp }
  > = [
    { name: "fresh", stamps: ["20251019_030010"], maxAge: "26h", code: 0 },
    {
      name: "stale",
      stamps: ["20251019_010000"],
      maxAge: "26h",
      code: 1,
      error:
        /error: Backups in ".*" are stale: the newest backup of "gym" is 1 d 2 h old \(--max-age 26h\)/,
    },
    {
      name: "stale by days",
      stamps: ["20251017_030010"],
      maxAge: "2d",
      code: 1,
      error: /3 d 0 h old/,
    },
    {
      // An age from a name is whole seconds: "13 s", as list says, never "13.00 s".
      name: "stale by seconds",
      stamps: ["20251020_025957"],
      maxAge: "5s",
      code: 1,
      error: /the newest backup of "gym" is 13 s old \(--max-age 5s\)/,
    },
    {
      name: "no backups at all",
      stamps: [],
      maxAge: "1w",
      code: 1,
      error: /stale: there are no backups/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using dir = await tempDir();
      await fakeBackups(dir.path, c.stamps);
      const res = await runCli(["stats", dir.path, "--max-age", c.maxAge, "--quiet"], { now: NOW });
      assert.equal(res.code, c.code, res.stderr);
      assert.equal(res.stdout, "");
      if (c.error) assert.match(res.stderr, c.error);
      else assert.equal(res.stderr, "");
    });
  }
  await t.step("the age in the summary is whole seconds", async () => {
    await using dir = await tempDir();
    await fakeBackups(dir.path, ["20251020_025957"]);
    const res = await runCli(["stats", dir.path], { now: NOW });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /newest .* 2025-10-20 02:59:57, 13 s ago\n/);
  });
  await t.step("one database of two is stale", async () => {
    await using dir = await tempDir();
    await fakeBackups(dir.path, ["20251020_020000"], { stem: "gym" });
    await fakeBackups(dir.path, ["20251001_020000"], { stem: "shop" });
    const res = await runCli(["stats", dir.path, "--max-age", "90m", "--json"], { now: NOW });
    assert.equal(res.code, 1);
    const out = JSON.parse(res.stdout);
    assert.equal(out.ok, false);
    assert.deepEqual(out.stale, ["shop"]);
    assert.equal(out.maxAgeSeconds, 5400);
    // A failure carries its error, as every ok:false object does.
    assert.match(out.error.message, /are stale: the newest backup of "shop" is .* old/);
    assert.match(out.error.hint, /check that the backup cron job runs/);
    assert.equal(out.error.exitCode, 1);
  });
});

Deno.test("stats --max-age never calls a backup named in the future fresh", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, ["20251017_030010", "20300101_030000"]);
  const res = await runCli(["stats", dir.path, "--max-age", "26h", "--json"], { now: NOW });
  assert.equal(res.code, 1, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.deepEqual(out.stale, ["gym"]);
  assert.deepEqual(out.sets[0].future, ["gym_backup_20300101_030000.db"]);
  assert.equal(out.sets[0].newest.name, "gym_backup_20251017_030010.db");
  assert.match(res.stderr, /warning: 1 backup\(s\) of "gym" are named in the future/);
  assert.match(res.stderr, /the newest backup of "gym" is 3 d 0 h old/);
  const only = await tempDir();
  await fakeBackups(only.path, ["20300101_030000"]);
  const alone = await runCli(["stats", only.path, "--max-age", "26h"], { now: NOW });
  await only[Symbol.asyncDispose]();
  assert.equal(alone.code, 1, alone.stderr);
  assert.match(alone.stderr, /"gym" has no backup that is not named in the future/);
});

Deno.test("stats fails with a plain message for each error class", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  await Deno.writeTextFile(join(dir.path, "notes.db"), "x".repeat(200));
  const cases: Array<[string[], number, RegExp]> = [
    [["stats", join(dir.path, "nope")], 1, /error: Cannot read ".*nope": no such file or folder/],
    [
      ["stats", join(dir.path, "notes.db")],
      1,
      /error: Cannot open database ".*notes\.db": file is not a SQLite database/,
    ],
    [["stats", db, "--max-age", "1d"], 2, /stats: --max-age needs a backup folder/],
    [
      ["stats", dir.path, "--max-age", "26"],
      2,
      /--max-age must be a duration such as 90m, 26h, 2d or 1w, not "26"/,
    ],
    [["stats"], 2, /stats: no backup folder or database given/],
  ];
  for (const [args, code, pattern] of cases) {
    await t.step(args.slice(2).join(" ") || args[1] || "(nothing)", async () => {
      const res = await runCli(args, { cwd: dir.path, now: NOW });
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
      assert.match(res.stderr, /hint: /);
    });
  }
});

/** Bytes (hashed) and mtimes of the files given, or "-" for one that does not exist. */
async function fingerprint(paths: string[]): Promise<string[]> {
  return await Promise.all(paths.map(async (p) => {
    try {
      const info = await Deno.stat(p);
      return `${p} ${await hashFile(p, "sha256")} ${info.mtime?.getTime()}`;
    } catch {
      return `${p} -`;
    }
  }));
}

Deno.test("stats of a database is strictly read-only", async (t) => {
  const cases: Array<{ name: string; wal: boolean; app: boolean; crash?: boolean }> = [
    { name: "WAL, the application running", wal: true, app: true },
    { name: "WAL, fully checkpointed, no -wal or -shm", wal: true, app: false },
    { name: "WAL, a -wal but no -shm (a crash image)", wal: true, app: false, crash: true },
    { name: "rollback journal", wal: false, app: false },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { wal: c.wal, payments: 500 });
      let app: DatabaseSync | undefined;
      if (c.app || c.crash) {
        app = new DatabaseSync(db);
        app.exec("PRAGMA wal_autocheckpoint = 0");
        app.exec("INSERT INTO members (name, joined_at) VALUES ('only in wal', '2025-10-19')");
      }
      if (c.crash) {
        // What a power cut leaves: the database and its -wal, no shared-memory index.
        const image = join(dir.path, "image");
        await Deno.mkdir(image);
        await Deno.copyFile(db, join(image, "gym.db"));
        await Deno.copyFile(`${db}-wal`, join(image, "gym.db-wal"));
        app!.close();
        app = undefined;
        await Deno.remove(`${db}-shm`).catch(() => {});
        await Deno.rename(join(image, "gym.db"), db);
        await Deno.rename(join(image, "gym.db-wal"), `${db}-wal`);
        await Deno.remove(image);
      }
      const before = await fingerprint([db, `${db}-wal`]);
      const names = await ls(dir.path);
      // The mtime resolution of some file systems is coarse: let a change show if there is one.
      await new Promise((r) => setTimeout(r, 20));
      const res = await runCli(["stats", db, "--json"]);
      const after = await fingerprint([db, `${db}-wal`]);
      const namesAfter = await ls(dir.path);
      app?.close();
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout);
      assert.equal(out.journalMode, c.wal ? "wal" : "delete");
      const members = out.tables.find((x: { name: string }) => x.name === "members").rows;
      assert.equal(members, c.app || c.crash ? 345 : 344);
      assert.deepEqual(after, before);
      assert.deepEqual(namesAfter, names);
    });
  }
});

Deno.test("databaseStats() counts WAL frames as wal_checkpoint does", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 500 });
  const app = new DatabaseSync(db);
  try {
    app.exec("PRAGMA wal_autocheckpoint = 0");
    for (let i = 0; i < 20; i++) app.exec(`UPDATE members SET status = 'x${i}' WHERE id < 50`);
    const many = await databaseStats(db, 1000);
    const walBytes = (await Deno.stat(`${db}-wal`)).size;
    assert.equal(many.wal?.bytes, walBytes);
    assert.equal(many.wal?.frames, (walBytes - 32) / (4096 + 24));
    assert.deepEqual(checkpoint(app, "RESTART"), [0, many.wal?.frames, many.wal?.frames]);
    // After a restart the next commit writes from the start again: the old frames that still
    // fill the file have stale salts and must not count.
    app.exec("UPDATE members SET status = 'y' WHERE id = 1");
    const few = await databaseStats(db, 1000);
    assert.equal(few.wal?.bytes, walBytes);
    assert.ok(few.wal!.frames > 0 && few.wal!.frames < many.wal!.frames);
    assert.equal(checkpoint(app, "PASSIVE")[1], few.wal?.frames);
  } finally {
    app.close();
  }
});

function checkpoint(db: DatabaseSync, mode: string): number[] {
  return Object.values(db.prepare(`PRAGMA wal_checkpoint(${mode})`).get()!).map(Number);
}

Deno.test("stats of a database reads while another process writes", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 500 });
  await using writer = await startWriter(db, dir.path, 200);
  const res = await runCli(["stats", db, "--json"]);
  const report = await writer.stop();
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.journalMode, "wal");
  assert.equal(out.pageSize, 4096);
  assert.ok(out.wal.frames > 0);
  assert.equal(report.busy, 0);
  assert.equal(await sqlite3(db, "PRAGMA integrity_check"), "ok");
});

Deno.test("backup --stats-only prints the backup folder's statistics and backs nothing up", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  await fakeBackups(join(dir.path, "backups"), ["20251019_030005"]);
  const res = await runCli(["backup", db, "--stats-only"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^Backups in .*backups: 1, 8\.0 KiB\n/);
  assert.deepEqual(await ls(join(dir.path, "backups")), [
    "gym_backup_20251019_030005.db",
    "gym_backup_20251019_030005.db.sha256",
  ]);
});

Deno.test("growthPerDay() extrapolates only over a span long enough to mean something", async (t) => {
  const h = 3600_000;
  const cases: Array<[string, number, number, number | null]> = [
    ["two backups two minutes apart", 2 * 60_000, 2, null],
    ["two backups 23 h apart", 23 * h, 2, null],
    ["two backups 24 h apart", 24 * h, 2, 1000],
    ["three backups over 12 h", 12 * h, 3, 2000],
    ["three backups over 11 h", 11 * h, 3, null],
    ["two backups over 12 h", 12 * h, 2, null],
    ["one backup", 0, 1, null],
  ];
  for (const [name, spanMs, count, expected] of cases) {
    await t.step(name, () => assert.equal(growthPerDay(1000, 2000, spanMs, count), expected));
  }
});

Deno.test("stats of two backups minutes apart says there is not enough history for a rate", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, ["20251019_030005"], { rows: 10 });
  await fakeBackups(dir.path, ["20251019_030205"], { rows: 4000 });
  const res = await runCli(["stats", dir.path], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /size {4}.* -> .* \(\+.*, not enough history for a daily rate\)\n/);
  assert.doesNotMatch(res.stdout, /\/day/);
  const json = JSON.parse((await runCli(["stats", dir.path, "--json"], { now: NOW })).stdout);
  assert.equal(json.sets[0].trend.bytesPerDay, null);
  assert.ok(json.sets[0].trend.changeBytes > 0);
});
