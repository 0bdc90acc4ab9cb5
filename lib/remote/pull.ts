/**
 * `pull`: brings a live database from another host to a local file, safely.
 *
 * The copy is received under a temporary name beside the local database, checked (integrity,
 * and the row counts the remote took from the same snapshot), the old local database is backed
 * up as an ordinary backup, and only then is the copy put in place: renamed when there was no
 * local database, else written through SQLite (`writeInto`) so local readers stay safe and no
 * stale `-wal` can meet the new pages; that write may run beside the check, and commits only
 * once the check passed (its verdict in shared memory, see writeInto's `verdict`). A failure at
 * any point leaves the local database as it was.
 * The remote database is only ever opened read-only.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import {
  cleanTemps,
  openToSync,
  removeOnInterrupt,
  removeQuietly,
  STALE_TEMP_MS,
  withTempFile,
} from "../files/atomic.ts";
import {
  backupHoldingLocks,
  type BackupResult,
  defaultBackupDir,
  lockBackupFolder,
} from "../backup_set/backup.ts";
import { type ChecksumAlgorithm } from "../backup_set/checksum.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { describeCause, inFolder, LitekeepError, OperationError } from "../errors.ts";
import { dbStem } from "../backup_set/names.ts";
import { exists } from "../engine/view.ts";
import { pruneBackups, type PruneResult } from "../backup_set/prune.ts";
import type { ValidPolicy } from "../backup_set/retention.ts";
import { acquireLock, dbLockPath } from "../files/lock.ts";
import { type RemoteSpec } from "./ssh.ts";
import { type RemoteOptions } from "./ops.ts";
import { publishNew } from "../engine/publish.ts";
import { VerdictFailed, writeInto } from "../engine/write_into.ts";
import {
  checkDatabaseFile,
  closeLeavingNoSideFiles,
  openReadOnly,
  pragmaValue,
  refuseStaleSideFiles,
  sideFilesOf,
  type TableSummary,
} from "../engine/sqlite.ts";
import type { DatabaseSync } from "node:sqlite";
import { describeSource, type Fetched, fetchInto, type TransferReport } from "./fetch.ts";
import { compareCounts, inspectInWorker } from "../engine/verify.ts";
import type { VerifyMode } from "../engine/sqlite.ts";

/** How the data travels. */
export const PULL_METHODS = ["snapshot", "query", "scp", "delta"] as const;
/** A pull method (`query` is the old name of `snapshot`). */
export type PullMethod = typeof PULL_METHODS[number];

/** Where a pull is. */
export type PullProgress = TransferReport | { phase: "check" | "backup" | "replace" };

/** How to pull. */
export interface PullOptions {
  source: RemoteSpec;
  localDb: string;
  /** `auto` (no --method): delta against a litekeep of protocol 2 with a local copy, else snapshot. */
  method: PullMethod | "auto";
  /** The check of the copy: integrity_check (full), quick_check, or none (row counts only). @default "full" */
  verify?: VerifyMode;
  remote: RemoteOptions;
  /** Where the old local database is backed up. @default `<folder of localDb>/backups` */
  backupDir?: string;
  /** Back the old local database up first. @default true */
  localBackup?: boolean;
  checksum?: ChecksumAlgorithm | "none";
  busyTimeoutMs?: number;
  now: Date;
  /**
   * Prune the local database's backups (those pulls make of it, and any others of its set) by
   * this policy once the pull has succeeded: without it an hourly pull keeps 24 full copies a
   * day, forever. The newest good backup is always kept.
   */
  prune?: ValidPolicy;
  onProgress?: (progress: PullProgress) => void;
  /**
   * For tests: runs once the old local database's backup taken beside the transfer is done
   * (its file), before the write; a commit made here must make the pull take it again.
   */
  onEarlyBackup?: (file: string) => void | Promise<void>;
  /**
   * For tests: runs when the write into the existing local database starts (after the lock's
   * release, before its first step: writeInto's `onGap`).
   */
  onWrite?: () => void;
  /**
   * For tests: the largest copy whose check runs at the same time as the old local database's
   * backup's and beside the write (0: at any size the checks take turns, and the copy's ends
   * before the write). @default CHECKS_TOGETHER_MAX_BYTES (512 MiB)
   */
  checksTogetherMaxBytes?: number;
}

