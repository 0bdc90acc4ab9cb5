/**
 * `litekeep info DB|HOST:PATH`: what a database is and what it holds.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { formatBytes } from "../cli/format.ts";
import { localInfo } from "../remote/info.ts";
import { parseOrderBy } from "../remote/compare.ts";
import { parseRemoteSpec } from "../remote/ssh.ts";
import { remoteInfo } from "../remote/ops.ts";
import type { DbInfo } from "../remote/headers.ts";
import { cliPath, intInRange, parseStrict, positionals, printJson } from "./_args.ts";
import { BUSY_TIMEOUT_RANGE } from "../limits.ts";
import { REMOTE_FLAGS, REMOTE_USAGE, type RemoteFlagValues, remoteOptions } from "./_remote.ts";

/** One line for the command list. */
export const summary = "size, mtime, SQLite version, journal mode, WAL, tables and rows, free disk";

/** Help text. */
export const usage = `Usage: litekeep info DB|HOST:PATH [options]

Describes a database, local or on another host over ssh, without changing it: size, mtime,
SQLite version, journal mode, page size and count, WAL size, tables with row counts and their
newest row (max rowid), and the free disk space where it lives.

Options:
  --order-by TABLE.COLUMN  newest row of TABLE by COLUMN instead of rowid (repeatable)
  --busy-timeout MS        a local DB: wait this long for a writer's lock (default 10000, at most 86400000)
${REMOTE_USAGE}
  -h, --help               show this help

Examples:
  litekeep info instance/gym_system.db
  litekeep info raspberry-pi:/home/pi/gym-controller/instance/gym_system.db --json
`;

/** The typed flags of `info`. */
export interface InfoFlags {
  location?: string;
  orderBy: Record<string, string>;
  values: RemoteFlagValues;
  busyTimeoutMs?: number;
}

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

/** Parses `info`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): InfoFlags {
  const { values, positionals: rest } = parseStrict("info", argv, {
    "order-by": { type: "string", multiple: true },
    "busy-timeout": { type: "string" },
    ...REMOTE_FLAGS,
  });
  const [location] = positionals("info", rest, 1);
  return {
    location,
    orderBy: orderByFlag("info", values),
    values,
    busyTimeoutMs: values["busy-timeout"] === undefined
      ? undefined
      : intInRange("info", "busy-timeout", values["busy-timeout"], BUSY_TIMEOUT_RANGE),
  };
}

/** Reads one location (local path or HOST:PATH) for `info` and `compare`. */
export function readInfo(
  command: string,
  location: string,
  orderBy: Record<string, string>,
  values: RemoteFlagValues,
  ctx: Context,
  busyTimeoutMs?: number,
): Promise<DbInfo> {
  const spec = parseRemoteSpec(location);
  if (spec) return remoteInfo(spec, { ...remoteOptions(command, values, ctx), orderBy });
  return localInfo(
    cliPath(ctx, location),
    orderBy,
    busyTimeoutMs ?? ctx.config?.busyTimeout ?? 10_000,
  );
}

/** Runs `info`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const location = flags.location ?? ctx.config?.db;
  if (location === undefined) {
    throw new UsageError("info: no database given", {
      hint: 'name a file or HOST:PATH, or set "db" in litekeep.json',
    });
  }
  const info = await readInfo(
    "info",
    location,
    flags.orderBy,
    flags.values,
    ctx,
    flags.busyTimeoutMs,
  );
  if (ctx.json) printJson(ctx, { ok: true, command: "info", location, ...info });
  else if (!ctx.quiet) ctx.io.stdout(describeInfo(location, info));
  return 0;
}

/** The human summary of a `DbInfo`. */
export function describeInfo(location: string, i: DbInfo): string {
  const width = Math.max(5, ...i.tables.map((t) => t.name.length));
  return `${location}\n` +
    `  size          ${formatBytes(i.size)} (${i.pageCount} pages of ${i.pageSize} bytes)\n` +
    `  modified      ${new Date(i.mtime * 1000).toISOString()}\n` +
    `  sqlite        ${i.sqlite} (read by ${i.tool})\n` +
    `  journal mode  ${i.journalMode}\n` +
    `  wal           ${i.walSize === null ? "none" : formatBytes(i.walSize)}\n` +
    `  free disk     ${i.freeBytes === null ? "unknown" : formatBytes(i.freeBytes)}\n` +
    `  ${"table".padEnd(width)}  ${"rows".padStart(10)}  newest\n` +
    i.tables.map((t) =>
      `  ${t.name.padEnd(width)}  ${String(t.rows ?? "-").padStart(10)}  ${t.newest ?? "-"}\n`
    ).join("");
}
