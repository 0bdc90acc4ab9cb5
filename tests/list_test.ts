import assert from "node:assert/strict";
import { join } from "node:path";
import { describeBackups, listBackupFolder } from "../lib/backup_set/list.ts";
import { describe, parseFlags } from "../lib/commands/list.ts";
import { describePrune } from "../lib/commands/_keep.ts";
import type { PruneResult } from "../lib/backup_set/prune.ts";
import { UsageError } from "../lib/errors.ts";
import type { BackupEntry } from "../lib/backup_set/names.ts";
import { fakeBackups, makeDb, runCli, tamper, tempDir } from "./_helpers.ts";

const NOW = new Date(2025, 9, 20, 3, 0, 10);

function entry(name: string, time: Date, seq = 1, stem = "gym"): BackupEntry {
  return { path: `/b/${name}`, name, stem, time, seq, size: 100 * seq };
}

Deno.test("describeBackups() lists newest first with age, states and future flags", () => {
  const sidecar = { path: "x.sha256", algorithm: "sha256" as const, hex: "ab", name: "x" };
  const listing = describeBackups(
    "/b",
    [
      { entry: entry("gym_backup_20251019_030005.db", new Date(2025, 9, 19, 3, 0, 5)), sidecar },
      {
        entry: entry("gym_backup_20251019_030005_2.db", new Date(2025, 9, 19, 3, 0, 5), 2),
        sidecar: undefined,
      },
      {
        entry: entry("gym_backup_20300101_000000.db", new Date(2030, 0, 1)),
        sidecar: { ...sidecar, hex: "", unreadable: "it is not a regular file" },
      },
      {
        entry: entry("shop_backup_20251020_030000.db", new Date(2025, 9, 20, 3, 0, 0), 1, "shop"),
        sidecar,
      },
    ],
    new Map([["gym", "/srv/gym.db"]]),
    NOW,
    { verified: false },
  );
  assert.deepEqual(listing.backups.map((b) => b.name), [
    "gym_backup_20300101_000000.db",
    "shop_backup_20251020_030000.db",
    "gym_backup_20251019_030005_2.db",
    "gym_backup_20251019_030005.db",
  ]);
  assert.deepEqual(listing.backups.map((b) => b.ageSeconds), [null, 10, 86_405, 86_405]);
  assert.deepEqual(listing.backups.map((b) => b.future), [true, false, false, false]);
  assert.deepEqual(
    listing.backups.map((b) => b.checksum.state),
    ["unreadable", "not-checked", "missing", "not-checked"],
  );
  assert.deepEqual(listing.backups.map((b) => b.integrity), Array(4).fill("not-checked"));
  assert.deepEqual(listing.backups.map((b) => b.good), [null, null, null, null]);
  assert.match(listing.backups[0].problems[0], /cannot be read: it is not a regular file/);
  assert.deepEqual(listing.backups.map((b) => b.database), [
    "/srv/gym.db",
    null,
    "/srv/gym.db",
    "/srv/gym.db",
  ]);
  assert.deepEqual(listing.future, ["gym_backup_20300101_000000.db"]);
  assert.equal(listing.count, 4);
  assert.equal(listing.bytes, 500);
  assert.deepEqual(listing.sets.map((s) => [s.stem, s.count, s.newestGood]), [
    ["gym", 3, null],
    ["shop", 1, null],
  ]);
});

Deno.test("describeBackups() with checks: good is checksum AND integrity, never a future one", () => {
  const ok = { checksum: "ok" as const, integrity: "ok" as const, problems: [] };
  const listing = describeBackups(
    "/b",
    [
      {
        entry: entry("gym_backup_20300101_000000.db", new Date(2030, 0, 1)),
        sidecar: undefined,
        check: ok,
      },
      {
        entry: entry("gym_backup_20251019_030000.db", new Date(2025, 9, 19, 3)),
        sidecar: undefined,
        check: { checksum: "mismatch", integrity: "ok", problems: ["sha256 mismatch"] },
      },
      {
        entry: entry("gym_backup_20251018_030000.db", new Date(2025, 9, 18, 3)),
        sidecar: undefined,
        check: { checksum: "ok", integrity: "failed", problems: ["integrity: bad"] },
      },
      {
        entry: entry("gym_backup_20251017_030000.db", new Date(2025, 9, 17, 3)),
        sidecar: undefined,
        check: { checksum: "missing", integrity: "ok", problems: [] },
      },
    ],
    new Map(),
    NOW,
    { verified: true },
  );
  assert.deepEqual(listing.backups.map((b) => b.good), [true, false, false, true]);
  assert.deepEqual(listing.sets[0].newestGood, "gym_backup_20251017_030000.db");
});

