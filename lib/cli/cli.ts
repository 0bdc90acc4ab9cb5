/**
 * The command line: global flags, the dispatch table, and the one place where errors become
 * exit codes. `main.ts` calls `runCli` and exits with what it returns; nothing else exits.
 *
 * @module
 */
import type { Command, Context } from "./context.ts";
import { EXIT, LitekeepError, UsageError } from "../errors.ts";
import type { Io } from "./io.ts";
import { createLogger } from "./log.ts";
import { VERSION } from "../version.ts";

/**
 * Every command, by name, loaded when it runs: "litekeep --version" and a cron job's one
 * command do not pay for parsing the others (node:crypto, node:zlib, the remote scripts).
 * Hidden commands are left out of the help.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  backup: () => import("../commands/backup.ts"),
  verify: () => import("../commands/verify.ts"),
  prune: () => import("../commands/prune.ts"),
  stats: () => import("../commands/stats.ts"),
  checkpoint: () => import("../commands/checkpoint.ts"),
  restore: () => import("../commands/restore.ts"),
  pull: () => import("../commands/pull.ts"),
  info: () => import("../commands/info.ts"),
  compare: () => import("../commands/compare.ts"),
  init: () => import("../commands/init.ts"),
  list: () => import("../commands/list.ts"),
  agent: () => import("../commands/agent.ts"),
};

/** The long names of the global flags, for "did you mean". */
export const GLOBAL_OPTIONS: readonly string[] = [
  "--json",
  "--quiet",
  "--verbose",
  "--help",
  "--version",
  "--config",
];

/** The flags every command accepts, before or after the command word. */
export interface GlobalFlags {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  help: boolean;
  version: boolean;
  config?: string;
}

/**
 * Takes the global flags out of `argv`, wherever they stand (up to a `--`), and returns them
 * with the rest: the command word and the command's own arguments.
 *
 * @throws {UsageError} for `--config` without a value
 */
export function splitGlobalFlags(argv: string[]): { flags: GlobalFlags; rest: string[] } {
  const flags: GlobalFlags = {
    json: false,
    quiet: false,
    verbose: false,
    help: false,
    version: false,
  };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--json") flags.json = true;
    else if (arg === "--quiet" || arg === "-q") flags.quiet = true;
    else if (arg === "--verbose" || arg === "-v") flags.verbose = true;
    else if (arg === "--help" || arg === "-h") flags.help = true;
    else if (arg === "--version" || arg === "-V") flags.version = true;
    else if (arg.startsWith("--config=")) flags.config = arg.slice("--config=".length);
    else if (arg === "--config") {
      const value = argv[++i];
      if (value === undefined || value === "") {
        throw new UsageError("--config needs a file name", { hint: "--config litekeep.json" });
      }
      flags.config = value;
    } else rest.push(arg);
  }
  return { flags, rest };
}

/** The top-level help. */
export async function mainUsage(): Promise<string> {
  const loaded = await Promise.all(
    Object.entries(COMMANDS).map(async ([name, load]) => [name, await load()] as const),
  );
  const shown = loaded.filter(([, c]) => !c.hidden);
  const width = Math.max(...shown.map(([n]) => n.length));
  const list = shown
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join("\n");
  return `litekeep ${VERSION}: keeps SQLite databases safe

Usage: litekeep <command> [arguments] [options]

Commands:
${list}

Global options (before or after the command):
  --json           print exactly one JSON object on stdout; logs go to stderr
  -q, --quiet      no logs and no summary; warnings and errors still show
  -v, --verbose    more detail, and stack traces of unexpected errors
  --config FILE    config file (default: ./litekeep.json if present, else $LITEKEEP_CONFIG)
  -h, --help       help (also "litekeep <command> --help")
  -V, --version    print the version

Exit codes: 0 success, 1 failed, 2 usage or config error, 75 busy (retry later).
`;
}

/**
 * Runs litekeep with `argv` (without the program name).
 *
 * @returns the exit code
 */
