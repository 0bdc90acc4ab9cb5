/**
 * Retention policy: which backups to keep, as a pure function of the backups, the policy and
 * the time. No clock, no files: `lib/backup_set/prune.ts` does the I/O around it.
 *
 * A backup is kept when ANY rule keeps it. Calendar rules (`daily`, `weekly`, `monthly`) work
 * as restic's do: walking from the newest backup, each keeps the newest backup of each of the
 * last N days / ISO weeks / months that have backups, so a gap with no backups uses none of N.
 * Days, weeks and months are those of the local calendar, because backup names carry local time.
 *
 * A backup named more than `FUTURE_TOLERANCE_MS` after `now` was written under a wrong clock (a
 * Raspberry Pi without a real-time clock that booted offline). It is kept (reason `future`), but
 * no rule counts it: were it one of the newest N, it would stay "newest" until its date came and
 * push a real backup out every night.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/** The retention rules; a rule that is absent or 0 keeps nothing. */
export interface RetentionPolicy {
  /** Keep every backup taken after the same time of day, `days` calendar days ago. */
  days?: number;
  /** Keep the newest `count` backups: the floor under `days` of the old scripts. */
  count?: number;
  /** Keep the newest `last` backups (restic's `--keep-last`). */
  last?: number;
  /** Keep the newest backup of each of the last `daily` days that have backups. */
  daily?: number;
  /** Keep the newest backup of each of the last `weekly` ISO weeks that have backups. */
  weekly?: number;
  /** Keep the newest backup of each of the last `monthly` months that have backups. */
  monthly?: number;
}

/** The rules of a policy, in the order reasons are listed. */
export const POLICY_RULES = ["last", "count", "days", "daily", "weekly", "monthly"] as const;

/**
 * Why a backup is kept: a policy rule, or a protection no policy can override
 * (`newest-verified`: the newest good backup; `no-good-backup`: none of its set's backups is
 * good, so none is deleted; `new-backup`: the backup that the same run has just made; `future`:
 * named after now, see `isNamedInFuture`).
 */
export type KeepReason =
  | typeof POLICY_RULES[number]
  | "newest-verified"
  | "no-good-backup"
  | "new-backup"
  | "future";

declare const validated: unique symbol;

/**
 * A policy that keeps something, as only {@linkcode validatePolicy} makes one: the type that
 * prune and backup take, so the check is made once, where the policy is read (flags or config),
 * and no core function can be handed an unchecked one.
 */
export type ValidPolicy = Readonly<RetentionPolicy> & { readonly [validated]: true };

/**
 * How far after `now` a backup's name may be and still count as taken now: 2 hours. Names are
 * local time, so a DST change makes them jump an hour; the rest covers clocks that drift or are
 * set a little wrong. Beyond it, the name cannot be the time the backup was taken.
 */
export const FUTURE_TOLERANCE_MS = 2 * 3600_000;

/** True when a backup taken at `time` (its name) is named in the future, beyond the tolerance. */
export function isNamedInFuture(time: Date, now: Date): boolean {
  return time.getTime() - now.getTime() > FUTURE_TOLERANCE_MS;
}

/** What the policy needs to know of a backup: its name and when it was taken. */
export interface DatedBackup {
  name: string;
  /** When it was taken (from its name, in local time). */
  time: Date;
  /** 1, or N for the `_N` suffix of a second backup in the same second. */
  seq: number;
}

/** The decision for one backup. */
export interface PruneDecision<T extends DatedBackup> {
  backup: T;
  keep: boolean;
  /** Every reason that keeps it; empty when it is to be deleted. */
  reasons: KeepReason[];
}

/** The plan for a set of backups, newest first. */
export interface PrunePlan<T extends DatedBackup> {
  decisions: PruneDecision<T>[];
  keep: T[];
  delete: T[];
  /** Backups named in the future: kept, counted by no rule, worth a warning. */
  future: T[];
}

/** True when no rule of `policy` keeps anything: such a policy would delete every backup. */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return POLICY_RULES.every((rule) => !(policy[rule] ?? 0));
}

/**
 * Checks a policy read from flags or the config, once: an empty one would keep nothing, and is
 * far more likely a forgotten flag than a wish to delete every backup.
 *
 * @returns a frozen copy, the only way to a {@linkcode ValidPolicy}
 * @throws {UsageError} when no rule of `policy` keeps anything
 */
export function validatePolicy(policy: RetentionPolicy): ValidPolicy {
  if (isEmptyPolicy(policy)) {
    // "--keep-days 0" is a rule given that keeps nothing: the message must not deny it was given.
    const given = POLICY_RULES.some((rule) => policy[rule] !== undefined);
    const what = given ? "every retention rule given is 0" : "no retention rule given";
    throw new UsageError(`${what}, so nothing would be kept`, {
      hint: "give at least one of --keep-days, --keep-count, --keep-last, --keep-daily, " +
        '--keep-weekly, --keep-monthly (or "keep" in litekeep.json)',
    });
  }
  return Object.freeze({ ...policy }) as ValidPolicy;
}

