/**
 * `prune`: deletes the backups a retention policy does not keep, with their sidecars, under the
 * backup folder's lock. Only files named like backups are ever considered; each database's
 * backups (by name stem) are planned on their own; and the newest backup that passes its
 * checksum is kept whatever the policy says, so no policy can leave a database without a
 * backup known to be good.
 *
 * @module
 */
import { basename } from "node:path";
import { cleanTemps, STALE_TEMP_MS, syncDir } from "../files/atomic.ts";
import { type BackupEntry, listBackupFolderOrFail } from "./names.ts";
import { exists } from "../engine/view.ts";
import { CHECKSUM_ALGORITHMS } from "./checksum.ts";
import { describeCause, OperationError, statOrExplain } from "../errors.ts";
import { acquireLocks, dirLockPath } from "../files/lock.ts";
import {
  isNamedInFuture,
  type KeepReason,
  planPrune,
  type RetentionPolicy,
  type ValidPolicy,
} from "./retention.ts";
import { verifyBackup } from "../engine/verify.ts";

/** How to prune. */
export interface PruneOptions {
  /** The backup folder. */
  dir: string;
  /** Checked where it was read (flags or config), by `validatePolicy`. */
  policy: ValidPolicy;
  /** The time the policy counts back from. */
  now: Date;
  /** List the decisions; delete nothing. */
  dryRun?: boolean;
  /** Only the backups of this database stem; by default every stem, each planned on its own. */
  stem?: string;
  /** The backup this run has just made: never deleted, and good without a second hash when verified. */
  newBackup?: { path: string; verified: boolean };
}

/** One backup and what prune decided for it. */
export interface PrunedBackup {
  path: string;
  name: string;
  stem: string;
  /** When it was taken, from its name. */
  time: Date;
  bytes: number;
  keep: boolean;
  /** Why it is kept; empty when deleted. */
  reasons: KeepReason[];
  /** Its sidecar files, which go with it. */
  sidecars: string[];
}

/** What a prune did (or, with `dryRun`, would do). */
export interface PruneResult {
  dir: string;
  dryRun: boolean;
  policy: RetentionPolicy;
  /** Every backup considered, by stem, newest first. */
  backups: PrunedBackup[];
  /** Every file removed: backups and their sidecars. Empty in a dry run. */
  deleted: string[];
  /** Bytes of the backups deleted (or that a dry run would delete). */
  freedBytes: number;
  /** Name of the newest good backup (checksum and `quick_check` pass), one per stem. */
  newestVerified: string[];
  /** Backups named in the future (a wrong clock): kept, and counted by no rule. */
  future: string[];
  /** Leftover temporary files (older than an hour) removed. */
  cleaned: string[];
  /** Backups that failed their check while the newest good one was sought. */
  warnings: string[];
  /** Stems none of whose backups passed: nothing of theirs was deleted. */
  problems: string[];
}

/**
 * Prunes the backup folder `options.dir` under its lock. A dry run takes no lock, by design: it
 * changes nothing, so it works on read-only media and beside a running backup (which a lock
 * would refuse with exit 75). The race that leaves: a backup that a concurrent prune deletes
 * meanwhile may be listed, and then fail its check (reported as a warning).
 *
 * @throws {OperationError} when the folder cannot be read or a file cannot be deleted
 * @throws {BusyError} when another run holds the folder's lock
 */
export async function pruneBackups(options: PruneOptions): Promise<PruneResult> {
  await checkFolder(options.dir);
  if (options.dryRun) return await planWithoutLock(options, true);
  await using _lock = await acquireLocks([
    { path: dirLockPath(options.dir), what: `backup folder "${options.dir}"` },
  ]);
  return await pruneHoldingLock(options);
}

/**
 * Deletes what the plan does not keep, for a caller that holds the folder's lock:
 * {@linkcode pruneBackups}, and `backup --prune`, which prunes inside the same lock as the
 * backup it has just published and verified.
 */
export async function pruneHoldingLock(
  options: Omit<PruneOptions, "dryRun">,
): Promise<PruneResult> {
  const { dir, now } = options;
  const result = await planWithoutLock(options, false);
  for (const b of result.backups) {
    if (b.keep) continue;
    // Sidecars first: a crash in between leaves a backup without a sidecar, which the next
    // prune deletes as planned, rather than a sidecar that no command would ever touch again.
    for (const path of [...b.sidecars, b.path]) {
      await removeFile(path);
      result.deleted.push(path);
    }
  }
  // Holding the folder's lock, only a run that died can own these; an hour spares any
  // writer that does not take the lock.
  result.cleaned = (await cleanTemps(dir, now, STALE_TEMP_MS)).map((p) => basename(p));
  if (result.deleted.length > 0 || result.cleaned.length > 0) await syncDir(dir);
  return result;
}

