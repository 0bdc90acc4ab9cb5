import assert from "node:assert/strict";
import { parseBackupName } from "../lib/backup_set/names.ts";
import { UsageError } from "../lib/errors.ts";
import {
  type DatedBackup,
  daysBefore,
  FUTURE_TOLERANCE_MS,
  isNamedInFuture,
  isoWeekKey,
  type KeepReason,
  planPrune,
  type RetentionPolicy,
  validatePolicy,
} from "../lib/backup_set/retention.ts";

/** A backup from its stamp, `YYYYMMDD_HHMMSS` or `YYYYMMDD_HHMMSS_2`, read in the current zone. */
function at(stamp: string): DatedBackup {
  const name = `gym_backup_${stamp}.db`;
  const parsed = parseBackupName(name);
  if (!parsed) throw new Error(`bad stamp ${stamp}`);
  return { name, time: parsed.time, seq: parsed.seq };
}

/** Stamps of one backup a day at 03:00:05 from `first` to `last` (YYYYMMDD, same month). */
function daily(first: string, last: string): string[] {
  const stamps: string[] = [];
  for (let d = Number(first); d <= Number(last); d++) stamps.push(`${d}_030005`);
  return stamps;
}

/** Runs `fn` with the process in time zone `tz`, then puts the zone back. */
function inZone<T>(tz: string | undefined, fn: () => T): T {
  if (tz === undefined) return fn();
  const before = Deno.env.get("TZ");
  Deno.env.set("TZ", tz);
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("TZ");
    else Deno.env.set("TZ", before);
  }
}

interface Case {
  name: string;
  /** Time zone the stamps are read in (local time). */
  tz?: string;
  backups: string[];
  policy: RetentionPolicy;
  now: string;
  kept: string[];
}

const CASES: Case[] = [
  {
    name: "keep-count is a floor under keep-days",
    backups: daily("20251001", "20251020"),
    policy: { days: 7, count: 10 },
    now: "20251020_030010",
    kept: daily("20251011", "20251020"),
  },
  {
    name: "keep-days keeps what is newer than the same time N days ago",
    backups: daily("20251001", "20251020"),
    policy: { days: 7, count: 3 },
    now: "20251020_030010",
    kept: daily("20251014", "20251020"),
  },
  {
    name: "keep-count alone keeps the newest N",
    backups: daily("20251001", "20251020"),
    policy: { count: 2 },
    now: "20251020_030010",
    kept: daily("20251019", "20251020"),
  },
  {
    name: "same day: keep-daily keeps only the newest backup of each day",
    backups: [
      "20251017_100000",
      "20251018_080000",
      "20251018_230000",
      "20251019_010000",
      "20251019_120000",
      "20251019_120000_2",
    ],
    policy: { daily: 2 },
    now: "20251019_130000",
    kept: ["20251018_230000", "20251019_120000_2"],
  },
  {
    name: "a second backup in the same second (_2) is the newer one",
    backups: ["20251019_155538", "20251019_155538_2"],
    policy: { last: 1 },
    now: "20251019_160000",
    kept: ["20251019_155538_2"],
  },
  {
    name: "DST starts: keep-days 7 keeps 7 daily backups, not 8",
    tz: "Europe/Berlin",
    backups: daily("20250322", "20250331"),
    policy: { days: 7 },
    now: "20250331_030010",
    kept: daily("20250325", "20250331"),
  },
  {
    name: "DST ends: keep-days counts back to the same time of day, not 168 hours",
    tz: "Europe/Berlin",
    // 168 hours before the 30th 03:00:10 CET is the 23rd 04:00:10 CEST.
    backups: [...daily("20251020", "20251030"), "20251023_033000"],
    policy: { days: 7 },
    now: "20251030_030010",
    kept: ["20251023_033000", ...daily("20251024", "20251030")],
  },
  {
    name: "DST starts: days are local days, not UTC days",
    tz: "Europe/Berlin",
    // 00:30 and 01:30 on the 31st are still the 30th in UTC.
    backups: ["20250330_233000", "20250331_003000", "20250331_013000"],
    policy: { daily: 2 },
    now: "20250331_120000",
    kept: ["20250330_233000", "20250331_013000"],
  },
  {
    name: "month ends: keep-monthly keeps the newest of each month, leap day included",
    backups: [
      "20240131_030000",
      "20240229_030000",
      "20240301_010000",
      "20240331_230000",
      "20240401_000000",
    ],
    policy: { monthly: 3 },
    now: "20240401_120000",
    kept: ["20240229_030000", "20240331_230000", "20240401_000000"],
  },
  {
    name: "month ends: keep-days 1 on 1 March counts back to 28 February",
    backups: ["20250227_130000", "20250228_110000", "20250228_130000", "20250301_110000"],
    policy: { days: 1 },
    now: "20250301_120000",
    kept: ["20250228_130000", "20250301_110000"],
  },
  {
    name: "a gap of weeks with no backups uses none of keep-weekly",
    backups: [
      "20251201_030000",
      "20251203_030000",
      "20251208_030000",
      "20260114_030000",
      "20260121_030000",
    ],
    policy: { weekly: 3 },
    now: "20260121_120000",
    kept: ["20251208_030000", "20260114_030000", "20260121_030000"],
  },
  {
    name: "an ISO week crosses the new year",
    // 31 December 2025 and 2 January 2026 are both in 2026-W01.
    backups: ["20251222_030000", "20251231_030000", "20260102_030000"],
    policy: { weekly: 2 },
    now: "20260102_120000",
    kept: ["20251222_030000", "20260102_030000"],
  },
  {
    name: "a gap of months with no backups uses none of keep-monthly",
    backups: ["20250115_030000", "20250610_030000", "20250611_030000"],
    policy: { monthly: 2 },
    now: "20250611_120000",
    kept: ["20250115_030000", "20250611_030000"],
  },
  {
    name: "rules combine with OR",
    backups: daily("20250101", "20250110"),
    policy: { last: 2, monthly: 1, days: 3 },
    now: "20250110_030010",
    kept: daily("20250108", "20250110"),
  },
  {
    name: "a backup named in the future is kept, and keep-last counts only real ones",
    backups: ["20250101_030000", "20250102_030000", "20300101_000000"],
    policy: { last: 1 },
    now: "20250102_120000",
    kept: ["20250102_030000", "20300101_000000"],
  },
  {
    name: "an hour ahead (a DST jump of local names) is not the future",
    backups: ["20250102_030000", "20250102_130000"],
    policy: { last: 1 },
    now: "20250102_120000",
    kept: ["20250102_130000"],
  },
];

