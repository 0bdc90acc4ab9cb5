/**
 * `litekeep agent` (hidden): the remote side of pull, info and compare, started over ssh by
 * another litekeep. Speaks protocol 1 on stdout, or protocol 2 (`pull`, a conversation on
 * stdin and stdout: lib/remote/protocol2.ts); failures are one `LITEKEEP-ERROR <kind>
 * <message>` line on stderr and exit code 3, as with the python3 and sqlite3 fallbacks.
 *
 * @module
 */
import { serveInfo, servePull2, serveSnapshot } from "../remote/agent.ts";
import { type Compress2, defaultCompress2, PROTOCOL2 } from "../remote/protocol2.ts";
import { StreamReader } from "../remote/stream.ts";
import { parseForcedLevels } from "../remote/zstd_level.ts";
import type { Context } from "../cli/context.ts";
import { BusyError, LitekeepError, UsageError } from "../errors.ts";
import { PROTOCOL } from "../remote/scripts.ts";
import type { Compression } from "../remote/ops.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { parseStrict } from "./_args.ts";

/** One line for the command list (hidden). */
export const summary = "remote side of pull/info/compare (started over ssh)";

/** This command is not listed in the help. */
export const hidden = true;

/** Help text. */
export const usage =
  `Usage: litekeep agent --protocol ${PROTOCOL} snapshot|delta|info DB TMPDIR COMPRESS ORDERBY
       litekeep agent --protocol ${PROTOCOL2} pull DB TMPDIR COMPRESS ORDERBY

Started over ssh by "litekeep pull", "info" and "compare" on another host. Not for direct use.
`;

/** The typed arguments of `agent`. */
export interface AgentFlags {
  protocol: number;
  op: string;
  db: string;
  tmpDir: string;
  compress: Compression;
  /** Protocol 2's compression (zstd, gzip, none). */
  compress2: Compress2;
  orderBy: Record<string, string>;
}

/** Parses `agent`'s arguments. */
export function parseFlags(argv: string[]): AgentFlags {
  const { values, positionals } = parseStrict("agent", argv, { protocol: { type: "string" } });
  const [op = "", db = "", tmpDir = "", compress = "none", orderBy = ""] = positionals;
  return {
    protocol: Number(values.protocol),
    op,
    db,
    tmpDir,
    compress: compress === "gzip" ? "gzip" : "none",
    compress2: compress === "zstd" || compress === "gzip" || compress === "none"
      ? compress
      : defaultCompress2(),
    orderBy: Object.fromEntries(
      orderBy.split("\n").filter((l) => l.includes("\t")).map((l) => l.split("\t", 2)),
    ),
  };
}

/** Classifies an error into the protocol's kinds. */
function kindOf(error: unknown): string {
  if (error instanceof BusyError) return "busy";
  if (error instanceof UsageError) return "usage";
  const text = error instanceof Error ? error.message : String(error);
  // Before "no such file": a missing temp folder is not a missing database.
  if (/cannot create a temporary file in/.test(text)) return "tmpdir";
  if (/no such file/.test(text)) return "notfound";
  if (/empty \(0 bytes\)/.test(text)) return "empty";
  if (/not a SQLite database|is a folder/.test(text)) return "notdb";
  if (/no space left/.test(text)) return "space";
  return "io";
}

/** Runs `agent`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const fail = (kind: string, message: string) => {
    ctx.io.stderr(`LITEKEEP-ERROR ${kind} ${message.replaceAll("\n", " ")}\n`);
    return 3;
  };
  const flags = parseFlags(argv);
  if (flags.protocol !== PROTOCOL && flags.protocol !== PROTOCOL2) {
    return fail(
      "protocol",
      `this litekeep speaks protocols ${PROTOCOL} and ${PROTOCOL2}, not ${flags.protocol}`,
    );
  }
  if ((flags.protocol === PROTOCOL2) !== (flags.op === "pull")) {
    return fail("usage", `operation "${flags.op}" is not of protocol ${flags.protocol}`);
  }
  // A dropped connection sends SIGHUP or SIGTERM: stop writing so the temp file is removed.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals = ["SIGHUP", "SIGTERM", "SIGINT"] as const;
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const sink = (chunk: Uint8Array) => {
    if (stop.signal.aborted) throw new Error("stopped by a signal");
    return ctx.io.stdoutBytes(chunk);
  };
  const options = {
    tmpDir: flags.tmpDir,
    compress: flags.compress,
    orderBy: flags.orderBy,
    busyTimeoutMs: ctx.config?.busyTimeout ?? DEFAULT_BUSY_TIMEOUT_MS,
    envTmpDir: ctx.io.env("TMPDIR"),
  };
  try {
    if (flags.op === "pull") {
      const input = new StreamReader(ctx.io.stdinStream?.() ?? new Blob([]).stream(), {
        host: "the local litekeep",
      });
      // Tests only: a zstd level sequence to cycle through instead of the adaptive choice,
      // to prove that frames of mixed levels make the same copy (tests/pull_levels2_test.ts).
      let zstdLevels: number[] | undefined;
      try {
        zstdLevels = parseForcedLevels(ctx.io.env("LITEKEEP_ZSTD_LEVELS"));
      } catch (error) {
        return fail("usage", (error as Error).message);
      }
      await servePull2(
        flags.db,
        { ...options, compress: flags.compress2, zstdLevels },
        sink,
        input,
      );
    } else if (flags.op === "snapshot") await serveSnapshot(flags.db, options, sink);
    else if (flags.op === "delta") {
      await serveSnapshot(flags.db, options, sink, await ctx.io.readStdin());
    } else if (flags.op === "info") await serveInfo(flags.db, options, sink);
    else return fail("usage", `unknown operation "${flags.op}"`);
    return 0;
  } catch (error) {
    if (isBrokenPipe(error) || stop.signal.aborted) return 4;
    const message = error instanceof LitekeepError
      ? error.message
      : error instanceof Error
      ? error.message
      : String(error);
    return fail(kindOf(error), message);
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

/** The reader went away: our stdout is a broken pipe (also when a stream was torn down by it). */
function isBrokenPipe(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e instanceof Deno.errors.BrokenPipe || e.name === "AbortError") return true;
  }
  return false;
}
