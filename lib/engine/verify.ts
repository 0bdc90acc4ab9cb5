/**
 * Proving backups sound: the checksum against the sidecar, SQLite's integrity check, and the
 * tables with their row counts. Backups are opened immutable, so verifying never modifies a
 * backup and never creates side files beside it.
 *
 * @module
 */
import { connectionOpened } from "./db_file.ts";
import { describeCause, OperationError, statOrExplain } from "../errors.ts";
import { selfContainedCopy } from "./snapshot.ts";
import { listBackups } from "../backup_set/names.ts";
import { hashFile, readSidecar, SIDECAR_EXTENSIONS } from "../backup_set/checksum.ts";
import {
  checkDatabaseFile,
  type CheckMode,
  integrityProblems,
  openBackupFile,
  pragmaValue,
  sideFiles,
  type TableCount,
  tableCounts,
  userTables,
  type VerifyMode,
} from "./sqlite.ts";

/** What SQLite says of one database file. */
export interface Inspection {
  /** Integrity problems; empty when sound or when not checked. */
  problems: string[];
  tables: TableCount[];
  pageSize: number;
  pageCount: number;
}

/**
 * Opens a file that nothing writes (a backup, or an unpublished snapshot) read-only and runs the
 * integrity check (`mode`), then counts the rows of every table. The file must be in
 * rollback-journal mode (see `inspectWalFile` otherwise): then nothing is written beside it.
 *
 * @throws {OperationError} when the file cannot be read as a database at all
 */
export function inspectFile(path: string, mode: VerifyMode): Inspection {
  let db;
  try {
    db = openBackupFile(path);
  } catch (cause) {
    throw new OperationError(`Cannot open "${path}": ${describeCause(cause)}`, { cause });
  }
  try {
    db.exec(`PRAGMA cache_size = -${checkCacheKiB(sizeOf(path))}`);
    const problems = mode === "none" ? [] : integrityProblems(db, mode);
    return {
      problems,
      tables: tableCounts(db),
      pageSize: Number(pragmaValue(db, "page_size")),
      pageCount: Number(pragmaValue(db, "page_count")),
    };
  } catch (cause) {
    return {
      problems: [`cannot be read: ${describeCause(cause)}`],
      tables: [],
      pageSize: 0,
      pageCount: 0,
    };
  } finally {
    db.close();
  }
}

/**
 * The page cache (KiB) of an integrity check of a file of `bytes`: 1/128 of the file, between
 * 2 and 8 MiB.
 *
 * integrity_check walks every b-tree and its indexes, and re-reads the pages that fall out of
 * its cache. Measured on the 1 GB gym database (one check, its CPU time): 2 MiB 7.0-7.8 s
 * (2 s of it the system's, re-reading), 4 MiB 5.0-5.2 s, 8 MiB 4.9-5.3 s, 16 MiB 5.3-5.6 s; so
 * 1/256 of the file is where more cache stops paying, and 1/128 keeps twice that. The cap keeps
 * a check's memory (its worker, 10-16 MiB, plus this) bounded at any size: a pull of 1 GB runs
 * two of them, one after the other (see docs/PERF_NOTES.md, "Large pulls").
 */
export function checkCacheKiB(bytes: number): number {
  return Math.min(CHECK_CACHE_MAX_KIB, Math.max(2 << 10, Math.floor(bytes / 128 / 1024)));
}

/** The largest page cache of an integrity check (see {@linkcode checkCacheKiB}). */
export const CHECK_CACHE_MAX_KIB = 8 << 10;

function sizeOf(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** The tables of a file without reading them (row counts null): what `--verify none` reports. */
export function tableNamesOnly(path: string): Promise<Inspection> {
  const db = openBackupFile(path);
  try {
    return Promise.resolve({
      problems: [],
      tables: userTables(db).map(({ name }) => ({ name, rows: null })),
      pageSize: Number(pragmaValue(db, "page_size")),
      pageCount: Number(pragmaValue(db, "page_count")),
    });
  } finally {
    db.close();
  }
}

/** What `check_worker.ts` is asked. */
export interface InspectRequest {
  path: string;
  mode: VerifyMode;
  verdict?: Verdict;
}

/** The values of a verdict in shared memory (see {@linkcode Verdict}). */
export const VERDICT = { pending: 0, passed: 1, failed: 2 } as const;

/**
 * Where a check running beside a write (writeInto's `verdict`) leaves its verdict: `buffer`
 * (an Int32Array's SharedArrayBuffer) gets `VERDICT.passed` when the file has no integrity
 * problems and, when `expectedTables` is given, row counts equal to those (`compareCounts`),
 * else `VERDICT.failed`.
 */
export interface Verdict {
  buffer: SharedArrayBuffer;
  expectedTables?: Array<{ name: string; rows: number | null }>;
}

/**
 * `inspectFile()` in a worker thread: the same result, while the caller's thread hashes the file
 * or draws progress. The worker module is bundled into the binary by the compile task.
 *
 * @throws {OperationError} when the file cannot be read as a database at all
 */
export function inspectInWorker(
  path: string,
  mode: VerifyMode,
  verdict?: Verdict,
): Promise<Inspection> {
  // The worker's connection is in this process but not in this isolate's db_file table: count
  // it here, so hashing the same file meanwhile closes none of its descriptors (see db_file.ts).
  const release = connectionOpened(path);
  const worker = new Worker(new URL("./check_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise<Inspection>((resolve, reject) => {
    worker.onmessage = (
      event: MessageEvent<{ ok: true; inspection: Inspection } | { ok: false; message: string }>,
    ) => {
      if (event.data.ok) resolve(event.data.inspection);
      else reject(new OperationError(event.data.message));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new OperationError(`Cannot check "${path}": ${event.message}`));
    };
    worker.postMessage({ path, mode, verdict } satisfies InspectRequest);
  }).finally(() => {
    worker.terminate();
    release();
  });
}