Deno.test("planPrune() keeps what the policy says, in local time", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const kept = inZone(c.tz, () => {
        // Shuffled input: the order the folder lists files in must not matter.
        const backups = c.backups.map(at).reverse();
        backups.push(backups.shift()!);
        const plan = planPrune(backups, validatePolicy(c.policy), at(c.now).time);
        return plan.keep.map((b) => b.name).sort();
      });
      assert.deepEqual(kept, c.kept.map((s) => `gym_backup_${s}.db`).sort());
    });
  }
});

Deno.test("daysBefore() is total: a huge N counts back to the earliest time, never Invalid Date", () => {
  const now = new Date(2025, 9, 20, 3, 0, 10);
  for (const days of [1e9, 1e300, Number.MAX_SAFE_INTEGER]) {
    const cutoff = daysBefore(now, days);
    assert.ok(!Number.isNaN(cutoff.getTime()), `daysBefore(now, ${days}) is Invalid Date`);
    assert.ok(cutoff.getTime() <= new Date(1, 0, 1).getTime());
  }
});

Deno.test("planPrune() keeps every backup for a huge keep-days", () => {
  const backups = daily("20250101", "20250110").map(at);
  const plan = planPrune(backups, validatePolicy({ days: 1e9 }), at("20250110_120000").time);
  assert.equal(plan.keep.length, 10);
});

Deno.test("planPrune() lists every reason that keeps a backup, newest first", () => {
  const backups = ["20251017_030000", "20251018_030000", "20251019_030000"].map(at);
  const plan = planPrune(
    backups,
    validatePolicy({ last: 1, daily: 2, count: 1 }),
    at("20251019_120000").time,
  );
  assert.deepEqual(
    plan.decisions.map((d) => [d.backup.name, d.keep, d.reasons]),
    [
      ["gym_backup_20251019_030000.db", true, ["last", "count", "daily"]],
      ["gym_backup_20251018_030000.db", true, ["daily"]],
      ["gym_backup_20251017_030000.db", false, []],
    ],
  );
  assert.deepEqual(plan.delete.map((b) => b.name), ["gym_backup_20251017_030000.db"]);
});

Deno.test("planPrune() keeps a pinned backup whatever the policy", () => {
  const backups = daily("20250101", "20250105").map(at);
  const pinned: Array<[string, KeepReason]> = [
    ["gym_backup_20250104_030005.db", "newest-verified"],
  ];
  const plan = planPrune(backups, validatePolicy({ days: 1 }), at("20260101_000000").time, {
    pinned,
  });
  assert.deepEqual(plan.keep.map((b) => b.name), ["gym_backup_20250104_030005.db"]);
  assert.deepEqual(plan.decisions[1].reasons, ["newest-verified"]);
});

