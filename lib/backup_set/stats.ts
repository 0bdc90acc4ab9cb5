/**
 * Statistics of a backup folder (count, sizes, oldest and newest, age of the newest) and of a
 * database (journal mode, pages, WAL, tables), both strictly read-only.
 *
 * A database is never changed by looking at it: the header and the WAL are read as bytes, and
 * SQLite opens the file read-only only when that creates nothing. A WAL-mode database whose
 * `-wal` or `-shm` is missing (the application is not running) would get new side files from
 * any SQLite connection, so SQLite reads it through a hard link (or, across file systems, a
 * copy) in the system temp folder, where the side files land instead.
 *
 * @module
 */
import { anyExists, type BackupEntry, listBackups } from "./names.ts";
import { sidecarPaths } from "./checksum.ts";
import { readAt, readWith } from "../engine/db_file.ts";
import { describeCause, OperationError } from "../errors.ts";
import { isNamedInFuture } from "./retention.ts";
import {
  checkDatabaseFile,
  openReadOnly,
  pragmaValue,
  sqliteFailure,
  type TableCount,
  tableCounts,
} from "../engine/sqlite.ts";
import { tempView } from "../engine/view.ts";

/** Statistics of one database's backups in a folder. */
export interface BackupSetStats {
  /** The database stem the backups are named after. */
  stem: string;
  count: number;
  /** Bytes of the backup files (sidecars not counted). */
  bytes: number;
  oldest: { name: string; time: Date };
  /**
   * The newest backup not named in the future; when every backup is, the newest of them (and
   * `newestAgeSeconds` is null).
   */
  newest: { name: string; time: Date };
  /**
   * Seconds from the newest backup's time (its name) to now, counting no backup named in the
   * future: null when every backup is, so that a monitor never calls them fresh.
   */
  newestAgeSeconds: number | null;
  /** Backups named in the future (a wrong clock, see `isNamedInFuture`), newest last. */
  future: string[];
  /**
   * Size of the oldest and newest backup, and the change per day between them: null when the
   * backups span too little time for a rate to mean anything (see `growthPerDay`).
   */
  trend: { firstBytes: number; lastBytes: number; changeBytes: number; bytesPerDay: number | null };
  /** Backups without a checksum sidecar (`SIDECAR_EXTENSIONS`). */
  withoutSidecar: string[];
}

/** Statistics of a backup folder: one set per database stem. */
export interface BackupFolderStats {
  dir: string;
  count: number;
  bytes: number;
  sets: BackupSetStats[];
}

/**
 * The shortest span from oldest to newest backup over which a growth rate is extrapolated to a
 * day: 24 h, or 12 h with at least `TREND_MIN_BACKUPS`. Two backups two minutes apart (a test
 * run after the nightly one) would otherwise give "+18.9 MiB/day" from one noisy difference.
 */
export const TREND_MIN_SPAN_MS = 24 * 3600_000;
/** The shorter span that is enough with at least `TREND_MIN_BACKUPS` backups. */
export const TREND_SHORT_SPAN_MS = 12 * 3600_000;
/** Backups needed for `TREND_SHORT_SPAN_MS`. */
export const TREND_MIN_BACKUPS = 3;

/**
 * The change per day from `firstBytes` to `lastBytes` over `spanMs` and `count` backups, or null
 * when the span is too short to extrapolate (see `TREND_MIN_SPAN_MS`). Pure.
 */
export function growthPerDay(
  firstBytes: number,
  lastBytes: number,
  spanMs: number,
  count: number,
): number | null {
  const enough = spanMs >= TREND_MIN_SPAN_MS ||
    (spanMs >= TREND_SHORT_SPAN_MS && count >= TREND_MIN_BACKUPS);
  return enough ? Math.round((lastBytes - firstBytes) / (spanMs / 86_400_000)) : null;
}

/**
 * Reads the statistics of the backups in `dir`.
 *
 * @throws {OperationError} when the folder cannot be read
 */
