/**
 * `backup`: snapshot, verify, checksum, publish, in that order, under the locks of the database
 * and of the backup folder. A backup counts only once it is verified and renamed into place;
 * until then it lives under a temporary name that every command ignores and the next run cleans.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { describeCause, inFolder, LitekeepError, OperationError } from "../errors.ts";
import {
  cleanTemps,
  STALE_TEMP_MS,
  syncFile,
  withTempFile,
  writeFileAtomic,
} from "../files/atomic.ts";
import { claimBackupSet, dbStem, freeBackupPath } from "./names.ts";
import { type ChecksumAlgorithm, hashFile, sidecarLine, sidecarPath } from "./checksum.ts";
import { acquireLock, acquireLocks, dbLockPath, dirLockPath, type Lock } from "../files/lock.ts";
import { pruneHoldingLock, type PruneResult } from "./prune.ts";
import type { ValidPolicy } from "./retention.ts";
import {
  checkpointDatabase,
  type CheckpointMode,
  type CheckpointResult,
} from "../engine/checkpoint.ts";
import {
  snapshotDatabase,
  type SnapshotFallback,
  type SnapshotResult,
} from "../engine/snapshot.ts";
import {
  checkDatabaseFile,
  type CheckMode,
  closeLeavingNoSideFiles,
  type TableCount,
  walWithoutSideFiles,
} from "../engine/sqlite.ts";
import { inspectInWorker, tableNamesOnly } from "../engine/verify.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";

/** How to back up. */
export interface BackupOptions {
  /** The live database. */
  db: string;
  /** Where backups go. @default `<folder of db>/backups` */
  backupDir?: string;
  /** @default "sha256" */
  checksum?: ChecksumAlgorithm | "none";
  /** @default "full" */
  verify?: CheckMode | "none";
  /** A checkpoint to run after the snapshot (never needed for completeness). */
  checkpoint?: CheckpointMode;
  /** @default DEFAULT_BUSY_TIMEOUT_MS */
  busyTimeoutMs?: number;
  /** The time the backup is named after. */
  now: Date;
  /**
   * Prune the database's backups by this policy once the new backup is published and verified,
   * inside the same locks. The new backup is never deleted.
   */
  prune?: ValidPolicy;
  /**
   * The caller has checked `db` and holds a lock on it through a connection: no raw open of the
   * file then (closing one drops every lock of this process; see `SnapshotOptions`).
   */
  sourceChecked?: boolean;
  /** The caller holds `db`'s write lock on a connection (see `SnapshotOptions.writeLockHeld`). */
  writeLockHeld?: boolean;
  /**
   * Told the backup's final paths (the file, and its sidecar when there is one) just before the
   * file takes its name, with no await between: a caller that must not leave the backup behind
   * if a signal ends the run (pull's early backup) marks them there, so no moment exists at
   * which the backup is in place and not marked.
   */
  onNamed?: (paths: string[]) => void;
  /** Memory before the copy's speed (see `SnapshotOptions.leanMemory`). */
  leanMemory?: boolean;
  /** Told what the backup is doing: copy steps, then the check. */
  onProgress?: (progress: BackupProgress) => void;
}

/**
 * Where a backup is: copying (pages so far of total), or then checking the copy (`checking`:
 * not with `--verify none`) and hashing it (`hashing`: only a copy not hashed as it was
 * written, the backup API's).
 */
export type BackupProgress =
  | { phase: "copy"; copiedPages: number; totalPages: number }
  | { phase: "check"; checking: boolean; hashing: boolean };

/** What a backup produced. */
export interface BackupResult {
  database: string;
  file: string;
  sidecar: string | null;
  bytes: number;
  pages: number;
  pageSize: number;
  /** Journal mode of the source database. */
  journalMode: string;
  durationMs: number;
  /**
   * How the pages were copied: `pages` (the page reader) or `backup-api`, and when the backup
   * API was used, why the page reader was not (null otherwise).
   */
  snapshot: { method: SnapshotResult["method"]; fallback: SnapshotFallback | null };
  checksum: { algorithm: ChecksumAlgorithm; hex: string } | null;
  verify: CheckMode | "none";
  tables: TableCount[];
  checkpoint: CheckpointResult | null;
  /** What `prune` did; null without it. */
  prune: PruneResult | null;
  /** Temporary files of killed runs that this run removed. */
  cleaned: string[];
  /** What the user should know although the backup succeeded. */
  warnings: string[];
}

/**
 * For tests only: `afterCopy` runs once the copy is written and synced, before it is checked
 * and its sidecar made (how a test proves the sidecar is the hash of what was written, with no
 * pass reading the file back). Nothing in lib/ sets it.
 */
