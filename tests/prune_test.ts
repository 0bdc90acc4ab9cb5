import assert from "node:assert/strict";
import { join } from "node:path";
import { dirLockPath } from "../lib/files/lock.ts";
import { hashFile, sidecarLine } from "../lib/backup_set/checksum.ts";
import { pruneBackups } from "../lib/backup_set/prune.ts";
import { validatePolicy } from "../lib/backup_set/retention.ts";
import {
  corruptIndexPage,
  fakeBackups,
  holdLock,
  ls,
  makeDb,
  runCli,
  tamper,
  tempDir,
} from "./_helpers.ts";

const NOW = new Date(2025, 9, 20, 3, 0, 10);

const DAYS = ["20251015_030005", "20251016_030005", "20251017_030005", "20251018_030005"];

Deno.test("pruneBackups() never deletes the newest backup that passes its checksum", async (t) => {
  const cases = [
    { name: "every backup is too old", policy: { days: 1 }, kept: [DAYS[2]] },
    { name: "the bad newest is kept by the rule", policy: { last: 1 }, kept: [DAYS[2], DAYS[3]] },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using dir = await tempDir();
      const paths = await fakeBackups(dir.path, DAYS);
      await tamper(paths[3]);
      const later = new Date(2025, 10, 30);
      const result = await pruneBackups({
        dir: dir.path,
        policy: validatePolicy(c.policy),
        now: later,
      });
      assert.deepEqual(result.newestVerified, [`gym_backup_${DAYS[2]}.db`]);
      assert.deepEqual(
        result.backups.filter((b) => b.keep).map((b) => b.name).sort(),
        c.kept.map((s) => `gym_backup_${s}.db`),
      );
      assert.deepEqual(result.backups[1].reasons, ["newest-verified"]);
      assert.match(result.warnings.join(), /gym_backup_20251018_030005\.db: sha256 mismatch/);
      const left = await ls(dir.path);
      for (const s of DAYS) {
        assert.equal(left.includes(`gym_backup_${s}.db`), c.kept.includes(s), s);
      }
    });
  }
});

Deno.test("pruneBackups() lets quick_check decide for a backup without a sidecar", async (t) => {
  await t.step("a sound one is kept", async () => {
    await using dir = await tempDir();
    const paths = await fakeBackups(dir.path, DAYS);
    await Deno.remove(`${paths[3]}.sha256`);
    const result = await pruneBackups({
      dir: dir.path,
      policy: validatePolicy({ days: 1 }),
      now: NOW,
    });
    assert.deepEqual(result.newestVerified, [`gym_backup_${DAYS[3]}.db`]);
  });
  await t.step("one that is not a database is passed over", async () => {
    await using dir = await tempDir();
    const paths = await fakeBackups(dir.path, DAYS);
    await Deno.remove(`${paths[3]}.sha256`);
    await Deno.writeTextFile(paths[3], "not a database");
    const result = await pruneBackups({
      dir: dir.path,
      policy: validatePolicy({ days: 1 }),
      now: NOW,
    });
    assert.deepEqual(result.newestVerified, [`gym_backup_${DAYS[2]}.db`]);
    assert.match(result.warnings.join(), /no sidecar, and .*not a SQLite database/);
  });
});

Deno.test("prune exits 1 and deletes nothing when no backup passes its checksum", async () => {
  await using dir = await tempDir();
  const paths = await fakeBackups(dir.path, DAYS);
  for (const p of paths) await tamper(p);
  const before = await ls(dir.path);
  const res = await runCli(["prune", dir.path, "--keep-last", "1"], { now: NOW });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /error: Prune of ".*": no backup of "gym" passes its checksum/);
  assert.deepEqual((await ls(dir.path)).filter((n) => n !== ".litekeep.lock"), before);
  // --json: ok:false carries its error, as every failure does.
  const json = await runCli(["prune", dir.path, "--keep-last", "1", "--json"], { now: NOW });
  assert.equal(json.code, 1);
  const out = JSON.parse(json.stdout);
  assert.equal(out.ok, false);
  assert.match(out.error.message, /^Prune of ".*": no backup of "gym" passes its checksum/);
  assert.match(out.error.hint, /litekeep verify/);
  assert.equal(out.error.exitCode, 1);
});

