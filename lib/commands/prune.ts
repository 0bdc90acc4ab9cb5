/**
 * `litekeep prune [DIR]`: deletes old backups by retention policy.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { pruneBackups } from "../backup_set/prune.ts";
import type { RetentionPolicy } from "../backup_set/retention.ts";
import { backupDirPath, parseStrict, positionals, printJson } from "./_args.ts";
import {
  describePrune,
  effectivePolicy,
  KEEP_HELP,
  KEEP_OPTIONS,
  keepPolicy,
  pruneJsonError,
  reportPrune,
} from "./_keep.ts";

/** One line for the command list. */
export const summary = "delete old backups by policy (--keep-days/-count/-daily/...), --dry-run";

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
  const dir = backupDirPath(ctx, flags.dir);
  if (dir === undefined) {
    throw new UsageError("prune: no backup folder given", {
      hint: 'name it ("litekeep prune data/backups") or set "backupDir" in litekeep.json',
    });
  }
  const result = await pruneBackups({ dir, policy, now: ctx.io.now(), dryRun: flags.dryRun });
  reportPrune(ctx, result);
  const ok = result.problems.length === 0;
  if (ctx.json) printJson(ctx, { ok, command: "prune", ...result, ...pruneJsonError(result) });
  else if (!ctx.quiet) ctx.io.stdout(describePrune(result));
  return ok ? 0 : 1;
}
