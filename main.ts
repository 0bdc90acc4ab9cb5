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
 */
function exitOnSignals(): void {
  for (const [signal, code] of SIGNALS) {
    try {
      Deno.addSignalListener(signal, async () => {
        // Loaded only now (from the module cache when any temp exists): start-up stays lean.
        const { removeTempsInFlightSync } = await import("./lib/files/atomic.ts");
        removeTempsInFlightSync();
        Deno.exit(code);
      });
    } catch {
      // A platform without this signal (Windows has no SIGTERM listener): nothing to install.
    }
  }
}

if (import.meta.main) {
  exitOnSignals();
  Deno.exit(await runCli(Deno.args, processIo()));
}
