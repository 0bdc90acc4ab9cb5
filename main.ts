/**
 * litekeep's entry point: the only place that reads `Deno.args` and exits.
 *
 * @module
 */
import { runCli } from "./lib/cli/cli.ts";
import { processIo } from "./lib/cli/io.ts";
import { logStamp } from "./lib/cli/log.ts";
import { deferSignal, pendingSignal } from "./lib/files/interrupt.ts";

/** Signals that end a run (Ctrl-C, kill, a closed terminal), and the shell's exit code for each. */
const SIGNALS = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const;

/**
 * On a signal no `finally` runs: without this, an interrupted pull would leave its partial copy
 * (hidden, as big as the database) behind. The temps are removed synchronously, then the process
 * exits with 128 + the signal's number, as if the signal had ended it. What the run had not yet
 * renamed into place is lost, which is what a signal asks for; nothing published is touched.
 * A write into a live database that has begun (restore, pull) is finished first
 * (lib/files/interrupt.ts): the run then ends with its own result, and says so.
 */
function exitOnSignals(): void {
  for (const [signal, code] of SIGNALS) {
    try {
      Deno.addSignalListener(signal, async () => {
        // Decided at once, with no await before it: a write into a live database that has
        // begun is finished and reported, then the run ends.
        if (deferSignal(signal, code)) {
          say(`litekeep: ${signal}: the write into the database has begun; finishing it first`);
          return;
        }
        // Loaded only now (from the module cache when any temp exists): start-up stays lean.
        const { removeTempsInFlightSync } = await import("./lib/files/atomic.ts");
        removeTempsInFlightSync();
        say(`litekeep: interrupted by ${signal}: work not yet in place was discarded`);
        Deno.exit(code);
      });
    } catch {
      // A platform without this signal (Windows has no SIGTERM listener): nothing to install.
    }
  }
}

/**
 * One line on stderr, whatever state the run's own logger is in; stamped as every log line is
 * when stderr is not a terminal (cron's log file).
 */
function say(line: string): void {
  try {
    const stamp = Deno.stderr.isTerminal() ? "" : `${logStamp(new Date())} `;
    Deno.stderr.writeSync(new TextEncoder().encode(`${stamp}${line}\n`));
  } catch {
    // stderr is gone (a closed terminal): exiting is all that is left.
  }
}

/**
 * `deno task litekeep` runs in the repository's folder, not where the user typed it: relative
 * paths would resolve against the repository. Deno's task runner says where the user stood in
 * INIT_CWD; litekeep goes back there. Only when run from source as the task (the working folder
 * is main.ts's own): a compiled binary, or an npm script that set INIT_CWD, is left alone.
 */
function returnToInitCwd(): void {
  const initCwd = Deno.env.get("INIT_CWD");
  if (!initCwd || !import.meta.url.startsWith("file:")) return;
  const here = decodeURIComponent(new URL(".", import.meta.url).pathname).replace(/\/$/, "");
  try {
    if (Deno.cwd() === here && initCwd !== here) Deno.chdir(initCwd);
  } catch {
    // INIT_CWD is gone or unreadable: stay where the task put us.
  }
}

/**
 * The process's `Io`; where Deno cannot say the working folder (its name is not UTF-8), a clear
 * error and exit 2 rather than a crash with a stack: no relative path could be resolved.
 */
function processIoOrExit(): ReturnType<typeof processIo> {
  try {
    return processIo();
  } catch (error) {
    if (!(error instanceof Deno.errors.InvalidData)) throw error;
    say("error: the working folder's name is not valid UTF-8, so no path can be resolved in it");
    say("hint: run litekeep from another folder (cron's is the home folder)");
    Deno.exit(2);
  }
}

if (import.meta.main) {
  returnToInitCwd();
  exitOnSignals();
  const code = await runCli(Deno.args, processIoOrExit());
  // One turn of the event loop, so that a signal that came during the last synchronous work
  // (the checks after a write) is heard before the exit.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const deferred = pendingSignal();
  if (deferred) {
    say(`litekeep: ${deferred.signal} arrived during the write; the run finished it first`);
  }
  Deno.exit(code);
}