export const backupTestHooks: {
  afterCopy?: (temp: string) => void | Promise<void>;
  /**
   * Runs once the backup is in place under its name, before its sidecar is written (how a
   * test lands a signal there).
   */
  afterPublish?: (file: string) => void | Promise<void>;
} = {};

/** How a backup's temporary file ends: pull's and restore's temps in the same folder do not. */
const BACKUP_TEMP_SUFFIX = "_backup.db";

/** A backup's temp or one of its SQLite side files. */
function isBackupTemp(name: string): boolean {
  return /_backup\.db(-journal|-wal|-shm)?$/.test(name);
}

/** The backup folder used when none is configured. */
export function defaultBackupDir(db: string): string {
  return join(dirname(db), "backups");
}

/**
 * Backs `options.db` up into the backup folder, under the locks of the database and the folder.
 *
 * @throws {UsageError} for a backup folder whose set of this name belongs to another database,
 *   before anything is touched
 * @throws {OperationError} for a bad source, an unwritable folder, a full disk, a failed check,
 *   or a prune that failed after the backup was written (the message says so)
 * @throws {BusyError} when another run holds a lock or the database stays locked
 */
export async function backupDatabase(options: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const db = options.db;
  const dir = options.backupDir ?? defaultBackupDir(db);
  // Check the source before creating anything, so a wrong path leaves no empty folder behind.
  const header = options.sourceChecked ? undefined : await checkDatabaseFile(db);
  // The snapshot's last connection is read-only: a read-write close at the end removes the
  // -wal and -shm it made beside a database that had none, as the application's own last
  // close would, so a backup leaves the database's folder as it found it.
  const tidy = header !== undefined && await walWithoutSideFiles(db, header);
  await ensureFolder(dir);

  // A database on read-only media (or in a folder of another user) can still be read, so its
  // lock beside it may be done without: a backup only reads it, and the folder lock still
  // keeps two backups from writing the same folder at once.
  await using locks = await acquireLocks([
    { path: dbLockPath(db), what: `database "${db}"`, optional: true },
    { path: dirLockPath(dir), what: `backup folder "${dir}"` },
  ]);
  const warnings = locks.skipped.map((s) =>
    `cannot create the lock file "${s.path}" (${s.reason}): locked the backup folder only, so ` +
    "a backup of this database into another folder at the same time is not kept out"
  );
  try {
    return await backupHoldingLocks({ ...options, backupDir: dir }, { started, warnings });
  } finally {
    if (tidy) closeLeavingNoSideFiles(db, options.busyTimeoutMs);
  }
}

/**
 * Takes the lock of backup folder `dir` (created when missing), for a caller that holds the
 * database's lock itself and then calls {@linkcode backupHoldingLocks}: `pull`, whose backup of
 * the old local database runs inside its own locks.
 *
 * @throws {OperationError} when the folder cannot be created
 * @throws {BusyError} when another run holds its lock (exit 75)
 */
export async function lockBackupFolder(dir: string): Promise<Lock> {
  await ensureFolder(dir);
  return await acquireLock(dirLockPath(dir), `backup folder "${dir}"`);
}

/**
 * {@linkcode backupDatabase} for a caller that holds the database's lock (or did without it)
 * and the lock of the existing folder `options.backupDir`; it takes no lock itself.
 *
 * @param run when the run started and the warnings so far (about locks done without)
 */