Deno.test("prune refuses an empty policy with exit 2 and touches nothing", async (t) => {
  const cases: Array<[string, string[], unknown]> = [
    ["no rule at all", [], undefined],
    ["only zeros", ["--keep-days", "0", "--keep-count", "0"], undefined],
    ["an empty keep in the config", [], { keep: {} }],
  ];
  for (const [name, args, config] of cases) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      await fakeBackups(join(dir.path, "b"), DAYS);
      if (config) await Deno.writeTextFile(join(dir.path, "litekeep.json"), JSON.stringify(config));
      const before = await ls(join(dir.path, "b"));
      const res = await runCli(["prune", "b", ...args], { cwd: dir.path, now: NOW });
      assert.equal(res.code, 2);
      assert.equal(res.stdout, "");
      assert.match(
        res.stderr,
        /error: (no retention rule given|every retention rule given is 0), so nothing would be kept/,
      );
      assert.match(res.stderr, /hint: give at least one of --keep-days/);
      assert.deepEqual(await ls(join(dir.path, "b")), before);
    });
  }
});

Deno.test("prune never touches files that are not named like backups", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, DAYS);
  const strangers = [
    "notes.txt",
    "gym.db",
    "gym_backup_latest.db",
    "gym_backup_20250101_000000.db.bak",
    "gym_backup_20251301_000000.db",
    "gym_backup_20250101_000000.sqlite",
    "other_backup_20250101_000000.db.orig",
  ];
  for (const name of strangers) await Deno.writeTextFile(join(dir.path, name), "keep me");
  await Deno.mkdir(join(dir.path, "gym_backup_20250102_000000.db"));
  const res = await runCli(["prune", dir.path, "--keep-last", "1"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const left = await ls(dir.path);
  for (const name of [...strangers, "gym_backup_20250102_000000.db"]) {
    assert.ok(left.includes(name), `${name} was deleted`);
  }
  assert.equal(left.filter((n) => /^gym_backup_2025101\d_030005\.db$/.test(n)).length, 1);
});

Deno.test("prune deletes each backup's sidecar with it", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, DAYS.slice(0, 2), { checksum: "md5" });
  await fakeBackups(dir.path, DAYS.slice(2));
  const res = await runCli(["prune", dir.path, "--keep-count", "1", "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(await ls(dir.path), [
    ".litekeep.lock",
    `gym_backup_${DAYS[3]}.db`,
    `gym_backup_${DAYS[3]}.db.sha256`,
  ]);
  const out = JSON.parse(res.stdout);
  assert.equal(out.deleted.length, 6);
  assert.ok(out.deleted.includes(join(dir.path, `gym_backup_${DAYS[0]}.db.md5`)));
});

Deno.test("prune removes temporary leftovers older than an hour, and only those", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, DAYS);
  const old = join(dir.path, ".litekeep-tmp-123-abc-gym.db");
  const fresh = join(dir.path, ".litekeep-tmp-456-def-gym.db");
  await Deno.writeTextFile(old, "partial");
  await Deno.writeTextFile(fresh, "partial");
  const now = new Date();
  const twoHoursAgo = new Date(now.getTime() - 2 * 3600_000);
  await Deno.utime(old, twoHoursAgo, twoHoursAgo);
  const res = await runCli(["prune", dir.path, "--keep-last", "10"], { now });
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stderr,
    /removed leftover of an interrupted run: \.litekeep-tmp-123-abc-gym\.db/,
  );
  const left = await ls(dir.path);
  assert.ok(!left.includes(".litekeep-tmp-123-abc-gym.db"));
  assert.ok(left.includes(".litekeep-tmp-456-def-gym.db"));
});

Deno.test("prune --dry-run lists every backup with keep/delete and deletes nothing", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, DAYS);
  const before = await ls(dir.path);
  const res = await runCli(
    ["prune", dir.path, "--keep-last", "1", "--keep-days", "4", "--dry-run"],
    {
      now: NOW,
    },
  );
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    `Prune of ${dir.path} (--keep-last 1 --keep-days 4), dry run\n` +
      `  keep          gym_backup_20251018_030005.db  newest-verified, last, days\n` +
      `  keep          gym_backup_20251017_030005.db  days\n` +
      `  would delete  gym_backup_20251016_030005.db\n` +
      `  would delete  gym_backup_20251015_030005.db\n` +
      `2 kept, 2 would delete (16.0 KiB); nothing was deleted\n`,
  );
  // Not even a lock file: a dry run writes nothing.
  assert.deepEqual(await ls(dir.path), before);
  const json = await runCli(["prune", dir.path, "--keep-last", "1", "--dry-run", "--json"], {
    now: NOW,
  });
  const out = JSON.parse(json.stdout);
  assert.equal(out.dryRun, true);
  assert.deepEqual(out.deleted, []);
  assert.deepEqual(out.backups.map((b: { keep: boolean }) => b.keep), [true, false, false, false]);
});

