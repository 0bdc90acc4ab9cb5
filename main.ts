/**
 * litekeep's entry point: the only place that reads `Deno.args` and exits.
 *
 * @module
 */
import { runCli } from "./lib/cli/cli.ts";
import { processIo } from "./lib/cli/io.ts";

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
        const { deferSignal } = await import("./lib/files/interrupt.ts");
        // A write into a live database has begun: it is finished and reported, then the run ends.
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

/** One line on stderr, whatever state the run's own logger is in. */
function say(line: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
  } catch {
    // stderr is gone (a closed terminal): exiting is all that is left.
  }
}

if (import.meta.main) {
  exitOnSignals();
  const code = await runCli(Deno.args, processIo());
  const { pendingSignal } = await import("./lib/files/interrupt.ts");
  const deferred = pendingSignal();
  if (deferred) say(`litekeep: ${deferred.signal} arrived during the write, which was completed`);
  Deno.exit(code);
}