export async function backupHoldingLocks(
  options: BackupOptions & { backupDir: string },
  run: { started: number; warnings: string[] } = { started: performance.now(), warnings: [] },
): Promise<BackupResult> {
  const { db, backupDir: dir } = options;
  const checksum = options.checksum ?? "sha256";
  const verify = options.verify ?? "full";
  const stem = dbStem(db);
  // Before anything is written: a second database with the same file name is refused, so its
  // backups never mix with (and its prune never deletes) the first one's.
  const recordSet = await claimBackupSet(dir, stem, db);
  // Holding the folder lock, no live run owns a temporary file here: all are leftovers.
  const cleaned = await cleanTemps(dir, options.now, STALE_TEMP_MS, isBackupTemp);

  try {
    // The backup is complete and synced before its name appears; the sidecar follows it. A
    // crash between the two leaves a verified backup without a sidecar, which verify reports.
    const { value: copy, path: file } = await withTempFile(
      dir,
      `${stem}${BACKUP_TEMP_SUFFIX}`,
      (temp) => copyAndCheck(temp, options, checksum, verify),
      // The free name is chosen once the copy passed: it is the backup's name from then on.
      {
        publishTo: async () => {
          const file = await freeBackupPath(dir, stem, options.now);
          options.onNamed?.(checksum === "none" ? [file] : [file, sidecarPath(file, checksum)]);
          return file;
        },
      },
    );
    const { snap, inspection, hex, bytes } = copy;
    await backupTestHooks.afterPublish?.(file);
    await recordSet();
    let sidecar: string | null = null;
    if (hex !== null && checksum !== "none") {
      sidecar = sidecarPath(file, checksum);
      await writeFileAtomic(sidecar, sidecarLine(hex, file), { mode: snap.mode });
    }
    const checkpoint = options.checkpoint
      ? checkpointDatabase(db, options.checkpoint, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS)
      : null;
    const prune = options.prune
      ? await pruneAfter(file, { dir, policy: options.prune, now: options.now, stem, verify })
      : null;
    return {
      database: db,
      file,
      sidecar,
      bytes,
      pages: snap.pages,
      pageSize: snap.pageSize,
      journalMode: snap.journalMode,
      durationMs: Math.round(performance.now() - run.started),
      snapshot: { method: snap.method, fallback: snap.fallback ?? null },
      checksum: hex === null || checksum === "none" ? null : { algorithm: checksum, hex },
      verify,
      tables: inspection.tables,
      checkpoint,
      prune,
      cleaned: cleaned.map((path) => basename(path)),
      warnings: run.warnings,
    };
  } catch (error) {
    throw inFolder(
      error,
      "Cannot write the backup into",
      dir,
      "free some space or fix the folder's permissions, then run the backup again",
    );
  }
}

/**
 * Snapshots the database into `temp` (hashed as it is written, when the page reader copies),
 * syncs it, then checks it (and hashes the backup API's copy).
 *
 * @throws {OperationError} when the copy fails its check: it is then discarded
 */
async function copyAndCheck(
  temp: string,
  options: BackupOptions,
  checksum: ChecksumAlgorithm | "none",
  verify: CheckMode | "none",
) {
  const db = options.db;
  const snap = await snapshotDatabase(db, temp, {
    busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    sourceChecked: options.sourceChecked,
    writeLockHeld: options.writeLockHeld,
    leanMemory: options.leanMemory,
    // The page reader hashes the copy as it writes it; the backup API's copy is hashed below.
    checksum: checksum === "none" ? undefined : checksum,
    onProgress: (copiedPages, totalPages) =>
      options.onProgress?.({ phase: "copy", copiedPages, totalPages }),
  });
  await syncFile(temp);
  await backupTestHooks.afterCopy?.(temp);
  // The page reader's copy was hashed as it was written (`snap.checksum`). The backup API's is
  // hashed here, from the synced file, while a worker checks it: two cores, one pass each.
  const hashed = checksum === "none" || snap.checksum?.algorithm === checksum;
  options.onProgress?.({ phase: "check", checking: verify !== "none", hashing: !hashed });
  const [inspection, hex] = await Promise.all([
    // --verify none reads nothing back, not even row counts: the copy alone is timed.
    verify === "none" ? tableNamesOnly(temp) : inspectInWorker(temp, verify),
    checksum === "none"
      ? Promise.resolve(null)
      : hashed
      ? Promise.resolve(snap.checksum!.hex)
      : hashFile(temp, checksum),
  ]);
  if (inspection.problems.length > 0) {
    throw new OperationError(
      `Backup of "${db}" failed verification, so it was discarded: ${
        inspection.problems.slice(0, 3).join("; ")
      }`,
      {
        hint:
          `run "litekeep verify" on the database's own backups and "PRAGMA integrity_check" on it`,
      },
    );
  }
  return { snap, inspection, hex, bytes: (await Deno.stat(temp)).size };
}

/** Prunes after a published backup; a failure says that the backup itself was written. */
async function pruneAfter(
  file: string,
  o: { dir: string; policy: ValidPolicy; now: Date; stem: string; verify: string },
): Promise<PruneResult> {
  try {
    return await pruneHoldingLock({
      dir: o.dir,
      policy: o.policy,
      now: o.now,
      stem: o.stem,
      newBackup: { path: file, verified: o.verify !== "none" },
    });
  } catch (error) {
    if (!(error instanceof LitekeepError)) throw error;
    throw new OperationError(`Backup written to "${file}", but pruning failed: ${error.message}`, {
      cause: error,
      hint: error.hint,
    });
  }
}

/** Creates the backup folder (and its parents) when missing. */
async function ensureFolder(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new OperationError(`Cannot create backup folder "${dir}": ${describeCause(cause)}`, {
      cause,
      hint: "choose a writable folder with --backup-dir, or fix the permissions",
    });
  }
}