Deno.test("listBackupFolder() with verify finds a changed and a corrupt backup", async () => {
  await using dir = await tempDir();
  const [changed, , corrupt] = await fakeBackups(dir.path, [
    "20251017_030000",
    "20251018_030000",
    "20251019_030000",
  ]);
  await tamper(changed);
  await Deno.writeTextFile(corrupt, "not a database at all, just text ".repeat(200));
  const cheap = await listBackupFolder(dir.path, { verify: false, now: NOW });
  assert.deepEqual(cheap.backups.map((b) => b.checksum.state), Array(3).fill("not-checked"));
  const checked = await listBackupFolder(dir.path, { verify: true, now: NOW });
  assert.deepEqual(
    checked.backups.map((b) => [b.name.slice(11, 19), b.checksum.state, b.integrity, b.good]),
    [
      // Not a database: not hashed either, and never good.
      ["20251019", "not-checked", "failed", false],
      ["20251018", "ok", "ok", true],
      // tamper() changes a byte of a page: the checksum and quick_check both see it.
      ["20251017", "mismatch", "failed", false],
    ],
  );
  assert.equal(checked.sets[0].newestGood, "gym_backup_20251018_030000.db");
});

Deno.test("list DIR prints the backups newest first, flags the future and exits 0", async () => {
  await using dir = await tempDir();
  await fakeBackups(dir.path, ["20251018_030005", "20301231_235959"]);
  await fakeBackups(dir.path, ["20251019_030005"], { checksum: null });
  await fakeBackups(dir.path, ["20251019_120000"], { stem: "shop", checksum: "md5" });
  await Deno.writeTextFile(join(dir.path, "notes.txt"), "not a backup");
  const res = await runCli(["list", dir.path], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.split("\n");
  assert.match(lines[0], /^Backups in .*: 4, 32\.0 KiB, newest first$/);
  assert.match(lines[1], /^ {2}time +age +size +database +checksum +file$/);
  assert.match(
    lines[2],
    /^ {2}2030-12-31 23:59:59 +FUTURE +8\.0 KiB +gym +sha256 not-checked +gym_backup_20301231_235959\.db$/,
  );
  assert.match(
    lines[3],
    /^ {2}2025-10-19 12:00:00 +15 h 0 min ago +8\.0 KiB +shop +md5 not-checked +shop_backup/,
  );
  assert.match(
    lines[4],
    /^ {2}2025-10-19 03:00:05 +1 d 0 h ago +8\.0 KiB +gym +no sidecar +gym_backup_20251019_030005\.db$/,
  );
  assert.match(lines[5], /gym_backup_20251018_030005\.db$/);
  assert.match(
    res.stderr,
    /warning: 1 backup\(s\) are named in the future.*gym_backup_20301231_235959\.db/,
  );
});

Deno.test("list --json is one object with ISO-8601 times and sizes in bytes", async () => {
  await using dir = await tempDir();
  const [path] = await fakeBackups(dir.path, ["20251019_030005"]);
  const res = await runCli(["list", dir.path, "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.ok, true);
  assert.equal(out.command, "list");
  assert.equal(out.dir, dir.path);
  assert.equal(out.verified, false);
  assert.equal(out.count, 1);
  const [b] = out.backups;
  assert.equal(b.path, path);
  assert.equal(b.stem, "gym");
  assert.equal(b.time, new Date(2025, 9, 19, 3, 0, 5).toISOString());
  assert.match(b.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(b.ageSeconds, 86_405);
  assert.equal(b.bytes, (await Deno.stat(path)).size);
  assert.deepEqual(b.checksum, { state: "not-checked", algorithm: "sha256" });
  assert.equal(b.integrity, "not-checked");
  assert.equal(b.good, null);
  assert.equal(b.future, false);
});

Deno.test("list DB lists that database's backups in its folder/backups; --verify exits 1 on a bad one", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const backups = join(dir.path, "backups");
  const [first] = await fakeBackups(backups, ["20251018_030005", "20251019_030005"]);
  await fakeBackups(backups, ["20251019_120000"], { stem: "shop" });
  const res = await runCli(["list", "gym.db"], { cwd: dir.path, now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^Backups of "gym" in .*backups: 2, /);
  assert.doesNotMatch(res.stdout, /shop/);
  await tamper(first);
  const verified = await runCli(["list", "gym.db", "--verify"], { cwd: dir.path, now: NOW });
  assert.equal(verified.code, 1);
  assert.match(verified.stdout, /sha256 mismatch +FAILED +gym_backup_20251018_030005\.db/);
  assert.match(verified.stdout, /sha256 ok +good +gym_backup_20251019_030005\.db/);
  assert.match(verified.stdout, /newest good of gym: gym_backup_20251019_030005\.db/);
  assert.match(
    verified.stderr,
    /error: Backup ".*gym_backup_20251018_030005\.db" failed: sha256 mismatch[^]*\n(\S+ )?hint: make a fresh/,
  );
  const json = JSON.parse(
    (await runCli(["list", "gym.db", "--verify", "--json"], { cwd: dir.path, now: NOW })).stdout,
  );
  assert.equal(json.ok, false);
  assert.equal(json.sets[0].newestGood, "gym_backup_20251019_030005.db");
  assert.equal(json.error.message, "1 of 2 backup(s) failed: gym_backup_20251018_030005.db");
  assert.match(json.error.hint, /"problems" says why/);
  assert.equal(json.error.exitCode, 1);
});

Deno.test("list with no argument lists the config's backup folder", async () => {
  await using dir = await tempDir();
  await fakeBackups(join(dir.path, "data"), ["20251019_030005"]);
  await Deno.writeTextFile(join(dir.path, "litekeep.json"), JSON.stringify({ backupDir: "data" }));
  const res = await runCli(["list"], { cwd: dir.path, now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^Backups in .*data: 1, /);
});

Deno.test("list of an empty folder says so and exits 0", async () => {
  await using dir = await tempDir();
  const res = await runCli(["list", dir.path], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^Backups in .*: 0, 0 B\n {2}\(no backups\)\n$/);
  const json = JSON.parse((await runCli(["list", dir.path, "--json"], { now: NOW })).stdout);
  assert.deepEqual([json.ok, json.count, json.backups], [true, 0, []]);
});

Deno.test("list fails with a plain message for each error class", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  await Deno.writeTextFile(join(dir.path, "file.json"), JSON.stringify({ backupDir: "gym.db" }));
  const cases: Array<[string[], number, RegExp]> = [
    [["list", "nope"], 1, /error: Cannot list ".*nope": no such file or folder\n.*hint: /],
    [
      ["list", "gym.db"],
      1,
      /error: Cannot list backup folder ".*backups" for ".*gym\.db": no such file or folder\n.*hint: no backup was made yet \("litekeep backup .*gym\.db"\)/,
    ],
    [
      ["list", "--config", "file.json"],
      1,
      /error: Cannot list ".*gym\.db": it is a file, not a backup folder\n.*hint: /,
    ],
    [["list"], 2, /error: list: no backup folder or database given\n.*hint: /],
    [["list", "a", "b"], 2, /error: list: unexpected argument "b"/],
  ];
  for (const [args, code, pattern] of cases) {
    await t.step(args.slice(1).join(" ") || "(nothing)", async () => {
      const res = await runCli(args, { cwd: dir.path, now: NOW });
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
    });
  }
});

Deno.test("list parseFlags() reads DIR or DB and --verify, and refuses the rest", () => {
  assert.deepEqual(parseFlags([]), { path: undefined, verify: false });
  assert.deepEqual(parseFlags(["b", "--verify"]), { path: "b", verify: true });
  assert.throws(() => parseFlags(["a", "b"]), UsageError);
  assert.throws(() => parseFlags(["--verify=yes"]), /list: --verify takes no value/);
});

Deno.test("list of a backup file lists the backups of its database beside it", async () => {
  await using dir = await tempDir();
  const [, second] = await fakeBackups(dir.path, ["20251018_030005", "20251019_030005"]);
  await fakeBackups(dir.path, ["20251019_120000"], { stem: "shop" });
  const res = await runCli(["list", second, "--json"], { now: NOW });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.dir, dir.path);
  assert.equal(out.stem, "gym");
  assert.deepEqual(out.backups.map((b: { name: string }) => b.name), [
    "gym_backup_20251019_030005.db",
    "gym_backup_20251018_030005.db",
  ]);
});

Deno.test("list DB warns when the folder's set of that name belongs to another database", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "site1"));
  await Deno.mkdir(join(dir.path, "site2"));
  const db1 = join(dir.path, "site1", "app.db");
  const db2 = join(dir.path, "site2", "app.db");
  makeDb(db1);
  makeDb(db2);
  const shared = join(dir.path, "shared");
  const made = await runCli(["backup", db1, "--backup-dir", shared, "--quiet"]);
  assert.equal(made.code, 0, made.stderr);
  await Deno.writeTextFile(
    join(dir.path, "litekeep.json"),
    JSON.stringify({ backupDir: "shared" }),
  );
  const own = await runCli(["list", db1], { cwd: dir.path });
  assert.equal(own.code, 0, own.stderr);
  assert.doesNotMatch(own.stderr, /belong to/);
  assert.match(
    own.stdout,
    /databases \(from \.litekeep-sets\.json\):\n {2}app: .*site1\/app\.db\n/,
  );
  const other = await runCli(["list", db2], { cwd: dir.path });
  assert.equal(other.code, 0, other.stderr);
  assert.match(
    other.stderr,
    /warning: the backups of "app" in ".*shared" belong to ".*site1\/app\.db" \(by its \.litekeep-sets\.json\), not to ".*site2\/app\.db"/,
  );
  const json = JSON.parse((await runCli(["list", db2, "--json"], { cwd: dir.path })).stdout);
  assert.equal(json.backups[0].database, await Deno.realPath(db1));
});

