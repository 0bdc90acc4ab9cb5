/**
 * How `pull` fetches the remote database into its temp: the snapshot stream, the delta against
 * the local copy, or a raw scp copy. Each fills the temp and says what the remote said of it;
 * `pull.ts` checks the result and puts it in place.
 *
 * @module
 */
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { describeCause, OperationError } from "../errors.ts";
import { removeTempDb } from "../files/atomic.ts";
import { hashFile } from "../backup_set/checksum.ts";
import { run } from "../proc.ts";
import { type RemoteSpec, scpArgs, sshFailure } from "./ssh.ts";
import {
  idleTimeoutMs,
  normalize,
  RemoteError,
  remoteFailure,
  remoteInfo,
  type RemoteOp,
  type RemoteOptions,
  startRemote,
} from "./ops.ts";
import { makeSelfContained, snapshotDatabase } from "../engine/snapshot.ts";
import {
  checkDatabaseFile,
  openBackupFile,
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
import { fetchPull2 } from "./fetch2.ts";

/** Data on its way: bytes received of those expected. */
export interface TransferReport {
  phase: "transfer";
  /** Bytes of the copy written so far: in a delta, local pages spliced in count too. */
  received: number;
  expected: number;
  /**
   * A delta only: the changed pages received so far, of those asked for. `received` counts the
   * copy being built, most of it from local pages, so it alone would read as a whole transfer.
   */
  changedPages?: { received: number; wanted: number };
}

/** What a fetch needs to know. */
export interface FetchOptions {
  source: RemoteSpec;
  /** The local database: the delta method's base. */
  localDb: string;
  /** `auto`: delta when the remote speaks protocol 2 and a local copy exists, else snapshot. */
  method: "snapshot" | "query" | "scp" | "delta" | "auto";
  remote: RemoteOptions;
  busyTimeoutMs?: number;
  onProgress?: (progress: TransferReport) => void;
  /**
   * Called once the remote's content is known to differ from the local copy, just before its
   * pages are received (protocol 2): pull starts the old local database's backup then, beside
   * the transfer. Not called for an unchanged pull, nor by the other protocols.
   */
  onChanged?: () => void;
}

/** What a fetch brought, as the remote describes it. */
export interface Fetched {
  tool: string;
  bytes: number;
  /** The copy's sha256; null when unchanged (nothing was copied). */
  sha256: string | null;
  tables: TableSummary[];
  /** True when `tables` were counted in the very snapshot that was copied. */
  sameSnapshot: boolean;
  /** False when the remote could not count its rows: there is nothing to compare with. */
  counted: boolean;
  pagesSent?: number;
  /** Pages of the remote snapshot. */
  pages?: number;
  /** True when the remote's content equals the local copy's: nothing was written. */
  unchanged?: boolean;
  /** The protocol spoken (scp: none). */
  protocol?: 1 | 2;
  /** What actually happened: a delta without a usable base travels as a snapshot. */
  method?: "snapshot" | "delta" | "scp";
  /** Protocol 2's compression. */
  compress?: string;
  /** Protocol 2: the remote used the backup API (and a remote temp) instead of the page reader. */
  remoteFallback?: string | null;
}

/** `host:path`. */
export function describeSource(spec: RemoteSpec): string {
  return `${spec.host}:${spec.path}`;
}

/**
 * Fetches the remote database into `temp` by `options.method`. A delta needs a local copy to
 * start from: without one (`exists` false) the whole snapshot travels, and a warning says so.
 */
export async function fetchInto(
  temp: string,
  options: FetchOptions,
  exists: boolean,
  warnings: string[],
): Promise<Fetched> {
  if (options.method === "scp") {
    return { ...await fetchRaw(options, temp, warnings), method: "scp" };
  }
  const tool = options.remote.tool ?? "auto";
  const wantsDelta = options.method === "delta" || options.method === "auto";
  if (tool === "auto" || tool === "litekeep") {
    try {
      const got = await fetchPull2(options, temp, wantsDelta && exists, warnings);
      if (options.method === "delta" && !exists) {
        warnings.push("no local copy yet: the whole database travels");
      }
      if (got.header.reader === "backup-api") {
        warnings.push(
          `the remote page reader could not prove an image (${got.header.fallback}): it used ` +
            "the backup API and a temporary file on the remote",
        );
      }
      return {
        ...got,
        method: got.header.mode,
        compress: got.header.compress,
        remoteFallback: got.header.fallback,
      };
    } catch (error) {
      if (!(error instanceof RemoteError)) throw error;
      if (error.kind === "protocol") {
        warnings.push(
          `the remote litekeep on "${options.source.host}" speaks only protocol 1: pulled with ` +
            "it; install this version there for faster pulls",
        );
      } else if (error.kind !== "noproto2") throw error;
      // No litekeep of protocol 2 there: protocol 1 from python3/sqlite3 (or the old litekeep).
      // Both refusals come before any header, so the temp was never created.
    }
  }
  if (options.method === "delta" && exists) {
    return { ...await fetchDelta(options, temp, warnings), protocol: 1 };
  }
  if (options.method === "delta") warnings.push("no local copy yet: the whole database travels");
  return { ...await fetchSnapshot(options, temp), protocol: 1, method: "snapshot" };
}

/**
 * Runs `op` on the remote and receives its snapshot stream with `receive`; every
 * failure becomes the best explanation (the remote's own words, else ssh's).
 */
async function fromRemote<T>(
  op: RemoteOp,
  options: FetchOptions,
  receive: (reader: StreamReader, header: SnapshotHeader, progress: TransferProgress) => Promise<T>,
  stdin?: Uint8Array,
): Promise<{ header: SnapshotHeader; received: T }> {
  const { source } = options;
  const { child, reader } = startRemote(op, source, options.remote, stdin);
  await using _child = child;
  try {
    const header = await readHeader<SnapshotHeader>(reader, source.host);
    const received = await receive(
      reader,
      header,
      (done, expected) => options.onProgress?.({ phase: "transfer", received: done, expected }),
    );
    await child.finish(idleTimeoutMs(options.remote));
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
    pages: header.pages,
  };
}

/** The snapshot method: one ssh connection, the remote's consistent snapshot streamed back. */
async function fetchSnapshot(options: FetchOptions, temp: string): Promise<Fetched> {
  const { header, received } = await fromRemote(
    "snapshot",
    options,
    async (reader, header, progress) => {
      using file = await Deno.open(temp, { read: true, write: true, create: true });
      return await receiveBody(reader, header, file, options.source.host, progress);
    },
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
  options: FetchOptions,
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
      (reader, header, progress) =>
        receiveDelta(reader, header, temp, options.source.host, progress),
      await pageHashes(temp, base.pageSize),
    );
    return { ...fromHeader(header, received.sha256, received.pages), method: "delta" };
  } catch (error) {
    if (!(error instanceof RemoteError && error.kind === "nodelta")) throw error;
    warnings.push(`${error.message}: the whole snapshot travelled instead`);
    // Emptied, not removed: the name stays registered (and marked alive) as a temp in flight,
    // so a signal or a later run still finds it.
    await Deno.truncate(temp, 0);
    return { ...await fetchSnapshot(options, temp), method: "snapshot" };
  }
}

/**
 * The scp method: a raw copy of the `.db` and its `-wal` (never `-shm`, which only describes
 * the remote's memory), opened locally so SQLite applies the WAL, then snapshotted into `temp`.
 * A writer on the remote can make the pair inconsistent; the checks and a warning say so.
 */
async function fetchRaw(options: FetchOptions, temp: string, warnings: string[]): Promise<Fetched> {
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
          throw new OperationError(`Remote database "${describeSource(source)}": no such file`, {
            hint: "check the remote path (and remote.db in the config)",
          });
        }
        throw sshFailure(error, source.host, `Cannot copy "${source.path}${suffix}"`);
      }
    };
    await copy("", true);
    options.onProgress?.({ phase: "transfer", received: 1, expected: 1 });
    // None when the database is closed or not in WAL mode: nothing to warn about.
    await copy("-wal", false);
    await checkDatabaseFile(raw, `copy of "${describeSource(source)}"`);
    await snapshotDatabase(raw, temp, {
      busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
    // What every scp run is, the risk of a torn copy, is pull's info line, not a warning.
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