/** What a pull did. */
export interface PullResult {
  source: string;
  localDb: string;
  method: "snapshot" | "scp" | "delta";
  /** The program that took the snapshot on the remote (`scp` for raw copies). */
  tool: string;
  bytes: number;
  /** Pages that travelled (delta method); null when the whole file did. */
  pagesSent: number | null;
  /** Pages of the remote snapshot (null for scp). */
  pages: number | null;
  /** True when the remote's content equalled the local copy's: nothing was written or backed up. */
  unchanged: boolean;
  /** The protocol spoken with the remote (null for scp). */
  protocol: 1 | 2 | null;
  /** How protocol 2's pages were compressed (null otherwise). */
  compress: string | null;
  /** The copy's sha256 (the remote snapshot's); null when unchanged: nothing was copied. */
  sha256: string | null;
  durationMs: number;
  tables: TableSummary[];
  /** The backup of the old local database, if one was made. */
  localBackup: string | null;
  /** True when there was no local database before. */
  created: boolean;
  /**
   * The copy passed its check (a failure throws): "ok" after integrity_check or quick_check,
   * "skipped" with `--verify none` or when nothing changed (the local copy was not touched).
   */
  integrity: "ok" | "skipped";
  /** The check that ran: full, quick, none, or null when nothing changed. */
  verify: VerifyMode | null;
  /**
   * The copy's row counts against the remote's: "match", "differ" (only scp gets this far; the
   * tables are in `rowCountDifferences`), or "unknown" when the remote could not count them.
   */
  rowCounts: "match" | "differ" | "unknown";
  /** The tables whose row counts differ, e.g. "members 344 vs 345". */
  rowCountDifferences: string[];
  /** What pruning the local backups did (`prune`); null without it. */
  prune: PruneResult | null;
  warnings: string[];
}

/**
 * Pulls `options.source` into `options.localDb`.
 *
 * @throws {OperationError} for unreachable hosts, remote errors, failed checks (exit 1)
 * @throws {BusyError} when a lock is held or the remote database stays busy (exit 75)
 */