Deno.test("prune plans each database's backups on their own", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, DAYS, { stem: "gym" });
  await fakeBackups(dir.path, DAYS.slice(0, 2), { stem: "shop" });
  const res = await runCli(["prune", dir.path, "--keep-last", "1", "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout).newestVerified, [
    `gym_backup_${DAYS[3]}.db`,
    `shop_backup_${DAYS[1]}.db`,
  ]);
  assert.deepEqual((await ls(dir.path)).filter((n) => n.endsWith(".db")), [
    `gym_backup_${DAYS[3]}.db`,
    `shop_backup_${DAYS[1]}.db`,
  ]);
});

Deno.test("prune takes the folder and the rules from the config; flags replace its rules", async () => {
  await using dir = await tempDir();
  await fakeBackups(join(dir.path, "backups"), DAYS);
  await Deno.writeTextFile(
    join(dir.path, "litekeep.json"),
    JSON.stringify({ backupDir: "backups", keep: { count: 3 } }),
  );
  const fromConfig = await runCli(["prune", "--dry-run", "--json"], { cwd: dir.path, now: NOW });
  assert.equal(fromConfig.code, 0, fromConfig.stderr);
  assert.equal(
    JSON.parse(fromConfig.stdout).backups.filter((b: { keep: boolean }) => b.keep).length,
    3,
  );
  const fromFlags = await runCli(["prune", "--dry-run", "--json", "--keep-last", "1"], {
    cwd: dir.path,
    now: NOW,
  });
  const out = JSON.parse(fromFlags.stdout);
  assert.deepEqual(out.policy, { last: 1 });
  assert.equal(out.backups.filter((b: { keep: boolean }) => b.keep).length, 1);
});

Deno.test("prune fails with a plain message for each error class", async (t) => {
  await using dir = await tempDir();
  const cases: Array<[string, () => Promise<string[]>, number, RegExp]> = [
    [
      "missing folder",
      () => Promise.resolve(["prune", join(dir.path, "nope"), "--keep-last", "1"]),
      1,
      /error: Cannot prune ".*nope": no such file or folder\n.*hint: check the path/,
    ],
    [
      "a file, not a folder",
      async () => {
        const file = join(dir.path, "file");
        await Deno.writeTextFile(file, "");
        return ["prune", file, "--keep-last", "1"];
      },
      1,
      /error: Cannot prune ".*file": it is a file, not a backup folder/,
    ],
    [
      "bad number",
      () => Promise.resolve(["prune", dir.path, "--keep-days", "seven"]),
      2,
      /--keep-days must be a whole number between 0 and 36500, not "seven"/,
    ],
    [
      "a negative number is one plain line",
      () => Promise.resolve(["prune", dir.path, "--keep-days", "-3"]),
      2,
      /^[^\n]*error: prune: --keep-days must be a whole number between 0 and 36500, not "-3"\n[^\n]*hint: [^\n]*\n$/,
    ],
    [
      "a huge keep-days",
      () => Promise.resolve(["prune", dir.path, "--keep-days", "999999999"]),
      2,
      /prune: --keep-days must be a whole number between 0 and 36500, not "999999999"/,
    ],
    [
      "a huge keep-last",
      () => Promise.resolve(["prune", dir.path, "--keep-last", "10000000"]),
      2,
      /prune: --keep-last must be a whole number between 0 and 1000000, not "10000000"/,
    ],
    [
      "no folder",
      () => Promise.resolve(["prune", "--keep-days", "7"]),
      2,
      /prune: no backup folder given/,
    ],
  ];
  for (const [name, make, code, pattern] of cases) {
    await t.step(name, async () => {
      const res = await runCli(await make(), { cwd: dir.path, now: NOW });
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
    });
  }
  await t.step("folder locked", async () => {
    await using _held = await holdLock(dirLockPath(dir.path));
    const res = await runCli(["prune", dir.path, "--keep-last", "1"], { now: NOW });
    assert.equal(res.code, 75);
    assert.equal(res.stdout, "");
    assert.match(res.stderr, /error: Another litekeep run is working on backup folder/);
  });
});

