/**
 * Logging and progress on stderr. On a terminal, long work draws one progress line; elsewhere
 * (cron appending to a log file) every line starts with a timestamp (`logStamp`: local time
 * with its UTC offset, the clock of the backup file names) and no progress is drawn.
 *
 * @module
 */
import type { Io } from "./io.ts";

/**
 * `2026-12-01T22:40:48+01:00`: ISO-8601 in local time with its UTC offset, to the second. The
 * backup file names use local time (lib/backup_set/names.ts), so a log line and the file it
 * made show the same clock; the offset keeps the line unambiguous across a DST change.
 */
export function logStamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}` +
    `${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`;
}

/** Where commands send everything that is not a result. */
export interface Logger {
  /** A normal log line, hidden by `--quiet`. */
  info(message: string): void;
  /** A line shown only with `--verbose`. */
  debug(message: string): void;
  /** A warning: shown even with `--quiet`. */
  warn(message: string): void;
  /** An error line, and its hint. Always shown. */
  error(message: string, hint?: string): void;
  /**
   * Draws `line` as the progress line. Only on a terminal, not with `--quiet`, and only once
   * the work has run for `delayMs` (short work shows no progress at all), unless `now` (work
   * known to take a while, such as waiting for a remote host, shows at once).
   */
  progress(line: string, options?: { now?: boolean }): void;
  /** Clears the progress line, if one is drawn. */
  endProgress(): void;
}

/** How much to say. */
export interface LoggerOptions {
  quiet?: boolean;
  verbose?: boolean;
  /** Progress starts only after this long. @default 1000 */
  delayMs?: number;
}

/** Creates the logger for one run. */
export function createLogger(io: Io, options: LoggerOptions = {}): Logger {
  const started = performance.now();
  const delayMs = options.delayMs ?? 1000;
  let drawn = false;
  let lastDraw = -Infinity;

  function line(prefix: string, message: string): void {
    clear();
    const stamp = io.stderrIsTerminal ? "" : `${logStamp(io.now())} `;
    for (const part of message.split("\n")) io.stderr(`${stamp}${prefix}${part}\n`);
  }
  function clear(): void {
    if (drawn) {
      io.stderr("\r\x1b[K");
      drawn = false;
    }
  }
  return {
    info(message) {
      if (!options.quiet) line("", message);
    },
    debug(message) {
      if (options.verbose) line("debug: ", message);
    },
    warn(message) {
      line("warning: ", message);
    },
    error(message, hint) {
      line("error: ", message);
      if (hint) line("hint: ", hint);
    },
    progress(text, when) {
      if (!io.stderrIsTerminal || options.quiet) return;
      const now = performance.now();
      // Redraw at most ten times a second: a terminal is slower than SQLite.
      if ((now - started < delayMs && !when?.now) || now - lastDraw < 100) return;
      lastDraw = now;
      io.stderr(`\r\x1b[K${text}`);
      drawn = true;
    },
    endProgress: clear,
  };
}

/** A progress line that also redraws on its own timer. */
export interface TickingProgress {
  /** Shows `status` from now on, at once. */
  set(status: string): void;
  /** Stops the timer (the caller still ends the progress line). */
  stop(): void;
}

/**
 * Draws `status` and the seconds since the start every 250 ms until `stop()`: during a step
 * that reports nothing for a while (backup's check runs in a worker) the run still shows that
 * it is alive.
 */
export function tickingProgress(log: Logger, status: string): TickingProgress {
  const started = performance.now();
  const draw = () =>
    log.progress(`${status} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timer = setInterval(draw, 250);
  return {
    set(next) {
      status = next;
      draw();
    },
    stop: () => clearInterval(timer),
  };
}

/** Logs what a run cleaned up after an earlier, interrupted one, then its warnings. */
export function logCleanedAndWarnings(
  log: Logger,
  result: { cleaned: readonly string[]; warnings: readonly string[] },
): void {
  for (const name of result.cleaned) log.info(`removed leftover of an interrupted run: ${name}`);
  for (const warning of result.warnings) log.warn(warning);
}
