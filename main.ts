/**
 * litekeep's entry point: the only place that reads `Deno.args` and exits.
 *
 * @module
 */
import { runCli } from "./lib/cli.ts";
import { processIo } from "./lib/io.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, processIo()));
}