export async function backupFolderStats(dir: string, now: Date): Promise<BackupFolderStats> {
  let backups: BackupEntry[];
  try {
    backups = await listBackups(dir);
  } catch (cause) {
    throw new OperationError(`Cannot read backup folder "${dir}": ${describeCause(cause)}`, {
      cause,
      hint: 'check the path (and "backupDir" in litekeep.json)',
    });
  }
  const stems = [...new Set(backups.map((b) => b.stem))].sort();
  const sets: BackupSetStats[] = [];
  for (const stem of stems) {
    const set = backups.filter((b) => b.stem === stem);
    const first = set[0];
    const real = set.filter((b) => !isNamedInFuture(b.time, now));
    const newest = real.at(-1);
    const last = newest ?? set[set.length - 1];
    const spanMs = last.time.getTime() - first.time.getTime();
    // The backups the trend runs over: from the oldest to `last`, the future ones left out.
    const used = (real.length > 0 ? real : set).length;
    const withoutSidecar: string[] = [];
    for (const b of set) {
      if (!await anyExists(sidecarPaths(b.path))) withoutSidecar.push(b.name);
    }
    sets.push({
      stem,
      count: set.length,
      bytes: set.reduce((sum, b) => sum + b.size, 0),
      oldest: { name: first.name, time: first.time },
      newest: { name: last.name, time: last.time },
      newestAgeSeconds: newest ? Math.floor((now.getTime() - newest.time.getTime()) / 1000) : null,
      future: set.filter((b) => isNamedInFuture(b.time, now)).map((b) => b.name),
      trend: {
        firstBytes: first.size,
        lastBytes: last.size,
        changeBytes: last.size - first.size,
        bytesPerDay: growthPerDay(first.size, last.size, spanMs, used),
      },
      withoutSidecar,
    });
  }
  return {
    dir,
    count: backups.length,
    bytes: sets.reduce((sum, s) => sum + s.bytes, 0),
    sets,
  };
}

/**
 * The stems whose newest backup is older than `maxAgeSeconds` (or that have only backups named
 * in the future), or `["(none)"]` for a folder with no backups at all: a monitor must not call
 * an empty folder fresh.
 */
export function staleSets(stats: BackupFolderStats, maxAgeSeconds: number): string[] {
  if (stats.sets.length === 0) return ["(none)"];
  return stats.sets
    .filter((s) => s.newestAgeSeconds === null || s.newestAgeSeconds > maxAgeSeconds)
    .map((s) => s.stem);
}

/** What the `-wal` file holds, read from its bytes. */
export interface WalInfo {
  bytes: number;
  /** Valid frames up to the last commit: what a reader would see, as `wal_checkpoint` counts. */
  frames: number;
  pageSize: number;
  checkpointSequence: number;
}

/** A file beside (or of) a database, with its times. */
export interface FileStat {
  path: string;
  bytes: number;
  mtime: Date | null;
}

/** Statistics of a database. */
export interface DatabaseStats {
  path: string;
  /** The SQLite library litekeep reads with. */
  sqliteVersion: string;
  /** The SQLite version that last wrote the file (header offset 96). */
  writtenBy: string;
  journalMode: string;
  pageSize: number;
  /** Pages, WAL content included. */
  pageCount: number;
  freelistCount: number;
  wal: WalInfo | null;
  tables: TableCount[];
  /** The database and those of its `-wal`, `-shm`, `-journal` that exist. */
  files: FileStat[];
}

/**
 * Reads a database's statistics without changing it or its WAL and without creating files
 * beside it.
 *
 * @throws {OperationError} for a missing or non-SQLite file
 * @throws {BusyError} when a rollback-journal writer holds it past `busyTimeoutMs`
 */