export async function pullDatabase(options: PullOptions): Promise<PullResult> {
  const started = performance.now();
  const { source, localDb } = options;
  const dir = dirname(localDb);
  const target = await checkLocalTarget(localDb);
  const exists = target !== "missing";
  await using _lock = await acquireLock(dbLockPath(localDb), `database "${localDb}"`);
  // Other runs may own fresh temps here (a backup folder can be the same); old ones are leftovers.
  await cleanTemps(dir, options.now, STALE_TEMP_MS);

  const warnings: string[] = [];
  const verify = options.verify ?? "full";
  // The old local database's backup starts once the remote is known to differ, beside the
  // transfer (see EarlyBackup), at every size (above CHECKS_TOGETHER_MAX_BYTES its check and
  // the copy's take turns, and both come before the write).
  await using early = target === "database" && (options.localBackup ?? true)
    ? new EarlyBackup(options, await sideFilesOf(localDb))
    : undefined;
  try {
    const { value: got } = await withTempFile(
      dir,
      basename(localDb),
      async (temp) => {
        // An empty local file is no delta base: the whole database travels.
        const fetched = await fetchInto(
          temp,
          { ...options, onChanged: early && (() => early.start()) },
          target === "database",
          warnings,
        );
        // Nothing changed: nothing is written, backed up or checked again.
        if (fetched.unchanged) {
          return { fetched, inspection: undefined, differences: [], backupFile: null };
        }
        options.onProgress?.({ phase: "check" });
        // The temp is synced only when it is published by rename (no local database): its
        // content must be on the disk before its name is, or a crash could leave a database of
        // holes under the final name. The sync runs beside the check (both only read it), on a
        // descriptor opened before the check's worker and closed after it (see openToSync).
        // Written INTO an existing database, the temp is only the source of SQLite's backup
        // API, read back from the page cache and deleted after: SQLite's commit makes the
        // target durable, and a crash before it leaves the local database as it was and the
        // temp to the next run's cleanup, so a sync of it would buy nothing.
        using syncer = exists ? undefined : await openToSync(temp);
        const syncing = syncer?.sync();
        syncing?.catch(() => {});
        // The check runs in its worker while the old local database is backed up and the copy
        // written into it (all only read the copy): writeInto's step before the commit waits
        // for the check's verdict, which the worker leaves in shared memory (`verdict`, see
        // writeInto), and a copy that fails rolls the write back, so the local database never
        // takes a copy that failed. Not when the page sizes differ: writeInto then changes the
        // journal mode before the backup, so the check comes first. Nor for large copies
        // (CHECKS_TOGETHER_MAX_BYTES): there the early backup, its check included, ends first
        // (the write waits for it anyway), then the copy's check, then the write: two checks of
        // 1 GB at once took a delta pull to 164 MiB peak RSS, and the copy's check beside the
        // write took 15.8 cpu-s instead of 5.4-6.2 (docs/PERF_NOTES.md).
        const sameSize = exists && await samePageSize(temp, localDb);
        // The copy's size, read once: it sets the checks' order and the verdict's timeout.
        const copyBytes = (await Deno.stat(temp)).size;
        const oneCheckAtATime = exists &&
          copyBytes > (options.checksTogetherMaxBytes ?? CHECKS_TOGETHER_MAX_BYTES);
        const verdict = sameSize && !oneCheckAtATime
          ? new Int32Array(new SharedArrayBuffer(4))
          : undefined;
        // The early backup settles (it never throws: a failed one is taken under the lock).
        if (oneCheckAtATime) await early?.taken();
        const checking = checkCopy(temp, fetched, source, warnings, verify, verdict);
        // Settled below (awaited in every path); this only keeps an early failure from being
        // reported as unhandled while the backup still runs.
        checking.catch(() => {});
        // A page size change needs the database with no other connection open: the early
        // backup's watch is closed, and the backup taken under the lock as before.
        if (!sameSize) await early?.drop();
        if (!verdict) await checking;
        options.onProgress?.({ phase: exists ? "backup" : "replace" });
        // An existing database is written INTO here, with the temp as the source; a missing
        // one gets the temp itself, published below without replacing one that appeared.
        const backupFile = exists
          ? await writeIntoLocal(temp, options, warnings, target === "database", {
            checked: checking,
            verdict,
            copyBytes,
            early,
          })
          : null;
        const checked = await checking;
        await syncing;
        return { fetched, ...checked, backupFile };
      },
      {
        publishTo: localDb,
        publish: exists ? "none" : (temp, to) => publishNew(temp, to, "Cannot pull into"),
        // Synced above, beside the check, when it is published.
        synced: true,
      },
    );
    const { fetched, inspection, differences } = got;
    // An unchanged pull made no backup: nothing new to prune for.
    const prune = options.prune && !fetched.unchanged
      ? await pruneAfterPull(options, options.prune, got.backupFile)
      : null;
    const unchanged = fetched.unchanged ?? false;
    return {
      source: describeSource(source),
      localDb,
      method: fetched.method ?? (options.method === "delta" ? "delta" : "snapshot"),
      tool: fetched.tool,
      bytes: fetched.bytes,
      pagesSent: fetched.pagesSent ?? null,
      pages: fetched.pages ?? null,
      unchanged,
      protocol: fetched.protocol ?? null,
      compress: fetched.compress ?? null,
      sha256: fetched.sha256,
      durationMs: Math.round(performance.now() - started),
      tables: fetched.sameSnapshot || inspection === undefined
        ? fetched.tables
        : inspection.tables.map((t) => ({ ...t, newest: null })),
      localBackup: got.backupFile ?? null,
      created: !exists,
      integrity: unchanged || verify === "none" ? "skipped" : "ok",
      verify: unchanged ? null : verify,
      rowCounts: !fetched.counted ? "unknown" : differences.length > 0 ? "differ" : "match",
      rowCountDifferences: differences,
      prune,
      warnings,
    };
  } catch (error) {
    throw inFolder(
      error,
      "Cannot write the copy into",
      dir,
      "free some space there or fix its permissions; the local database was not changed",
    );
  }
}