/** What protects backups whatever the policy; see {@linkcode planPrune}. */
export interface Protections {
  /** Backups (by name) kept whatever the policy, with the reason. */
  pinned?: ReadonlyArray<readonly [name: string, reason: KeepReason]>;
  /** No backup of the set is good: every one is kept (reason `no-good-backup`). */
  noGoodBackup?: boolean;
}

/** The policy as flags, e.g. `--keep-days 7 --keep-count 10`. */
export function describePolicy(policy: RetentionPolicy): string {
  return POLICY_RULES.filter((rule) => policy[rule])
    .map((rule) => `--keep-${rule} ${policy[rule]}`)
    .join(" ");
}

/**
 * Decides which backups to keep and which to delete. The plan is final: a backup is kept
 * exactly when it has a reason, and every reason is listed.
 *
 * @param backups one database's backups, in any order
 * @param policy checked by {@linkcode validatePolicy}: an empty one is never taken to mean
 *   "delete all"
 * @param now the time the `days` rule counts back from, and after which a name is the future
 */
export function planPrune<T extends DatedBackup>(
  backups: readonly T[],
  policy: ValidPolicy,
  now: Date,
  { pinned = [], noGoodBackup = false }: Protections = {},
): PrunePlan<T> {
  const newestFirst = [...backups].sort((a, b) =>
    b.time.getTime() - a.time.getTime() || b.seq - a.seq
  );
  const reasons = newestFirst.map(() => new Set<KeepReason>());
  // The rules see only backups named up to now: indexes into newestFirst of the real ones.
  const real: number[] = [];
  newestFirst.forEach((b, i) => {
    if (isNamedInFuture(b.time, now)) reasons[i].add("future");
    else real.push(i);
  });

  for (const rule of ["last", "count"] as const) {
    const n = policy[rule] ?? 0;
    real.slice(0, n).forEach((i) => reasons[i].add(rule));
  }
  if (policy.days) {
    const cutoff = daysBefore(now, policy.days);
    for (const i of real) {
      if (newestFirst[i].time.getTime() >= cutoff.getTime()) reasons[i].add("days");
    }
  }
  const buckets = { daily: dayKey, weekly: isoWeekKey, monthly: monthKey } as const;
  for (const rule of ["daily", "weekly", "monthly"] as const) {
    let left = policy[rule] ?? 0;
    let lastKey: string | undefined;
    for (const i of real) {
      const key = buckets[rule](newestFirst[i].time);
      // The first backup met in a bucket is its newest; older ones in the same bucket are not.
      if (left > 0 && key !== lastKey) {
        reasons[i].add(rule);
        left--;
      }
      lastKey = key;
    }
  }
  for (const [name, reason] of pinned) {
    const i = newestFirst.findIndex((b) => b.name === name);
    if (i >= 0) reasons[i].add(reason);
  }
  if (noGoodBackup) { for (const r of reasons) r.add("no-good-backup"); }

  const decisions = newestFirst.map((backup, i) => ({
    backup,
    keep: reasons[i].size > 0,
    reasons: [...reasons[i]].sort((a, b) => reasonOrder(a) - reasonOrder(b)),
  }));
  return {
    decisions,
    keep: decisions.filter((d) => d.keep).map((d) => d.backup),
    delete: decisions.filter((d) => !d.keep).map((d) => d.backup),
    future: newestFirst.filter((_, i) => reasons[i].has("future")),
  };
}

const REASON_ORDER: readonly KeepReason[] = [
  "new-backup",
  "newest-verified",
  "no-good-backup",
  "future",
  ...POLICY_RULES,
];

function reasonOrder(reason: KeepReason): number {
  return REASON_ORDER.indexOf(reason);
}

/**
 * The same wall-clock time `days` calendar days before `now`. Counting calendar days rather
 * than 24-hour periods keeps the number of daily backups kept the same across a DST change,
 * as the old scripts' naive local `datetime - timedelta(days=N)` did.
 *
 * Total for any `days`: a count beyond the range of `Date` (about 273,790 years) gives the
 * earliest time there is, so "keep N days" with a huge N keeps everything, rather than an
 * Invalid Date that no backup is newer than, which would keep nothing.
 */
export function daysBefore(now: Date, days: number): Date {
  const cutoff = new Date(
    now.getFullYear(),
    now.getMonth(),
    now.getDate() - days,
    now.getHours(),
    now.getMinutes(),
    now.getSeconds(),
    now.getMilliseconds(),
  );
  return Number.isNaN(cutoff.getTime()) ? new Date(EARLIEST_TIME) : cutoff;
}

/** The earliest time a `Date` can hold (ECMAScript's limit, 8.64e15 ms before 1970). */
const EARLIEST_TIME = -8.64e15;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function dayKey(t: Date): string {
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
}

function monthKey(t: Date): string {
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}`;
}

/**
 * The ISO 8601 week of a local date, e.g. `2026-W01` for Wednesday 31 December 2025: weeks
 * start on Monday and belong to the year of their Thursday.
 */
export function isoWeekKey(t: Date): string {
  // The local calendar date as a UTC date: day arithmetic without DST in the way.
  const d = new Date(Date.UTC(t.getFullYear(), t.getMonth(), t.getDate()));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${pad(week)}`;
}