export async function databaseStats(path: string, busyTimeoutMs: number): Promise<DatabaseStats> {
  const header = await checkDatabaseFile(path);
  const files: FileStat[] = [];
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    try {
      const info = await Deno.stat(path + suffix);
      files.push({ path: path + suffix, bytes: info.size, mtime: info.mtime });
    } catch {
      // Absent: nothing to report.
    }
  }
  const has = (suffix: string) => files.some((f) => f.path === path + suffix);
  const wal = has("-wal") ? await readWalInfo(`${path}-wal`) : null;
  const writtenBy = readWrittenBy(path);
  // With both side files present SQLite creates nothing; otherwise read through a temp link.
  const direct = !header.wal || (has("-wal") && has("-shm"));
  const view = direct ? undefined : await tempView(path, has("-wal"), "litekeep-stats-");
  let db;
  try {
    db = openReadOnly(view?.path ?? path, busyTimeoutMs);
  } catch (error) {
    await view?.[Symbol.asyncDispose]();
    throw sqliteFailure(error, "Cannot open database", path);
  }
  try {
    const row = db.prepare("SELECT sqlite_version() AS v").get() as { v: string };
    return {
      path,
      sqliteVersion: row.v,
      writtenBy,
      journalMode: String(pragmaValue(db, "journal_mode")),
      pageSize: Number(pragmaValue(db, "page_size")),
      pageCount: Number(pragmaValue(db, "page_count")),
      freelistCount: Number(pragmaValue(db, "freelist_count")),
      wal,
      tables: tableCounts(db),
      files,
    };
  } catch (error) {
    throw sqliteFailure(error, "Cannot read database", path);
  } finally {
    db.close();
    await view?.[Symbol.asyncDispose]();
  }
}

/** `3.45.1` from the header's SQLITE_VERSION_NUMBER (offset 96). */
function readWrittenBy(path: string): string {
  const bytes = readAt(path, 96, 4);
  const n = bytes.length === 4 ? new DataView(bytes.buffer).getUint32(0) : 0;
  return `${Math.floor(n / 1_000_000)}.${Math.floor(n / 1000) % 1000}.${n % 1000}`;
}

const WAL_MAGIC_LE = 0x377f0682;
const WAL_MAGIC_BE = 0x377f0683;

/**
 * Reads a `-wal` file's header and counts its valid frames as SQLite's recovery does: salts
 * that match the header and a running checksum that holds, up to the last commit frame. Frames
 * beyond that are leftovers of an earlier WAL generation or a torn write. Read through
 * db_file.ts, so a connection of this process on the database keeps its locks.
 */
export function readWalInfo(walPath: string): Promise<WalInfo> {
  return Promise.resolve(readWith(walPath, (read, bytes) => {
    const empty = { bytes, frames: 0, pageSize: 0, checkpointSequence: 0 };
    const header = read(0, 32);
    if (header.length < 32) return empty;
    const h = new DataView(header.buffer);
    const magic = h.getUint32(0);
    if (magic !== WAL_MAGIC_LE && magic !== WAL_MAGIC_BE) return empty;
    const bigEndian = magic === WAL_MAGIC_BE;
    const pageSize = h.getUint32(8) === 1 ? 65536 : h.getUint32(8);
    const checkpointSequence = h.getUint32(12);
    let sum = walChecksum(header.subarray(0, 24), bigEndian, [0, 0]);
    if (sum[0] !== h.getUint32(24) || sum[1] !== h.getUint32(28)) {
      return { ...empty, pageSize, checkpointSequence };
    }
    let frames = 0;
    let committed = 0;
    for (let at = 32;; at += 24 + pageSize) {
      const frame = read(at, 24 + pageSize);
      if (frame.length < 24 + pageSize) break;
      const f = new DataView(frame.buffer);
      if (f.getUint32(8) !== h.getUint32(16) || f.getUint32(12) !== h.getUint32(20)) break;
      sum = walChecksum(frame.subarray(0, 8), bigEndian, sum);
      sum = walChecksum(frame.subarray(24), bigEndian, sum);
      if (sum[0] !== f.getUint32(16) || sum[1] !== f.getUint32(20)) break;
      frames++;
      // A non-zero "database size after commit" marks the last frame of a transaction.
      if (f.getUint32(4) !== 0) committed = frames;
    }
    return { bytes, frames: committed, pageSize, checkpointSequence };
  }));
}

/** SQLite's WAL checksum: Fibonacci-weighted sums of 32-bit words, in the WAL's byte order. */
function walChecksum(data: Uint8Array, bigEndian: boolean, seed: [number, number]): [
  number,
  number,
] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let [s0, s1] = seed;
  for (let i = 0; i < data.byteLength; i += 8) {
    s0 = (s0 + view.getUint32(i, !bigEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, !bigEndian) + s0) >>> 0;
  }
  return [s0, s1];
}