Deno.test("list's table and prune's report survive a folder of 200,000 backups", () => {
  // A backup every 5 minutes for two years, never pruned: the column widths were taken with
  // Math.max(...rows), which overflows the call stack ("internal error") past ~120,000.
  const n = 200_000;
  const entries = Array.from({ length: n }, (_, i) => {
    const time = new Date(NOW.getTime() - (i + 1) * 300_000);
    return entry(`gym_backup_${i}.db`, time);
  });
  const listing = describeBackups(
    "/b",
    entries.map((e) => ({ entry: e, sidecar: undefined })),
    new Map(),
    NOW,
    {
      verified: false,
    },
  );
  const table = describe(listing);
  assert.equal(table.split("\n").length, n + 3);
  const report = describePrune({
    dir: "/b",
    dryRun: true,
    policy: { count: 1 },
    backups: entries.map((e, i) => ({ ...e, keep: i === 0, reasons: i === 0 ? ["count"] : [] })),
    deleted: [],
    freedBytes: 0,
    newestVerified: [],
    future: [],
    cleaned: [],
    warnings: [],
    problems: [],
  } as unknown as PruneResult);
  assert.match(report, /1 kept, 199999 would delete/);
});

Deno.test("list --verify: a backup pruned while the listing runs is gone, not failed", async () => {
  // list takes no lock, so a prune (or a user) may delete a backup between the folder read
  // and its check: it was reported as a FAILED backup, and list exited 1 for a healthy set.
  await using dir = await tempDir();
  const paths = await fakeBackups(dir.path, [
    "20251019_010000",
    "20251019_020000",
    "20251019_030000",
  ]);
  const listing = await listBackupFolder(dir.path, {
    verify: true,
    now: NOW,
    onVerify: (i) => {
      // Checked oldest first: before the second check, the newest (checked last) goes.
      if (i === 2) {
        Deno.removeSync(paths[2]);
        Deno.removeSync(`${paths[2]}.sha256`);
      }
    },
  });
  assert.deepEqual(listing.backups.map((b) => [b.name, b.good]), [
    ["gym_backup_20251019_020000.db", true],
    ["gym_backup_20251019_010000.db", true],
  ]);
  assert.equal(listing.count, 2);
});
