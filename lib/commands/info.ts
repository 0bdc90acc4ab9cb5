/**
 * `litekeep info DB|HOST:PATH`: what a database is and what it holds.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { busyTimeoutFlag, parseStrict, positionals, printJson } from "./_args.ts";
import { BUSY_TIMEOUT_RANGE, DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { REMOTE_FLAGS, REMOTE_USAGE } from "./_remote.ts";
import { describeInfo, infoJson, type LocationFlags, orderByFlag, readLocation } from "./_info.ts";

/** One line for the command list. */
export const summary = "size, mtime, SQLite version, journal mode, WAL, tables and rows, free disk";

/** Help text. */
export const usage = `Usage: litekeep info DB|HOST:PATH [options]

Describes a database, local or on another host over ssh, without changing it: size, mtime,
SQLite version, journal mode, page size and count, WAL size, tables with row counts and their
newest row (max rowid), and the free disk space where it lives.

Options:
  --order-by TABLE.COLUMN  newest row of TABLE by COLUMN instead of rowid (repeatable)
  --busy-timeout MS        a local DB: wait this long for a writer's lock (default ${DEFAULT_BUSY_TIMEOUT_MS}, at most ${BUSY_TIMEOUT_RANGE.max})
${REMOTE_USAGE}
  -h, --help               show this help

Examples:
  litekeep info instance/gym_system.db
  litekeep info raspberry-pi:/home/pi/gym-controller/instance/gym_system.db --json
`;

/** The typed flags of `info`. */
export interface InfoFlags extends LocationFlags {
  location?: string;
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
    busyTimeoutMs: busyTimeoutFlag("info", values["busy-timeout"]),
  };
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
  const info = await readLocation(ctx, "info", location, flags);
  if (ctx.json) printJson(ctx, infoJson(location, info));
  else if (!ctx.quiet) ctx.io.stdout(describeInfo(location, info));
  return 0;
}
