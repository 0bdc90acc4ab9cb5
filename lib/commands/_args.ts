/**
 * Helpers for the commands' argument parsing: `node:util` `parseArgs` in strict mode, with its
 * errors turned into usage errors, and checked conversions of flag values.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { resolve } from "node:path";
import { UsageError } from "../errors.ts";
import type { Context } from "../context.ts";

/** Parses `argv` strictly: unknown flags and missing values are usage errors (exit 2). */
// The result's type is node:util's, inferred from `options`; spelling it out adds nothing.
// deno-lint-ignore explicit-module-boundary-types
export function parseStrict<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : String(cause);
    throw new UsageError(`${command}: ${text.replace(/\. To specify a positional.*$/s, "")}`, {
      cause,
      hint: `see "litekeep ${command} --help"`,
    });
  }
}

/** A whole number >= `min` from a flag value. */
export function intValue(command: string, flag: string, value: string, min = 0): number {
  if (!/^\d+$/.test(value) || Number(value) < min) {
    throw new UsageError(`${command}: --${flag} must be a whole number >= ${min}, not "${value}"`, {
      hint: `see "litekeep ${command} --help"`,
    });
  }
  return Number(value);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * A duration in seconds from a flag value such as `90m`, `26h`, `2d`, `1w` or `1d12h`. A bare
 * number is refused: in a crontab, `--max-age 26` could as well mean hours as seconds.
 */
export function durationValue(command: string, flag: string, value: string): number {
  const parts = /^(?:\d+[smhdw])+$/.test(value) ? value.match(/\d+[smhdw]/g) ?? [] : [];
  const seconds = parts.reduce(
    (sum, p) => sum + Number(p.slice(0, -1)) * UNIT_SECONDS[p.slice(-1)],
    0,
  );
  if (seconds <= 0) {
    throw new UsageError(
      `${command}: --${flag} must be a duration such as 90m, 26h, 2d or 1w, not "${value}"`,
      { hint: "units: s (seconds), m (minutes), h (hours), d (days of 24 h), w (weeks)" },
    );
  }
  return seconds;
}

/** One of `choices` from a flag value. */
export function choiceValue<C extends string>(
  command: string,
  flag: string,
  value: string,
  choices: readonly C[],
): C {
  if (!choices.includes(value as C)) {
    throw new UsageError(
      `${command}: --${flag} must be one of ${choices.join(", ")}, not "${value}"`,
    );
  }
  return value as C;
}

/** At most `max` positionals. */
export function positionals(command: string, values: string[], max: number): string[] {
  if (values.length > max) {
    throw new UsageError(`${command}: unexpected argument "${values[max]}"`, {
      hint: `see "litekeep ${command} --help"`,
    });
  }
  return values;
}

/** A path from the command line, resolved against the working directory. */
export function cliPath(ctx: Context, path: string): string {
  return resolve(ctx.io.cwd, path);
}

/**
 * The database a command works on: the one on the command line, else the config's `db`.
 *
 * @param example the command line the hint shows, e.g. `litekeep backup instance/app.db`
 * @throws {UsageError} when there is neither
 */
export function databasePath(
  ctx: Context,
  command: string,
  given: string | undefined,
  example: string,
): string {
  const db = given !== undefined ? cliPath(ctx, given) : ctx.config?.db;
  if (db === undefined) {
    throw new UsageError(`${command}: no database given`, {
      hint: `name it ("${example}") or set "db" in litekeep.json`,
    });
  }
  return db;
}

/** Writes the one JSON object of a `--json` run. */
export function printJson(ctx: Context, value: unknown): void {
  ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
