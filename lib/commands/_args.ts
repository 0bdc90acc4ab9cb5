/**
 * Helpers for the commands' argument parsing: `node:util` `parseArgs` in strict mode, with its
 * errors turned into usage errors, and checked conversions of flag values.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { resolve } from "node:path";
import { UsageError } from "../errors.ts";
import type { Context } from "../cli/context.ts";
import { BUSY_TIMEOUT_RANGE, MAX_AGE_SECONDS, type Range } from "../limits.ts";
import { GLOBAL_OPTIONS } from "../cli/cli.ts";
import { didYouMean, OLD_SCRIPT_FLAGS } from "../cli/suggest.ts";

/**
 * Parses `argv` strictly: unknown flags and missing values are usage errors (exit 2), each one
 * plain line in litekeep's style (option names bare, the user's words in double quotes).
 */
// The result's type is node:util's, inferred from `options`; spelling it out adds nothing.
// deno-lint-ignore explicit-module-boundary-types
export function parseStrict<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({
      args: negativeValues(argv, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (cause) {
    throw new UsageError(`${command}: ${plainParseError(cause, argv, options)}`, {
      cause,
      hint: `see "litekeep ${command} --help"`,
    });
  }
}

/**
 * `--keep-days -3` as `--keep-days=-3`: node:util refuses a value that starts with a dash as
 * ambiguous, and the user would read three lines about it instead of the range check's one.
 * No litekeep option starts with a digit, so a `-<digit>` word after an option that takes a
 * value can only be that value.
 */
function negativeValues(
  argv: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): string[] {
  const takesValue = (word: string): string | undefined => {
    const long = /^--([^=]+)$/.exec(word)?.[1];
    if (long !== undefined) return options[long]?.type === "string" ? long : undefined;
    const short = /^-([^-])$/.exec(word)?.[1];
    return Object.entries(options).find(([, o]) => o.short === short && o.type === "string")?.[0];
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = takesValue(argv[i]);
    const next = argv[i + 1];
    if (name !== undefined && next !== undefined && /^-\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}

/** `; it is an option of "litekeep backup"` for one of the old scripts' flags, or nothing. */
function otherCommand(option: string): string {
  return Object.hasOwn(OLD_SCRIPT_FLAGS, option)
    ? `; it is an option of "litekeep ${OLD_SCRIPT_FLAGS[option]}"`
    : "";
}

/**
 * The word (without any `=value`) that a refused short option `-k` came from when it was a long
 * option written with one dash, `-keep-days`: node:util reads that as `-k -e -e -p ...`.
 */
function singleDashLong(argv: string[], option: string): string | undefined {
  if (!/^-[^-]$/.test(option)) return undefined;
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end))
    .map((word) => word.split("=")[0])
    .find((word) => /^-[^-]./.test(word) && word.includes(option[1]));
}

/**
 * node:util's parse error in litekeep's words; for an unknown option, the command's (or a
 * global) option it is closest to, when it looks like a typo of one.
 */
function plainParseError(
  cause: unknown,
  argv: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  // "'--keep-days'", "'--keep-days <value>'" or "'-d, --backup-dir <value>'": the long name.
  const option = /'(?:-[^-], )?(-[^' ]+)/.exec(text)?.[1] ?? "";
  if (/^Unknown option/.test(text)) {
    const names = [...Object.keys(options).map((name) => `--${name}`), ...GLOBAL_OPTIONS];
    const long = singleDashLong(argv, option);
    if (long !== undefined) {
      const suggestion = didYouMean(`-${long}`, names);
      if (suggestion !== "") return `unknown option "${long}"${suggestion}`;
    }
    return `unknown option "${option}"${
      option.startsWith("--") ? didYouMean(option, names) || otherCommand(option) : ""
    }`;
  }
  if (/argument missing/.test(text)) return `${option} needs a value`;
  if (/does not take an argument/.test(text)) return `${option} takes no value`;
  if (/argument is ambiguous/.test(text)) {
    const at = argv.findIndex((word) => word === option || `--${word.slice(1)}` === option);
    const value = at >= 0 ? argv[at + 1] : undefined;
    return `${option} needs a value (write ${option}=${
      value ?? "-VALUE"
    } for one that starts with "-")`;
  }
  return text.replace(/\. To specify a positional.*$/s, "");
}

/**
 * A whole number between `min` and `max` (both included) from a flag value.
 *
 * @throws {UsageError} naming the flag and the range, for anything else
 */
export function intValue(
  command: string,
  flag: string,
  value: string,
  min: number,
  max: number,
): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(
      `${command}: --${flag} must be a whole number between ${min} and ${max}, not "${value}"`,
      { hint: `see "litekeep ${command} --help"` },
    );
  }
  return Number(value);
}

/** `intValue()` within a `Range`. */
export function intInRange(command: string, flag: string, value: string, range: Range): number {
  return intValue(command, flag, value, range.min, range.max);
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
  if (seconds > MAX_AGE_SECONDS) {
    throw new UsageError(
      `${command}: --${flag} must be at most ${MAX_AGE_SECONDS / 86_400}d, not "${value}"`,
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
      { hint: `see "litekeep ${command} --help"` },
    );
  }
  return value as C;
}

/** `choiceValue()` for a flag that may be absent: absent stays undefined. */
export function optionalChoice<C extends string>(
  command: string,
  flag: string,
  value: string | undefined,
  choices: readonly C[],
): C | undefined {
  return value === undefined ? undefined : choiceValue(command, flag, value, choices);
}

/** `--busy-timeout MS`, when given, within `BUSY_TIMEOUT_RANGE`. @throws {UsageError} */
export function busyTimeoutFlag(command: string, value: string | undefined): number | undefined {
  return value === undefined
    ? undefined
    : intInRange(command, "busy-timeout", value, BUSY_TIMEOUT_RANGE);
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

/** The backup folder: the one on the command line, else the config's `backupDir`, if any. */
export function backupDirPath(ctx: Context, given: string | undefined): string | undefined {
  return given !== undefined ? cliPath(ctx, given) : ctx.config?.backupDir;
}

/**
 * The `error` of a `--json` object whose run failed without throwing (a check that found a
 * problem): the same shape as every failed run's, so a script reads one field either way.
 */
export function jsonError(
  message: string,
  hint: string,
): { error: { message: string; hint: string; exitCode: number } } {
  return { error: { message, hint, exitCode: 1 } };
}

/** Writes the one JSON object of a `--json` run. */
export function printJson(ctx: Context, value: unknown): void {
  ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
