/**
 * `litekeep backup [DB]`: a consistent, verified, checksummed snapshot into the backup folder.
 *
 * @module
 */
import { backupDatabase, defaultBackupDir } from "../backup_set/backup.ts";
import { CHECKSUM_CHOICES, type ChecksumChoice } from "../backup_set/checksum.ts";
import type { Context } from "../cli/context.ts";
import { BUSY_TIMEOUT_RANGE, DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { UsageError } from "../errors.ts";
import { CHECKPOINT_MODES, type CheckpointMode } from "../engine/checkpoint.ts";
import { VERIFY_MODES, type VerifyMode } from "../engine/sqlite.ts";
import type { RetentionPolicy } from "../backup_set/retention.ts";
import { logCleanedAndWarnings, tickingProgress } from "../cli/log.ts";
import {
  backupDirPath,
  busyTimeoutFlag,
  databasePath,
  optionalChoice,
  parseStrict,
  positionals,
} from "./_args.ts";
import {
  effectivePolicy,
  finishWithPrune,
  KEEP_HELP,
  KEEP_OPTIONS,
  pruneRequest,
} from "./_keep.ts";
import { showFolderStats } from "./_folder_stats.ts";
import { backupStatus, describeBackup, describeSnapshotMethod } from "./_backup_report.ts";

/** One line for the command list. */
export const summary = "consistent online snapshot of DB into the backup folder, verified";

/** Help text. */
export const usage = `Usage: litekeep backup [DB] [options]

Takes a consistent snapshot of DB (all committed data, WAL included) while the application
keeps writing, verifies it, and writes {stem}_backup_{YYYYMMDD_HHMMSS}.db with a checksum
sidecar into the backup folder.

Options:
  -d, --backup-dir DIR     where backups go (default: config "backupDir", else DB's folder/backups)
  --checksum ALG           sha256 (default), md5 or none
  --verify MODE            full (integrity_check, default), quick (quick_check) or none
  --checkpoint MODE        after the snapshot, run a WAL checkpoint: passive, full, restart, truncate
  --skip-checkpoint        accepted for compatibility: no checkpoint is run (the default)
  --busy-timeout MS        wait this long for a writer's lock (default ${DEFAULT_BUSY_TIMEOUT_MS}, at most ${BUSY_TIMEOUT_RANGE.max})
  --prune                  then delete this database's old backups by the keep rules below
                           (default: config "keep"); only once the new backup is verified
  --cleanup                the old scripts' name for --prune
  --stats-only             make no backup: print the statistics of the backup folder
${KEEP_HELP}
  -h, --help               show this help

Examples:
  litekeep backup instance/gym_system.db
  litekeep backup --checkpoint truncate --json
  litekeep backup instance/gym_system.db --cleanup --keep-days 7 --keep-count 10
`;

const OPTIONS = {
  "backup-dir": { type: "string", short: "d" },
  checksum: { type: "string" },
  verify: { type: "string" },
  checkpoint: { type: "string" },
  "skip-checkpoint": { type: "boolean" },
  "busy-timeout": { type: "string" },
  prune: { type: "boolean" },
  cleanup: { type: "boolean" },
  "stats-only": { type: "boolean" },
  ...KEEP_OPTIONS,
} as const;

/** The typed flags of `backup`. */
export interface BackupFlags {
  db?: string;
  backupDir?: string;
  checksum?: ChecksumChoice;
  verify?: VerifyMode;
  checkpoint?: CheckpointMode;
  busyTimeoutMs?: number;
  /** `--prune` or `--cleanup`. */
  prune: boolean;
  /** The keep flags given, if any. */
  policy?: RetentionPolicy;
  /** `--stats-only`: no backup, the backup folder's statistics. */
  statsOnly: boolean;
}

/** Parses `backup`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): BackupFlags {
  const { values, positionals: rest } = parseStrict("backup", argv, OPTIONS);
  const [db] = positionals("backup", rest, 1);
  const checkpoint = values.checkpoint?.toLowerCase();
  if (checkpoint !== undefined && values["skip-checkpoint"]) {
    throw new UsageError("backup: --checkpoint and --skip-checkpoint contradict each other");
  }
  const { prune, pruneFlag, policy } = pruneRequest("backup", values);
  if (values["stats-only"] && prune) {
    // Refused rather than done both ways: --stats-only makes no backup, and prune runs only
    // after a backup that succeeded, so a "stats" run must not delete files.
    throw new UsageError(
      `backup: --stats-only and ${pruneFlag} cannot go together: --stats-only makes no backup, ` +
        `and ${pruneFlag} prunes only after one`,
      { hint: 'to prune without a backup, run "litekeep prune DIR --keep-days N"' },
    );
  }
  return {
    db,
    backupDir: values["backup-dir"],
    checksum: optionalChoice("backup", "checksum", values.checksum, CHECKSUM_CHOICES),
    verify: optionalChoice("backup", "verify", values.verify, VERIFY_MODES),
    checkpoint: optionalChoice("backup", "checkpoint", checkpoint, CHECKPOINT_MODES),
    busyTimeoutMs: busyTimeoutFlag("backup", values["busy-timeout"]),
    prune,
    policy,
    statsOnly: values["stats-only"] ?? false,
  };
}

/** Runs `backup`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const config = ctx.config;
  const backupDir = backupDirPath(ctx, flags.backupDir);
  if (flags.statsOnly && backupDir !== undefined) return await showFolderStats(ctx, backupDir);
  const db = databasePath(ctx, "backup", flags.db, "litekeep backup instance/app.db");
  if (flags.statsOnly) return await showFolderStats(ctx, defaultBackupDir(db));
  // Refuse an empty policy now: nothing may be touched by a command that is a usage error.
  const policy = flags.prune ? effectivePolicy(flags.policy, config) : undefined;
  const progress = tickingProgress(ctx.log, "backup: starting");
  const result = await backupDatabase({
    db,
    backupDir,
    checksum: flags.checksum ?? config?.checksum,
    verify: flags.verify ?? config?.verify,
    checkpoint: flags.checkpoint,
    busyTimeoutMs: flags.busyTimeoutMs ?? config?.busyTimeout,
    now: ctx.io.now(),
    prune: policy,
    onProgress: (p) => progress.set(backupStatus(p)),
  }).finally(progress.stop);
  ctx.log.endProgress();
  ctx.log.debug(describeSnapshotMethod(result));
  logCleanedAndWarnings(ctx.log, result);
  return finishWithPrune(ctx, "backup", result, () => describeBackup(result));
}
