/**
 * `pull`: brings a live database from another host to a local file, safely.
 *
 * The copy is received under a temporary name beside the local database, checked (integrity,
 * and the row counts the remote took from the same snapshot), the old local database is backed
 * up as an ordinary backup, and only then is the copy put in place: renamed when there was no
 * local database, else written through SQLite (`writeInto`) so local readers stay safe and no
 * stale `-wal` can meet the new pages. A failure at any point leaves the local database as it was.
 * The remote database is only ever opened read-only.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import {
  cleanTemps,
  removeQuietly,
  removeTempDb,
  STALE_TEMP_MS,
  syncFile,
  tempPathFor,
} from "../files/atomic.ts";
import { backupDatabase } from "../backup_set/backup.ts";
import { type ChecksumAlgorithm, hashFile } from "../backup_set/checksum.ts";
import { describeCause, inFolder, OperationError } from "../errors.ts";
import { acquireLock, dbLockPath } from "../files/lock.ts";
import { run } from "../proc.ts";
import { type RemoteSpec, scpArgs, sshFailure } from "./ssh.ts";
import {
  normalize,
  RemoteError,
  remoteFailure,
  remoteInfo,
  type RemoteOp,
  type RemoteOptions,
  startRemote,
} from "./ops.ts";
import { makeSelfContained, snapshotDatabase } from "../engine/snapshot.ts";
import { publishNew, writeInto } from "../engine/write_into.ts";
import {
  checkDatabaseFile,
  openBackupFile,
  refuseStaleSideFiles,
  tableSummaries,
  type TableSummary,
} from "../engine/sqlite.ts";
import {
  pageHashes,
  readHeader,
  receiveBody,
  receiveDelta,
  type TransferProgress,
} from "./protocol.ts";
import { type SnapshotHeader } from "./headers.ts";
import { type StreamReader } from "./stream.ts";
import { inspectInWorker } from "../engine/verify.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";

/** How the data travels. */
export const PULL_METHODS = ["snapshot", "query", "scp", "delta"] as const;
/** A pull method (`query` is the old name of `snapshot`). */
export type PullMethod = typeof PULL_METHODS[number];

/** Where a pull is. */
export type PullProgress =
  | { phase: "transfer"; received: number; expected: number }
  | { phase: "check" | "backup" | "replace" };

/** How to pull. */
export interface PullOptions {
  source: RemoteSpec;
  localDb: string;
  method: PullMethod;
  remote: RemoteOptions;
  /** Where the old local database is backed up. @default `<folder of localDb>/backups` */
  backupDir?: string;
  /** Back the old local database up first. @default true */
  localBackup?: boolean;
  checksum?: ChecksumAlgorithm | "none";
  busyTimeoutMs?: number;
  now: Date;
  onProgress?: (progress: PullProgress) => void;
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
  sha256: string;
  durationMs: number;
  tables: TableSummary[];
  /** The backup of the old local database, if one was made. */
  localBackup: string | null;
  /** True when there was no local database before. */
  created: boolean;
  /** The copy passed `integrity_check` (a failure throws, so it is always "ok" here). */
  integrity: "ok";
  /**
   * The copy's row counts against the remote's: "match", "differ" (only scp gets this far; the
   * tables are in `rowCountDifferences`), or "unknown" when the remote could not count them.
   */
  rowCounts: "match" | "differ" | "unknown";
  /** The tables whose row counts differ, e.g. "members 344 vs 345". */
  rowCountDifferences: string[];
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
  const exists = await checkLocalTarget(localDb);
  await using _lock = await acquireLock(dbLockPath(localDb), `database "${localDb}"`);
  // Other runs may own fresh temps here (a backup folder can be the same); old ones are leftovers.
  await cleanTemps(dir, options.now, STALE_TEMP_MS);

