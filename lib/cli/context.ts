/**
 * What every command receives: the process boundary, the logger, the global flags and the
 * config file. Commands read this instead of globals so they run the same in tests.
 *
 * @module
 */
import type { Config } from "./config.ts";
import type { Io } from "./io.ts";
import type { Logger } from "./log.ts";

/** The run's context, built by `runCli` from the global flags. */
export interface Context {
  io: Io;
  log: Logger;
  /** `--json`: exactly one JSON object on stdout. */
  json: boolean;
  /** `--quiet`: no logs and no human summary; errors and warnings still show. */
  quiet: boolean;
  /** `--verbose`: debug lines and stack traces. */
  verbose: boolean;
  /** The config file, when one was found. */
  config?: Config;
  /** `--config FILE` as given, for a command that reads no config (`init` writes it). */
  configFlag?: string;
  /** `--ping URL`, for the command that writes the config (`init`): the URL to write. */
  pingFlag?: string;
}

/** One subcommand: its help text and its entry point. */
export interface Command {
  /** One line for the command list. */
  summary: string;
  /** Left out of the help (the remote agent). */
  hidden?: boolean;
  /** Reads no config file: `init` writes one, and must work where none is valid yet. */
  writesConfig?: boolean;
  /** Usage / Options / Examples. */
  usage: string;
  /** Runs the command; returns the exit code. Throws litekeep errors for failures. */
  run(argv: string[], ctx: Context): Promise<number>;
}
