/**
 * What `info`, `compare` and `pull --info-only` share: the `--order-by` flag, reading a
 * location named on the command line, and the human summary of a database.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, formatLocalTime } from "../cli/format.ts";
import { readInfo } from "../remote/info.ts";
import { parseOrderBy } from "../remote/compare.ts";
import { parseRemoteSpec } from "../remote/ssh.ts";
import type { DbInfo } from "../remote/headers.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { cliPath } from "./_args.ts";
import { type RemoteFlagValues, remoteOptions } from "./_remote.ts";

/** `--order-by TABLE.COLUMN` values as a map. @throws {UsageError} */
export function orderByFlag(
  command: string,
  values: { "order-by"?: string[] },
): Record<string, string> {
  const orderBy = parseOrderBy(values["order-by"] ?? []);
  if (typeof orderBy === "string") {
    throw new UsageError(`${command}: --order-by must be TABLE.COLUMN, not "${orderBy}"`);
  }
  return orderBy;
}

/** The flags that say how `readLocation()` reads. */
export interface LocationFlags {
  orderBy: Record<string, string>;
  values: RemoteFlagValues;
  busyTimeoutMs?: number;
}

/**
 * Reads one location as the command line names it: HOST:PATH over ssh, anything else as a
 * local path. The remote flags are checked only for HOST:PATH, as they are only used there.
 *
 * @throws {UsageError} for a bad remote flag; what `readInfo()` throws
 */
export function readLocation(
  ctx: Context,
  command: string,
  location: string,
  flags: LocationFlags,
): Promise<DbInfo> {
  const spec = parseRemoteSpec(location);
  return readInfo(spec ?? cliPath(ctx, location), {
    orderBy: flags.orderBy,
    busyTimeoutMs: flags.busyTimeoutMs ?? ctx.config?.busyTimeout ?? DEFAULT_BUSY_TIMEOUT_MS,
    remote: spec ? remoteOptions(command, flags.values, ctx) : undefined,
  });
}

/**
 * The `--json` object of `info` (and `pull --info-only`). `mtime` is ISO-8601 as every time in
 * litekeep's JSON is; the remote protocol carries it as seconds since the epoch.
 */
export function infoJson(location: string, info: DbInfo): Record<string, unknown> {
  return { ok: true, command: "info", location, ...info, mtime: isoFromSeconds(info.mtime) };
}

/** Seconds since the epoch (a float: a remote `stat` may give fractions) as ISO-8601. */
function isoFromSeconds(seconds: number): string {
  return new Date(Math.round(seconds * 1000)).toISOString();
}

/** The human summary of a `DbInfo`. */
export function describeInfo(location: string, i: DbInfo): string {
  const width = Math.max(5, ...i.tables.map((t) => t.name.length));
  return `${location}\n` +
    `  size          ${formatBytes(i.size)} (${i.pageCount} pages of ${i.pageSize} bytes)\n` +
    // Local time, as stats, list and the backup names give it (the JSON's is ISO-8601 in UTC).
    `  modified      ${formatLocalTime(new Date(Math.round(i.mtime * 1000)))}\n` +
    `  sqlite        ${i.sqlite} (read by ${i.tool})\n` +
    `  journal mode  ${i.journalMode}\n` +
    `  wal           ${i.walSize === null ? "none" : formatBytes(i.walSize)}\n` +
    `  free disk     ${i.freeBytes === null ? "unknown" : formatBytes(i.freeBytes)}\n` +
    `  ${"table".padEnd(width)}  ${"rows".padStart(10)}  newest\n` +
    i.tables.map((t) =>
      `  ${t.name.padEnd(width)}  ${String(t.rows ?? "-").padStart(10)}  ${t.newest ?? "-"}\n`
    ).join("");
}