  const temp = tempPathFor(dir, basename(localDb));
  const warnings: string[] = [];
  try {
    let fetched: Fetched;
    if (options.method === "scp") fetched = await fetchRaw(options, temp, warnings);
    else if (options.method === "delta" && exists) {
      fetched = await fetchDelta(options, temp, warnings);
    } else {
      if (options.method === "delta") {
        warnings.push("no local copy yet: the whole database travels");
      }
      fetched = await fetchSnapshot(options, temp);
    }

    options.onProgress?.({ phase: "check" });
    await syncFile(temp);
    const inspection = await inspectInWorker(temp, "full");
    if (inspection.problems.length > 0) {
      throw new OperationError(
        `The copy of "${describe(source)}" failed its integrity check: ${
          inspection.problems.slice(0, 3).join("; ")
        }`,
        { hint: 'the local database was not changed; check the remote with "litekeep info"' },
      );
    }
    const differences = fetched.counted ? compareCounts(fetched.tables, inspection.tables) : [];
    if (differences.length > 0) {
      const text = `row counts differ from the remote's: ${differences.join(", ")}`;
      if (fetched.sameSnapshot) {
        throw new OperationError(`The copy of "${describe(source)}" does not match: ${text}`, {
          hint: "the local database was not changed; run the pull again",
        });
      }
      warnings.push(`${text} (the remote changed while scp copied, or the copy is torn)`);
    }

    let backupFile: string | null = null;
    options.onProgress?.({ phase: exists ? "backup" : "replace" });
    if (exists) {
      // The backup of the old local database is taken while its write lock is held, and the
      // write is checked to start before any other commit (see writeInto): every commit of a
      // local writer is in that backup or comes after the new content.
      const keep = options.localBackup ?? true
        ? () =>
          backupDatabase({
            db: localDb,
            backupDir: options.backupDir,
            checksum: options.checksum,
            busyTimeoutMs: options.busyTimeoutMs,
            now: options.now,
            sourceChecked: true,
          })
        : undefined;
      const written = await writeInto(temp, localDb, {
        busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
        doing: "Cannot pull into",
        keep,
        discard: async (kept) => {
          await removeQuietly(kept.file);
          if (kept.sidecar) await removeQuietly(kept.sidecar);
        },
      });
      backupFile = written.kept?.file ?? null;
      if (!written.backToWal) {
        warnings.push(`"${localDb}" could not go back to WAL mode (another connection is open)`);
      }
    } else await publishNew(temp, localDb, "Cannot pull into");

    return {
      source: describe(source),
      localDb,
      method: options.method === "query" ? "snapshot" : options.method,
      tool: fetched.tool,
      bytes: fetched.bytes,
      pagesSent: fetched.pagesSent ?? null,
      sha256: fetched.sha256,
      durationMs: Math.round(performance.now() - started),
      tables: fetched.sameSnapshot
        ? fetched.tables
        : inspection.tables.map((t) => ({ ...t, newest: null })),
      localBackup: backupFile,
      created: !exists,
      integrity: "ok",
      rowCounts: !fetched.counted ? "unknown" : differences.length > 0 ? "differ" : "match",
      rowCountDifferences: differences,
      warnings,
    };
  } catch (error) {
    throw inFolder(
      error,
      "Cannot write the copy into",
      dir,
      "free some space there or fix its permissions; the local database was not changed",
    );
  } finally {
    await removeTempDb(temp);
  }
}

/** `host:path`. */
function describe(spec: RemoteSpec): string {
  return `${spec.host}:${spec.path}`;
}

/**
 * Checks where the copy will go: the folder must exist; a file already there must be a SQLite
 * database (it is backed up, then written into).
 *
 * @returns true when a local database exists
 */
async function checkLocalTarget(localDb: string): Promise<boolean> {
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
    return false;
  }
  await checkDatabaseFile(localDb, "local database").catch((error) => {
    throw new OperationError(`${error.message}; it would be replaced by the pull`, {
      cause: error,
      hint: "move it away (it is not a SQLite database) and pull again",
    });
  });
  return true;
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

interface Fetched {
  tool: string;
  bytes: number;
  sha256: string;
  tables: TableSummary[];
  /** True when `tables` were counted in the very snapshot that was copied. */
  sameSnapshot: boolean;
  /** False when the remote could not count its rows: there is nothing to compare with. */
  counted: boolean;
  pagesSent?: number;
}

/**
 * Runs `op` on the remote and receives its snapshot stream into `temp` with `receive`; every
 * failure becomes the best explanation (the remote's own words, else ssh's).
 */
async function fromRemote<T>(
  op: RemoteOp,
  options: PullOptions,
  temp: string,
  receive: (
    reader: StreamReader,
    header: SnapshotHeader,
    file: Deno.FsFile,
    progress: TransferProgress,
  ) => Promise<T>,
  stdin?: Uint8Array,
): Promise<{ header: SnapshotHeader; received: T }> {
  const { source } = options;
  const { child, reader } = startRemote(op, source, options.remote, stdin);
  await using _child = child;
  try {
    const header = await readHeader<SnapshotHeader>(reader, source.host);
    using file = await Deno.open(temp, { read: true, write: true, create: true });
    const received = await receive(
      reader,
      header,
      file,
      (done, expected) => options.onProgress?.({ phase: "transfer", received: done, expected }),
    );
    await child.finish();
    return { header, received };
  } catch (error) {
    throw await remoteFailure(child, reader, source, error);
  }
}