Deno.test("backup --cleanup --keep-days 7 prunes after the new backup, the old crontab line", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const backups = join(dir.path, "backups");
  await fakeBackups(backups, ["20250901_030005", "20251015_030005"]);
  const res = await runCli(["backup", db, "--cleanup", "--keep-days", "7", "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.prune.backups[0].name, "gym_backup_20251020_030010.db");
  assert.deepEqual(out.prune.backups[0].reasons, ["new-backup", "newest-verified", "days"]);
  assert.deepEqual((await ls(backups)).filter((n) => n.endsWith(".db")), [
    "gym_backup_20251015_030005.db",
    "gym_backup_20251020_030010.db",
  ]);
});

Deno.test("backup --prune never deletes the backup it has just made", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const backups = join(dir.path, "backups");
  // A clock that was once set wrong left a backup named in the future.
  await fakeBackups(backups, ["20300101_000000"]);
  const res = await runCli(["backup", db, "--prune", "--keep-last", "1"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stdout,
    /keep +gym_backup_20251020_030010\.db +new-backup, newest-verified, last\n/,
  );
  assert.match(res.stdout, /keep +gym_backup_20300101_000000\.db +future\n/);
  assert.deepEqual((await ls(backups)).filter((n) => n.endsWith(".db")), [
    "gym_backup_20251020_030010.db",
    "gym_backup_20300101_000000.db",
  ]);
});

Deno.test("backup --prune prunes nothing when the new backup fails verification", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "broken.db");
  makeDb(db, { wal: false, payments: 5000 });
  await corruptIndexPage(db);
  const backups = join(dir.path, "backups");
  await fakeBackups(backups, DAYS, { stem: "broken" });
  const before = await ls(backups);
  const res = await runCli(["backup", db, "--prune", "--keep-last", "1"], { now: NOW });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /failed verification/);
  assert.deepEqual((await ls(backups)).filter((n) => n !== ".litekeep.lock"), before);
});

Deno.test("backup refuses prune flags that cannot work, before backing up", async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [["--prune"], /no retention rule given/],
    [["--keep-days", "7"], /--keep-days needs --prune \(or --cleanup\)/],
    [["--stats-only", "--cleanup", "--keep-days", "7"], /backup: --stats-only and --cleanup /],
    [["--stats-only", "--prune", "--keep-days", "7"], /backup: --stats-only and --prune /],
    [["--cleanup", "--keep-days", "36501"], /backup: --keep-days must be a whole number between/],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" "), async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db);
      const res = await runCli(["backup", db, ...args], { now: NOW });
      assert.equal(res.code, 2);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
      assert.equal((await ls(dir.path)).includes("backups"), false);
    });
  }
});

Deno.test("prune never lets a backup named in the future displace a real one", async () => {
  await using dir = await tempDir();
  // A Pi without a real-time clock once booted in 2030 and wrote a backup.
  await fakeBackups(dir.path, [...DAYS, "20300101_030000"]);
  const res = await runCli(["prune", dir.path, "--keep-last", "1", "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.deepEqual(out.future, ["gym_backup_20300101_030000.db"]);
  assert.deepEqual(out.newestVerified, [`gym_backup_${DAYS[3]}.db`]);
  assert.deepEqual(out.backups[0].reasons, ["future"]);
  assert.match(
    res.stderr,
    /warning: gym_backup_20300101_030000\.db is named in the future .*kept, and not counted/,
  );
  assert.deepEqual((await ls(dir.path)).filter((n) => n.endsWith(".db")), [
    `gym_backup_${DAYS[3]}.db`,
    "gym_backup_20300101_030000.db",
  ]);
  const text = await runCli(["prune", dir.path, "--keep-last", "1", "--dry-run"], { now: NOW });
  assert.match(text.stdout, /keep +gym_backup_20300101_030000\.db +future\n/);
  assert.match(text.stderr, /warning: gym_backup_20300101_030000\.db is named in the future/);
});

Deno.test("pruneBackups() takes as newest good only a sound database, not a matching checksum", async () => {
  await using dir = await tempDir();
  const paths = await fakeBackups(dir.path, DAYS, { rows: 2000 });
  // The newest was truncated, and its sidecar regenerated to match the damaged bytes.
  const size = (await Deno.stat(paths[3])).size;
  await Deno.truncate(paths[3], Math.floor(size / 2));
  await Deno.writeTextFile(
    `${paths[3]}.sha256`,
    sidecarLine(await hashFile(paths[3], "sha256"), paths[3]),
  );
  const later = new Date(2025, 10, 30);
  const result = await pruneBackups({
    dir: dir.path,
    policy: validatePolicy({ days: 1 }),
    now: later,
  });
  assert.deepEqual(result.newestVerified, [`gym_backup_${DAYS[2]}.db`]);
  assert.match(result.warnings.join("\n"), /gym_backup_20251018_030005\.db: .*integrity/);
  assert.ok((await ls(dir.path)).includes(`gym_backup_${DAYS[2]}.db`));
});
