/**
 * The keep flags, the policy they make, and the prune report: shared by `prune` and by
 * `backup --prune`, which must read the same rules and say the same things.
 *
 * @module
 */
import type { Config } from "../cli/config.ts";
import type { Context } from "../cli/context.ts";
import { KEEP_RANGES, MAX_KEEP_COUNT, MAX_KEEP_DAYS } from "../limits.ts";
import { formatBytes } from "../cli/format.ts";
import type { PruneResult } from "../backup_set/prune.ts";
import {
  describePolicy,
  POLICY_RULES,
  type RetentionPolicy,
  validatePolicy,
  type ValidPolicy,
} from "../backup_set/retention.ts";
import { UsageError } from "../errors.ts";
import { logCleanedAndWarnings } from "../cli/log.ts";
import { intInRange, jsonError, printJson } from "./_args.ts";

/** Help text for the keep flags. */
export const KEEP_HELP =
  `  --keep-days N            keep backups taken within the last N days (local calendar days)
  --keep-count N           keep the newest N backups (a floor under --keep-days)
  --keep-last N            keep the newest N backups
  --keep-daily N           keep the newest backup of each of the last N days that have backups
  --keep-weekly N          ... of each of the last N ISO weeks that have backups
  --keep-monthly N         ... of each of the last N months that have backups
                           (N: whole numbers; --keep-days up to ${MAX_KEEP_DAYS}, the others up to ${MAX_KEEP_COUNT})`;

/** The keep flags, as `parseStrict` options. */
export const KEEP_OPTIONS = {
  "keep-days": { type: "string" },
  "keep-count": { type: "string" },
  "keep-last": { type: "string" },
  "keep-daily": { type: "string" },
  "keep-weekly": { type: "string" },
  "keep-monthly": { type: "string" },
} as const;

/**
 * The policy given by keep flags, or undefined when none was given.
 *
 * @throws {UsageError} for a value that is not a whole number
 */
export function keepPolicy(
  command: string,
  values: Partial<Record<keyof typeof KEEP_OPTIONS, string>>,
): RetentionPolicy | undefined {
  const policy: RetentionPolicy = {};
  for (const rule of POLICY_RULES) {
    const value = values[`keep-${rule}`];
    if (value !== undefined) {
      policy[rule] = intInRange(command, `keep-${rule}`, value, KEEP_RANGES[rule]);
    }
  }
  return Object.keys(policy).length > 0 ? policy : undefined;
}

/** What `--prune`/`--cleanup` and the keep flags ask of a command that prunes after its work. */
export interface PruneRequest {
  prune: boolean;
  /** The flag the user typed, for messages: an old crontab says --cleanup and knows no --prune. */
  pruneFlag: "--prune" | "--cleanup";
  /** The keep flags given, if any. */
  policy?: RetentionPolicy;
}

/**
 * `--prune` (or the old scripts' `--cleanup`) with the keep flags.
 *
 * @throws {UsageError} for a bad keep value, or keep flags without `--prune`: accepting the
 *   rules without pruning would let a crontab believe it prunes
 */
export function pruneRequest(
  command: string,
  values: { prune?: boolean; cleanup?: boolean } & Parameters<typeof keepPolicy>[1],
): PruneRequest {
  const prune = (values.prune || values.cleanup) ?? false;
  const pruneFlag = values.cleanup && !values.prune ? "--cleanup" : "--prune";
  const policy = keepPolicy(command, values);
  if (policy && !prune) {
    const flag = Object.keys(values).find((k) => k.startsWith("keep-"));
    throw new UsageError(`${command}: --${flag} needs --prune (or --cleanup)`, {
      hint: `litekeep ${command} DB --prune --keep-days 7`,
    });
  }
  return { prune, pruneFlag, policy };
}

/**
 * The policy to apply: the command line's rules when any were given, else the config's
 * `keep`, as a whole: merging the two would let a config rule silently outvote the flags.
 *
 * @throws {UsageError} when the result keeps nothing
 */
export function effectivePolicy(
  flags: RetentionPolicy | undefined,
  config: Config | undefined,
): ValidPolicy {
  return validatePolicy(flags ?? config?.keep ?? {});
}

/** Logs a prune's warnings, problems and cleaned leftovers on stderr. */
export function reportPrune(ctx: Context, result: PruneResult): void {
  logCleanedAndWarnings(ctx.log, result);
  for (const problem of result.problems) {
    ctx.log.error(`Prune of "${result.dir}": ${problem}`, verifyHint(result));
  }
}

function verifyHint(result: PruneResult): string {
  return `run "litekeep verify ${result.dir}"`;
}

/** The `error` of a `--json` object whose prune found problems (`ok` false), or nothing. */
export function pruneJsonError(
  result: PruneResult | null,
): { error?: { message: string; hint: string; exitCode: number } } {
  if (result === null || result.problems.length === 0) return {};
  return jsonError(`Prune of "${result.dir}": ${result.problems.join("; ")}`, verifyHint(result));
}

/** The human report of a prune: every backup with keep/delete and why. */
export function describePrune(r: PruneResult): string {
  // A reduce, not Math.max(...backups): a spread of 200,000 arguments overflows the stack.
  const width = r.backups.reduce((w, b) => Math.max(w, b.name.length), 0);
  const deleteWord = r.dryRun ? "would delete" : "deleted";
  const lines = r.backups.map((b) =>
    `  ${(b.keep ? "keep" : deleteWord).padEnd(deleteWord.length)}  ${b.name.padEnd(width)}  ${
      b.reasons.join(", ")
    }`.trimEnd()
  );
  const kept = r.backups.filter((b) => b.keep).length;
  const gone = r.backups.length - kept;
  return `Prune of ${r.dir} (${describePolicy(r.policy)})${r.dryRun ? ", dry run" : ""}\n` +
    (lines.length ? `${lines.join("\n")}\n` : "  (no backups)\n") +
    `${kept} kept, ${gone} ${deleteWord} (${formatBytes(r.freedBytes)})` +
    `${r.dryRun ? "; nothing was deleted" : ""}\n`;
}

/**
 * Ends a job that may have pruned (backup, pull): the prune's warnings and problems, then the
 * result (one JSON object, or `text` and the prune's table), and the exit code: 1 when a set
 * had no good backup to keep, so cron hears of it.
 */
export function finishWithPrune(
  ctx: Context,
  command: string,
  result: { prune: PruneResult | null },
  text: () => string,
): number {
  if (result.prune) reportPrune(ctx, result.prune);
  const ok = (result.prune?.problems.length ?? 0) === 0;
  // A pull's prune of a folder with nothing in it (a first pull) has nothing to say.
  const quietPrune = command === "pull" && result.prune !== null &&
    result.prune.backups.length + result.prune.cleaned.length === 0;
  if (ctx.json) printJson(ctx, { ok, command, ...result, ...pruneJsonError(result.prune) });
  else if (!ctx.quiet) {
    ctx.io.stdout(text() + (result.prune && !quietPrune ? describePrune(result.prune) : ""));
  }
  return ok ? 0 : 1;
}