Deno.test('planPrune() keeps a backup named in the future as "future", never as one of the newest N', () => {
  const backups = [...daily("20250101", "20250105"), "20300101_030000", "20250105_150000"].map(at);
  const now = at("20250105_120000").time;
  const plan = planPrune(
    backups,
    validatePolicy({ count: 2, last: 1, daily: 1, weekly: 1, monthly: 1 }),
    now,
  );
  assert.deepEqual(
    plan.decisions.map((d) => [d.backup.name, d.reasons]),
    [
      ["gym_backup_20300101_030000.db", ["future"]],
      ["gym_backup_20250105_150000.db", ["future"]],
      ["gym_backup_20250105_030005.db", ["last", "count", "daily", "weekly", "monthly"]],
      ["gym_backup_20250104_030005.db", ["count"]],
      ["gym_backup_20250103_030005.db", []],
      ["gym_backup_20250102_030005.db", []],
      ["gym_backup_20250101_030005.db", []],
    ],
  );
  assert.deepEqual(plan.future.map((b) => b.name), [
    "gym_backup_20300101_030000.db",
    "gym_backup_20250105_150000.db",
  ]);
});

Deno.test("isNamedInFuture() allows FUTURE_TOLERANCE_MS for DST and clock drift", () => {
  const now = new Date(2025, 0, 5, 12, 0, 0);
  assert.equal(isNamedInFuture(new Date(now.getTime() + FUTURE_TOLERANCE_MS), now), false);
  assert.equal(isNamedInFuture(new Date(now.getTime() + FUTURE_TOLERANCE_MS + 1000), now), true);
  assert.equal(FUTURE_TOLERANCE_MS, 2 * 3600_000);
});

Deno.test("validatePolicy() refuses an empty policy", async (t) => {
  for (const policy of [{}, { days: 0, count: 0 }, { weekly: 0 }] as RetentionPolicy[]) {
    await t.step(JSON.stringify(policy), () => {
      assert.throws(
        () => validatePolicy(policy),
        (e) =>
          e instanceof UsageError &&
          (Object.keys(policy).length === 0
            ? /^no retention rule given/
            : /^every retention rule given is 0/).test(e.message),
      );
    });
  }
});

Deno.test("validatePolicy() returns a frozen copy with the same rules", () => {
  const given: RetentionPolicy = { days: 7, count: 10 };
  const policy = validatePolicy(given);
  given.days = 0;
  assert.deepEqual(policy, { days: 7, count: 10 });
  assert.ok(Object.isFrozen(policy));
});

Deno.test("planPrune() keeps a backup exactly when it has a reason, in every case", async (t) => {
  const pinned: Array<[string, KeepReason]> = [["gym_backup_20251018_030000.db", "new-backup"]];
  for (const c of CASES) {
    for (const noGoodBackup of [false, true]) {
      await t.step(`${c.name}${noGoodBackup ? ", no good backup" : ""}`, () => {
        const plan = inZone(
          c.tz,
          () =>
            planPrune(c.backups.map(at), validatePolicy(c.policy), at(c.now).time, {
              pinned,
              noGoodBackup,
            }),
        );
        for (const d of plan.decisions) {
          assert.equal(d.keep, d.reasons.length > 0, `${d.backup.name}: ${d.reasons}`);
        }
        assert.equal(plan.keep.length + plan.delete.length, plan.decisions.length);
      });
    }
  }
});

Deno.test('planPrune() keeps every backup of a set without a good one, for "no-good-backup"', () => {
  const backups = daily("20250101", "20250103").map(at);
  const plan = planPrune(backups, validatePolicy({ last: 1 }), at("20250110_000000").time, {
    noGoodBackup: true,
  });
  assert.deepEqual(
    plan.decisions.map((d) => [d.backup.name, d.keep, d.reasons]),
    [
      ["gym_backup_20250103_030005.db", true, ["no-good-backup", "last"]],
      ["gym_backup_20250102_030005.db", true, ["no-good-backup"]],
      ["gym_backup_20250101_030005.db", true, ["no-good-backup"]],
    ],
  );
  assert.deepEqual(plan.delete, []);
});

Deno.test("isoWeekKey() gives ISO 8601 weeks", async (t) => {
  const cases: Array<[string, string]> = [
    ["20251229", "2026-W01"],
    ["20260104", "2026-W01"],
    ["20260105", "2026-W02"],
    ["20210103", "2020-W53"],
    ["20241230", "2025-W01"],
    ["20250630", "2025-W27"],
  ];
  for (const [stamp, week] of cases) {
    await t.step(stamp, () => assert.equal(isoWeekKey(at(`${stamp}_120000`).time), week));
  }
});