/**
 * Lists the backups, finds each set's newest good one and plans: reads only, so it needs no
 * lock (a dry run calls it without one; see {@linkcode pruneBackups}).
 */
async function planWithoutLock(
  options: Omit<PruneOptions, "dryRun">,
  dryRun: boolean,
): Promise<PruneResult> {
  const { dir, now } = options;
  const result: PruneResult = {
    dir,
    dryRun,
    policy: options.policy,
    backups: [],
    deleted: [],
    freedBytes: 0,
    newestVerified: [],
    future: [],
    cleaned: [],
    warnings: [],
    problems: [],
  };
  const all = await listBackupFolderOrFail(dir, options.stem);
  const stems = [...new Set(all.map((b) => b.stem))].sort();
  for (const stem of stems) {
    const backups = all.filter((b) => b.stem === stem).reverse();
    // A backup named in the future is never the newest good one: it would stay "newest"
    // until its date came, while the real backups behind it were pruned.
    const real = backups.filter((b) => !isNamedInFuture(b.time, now));
    const good = await newestVerified(real, options.newBackup, result.warnings);
    const pinned: Array<[string, KeepReason]> = [];
    if (good) {
      pinned.push([good.name, "newest-verified"]);
      result.newestVerified.push(good.name);
    }
    if (options.newBackup) pinned.push([basename(options.newBackup.path), "new-backup"]);
    const noGoodBackup = good === undefined;
    const plan = planPrune(backups, options.policy, now, { pinned, noGoodBackup });
    for (const b of plan.future) {
      result.future.push(b.name);
      result.warnings.push(
        `${b.name} is named in the future (after ${now.toISOString()}): its host's clock was ` +
          "wrong when it was taken; it is kept, and not counted as one of the newest backups",
      );
    }
    if (noGoodBackup) {
      result.problems.push(
        `no backup of "${stem}" passes its checksum and SQLite's quick_check, so none of its ` +
          "backups was deleted",
      );
    }
    for (const d of plan.decisions) {
      result.backups.push({
        path: d.backup.path,
        name: d.backup.name,
        stem,
        time: d.backup.time,
        bytes: d.backup.size,
        keep: d.keep,
        reasons: d.reasons,
        sidecars: await sidecarsOf(d.backup.path),
      });
      if (!d.keep) result.freedBytes += d.backup.size;
    }
  }
  return result;
}

/**
 * The newest backup (of `newestFirst`) that is good: its checksum matches its sidecar (when it
 * has one: a set made with `--checksum none` has none) AND SQLite's `quick_check` passes. A
 * checksum alone proves only that the bytes did not change since the sidecar was written; a
 * backup truncated before its sidecar was (re)made matches it and holds no database.
 * Checked newest first, stopping at the first good one, so a healthy set costs one check.
 */
async function newestVerified(
  newestFirst: BackupEntry[],
  newBackup: PruneOptions["newBackup"],
  warnings: string[],
): Promise<BackupEntry | undefined> {
  for (const b of newestFirst) {
    // Verified by the run that made it a moment ago, under the same lock.
    if (newBackup?.verified && b.path === newBackup.path) return b;
    const report = await verifyBackup(b.path, "quick");
    if (report.ok) return b;
    const missing = report.checksum.status === "missing" ? "no sidecar, and " : "";
    warnings.push(`${b.name}: ${missing}${report.problems.join("; ")}`);
  }
  return undefined;
}

async function sidecarsOf(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const ext of CHECKSUM_ALGORITHMS) {
    if (await exists(`${path}.${ext}`)) found.push(`${path}.${ext}`);
  }
  return found;
}

async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return;
    throw new OperationError(`Cannot delete "${path}": ${describeCause(cause)}`, {
      cause,
      hint: "fix the backup folder's permissions, then prune again",
    });
  }
}

async function checkFolder(dir: string): Promise<void> {
  const info = await statOrExplain(
    dir,
    `Cannot prune "${dir}"`,
    'check the path (and "backupDir" in litekeep.json)',
  );
  if (!info.isDirectory) {
    throw new OperationError(`Cannot prune "${dir}": it is a file, not a backup folder`, {
      hint: "give the folder that holds the backups",
    });
  }
}