/**
 * Prunes the local database's backup set after a successful pull, never the backup it has just
 * made. A failure says that the pull itself succeeded.
 */
async function pruneAfterPull(
  options: PullOptions,
  policy: ValidPolicy,
  backupFile: string | null,
): Promise<PruneResult | null> {
  const dir = options.backupDir ?? defaultBackupDir(options.localDb);
  // A first pull makes no backup, and may find no backup folder: nothing to prune.
  if (backupFile === null && !await exists(dir)) return null;
  try {
    return await pruneBackups({
      dir,
      policy,
      now: options.now,
      stem: dbStem(options.localDb),
      newBackup: backupFile === null ? undefined : { path: backupFile, verified: true },
    });
  } catch (error) {
    if (!(error instanceof LitekeepError)) throw error;
    throw new OperationError(
      `Pulled into "${options.localDb}", but pruning its backups in "${dir}" failed: ` +
        error.message,
      { cause: error, hint: error.hint },
    );
  }
}

/**
 * Checks the synced copy: `integrity_check`, and its row counts against the remote's. A
 * difference fails when both were counted in the same snapshot, else it is a warning.
 *
 * @throws {OperationError} when the copy fails: the local database is not changed
 */
async function checkCopy(
  temp: string,
  fetched: Fetched,
  source: RemoteSpec,
  warnings: string[],
  verify: VerifyMode,
  verdict?: Int32Array,
) {
  // The verdict (see writeInto) fails where this throws: a difference of counts fails only
  // when both were counted in the same snapshot.
  const inspection = await inspectInWorker(
    temp,
    verify,
    verdict && {
      buffer: verdict.buffer as SharedArrayBuffer,
      expectedTables: fetched.counted && fetched.sameSnapshot ? fetched.tables : undefined,
    },
  );
  if (inspection.problems.length > 0) {
    throw new OperationError(
      `The copy of "${describeSource(source)}" failed its integrity check: ${
        inspection.problems.slice(0, 3).join("; ")
      }`,
      {
        // A raw copy is torn by any write on the remote while it travels; a snapshot is not.
        hint: fetched.sameSnapshot
          ? 'the local database was not changed; check the remote with "litekeep info"'
          : "the local database was not changed; the raw copy was most likely torn by the " +
            "application writing meanwhile: run the pull again, or use --method snapshot, " +
            "which is consistent while it writes",
      },
    );
  }
  const differences = fetched.counted ? compareCounts(fetched.tables, inspection.tables) : [];
  if (differences.length > 0) {
    const text = `row counts differ from the remote's: ${differences.join(", ")}`;
    if (fetched.sameSnapshot) {
      throw new OperationError(`The copy of "${describeSource(source)}" does not match: ${text}`, {
        hint: "the local database was not changed; run the pull again",
      });
    }
    warnings.push(`${text} (the remote changed while scp copied, or the copy is torn)`);
  }
  return { inspection, differences };
}

/**
 * Writes the checked copy `temp` INTO the existing local database, first backing the old one
 * up (unless `localBackup` is false) as an ordinary backup.
 *
 * The locks are taken once each: the database's by `pullDatabase`, the backup folder's here,
 * before SQLite's write lock, so a busy folder fails (exit 75) before anything is locked for
 * the application. The backup runs under both (`backupHoldingLocks` takes none itself).
 *
 * The copy's check (`checked`, started by the caller) ends before the write begins, or, with
 * its `verdict` in shared memory, before the write commits (see writeInto): a copy that fails
 * it rolls the write back, and the pull fails with the check's own error.
 *
 * @returns the backup made, or null
 */