export async function runCli(argv: string[], io: Io): Promise<number> {
  let flags: GlobalFlags = {
    json: false,
    quiet: false,
    verbose: false,
    help: false,
    version: false,
  };
  let log = createLogger(io);
  try {
    const split = splitGlobalFlags(argv);
    flags = split.flags;
    log = createLogger(io, {
      quiet: flags.quiet,
      verbose: flags.verbose,
      delayMs: io.progressDelayMs,
    });
    const [name, ...rest] = split.rest;
    // Anywhere on the line, --version only prints: "prune --version" must never prune.
    if (flags.version) {
      io.stdout(`litekeep ${VERSION}\n`);
      return EXIT.ok;
    }
    if (name === undefined) {
      if (flags.help) {
        io.stdout(await mainUsage());
        return EXIT.ok;
      }
      throw new UsageError("no command given", { hint: 'see "litekeep --help"' });
    }
    const command = Object.hasOwn(COMMANDS, name) ? await COMMANDS[name]() : undefined;
    if (command === undefined) throw await unknownCommand(name, argv);
    if (flags.help) {
      io.stdout(command.usage);
      return EXIT.ok;
    }
    // Loaded here, not at start-up: node:path and friends cost "litekeep --version" ~20 ms.
    const { findConfig, loadConfig } = await import("./config.ts");
    const configPath = command.writesConfig
      ? undefined
      : await findConfig(flags.config, io.cwd, io.env);
    const config = configPath === undefined ? undefined : await loadConfig(configPath);
    const ctx: Context = {
      io,
      log,
      json: flags.json,
      quiet: flags.quiet,
      verbose: flags.verbose,
      config,
      configFlag: flags.config,
    };
    return await command.run(rest, ctx);
  } catch (error) {
    return report(error, io, flags, log);
  }
}

/**
 * The error for a line whose first word is no command: the command that the old scripts'
 * flags need now (with the user's own line), else "did you mean" a command or global flag.
 */
async function unknownCommand(name: string, argv: string[]): Promise<UsageError> {
  const { didYouMean, oldScriptCommand } = await import("./suggest.ts");
  const old = oldScriptCommand(argv);
  if (old !== undefined) {
    return new UsageError(
      `${old.flag} needs a command word now: use "${old.line}"`,
      {
        hint:
          `the old scripts' flags belong to "litekeep ${old.command}"; see "litekeep ${old.command} --help"`,
      },
    );
  }
  if (name.startsWith("-")) {
    return new UsageError(`unknown option "${name}"${didYouMean(name, GLOBAL_OPTIONS)}`, {
      hint: 'see "litekeep --help" for the commands',
    });
  }
  // The hidden remote agent is no command a user types: never suggest it.
  const shown = Object.keys(COMMANDS).filter((c) => c !== "agent");
  return new UsageError(`unknown command "${name}"${didYouMean(name, shown)}`, {
    hint: 'see "litekeep --help" for the commands',
  });
}

function report(
  error: unknown,
  io: Io,
  flags: GlobalFlags,
  log: ReturnType<typeof createLogger>,
): number {
  log.endProgress();
  if (error instanceof LitekeepError) {
    log.error(error.message, error.hint);
    if (flags.verbose && error.cause instanceof Error && error.cause.stack) {
      log.debug(error.cause.stack);
    }
    if (flags.json) {
      io.stdout(`${
        JSON.stringify({
          ok: false,
          error: { message: error.message, hint: error.hint ?? null, exitCode: error.exitCode },
        })
      }\n`);
    }
    return error.exitCode;
  }
  // Not one of ours: a bug. Say so, with the stack, rather than pretend it is the user's fault.
  const stack = error instanceof Error ? error.stack ?? error.message : String(error);
  log.error(`internal error (a bug in litekeep, please report it):\n${stack}`);
  if (flags.json) {
    io.stdout(`${JSON.stringify({ ok: false, error: { message: String(error), exitCode: 1 } })}\n`);
  }
  return EXIT.failed;
}