/** Names of tables whose row counts differ between the remote and the copy. */
export function compareCounts(
  remote: Array<{ name: string; rows: number | null }>,
  local: Array<{ name: string; rows: number | null }>,
): string[] {
  const mine = new Map(local.map((t) => [t.name, t.rows]));
  const differences: string[] = [];
  for (const t of remote) {
    if (!mine.has(t.name)) differences.push(`${t.name} missing`);
    else if (t.rows !== mine.get(t.name)) {
      differences.push(`${t.name} ${t.rows} vs ${mine.get(t.name)}`);
    }
  }
  for (const name of mine.keys()) {
    if (!remote.some((t) => t.name === name)) differences.push(`${name} extra`);
  }
  return differences;
}

/**
 * Inspects a file whose header says WAL (backups made by other tools) without touching it:
 * SQLite would create `-wal`/`-shm` beside it, so a copy in the system temp folder, switched to
 * rollback-journal mode, is checked instead. A `-wal` beside the file is not part of it.
 */
export async function inspectWalFile(path: string, mode: VerifyMode): Promise<Inspection> {
  await using copy = await selfContainedCopy(path);
  return await inspectInWorker(copy.path, mode);
}

/** The checksum part of a verification. */
export type ChecksumCheck =
  | { status: "ok" | "mismatch"; algorithm: string; expected: string; actual: string }
  | { status: "missing" }
  | { status: "unreadable"; sidecar: string };

/** The verification of one backup file. */
export interface VerifyReport {
  path: string;
  ok: boolean;
  checksum: ChecksumCheck;
  /**
   * The integrity check's result: `ok`, `failed` (it found problems), or `skipped` when it
   * could not run (the file is not a database; `problems` says why).
   */
  integrity: "ok" | "failed" | "skipped";
  /** The integrity check run: `full` (`integrity_check`) or `quick` (`quick_check`). */
  integrityMode: CheckMode;
  /** Why the backup failed; empty when ok. */
  problems: string[];
  /** Things worth knowing that do not fail the backup (a missing sidecar). */
  warnings: string[];
  tables: TableCount[];
  bytes: number;
}

/** Verifies one backup file. Never throws for a bad backup: the report says what is wrong. */
export async function verifyBackup(path: string, mode: CheckMode): Promise<VerifyReport> {
  const report: VerifyReport = {
    path,
    ok: false,
    checksum: { status: "missing" },
    integrity: "skipped",
    integrityMode: mode,
    problems: [],
    warnings: [],
    tables: [],
    bytes: 0,
  };
  // Checked through a copy when SQLite would not read the file alone: a WAL header, or a
  // -wal/-journal beside it that SQLite would replay (it belongs to no backup).
  let throughCopy = false;
  try {
    const header = await checkDatabaseFile(path, "backup");
    report.bytes = header.size;
    if (header.wal) {
      throughCopy = true;
      report.warnings.push(
        "the file is in WAL mode (not self-contained); it was checked through a temporary copy",
      );
    }
    for (const side of await sideFiles(path)) {
      throughCopy = true;
      report.warnings.push(`"${side}" beside it is not part of the backup and was ignored`);
    }
  } catch (error) {
    report.problems.push(error instanceof Error ? error.message : String(error));
    return report;
  }
  const sidecar = await readSidecar(path);
  // The checksum (this thread) and the integrity check (a worker) run side by side.
  const inspecting = throughCopy ? inspectWalFile(path, mode) : inspectInWorker(path, mode);
  const hashing = sidecar?.hex ? hashFile(path, sidecar.algorithm) : Promise.resolve("");
  const [inspection, actual] = await Promise.all([inspecting, hashing]);
  if (!sidecar) {
    report.warnings.push(
      `no ${SIDECAR_EXTENSIONS.join(" or ")} sidecar: the checksum was not checked`,
    );
  } else if (!sidecar.hex) {
    report.checksum = { status: "unreadable", sidecar: sidecar.path };
    report.problems.push(
      sidecar.unreadable
        ? `sidecar "${sidecar.path}" cannot be read: ${sidecar.unreadable}`
        : `sidecar "${sidecar.path}" is not in sha256sum/md5sum format`,
    );
  } else {
    const status = actual === sidecar.hex ? "ok" : "mismatch";
    report.checksum = { status, algorithm: sidecar.algorithm, expected: sidecar.hex, actual };
    if (status === "mismatch") {
      report.problems.push(
        `${sidecar.algorithm} mismatch: the file changed since the backup was taken`,
      );
    }
  }
  report.tables = inspection.tables;
  for (const problem of inspection.problems) report.problems.push(`integrity: ${problem}`);
  report.integrity = inspection.problems.length === 0 ? "ok" : "failed";
  report.ok = report.problems.length === 0;
  return report;
}

/**
 * Expands the paths given to `verify`: a folder means every backup in it (oldest first).
 *
 * @throws {OperationError} naming a path that does not exist or cannot be read
 */
export async function expandBackupPaths(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await statOrExplain(path, `Cannot verify "${path}"`, "check the path");
    if (!info.isDirectory) {
      files.push(path);
      continue;
    }
    let backups;
    try {
      backups = await listBackups(path);
    } catch (cause) {
      throw new OperationError(`Cannot list backups in "${path}": ${describeCause(cause)}`, {
        cause,
      });
    }
    if (backups.length === 0) {
      throw new OperationError(`No backups in folder "${path}"`, {
        hint: "backups are named {stem}_backup_YYYYMMDD_HHMMSS.db",
      });
    }
    for (const b of backups) files.push(b.path); // a spread of 200,000 overflows the stack
  }
  return files;
}