async function writeIntoLocal(
  temp: string,
  options: PullOptions,
  warnings: string[],
  hasData: boolean,
  { checked, verdict, copyBytes, early }: {
    checked: Promise<unknown>;
    verdict: Int32Array | undefined;
    /** The copy's size (`temp`'s). */
    copyBytes: number;
    early: EarlyBackup | undefined;
  },
): Promise<string | null> {
  const { localDb } = options;
  const backupDir = options.backupDir ?? defaultBackupDir(localDb);
  // An empty (0-byte) local database has nothing to back up.
  const localBackup = (options.localBackup ?? true) && hasData;
  // The early backup ends with this write: its folder lock is released before any prune.
  await using _early = early;
  // A backup taken beside the transfer is awaited here (and the copy's check with it, unless
  // the write waits for its verdict) before the write lock is taken: under the lock, only its
  // version is compared (see EarlyBackup).
  const taken = await early?.taken();
  // Beside the write, even a check that failed already is left to the write's last step, which
  // rolls it back: one path for every failure (it costs a failed pull one write's time under
  // the lock), and the backup kept for it is discarded there.
  const pending = () => verdict ? Promise.resolve() : checked;
  if (taken) {
    await pending();
    await options.onEarlyBackup?.(taken.file);
  }
  // Held already when the early backup took it.
  await using _folderLock = localBackup && !early?.holdsFolderLock
    ? await lockBackupFolder(backupDir)
    : undefined;
  // The backup of the old local database is taken while its write lock is held (or the early
  // one is accepted there, when no commit came since its instant), and the write is checked
  // to start before any other commit (see writeInto): every commit of a local writer is in
  // that backup or comes after the new content.
  // The copy's check (started by the caller) ends before the write begins (after the backup
  // when there is one, they overlap, else before writeInto is called), or with a verdict,
  // before the write's commit.
  const keep = localBackup
    ? async () => {
      const accepted = await early?.claim();
      if (accepted) return accepted;
      const kept = await backupOldLocal(options, backupDir, true);
      try {
        await pending();
      } catch (error) {
        // The copy failed: no pull happened, so no backup of one is left behind.
        await removeBackup(kept);
        throw error;
      }
      return kept;
    }
    : undefined;
  if (!keep) await pending();
  const written = await writeInto(temp, localDb, {
    busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    doing: "Cannot pull into",
    keep,
    // Nothing is kept of an empty database: it must still be empty when the write takes it.
    mustBeEmpty: !hasData,
    discard: removeBackup,
    onGap: options.onWrite,
    verdict: verdict && { flag: verdict, timeoutMs: verdictTimeoutMs(copyBytes) },
  }).catch(async (error) => {
    // The write was rolled back for the copy's check: the check's own error says why.
    if (error instanceof VerdictFailed) await checked;
    throw error;
  });
  if (!written.backToWal) {
    warnings.push(`"${localDb}" could not go back to WAL mode (another connection is open)`);
  }
  return written.kept?.file ?? null;
}

/**
 * The largest copy whose check runs at the same time as the old local database's backup's,
 * and beside the write: two checks of 1 GB at once (8 MiB page cache each, checkCacheKiB) took
 * the local peak RSS of a delta pull to 164 MiB, one at a time to 115-123 (docs/PERF_NOTES.md);
 * at 500 MB two at once peaked at 129 MiB.
 */
const CHECKS_TOGETHER_MAX_BYTES = 512 << 20;

/**
 * How long the write's last step waits for the check of a copy of `bytes` beside it, holding
 * the local database's write lock: the check's worker reports even when it fails, so this
 * bounds only a worker that died. 120 s, or 1 s per MiB for large copies (integrity_check of
 * 1 GB took ~5 s here and may take ten times that on a Pi): a slow check that is still sound
 * must never run into it.
 */
