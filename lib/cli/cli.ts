/**
 * The command line: global flags, the dispatch table, and the one place where errors become
 * exit codes. `main.ts` calls `runCli` and exits with what it returns; nothing else exits.
 *
 * @module
 */
import type { Command, Context } from "./context.ts";
import { EXIT, LitekeepError, UsageError } from "../errors.ts";
import type { Io } from "./io.ts";
import { createLogger, logStamp } from "./log.ts";
import { VERSION } from "../version.ts";
import { createPinger, OutputTail, parsePingUrl, type Pinger } from "./ping.ts";

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
  "--ping",
];

/**
 * The commands that do a job, and so ping (`--ping`, config `ping`): a dead man's switch
 * watches jobs, not look-ups. `stats` is a job only as a monitor (`--max-age`).
 */
const JOBS = new Set(["backup", "pull", "prune", "verify", "checkpoint", "stats"]);

/**
 * The commands whose stdout is a job's summary, stamped like the log lines when stdout is not a
 * terminal. Data commands (info, compare, list, init's crontab lines, --json) print data that
 * is read or pasted as it is.
 */
const STAMPED = new Set(["backup", "pull", "prune", "verify", "checkpoint", "stats", "restore"]);

/** The flags every command accepts, before or after the command word. */
export interface GlobalFlags {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  help: boolean;
  version: boolean;
  config?: string;
  /** `--ping URL`, for the job commands. */
  ping?: string;
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
  // `deno task litekeep -- --version` passes the `--` on: one in front separates nothing.
  const start = argv[0] === "--" ? 1 : 0;
  for (let i = start; i < argv.length; i++) {
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
    else if (arg === "--config" || arg.startsWith("--config=")) {
      const value = arg === "--config" ? argv[++i] : arg.slice("--config=".length);
      if (value === undefined || value === "") {
        throw new UsageError("--config needs a file name", { hint: "--config litekeep.json" });
      }
      flags.config = value;
    } else if (arg === "--ping" || arg.startsWith("--ping=")) {
      const value = arg === "--ping" ? argv[++i] : arg.slice("--ping=".length);
      if (value === undefined || value === "") {
        throw new UsageError("--ping needs a URL", { hint: "--ping https://hc-ping.com/<uuid>" });
      }
      // One run pings one check: a second URL would leave the first unpinged, and it alerts.
      if (flags.ping !== undefined) {
        throw new UsageError("--ping given twice: a run pings one check", {
          hint: 'keep one --ping URL (or set config "ping" and give none)',
        });
      }
      flags.ping = value;
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
  --ping URL       health check: URL/start, then URL or URL/<exit code>, for backup, pull,
                   prune, verify, checkpoint, stats --max-age (config key "ping")
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
export async function runCli(argv: string[], processIo: Io): Promise<number> {
  const tail = new OutputTail();
  let stampStdout = false;
  const io = recordedIo(processIo, tail, () => stampStdout);
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
    if (command === undefined) throw await unknownCommand(name, argv, rest);
    if (flags.help) {
      io.stdout(command.usage);
      return EXIT.ok;
    }
    // stats is a job only as a monitor; pull --info-only is a look-up like info.
    const lookUp = name === "pull" && rest.includes("--info-only");
    const job = JOBS.has(name) && !lookUp &&
      (name !== "stats" || rest.some((a) => a === "--max-age" || a.startsWith("--max-age=")));
    if (flags.ping !== undefined && !job && !command.writesConfig) {
      throw new UsageError(
        `--ping is for jobs; "${lookUp ? "pull --info-only" : name}" ${
          name === "stats" ? "without --max-age " : ""
        }does not ping`,
        {
          hint: "backup, pull, prune, verify, checkpoint and stats --max-age take --ping",
        },
      );
    }
    stampStdout = !flags.json && STAMPED.has(name) && !lookUp &&
      processIo.stdoutIsTerminal === false;
    // init writes the URL into the config it makes; it pings nothing itself.
    const pingFlag = flags.ping === undefined || command.writesConfig
      ? undefined
      : parsePingUrl(flags.ping, "--ping");
    let pinger: Pinger | undefined;
    const startPinger = async (url: URL) => {
      pinger = createPinger({
        url,
        warn: (message) => log.warn(message),
        timeoutMs: io.pingTimeoutMs,
      });
      await pinger.start();
    };
    // A --ping on the line pings before the config is read: a broken config fails the job,
    // and the monitor hears it (URL/2 with the error), not only by silence.
    if (pingFlag !== undefined) await startPinger(pingFlag);
    let code: number;
    try {
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
        pingFlag: command.writesConfig ? flags.ping : undefined,
      };
      if (pinger === undefined && job && config?.ping !== undefined) {
        await startPinger(parsePingUrl(config.ping, `Config file "${config.path}": "ping"`));
      }
      if (pinger === undefined) return await command.run(rest, ctx);
      code = await command.run(rest, ctx);
    } catch (error) {
      if (pinger === undefined) throw error;
      code = report(error, io, flags, log);
    }
    await (pinger as Pinger).finish(code, tail.text());
    return code;
  } catch (error) {
    return report(error, io, flags, log);
  }
}

/**
 * The error for a line whose first word is no command: the command that the old scripts'
 * flags need now (with the user's own line), else "did you mean" a command or global flag.
 */
async function unknownCommand(
  name: string,
  argv: string[],
  rest: string[],
): Promise<UsageError> {
  const { closest, didYouMean, oldScriptCommand } = await import("./suggest.ts");
  // The hidden remote agent is no command a user types: never suggest it.
  const shown = Object.keys(COMMANDS).filter((c) => c !== "agent");
  // A word close to a command is a typo'd command word, whatever flags follow it.
  const typo = !name.startsWith("-") && closest(name, shown) !== undefined;
  // A leading "--" (deno task's) separates nothing, as in splitGlobalFlags.
  const old = typo ? undefined : oldScriptCommand(argv[0] === "--" ? argv.slice(1) : argv);
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
  if (name === "help") {
    const about = shown.includes(rest[0] ?? "") ? `litekeep ${rest[0]} --help` : "litekeep --help";
    return new UsageError(`unknown command "help"; did you mean "${about}"?`, {
      hint: 'every command has --help: "litekeep backup --help"',
    });
  }
  return new UsageError(`unknown command "${name}"${didYouMean(name, shown)}`, {
    hint: 'see "litekeep --help" for the commands',
  });
}

/**
 * The run's own view of the process: everything written is also kept in `tail` (a ping's body),
 * and a job's stdout lines get the log's timestamp when `stamp()` says so.
 */
function recordedIo(io: Io, tail: OutputTail, stamp: () => boolean): Io {
  let lineStart = true;
  return {
    ...io,
    stdout(text) {
      if (stamp() && text !== "") {
        const now = `${logStamp(io.now())} `;
        // A stamp at the start of each line, including one that began in an earlier write.
        text = (lineStart ? now : "") + text.replace(/\n(?=.)/gs, `\n${now}`);
        lineStart = text.endsWith("\n");
      }
      tail.add(text);
      io.stdout(text);
    },
    stderr(text) {
      tail.add(text);
      io.stderr(text);
    },
  };
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
