/**
 * `litekeep prune [DIR]`: deletes old backups by retention policy. Also the keep flags and the
 * report that `backup --prune` shares.
 *
 * @module
 */
import type { Config } from "../cli/config.ts";
import type { Context } from "../cli/context.ts";
import { KEEP_RANGES } from "../limits.ts";
import { UsageError } from "../errors.ts";
import { formatBytes } from "../cli/format.ts";
import { pruneBackups, type PruneResult } from "../backup_set/prune.ts";
import {
  describePolicy,
  POLICY_RULES,
  type RetentionPolicy,
  validatePolicy,
  type ValidPolicy,
} from "../backup_set/retention.ts";
import { cliPath, intInRange, parseStrict, positionals, printJson } from "./_args.ts";

/** One line for the command list. */
export const summary = "delete old backups by policy (--keep-days/-count/-daily/...), --dry-run";

/** Help text for the keep flags, shared with `backup`. */
export const KEEP_HELP =
  `  --keep-days N            keep backups taken within the last N days (local calendar days)
  --keep-count N           keep the newest N backups (a floor under --keep-days)
  --keep-last N            keep the newest N backups
  --keep-daily N           keep the newest backup of each of the last N days that have backups
  --keep-weekly N          ... of each of the last N ISO weeks that have backups
  --keep-monthly N         ... of each of the last N months that have backups
                           (N: whole numbers; --keep-days up to 36500, the others up to 1000000)`;

/** Help text. */
export const usage = `Usage: litekeep prune [DIR] [options]

Deletes the backups in DIR (default: config "backupDir") that no rule keeps, with their
sidecars. A backup is kept if ANY rule keeps it; its time comes from its name. The newest
good backup (checksum and quick_check pass) is always kept; a backup named more than 2 h in
the future is kept, reported, and counted by no rule; files not named like backups are never
touched; temporary leftovers older than an hour are removed. Each database's backups (by
name) are pruned on their own. Rules on the command line replace the config's "keep".

Options:
${KEEP_HELP}
  --dry-run                list every backup with keep/delete and the rules that keep it
  -h, --help               show this help

Examples:
  litekeep prune data/backups/database --keep-days 7 --keep-count 10
  litekeep prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
`;

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

/** The typed flags of `prune`. */
export interface PruneFlags {
  dir?: string;
  policy?: RetentionPolicy;
  dryRun: boolean;
}

/** Parses `prune`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): PruneFlags {
  const { values, positionals: rest } = parseStrict("prune", argv, {
    ...KEEP_OPTIONS,
    "dry-run": { type: "boolean" },
  });
  const [dir] = positionals("prune", rest, 1);
  return { dir, policy: keepPolicy("prune", values), dryRun: values["dry-run"] ?? false };
}

/** Runs `prune`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const policy = effectivePolicy(flags.policy, ctx.config);
  const dir = flags.dir !== undefined ? cliPath(ctx, flags.dir) : ctx.config?.backupDir;
  if (dir === undefined) {
    throw new UsageError("prune: no backup folder given", {
      hint: 'name it ("litekeep prune data/backups") or set "backupDir" in litekeep.json',
    });
  }
  const result = await pruneBackups({ dir, policy, now: ctx.io.now(), dryRun: flags.dryRun });
  reportPrune(ctx, result);
  const ok = result.problems.length === 0;
  if (ctx.json) printJson(ctx, { ok, command: "prune", ...result });
  else if (!ctx.quiet) ctx.io.stdout(describePrune(result));
  return ok ? 0 : 1;
}

/** Logs a prune's warnings, problems and cleaned leftovers on stderr. */
export function reportPrune(ctx: Context, result: PruneResult): void {
  for (const name of result.cleaned) {
    ctx.log.info(`removed leftover of an interrupted run: ${name}`);
  }
  for (const warning of result.warnings) ctx.log.warn(warning);
  for (const problem of result.problems) {
    ctx.log.error(`Prune of "${result.dir}": ${problem}`, `run "litekeep verify ${result.dir}"`);
  }
}

/** The human report of a prune: every backup with keep/delete and why. */
export function describePrune(r: PruneResult): string {
  const width = Math.max(0, ...r.backups.map((b) => b.name.length));
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