export function verdictTimeoutMs(bytes: number): number {
  return Math.max(120_000, Math.ceil(bytes / (1 << 20)) * 1000);
}

/**
 * The old local database's backup, taken beside the transfer WITHOUT its write lock (the
 * application's writers go on), and accepted at the write only when it still holds every
 * commit.
 *
 * Why that proves as much as a backup taken under the write lock: `watch`, a connection
 * opened before the backup starts, reads `PRAGMA data_version` first. That value changes, on
 * that connection, whenever any other connection has committed since (SQLite compares the WAL
 * index, or the file's change counter in rollback mode, at each read). The backup's instant
 * comes after that first read, so if the value is the same when it is read again under the
 * write lock (in writeInto's `keep`, where no one can commit), no commit happened between the
 * backup's instant and the lock: the backup is the database's content at the lock, exactly the
 * copy `keep` would take there. writeInto then proves that no commit slips in between the lock
 * and the write. Any other value (or any failure) discards it, and the backup is taken under
 * the lock as before. A checkpoint or a journal mode switch may move the value too: that only
 * costs a second backup.
 *
 * The watch is closed under the lock, before the write, or when dropped; it is only a SQLite
 * connection (no raw descriptor of the database is opened here).
 */
class EarlyBackup implements AsyncDisposable {
  #run: Promise<{ kept: BackupResult; before: string } | undefined> | undefined;
  #watch: DatabaseSync | undefined;
  #lock: AsyncDisposable | undefined;
  #claimed = false;
  #disposed = false;
  /** Ends the backup's removal on a signal (see removeOnInterrupt). */
  #unmark: (() => void) | undefined;

  constructor(readonly options: PullOptions, readonly hadSideFiles: boolean) {}

  /** True once the backup folder's lock is held (the backup was started and got it). */
  get holdsFolderLock(): boolean {
    return this.#lock !== undefined;
  }

  /** Starts the backup (once): the remote differs, the transfer begins. */
  start(): void {
    this.#run ??= this.#take();
  }