/** What a snapshot header says of the copied data. */
function fromHeader(header: SnapshotHeader, sha256: string, pagesSent?: number): Fetched {
  return {
    tool: header.tool,
    bytes: header.size,
    sha256,
    tables: header.tables.map((t) => ({ ...t, newest: normalize(t.newest) })),
    sameSnapshot: true,
    counted: true,
    pagesSent,
  };
}

/** The snapshot method: one ssh connection, the remote's consistent snapshot streamed back. */
async function fetchSnapshot(options: PullOptions, temp: string): Promise<Fetched> {
  const { header, received } = await fromRemote(
    "snapshot",
    options,
    temp,
    (reader, header, file, progress) =>
      receiveBody(reader, header, file, options.source.host, progress),
  );
  // Older remote tools may leave the header saying WAL; the local copy must be self-contained.
  await makeSelfContained(temp);
  return fromHeader(header, received);
}

/**
 * The delta method: a snapshot of the local database is the base; its page hashes go to the
 * remote, which answers with only the pages that differ from its own snapshot. The result must
 * hash to the remote snapshot's sha256, so a missed page can only fail, never corrupt. A remote
 * with only the sqlite3 CLI cannot compute page hashes: then the whole snapshot travels.
 */
async function fetchDelta(
  options: PullOptions,
  temp: string,
  warnings: string[],
): Promise<Fetched> {
  const base = await snapshotDatabase(options.localDb, temp, {
    busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
  });
  try {
    const { header, received } = await fromRemote(
      "delta",
      options,
      temp,
      (reader, header, file, progress) =>
        receiveDelta(reader, header, file, options.source.host, progress),
      await pageHashes(temp, base.pageSize),
    );
    return fromHeader(header, received.sha256, received.pages);
  } catch (error) {
    if (!(error instanceof RemoteError && error.kind === "nodelta")) throw error;
    warnings.push(`${error.message}: the whole snapshot travelled instead`);
    // Emptied, not removed: the name stays registered (and marked alive) as a temp in flight,
    // so a signal or a later run still finds it.
    await Deno.truncate(temp, 0);
    return await fetchSnapshot(options, temp);
  }
}

/**
 * The scp method: a raw copy of the `.db` and its `-wal` (never `-shm`, which only describes
 * the remote's memory), opened locally so SQLite applies the WAL, then snapshotted into `temp`.
 * A writer on the remote can make the pair inconsistent; the checks and a warning say so.
 */
async function fetchRaw(options: PullOptions, temp: string, warnings: string[]): Promise<Fetched> {
  const { source } = options;
  const raw = `${temp}.raw`;
  try {
    const copy = async (suffix: string, required: boolean) => {
      try {
        await run(
          "scp",
          scpArgs(source.host, source.path + suffix, raw + suffix, options.remote.ssh),
        );
        return true;
      } catch (error) {
        const text = error instanceof Error ? error.message : "";
        if (!required && /No such file/i.test(text)) return false;
        if (required && /No such file/i.test(text)) {
          throw new OperationError(`Remote database "${describe(source)}": no such file`, {
            hint: "check the remote path (and remote.db in the config)",
          });
        }
        throw sshFailure(error, source.host, `Cannot copy "${source.path}${suffix}"`);
      }
    };
    await copy("", true);
    options.onProgress?.({ phase: "transfer", received: 1, expected: 1 });
    const hadWal = await copy("-wal", false);
    await checkDatabaseFile(raw, `copy of "${describe(source)}"`);
    await snapshotDatabase(raw, temp, {
      busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
    warnings.push(
      "scp copies the raw files: if the application wrote meanwhile, the copy may be stale or " +
        "torn; --method snapshot is consistent while it writes",
    );
    if (!hadWal) warnings.push("the remote database had no -wal file");
  } finally {
    await removeTempDb(raw);
  }
  const bytes = (await Deno.stat(temp)).size;
  let tables: TableSummary[] = [];
  let counted = true;
  try {
    tables = (await remoteInfo(source, options.remote)).tables;
  } catch (error) {
    counted = false;
    warnings.push(`could not count the remote's rows to compare: ${describeCause(error)}`);
    const conn = openBackupFile(temp);
    try {
      tables = tableSummaries(conn);
    } finally {
      conn.close();
    }
  }
  return {
    tool: "scp",
    bytes,
    sha256: await hashFile(temp, "sha256"),
    tables,
    sameSnapshot: false,
    counted,
  };
}
