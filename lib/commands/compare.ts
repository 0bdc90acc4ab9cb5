/**
 * `litekeep compare A B`: two databases side by side; exit 1 when they differ.
 *
 * @module
 */
import { compareTables, type Comparison } from "../remote/compare.ts";
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { jsonError, parseStrict, printJson } from "./_args.ts";
import { REMOTE_FLAGS, REMOTE_USAGE } from "./_remote.ts";
import { type LocationFlags, orderByFlag, readLocation } from "./_info.ts";

/** One line for the command list. */
export const summary = "two databases (paths or HOST:PATH) side by side: tables, rows, newest";

/** Help text. */
export const usage = `Usage: litekeep compare A B [options]

A and B are local paths or HOST:PATH. Prints the table list, row counts and the newest row per
table (max rowid, or --order-by) side by side, and exits 1 when anything differs.

Options:
  --order-by TABLE.COLUMN  newest row of TABLE by COLUMN instead of rowid (repeatable)
${REMOTE_USAGE}
  -h, --help               show this help

Examples:
  litekeep compare raspberry-pi:/home/pi/gym-controller/instance/gym_system.db instance/gym_system.db
  litekeep compare a.db b.db --order-by payments.paid_at
`;

/** The typed flags of `compare`. */
export interface CompareFlags extends LocationFlags {
  a: string;
  b: string;
}

/** Parses `compare`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): CompareFlags {
  const { values, positionals } = parseStrict("compare", argv, {
    "order-by": { type: "string", multiple: true },
    ...REMOTE_FLAGS,
  });
  if (positionals.length !== 2) {
    throw new UsageError(`compare: needs two databases, got ${positionals.length}`, {
      hint: 'see "litekeep compare --help"',
    });
  }
  return { a: positionals[0], b: positionals[1], orderBy: orderByFlag("compare", values), values };
}

/** Runs `compare`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const [a, b] = await Promise.all([
    readLocation(ctx, "compare", flags.a, flags),
    readLocation(ctx, "compare", flags.b, flags),
  ]);
  const comparison = compareTables(a.tables, b.tables);
  const error = comparison.equal ? null : differences(flags.a, flags.b, comparison);
  if (ctx.json) {
    printJson(ctx, {
      ok: comparison.equal,
      command: "compare",
      a: flags.a,
      b: flags.b,
      ...comparison,
      ...(error ? jsonError(error.message, error.hint) : {}),
    });
  } else if (!ctx.quiet) {
    ctx.io.stdout(describe(flags.a, flags.b, comparison));
  }
  if (error) ctx.log.error(error.message, error.hint);
  return comparison.equal ? 0 : 1;
}

/** What differs, in one line, and what to do about it. */
function differences(a: string, b: string, c: Comparison): { message: string; hint: string } {
  const tables = c.rows.filter((r) => !r.same).map((r) =>
    r.a === null ? `${r.table} (only in B)` : r.b === null ? `${r.table} (only in A)` : r.table
  );
  return {
    message: `"${a}" and "${b}" differ: ${tables.join(", ")}`,
    hint: 'the tables that differ are marked "!=" ("same": false in --json); if B is a ' +
      'copy of A, take a fresh one ("litekeep pull")',
  };
}

function describe(a: string, b: string, c: Comparison): string {
  const cell = (s: { rows: number | null; newest: string | null } | null) =>
    s === null ? "(missing)" : `${s.rows ?? "-"} rows, newest ${s.newest ?? "-"}`;
  const width = Math.max(5, ...c.rows.map((r) => r.table.length));
  const left = Math.max(1, ...c.rows.map((r) => cell(r.a).length));
  return `A: ${a}\nB: ${b}\n` +
    `   ${"table".padEnd(width)}  ${"A".padEnd(left)}  B\n` +
    c.rows.map((r) =>
      `${r.same ? "  " : "!="} ${r.table.padEnd(width)}  ${cell(r.a).padEnd(left)}  ${cell(r.b)}\n`
    ).join("") +
    (c.equal ? "same tables, row counts and newest rows\n" : "DIFFERENT\n");
}