  async #take(): Promise<{ kept: BackupResult; before: string } | undefined> {
    const { localDb } = this.options;
    const busyTimeoutMs = this.options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    try {
      this.#watch = openReadOnly(localDb, busyTimeoutMs);
      const before = String(pragmaValue(this.#watch, "data_version"));
      const backupDir = this.options.backupDir ?? defaultBackupDir(localDb);
      this.#lock = await lockBackupFolder(backupDir);
      // Until the write takes it (signals are deferred from then on), a signal that ends the
      // run during the transfer removes it: no pull followed it. Marked as it takes its name,
      // not once the backup returns: a signal while its folder is synced and its sidecar
      // written would leave it, without its sidecar (found by the attack round).
      const kept = await backupOldLocal(this.options, backupDir, false, (paths) => {
        this.#unmark = removeOnInterrupt(paths);
      });
      return { kept, before };
    } catch {
      // A backup that failed after its name was taken is left as before, not removed later.
      this.#unmark?.();
      this.#unmark = undefined;
      // Taken under the lock instead, which reports what is wrong (a busy folder: exit 75).
      this.#closeWatch();
      return undefined;
    }
  }

  /** The backup once taken (undefined when it failed); the backup folder's lock is held. */
  async taken(): Promise<BackupResult | undefined> {
    const got = await this.#run;
    return this.#claimed ? undefined : got?.kept;
  }

  /**
   * Under the database's write lock: the backup if no commit came since its instant (it is
   * then the pull's), else undefined, with the backup removed. Once only: a later attempt of
   * writeInto takes its own.
   */
  async claim(): Promise<BackupResult | undefined> {
    if (this.#claimed || !this.#run) return undefined;
    this.#claimed = true;
    const got = await this.#run;
    if (!got) return undefined;
    let same = false;
    try {
      same = String(pragmaValue(this.#watch!, "data_version")) === got.before;
    } catch {
      // Unreadable: not proved, so not kept.
    }
    this.#closeWatch();
    if (!same) {
      await removeBackup(got.kept);
      return undefined;
    }
    return got.kept;
  }

  /** Gives the early backup up before the write (the write needs no other connection open). */
  async drop(): Promise<void> {
    if (this.#claimed || !this.#run) return;
    this.#claimed = true;
    const got = await this.#run;
    this.#closeWatch();
    if (got) await removeBackup(got.kept);
  }

  #closeWatch(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** Ends it (more than once is harmless): what no pull kept is removed, the lock released. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const got = await this.#run;
    if (this.#watch) {
      this.#closeWatch();
      // The pull ended without a write: our last connection leaves no side files on a
      // database that had none, as fetchPull2's does.
      if (!this.hadSideFiles) {
        closeLeavingNoSideFiles(this.options.localDb, this.options.busyTimeoutMs);
      }
    }
    // A backup that no pull followed (a failure, or one a commit made stale) is not left.
    if (got && !this.#claimed) await removeBackup(got.kept);
    this.#unmark?.();
    await this.#lock?.[Symbol.asyncDispose]();
    this.#lock = undefined;
  }
}

/**
 * The backup of the old local database, as an ordinary backup into `backupDir`, taken while the
 * caller holds the folder's lock and, under writeInto's `keep` (`writeLockHeld`), the database's
 * write lock. Beside the transfer (EarlyBackup) no write lock is held, so the page reader takes
 * its own for the instant, as any backup's does: telling it the lock is held when it is not
 * would let a commit restart the WAL while it reads the WAL-index header and the frames.
 */
function backupOldLocal(
  options: PullOptions,
  backupDir: string,
  writeLockHeld: boolean,
  onNamed?: (paths: string[]) => void,
): Promise<BackupResult> {
  return backupHoldingLocks({
    // Beside the transfer its time is hidden; its memory adds to the transfer's.
    leanMemory: !writeLockHeld,
    db: options.localDb,
    backupDir,
    checksum: options.checksum,
    busyTimeoutMs: options.busyTimeoutMs,
    now: options.now,
    sourceChecked: true,
    writeLockHeld,
    onNamed,
  });
}

async function removeBackup(kept: BackupResult): Promise<void> {
  await removeQuietly(kept.file);
  if (kept.sidecar) await removeQuietly(kept.sidecar);
}

/** True when the copy and the local database have the same page size (headers, offset 16). */
async function samePageSize(temp: string, localDb: string): Promise<boolean> {
  // A 0-byte local database (page size 0 here) has no backup to overlap with.
  const [a, b] = await Promise.all([
    checkDatabaseFile(temp),
    checkDatabaseFile(localDb, "local database", { allowEmpty: true }),
  ]);
  return a.pageSize === b.pageSize;
}

/**
 * Checks where the copy will go: the folder must exist; a file already there must be a SQLite
 * database (it is backed up, then written into).
 *
 * @returns whether a local database is there, and whether it holds anything
 */
async function checkLocalTarget(localDb: string): Promise<"missing" | "empty" | "database"> {
  const dir = dirname(localDb);
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw new Deno.errors.NotADirectory(dir);
  } catch (cause) {
    throw new OperationError(
      `Cannot pull into "${localDb}": folder "${dir}": ${describeCause(cause)}`,
      {
        cause,
        hint: "create the folder first, or give another local path",
      },
    );
  }
  try {
    await Deno.lstat(localDb);
  } catch {
    await refuseStaleSideFiles(localDb, "Cannot pull into");
    return "missing";
  }
  const header = await checkDatabaseFile(localDb, "local database", { allowEmpty: true })
    .catch((error) => {
      throw new OperationError(`${error.message}; it would be replaced by the pull`, {
        cause: error,
        hint: "move it away (it is not a SQLite database) and pull again",
      });
    });
  // A 0-byte file is a database the application has just created: written into through SQLite
  // like any other, with nothing in it to back up.
  return header.size === 0 ? "empty" : "database";
}
