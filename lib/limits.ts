/**
 * The bounds of every number a user can give, on the command line or in `litekeep.json`. A value
 * outside them is a usage error (exit 2) that names the flag or key and the range, rather than a
 * number that silently overflows somewhere deeper: `--keep-days 999999999` once made the cutoff
 * an Invalid Date, so the rule kept nothing, and a busy timeout past 2^31 ms is refused by
 * SQLite's open call (a 32-bit int) long after the run has started.
 *
 * The maxima are far beyond any sensible setting, so they never get in the way of a real one.
 *
 * @module
 */
import type { POLICY_RULES } from "./backup_set/retention.ts";

/** A closed range of whole numbers. */
export interface Range {
  min: number;
  max: number;
}

/** A hundred years of days: more than any backup set lives. */
export const MAX_KEEP_DAYS = 36_500;

/** A million backups: a backup a minute for almost two years. */
export const MAX_KEEP_COUNT = 1_000_000;

/** The range of each retention rule (`--keep-<rule>`, config `keep.<rule>`). */
export const KEEP_RANGES: Record<typeof POLICY_RULES[number], Range> = {
  days: { min: 0, max: MAX_KEEP_DAYS },
  count: { min: 0, max: MAX_KEEP_COUNT },
  last: { min: 0, max: MAX_KEEP_COUNT },
  daily: { min: 0, max: MAX_KEEP_COUNT },
  weekly: { min: 0, max: MAX_KEEP_COUNT },
  monthly: { min: 0, max: MAX_KEEP_COUNT },
};

/**
 * `--busy-timeout` / config `busyTimeout`, in milliseconds: up to one day. SQLite takes the
 * timeout as a 32-bit int (at most about 24.8 days); a day is beyond any cron job's patience.
 */
export const BUSY_TIMEOUT_RANGE: Range = { min: 0, max: 86_400_000 };

/** `--connect-timeout`, in seconds: up to an hour. */
export const CONNECT_TIMEOUT_RANGE: Range = { min: 1, max: 3600 };

/** `--max-age`, in seconds: up to a hundred years, as `--keep-days`. */
export const MAX_AGE_SECONDS = MAX_KEEP_DAYS * 86_400;

/**
 * How long a remote may send nothing before a pull, info or compare gives up, in seconds. A
 * remote snapshot through the python3 or sqlite3 tools is written whole before its first byte
 * travels (minutes for a large database on an SD card), so the default is generous; it exists so
 * that a stuck remote ends the run instead of holding the lock forever.
 */
export const REMOTE_TIMEOUT_RANGE: Range = { min: 1, max: 86_400 };
/** The default of `--remote-timeout`, in seconds. */
export const DEFAULT_REMOTE_TIMEOUT_S = 600;

/**
 * How long SQLite waits for another connection's lock, in milliseconds, when neither
 * `--busy-timeout` nor config `busyTimeout` says: long enough to ride out an application's
 * ordinary write, short enough that cron reports a database that stays locked.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
