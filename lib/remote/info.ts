/**
 * `info`: what a database is and what it holds, read-only, for a local file or (through the
 * remote side, `ops.ts`) a database on another host.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { LitekeepError } from "../errors.ts";
import {
  checkDatabaseFile,
  openReadOnly,
  pragmaValue,
  sqliteFailure,
  tableSummaries,
} from "../engine/sqlite.ts";
import type { DbInfo } from "./headers.ts";
import { exists, onReadOnlyMedia, tempView } from "../engine/view.ts";
import { remoteInfo, type RemoteOptions } from "./ops.ts";
import type { RemoteSpec } from "./ssh.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";

/** Free bytes on the filesystem holding `path`; null where the OS will not say. */
export function freeBytes(path: string): number | null {
  try {
    const fs = statfsSync(dirname(resolve(path)));
    return Number(fs.bavail) * Number(fs.bsize);
  } catch {
    return null;
  }
}

/** The size of `path`, or null when it does not exist. */
async function sizeOrNull(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return null;
  }
}

/**
 * Describes a local database. Opens it read-only: never checkpoints, never writes.
 *
 * @throws {OperationError} naming the path for a missing, empty or non-SQLite file
 */
export async function localInfo(
  path: string,
  orderBy: Record<string, string> = {},
  busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS,
): Promise<DbInfo> {
  const header = await checkDatabaseFile(path);
  // Sizes before opening: a read-only connection may create an empty -wal.
  const stat = await Deno.stat(path);
  const walSize = await sizeOrNull(`${path}-wal`);
  // A WAL database with no -shm has no connection open: reading it in place would leave an
  // empty -wal and a -shm beside it (info is read-only), and on read-only media SQLite cannot
  // open it at all (found by the new-user trial). A view of its file and -wal is read instead.
  await using view = header.wal &&
      (!await exists(`${path}-shm`) || onReadOnlyMedia(dirname(path)))
    ? await tempView(path, walSize !== null, "litekeep-info-")
    : undefined;
  let db;
  try {
    db = openReadOnly(view?.path ?? path, busyTimeoutMs);
  } catch (error) {
    throw sqliteFailure(error, "Cannot open database", path);
  }
  try {
    db.exec("BEGIN");
    const info: DbInfo = {
      tool: "litekeep",
      sqlite: String((db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v),
      path,
      size: stat.size,
      mtime: (stat.mtime?.getTime() ?? 0) / 1000,
      journalMode: String(pragmaValue(db, "journal_mode")),
      pageSize: Number(pragmaValue(db, "page_size")),
      pageCount: Number(pragmaValue(db, "page_count")),
      walSize,
      freeBytes: freeBytes(path),
      tables: tableSummaries(db, orderBy),
    };
    db.exec("COMMIT");
    return info;
  } catch (error) {
    if (error instanceof LitekeepError) throw error;
    throw sqliteFailure(error, "Cannot read database", path);
  } finally {
    db.close();
  }
}

/** How `readInfo()` reads. */
export interface ReadInfoOptions {
  /** Newest row per table by this column instead of max(rowid). @default {} */
  orderBy?: Record<string, string>;
  /** A local database: how long to wait for a writer's lock. @default DEFAULT_BUSY_TIMEOUT_MS */
  busyTimeoutMs?: number;
  /** A remote database: how to run the remote side. @default ssh's own defaults */
  remote?: RemoteOptions;
}

/**
 * Describes a database wherever it is: a local path is opened read-only here, a `RemoteSpec`
 * is asked over ssh. Either way the answer has the same shape, so `info` and `compare` can put
 * a local and a remote database side by side.
 *
 * @throws {OperationError} or {BusyError} naming the path or host and the cause
 */
export function readInfo(
  location: string | RemoteSpec,
  options: ReadInfoOptions = {},
): Promise<DbInfo> {
  const orderBy = options.orderBy ?? {};
  if (typeof location === "string") return localInfo(location, orderBy, options.busyTimeoutMs);
  return remoteInfo(location, { ...(options.remote ?? { ssh: {} }), orderBy });
}
