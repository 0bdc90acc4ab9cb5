/**
 * `litekeep backup [DB]`: a consistent, verified, checksummed snapshot into the backup folder.
 *
 * @module
 */
import { backupDatabase, type BackupResult, defaultBackupDir } from "../backup_set/backup.ts";
import { CHECKSUM_CHOICES } from "../backup_set/checksum.ts";
import type { Context } from "../cli/context.ts";
import { BUSY_TIMEOUT_RANGE } from "../limits.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, formatDuration, formatTables } from "../cli/format.ts";
import { CHECKPOINT_MODES, type CheckpointMode } from "../engine/checkpoint.ts";
import type { RetentionPolicy } from "../backup_set/retention.ts";
import {
  choiceValue,
  cliPath,
  databasePath,
  intInRange,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";
import {
  describePrune,
  effectivePolicy,
  KEEP_HELP,
  KEEP_OPTIONS,
  keepPolicy,
  reportPrune,
} from "./prune.ts";
import { emptied } from "./checkpoint.ts";
import { showFolderStats } from "./stats.ts";

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
  --busy-timeout MS        wait this long for a writer's lock (default 10000, at most 86400000)
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
  checksum?: "sha256" | "md5" | "none";
  verify?: "full" | "quick" | "none";
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
  if (values.checkpoint !== undefined && values["skip-checkpoint"]) {
    throw new UsageError("backup: --checkpoint and --skip-checkpoint contradict each other");
  }
  const prune = (values.prune || values.cleanup) ?? false;
  // Name the flag the user typed: an old crontab says --cleanup and knows no --prune.
  const pruneFlag = values.cleanup && !values.prune ? "--cleanup" : "--prune";
  const policy = keepPolicy("backup", values);
  if (policy && !prune) {
    // Accepting the rules without pruning would let a crontab believe it prunes.
    const flag = Object.keys(values).find((k) => k.startsWith("keep-"));
    throw new UsageError(`backup: --${flag} needs --prune (or --cleanup)`, {
      hint: "litekeep backup DB --prune --keep-days 7",
    });
  }
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
    checksum: values.checksum === undefined
      ? undefined
      : choiceValue("backup", "checksum", values.checksum, CHECKSUM_CHOICES),
    verify: values.verify === undefined
      ? undefined
      : choiceValue("backup", "verify", values.verify, ["full", "quick", "none"] as const),
    checkpoint: values.checkpoint === undefined
      ? undefined
      : choiceValue("backup", "checkpoint", values.checkpoint.toLowerCase(), CHECKPOINT_MODES),
    busyTimeoutMs: values["busy-timeout"] === undefined
      ? undefined
      : intInRange("backup", "busy-timeout", values["busy-timeout"], BUSY_TIMEOUT_RANGE),
    prune,
    policy,
    statsOnly: values["stats-only"] ?? false,
  };
}

/** Runs `backup`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const config = ctx.config;
  const backupDir = flags.backupDir !== undefined
    ? cliPath(ctx, flags.backupDir)
    : config?.backupDir;
  if (flags.statsOnly && backupDir !== undefined) return await showFolderStats(ctx, backupDir);
  const db = databasePath(ctx, "backup", flags.db, "litekeep backup instance/app.db");
  if (flags.statsOnly) return await showFolderStats(ctx, defaultBackupDir(db));
  // Refuse an empty policy now: nothing may be touched by a command that is a usage error.
  const policy = flags.prune ? effectivePolicy(flags.policy, config) : undefined;
  const started = performance.now();
  let status = "backup: starting";
  const draw = () =>
    ctx.log.progress(`${status} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  // The check runs in a worker, so this timer keeps ticking while it works.
  const ticker = setInterval(draw, 250);
  const result = await backupDatabase({
    db,
    backupDir,
    checksum: flags.checksum ?? config?.checksum,
    verify: flags.verify ?? config?.verify,
    checkpoint: flags.checkpoint,
    busyTimeoutMs: flags.busyTimeoutMs ?? config?.busyTimeout,
    now: ctx.io.now(),
    prune: policy,
    onProgress: (p) => {
      status = p.phase === "copy"
        ? `backup: copying ${Math.floor((p.copiedPages / Math.max(p.totalPages, 1)) * 100)}% ` +
          `(${p.copiedPages}/${p.totalPages} pages)`
        : "backup: checking and hashing the copy";
      draw();
    },
  }).finally(() => clearInterval(ticker));
  ctx.log.endProgress();
  for (const name of result.cleaned) {
    ctx.log.info(`removed leftover of an interrupted run: ${name}`);
  }
  for (const warning of result.warnings) ctx.log.warn(warning);
  if (result.prune) reportPrune(ctx, result.prune);
  const ok = (result.prune?.problems.length ?? 0) === 0;
  if (ctx.json) printJson(ctx, { ok, command: "backup", ...result });
  else if (!ctx.quiet) {
    ctx.io.stdout(describe(result) + (result.prune ? describePrune(result.prune) : ""));
  }
  return ok ? 0 : 1;
}

function describe(r: BackupResult): string {
  const checksum = r.checksum ? `${r.checksum.algorithm} ${r.checksum.hex}` : "none";
  const verified = r.verify === "none"
    ? "not verified (--verify none)"
    : `${r.verify === "full" ? "integrity_check" : "quick_check"}: ok`;
  let text = `Backup written: ${r.file}\n` +
    `  from      ${r.database} (${r.journalMode} mode)\n` +
    `  size      ${formatBytes(r.bytes)} (${r.pages} pages of ${r.pageSize} bytes)\n` +
    `  duration  ${formatDuration(r.durationMs)}\n` +
    `  checksum  ${checksum}\n` +
    `  verified  ${verified}\n`;
  if (r.checkpoint) {
    const c = r.checkpoint;
    const size = (bytes: number | null) => bytes === null ? "none" : formatBytes(bytes);
    // Sizes, not only frames: TRUNCATE reports "0 of 0" once it has emptied the -wal.
    text += c.logFrames === -1
      ? `  checkpoint ${c.mode}: not in WAL mode, nothing to checkpoint\n`
      : `  checkpoint ${c.mode}: ${c.complete ? "done" : "incomplete (readers or writers)"}, ` +
        `-wal ${size(c.walBytesBefore)} -> ${size(c.walBytesAfter)}` +
        (emptied(c) ? "\n" : `, ${c.checkpointedFrames} of ${c.logFrames} frames copied back\n`);
  }
  return `${text}  tables\n${formatTables(r.tables)}`;
}
