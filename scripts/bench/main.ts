/**
 * `deno task bench`: benchmarks that show how fast litekeep is, side by side with the usual
 * tools, measured in the same run. Generates gym databases in WAL mode deterministically, runs
 * every case several times interleaved with its baselines, checks every copy, and writes
 * `docs/BENCHMARKS.md` with the machine, the exact commands, the figures and the targets.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { UsageError } from "../../lib/errors.ts";
import { prepareSource, type SizeName, SIZES, type Source } from "./data.ts";
import { canMeasureMemory, checkedRuns, loadDuringRuns, shellWord } from "./measure.ts";
import { localGroup } from "./local.ts";
import {
  type BenchContext,
  type BenchGroup,
  describeMachine,
  loadAverage,
  renderReport,
  type ReportInput,
  targetsTable,
} from "./markdown.ts";
import { startupGroup } from "./startup.ts";
import { writerGroup } from "./writer.ts";
import { remoteGroup } from "./remote.ts";

/**
 * The groups `--groups` can name, run in this order. A group is one file that returns report
 * sections and judged targets (see `BenchGroup`). The `remote` group (scp, `rsync -a`,
 * `rsync -az`, `ssh cat` against a real sshd, then tc-shaped network namespaces as root) runs
 * only when named: it needs sshd, rsync and python3, and takes far longer.
 */
export const GROUPS: Record<string, BenchGroup> = {
  local: localGroup,
  writer: writerGroup,
  startup: startupGroup,
  remote: remoteGroup,
};

/** The groups run without `--groups`. */
export const DEFAULT_GROUPS = ["local", "writer", "startup"];

const ROOT = new URL("../..", import.meta.url).pathname;

/** Help text. */
export const usage = `Usage: deno task bench [options]

Options:
  --sizes LIST    database sizes, of ${Object.keys(SIZES).join(", ")} (default: 10mb,100mb)
  --groups LIST   groups to run, of ${Object.keys(GROUPS).join(", ")} (default: ${
  DEFAULT_GROUPS.join(",")
})
  --runs N        timed runs per tool (default: 5, and 3 for 1gb)
  --out FILE      the report (default: docs/BENCHMARKS.md)
  --keep          keep the generated databases in bench-data/ and reuse them next time
  --seed N        seed of the generated data (default: 1)
  --note TEXT     a line for the report, e.g. what else ran on the machine (repeatable)
  -h, --help      show this help

Example:
  deno task bench --sizes 10mb,100mb,1gb --keep --note "other test suites ran meanwhile"
`;

/** The typed flags of the bench. */
export interface BenchFlags {
  sizes: SizeName[];
  groups: string[];
  /** Runs for every size; undefined for the defaults. */
  runs?: number;
  out: string;
  keep: boolean;
  seed: number;
  notes: string[];
  help: boolean;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) {
    throw new UsageError(`bench: --${flag} must be a positive whole number, not "${value}"`);
  }
  return n;
}

function list<T extends string>(flag: string, value: string, choices: readonly T[]): T[] {
  const items = value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const item of items) {
    if (!choices.includes(item as T)) {
      throw new UsageError(`bench: unknown --${flag} "${item}"`, {
        hint: `use one or more of: ${choices.join(", ")}`,
      });
    }
  }
  if (items.length === 0) throw new UsageError(`bench: --${flag} is empty`);
  // In the order of `choices`: smallest size first, groups in registry order.
  return choices.filter((c) => items.includes(c));
}

/** Parses the bench's arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): BenchFlags {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        sizes: { type: "string", default: "10mb,100mb" },
        groups: { type: "string", default: DEFAULT_GROUPS.join(",") },
        runs: { type: "string" },
        out: { type: "string", default: "docs/BENCHMARKS.md" },
        keep: { type: "boolean", default: false },
        seed: { type: "string", default: "1" },
        note: { type: "string", multiple: true, default: [] },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (cause) {
    throw new UsageError(`bench: ${cause instanceof Error ? cause.message : cause}`, { cause });
  }
  const v = parsed.values;
  return {
    sizes: list("sizes", v.sizes, Object.keys(SIZES) as SizeName[]),
    groups: list("groups", v.groups, Object.keys(GROUPS)),
    runs: v.runs === undefined ? undefined : positiveInt("runs", v.runs),
    out: v.out,
    keep: v.keep,
    seed: positiveInt("seed", v.seed),
    notes: v.note,
    help: v.help,
  };
}

/**
 * Runs the groups and returns the report. The databases live in `bench-data/` with `--keep`,
 * else in a temp folder removed at the end; copies go to a scratch folder beside them.
 *
 * @throws {Error} when any check fails: no report is made from a wrong result
 */
export async function runBench(
  flags: BenchFlags,
  log: (line: string) => void,
): Promise<ReportInput> {
  const dataDir = flags.keep ? resolve(ROOT, "bench-data") : await Deno.makeTempDir({
    prefix: "litekeep-bench-",
  });
  await Deno.mkdir(dataDir, { recursive: true });
  const work = await Deno.makeTempDir({ dir: dataDir, prefix: "work-" });
  try {
    const sources = new Map<SizeName, Promise<Source>>();
    const ctx: BenchContext = {
      sizes: flags.sizes,
      runs: (size) => flags.runs ?? (size === "1gb" ? 3 : 5),
      source: (size) => {
        if (!sources.has(size)) {
          log(`preparing the ${size} database in ${dataDir}`);
          sources.set(size, prepareSource(dataDir, size, flags.seed));
        }
        return sources.get(size)!;
      },
      work,
      dataDir,
      root: ROOT,
      log,
    };
    const memory = await canMeasureMemory();
    const machine = await describeMachine(
      dataDir,
      memory ? "GNU time `%M` (max RSS of each process)" : "not measured (no /usr/bin/time)",
    );
    const before = await loadAverage();
    const date = new Date();
    const groups = [];
    for (const name of flags.groups) {
      log(`group ${name}`);
      groups.push({ name, group: GROUPS[name], result: await GROUPS[name].run(ctx) });
    }
    return {
      date,
      command: ["deno task bench", ...Deno.args.map(shellWord)].join(" "),
      machine,
      load: { before, after: await loadAverage(), during: loadDuringRuns() },
      notes: flags.notes,
      root: ROOT,
      checked: checkedRuns(),
      groups,
    };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    if (!flags.keep) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    const flags = parseFlags(Deno.args);
    if (flags.help) {
      console.log(usage);
      Deno.exit(0);
    }
    const input = await runBench(flags, (line) => console.error(line));
    await Deno.mkdir(dirname(resolve(flags.out)), { recursive: true });
    await Deno.writeTextFile(flags.out, renderReport(input));
    console.log(`Wrote ${flags.out}. All checks passed.\n`);
    for (
      const [id, target, result, figure] of targetsTable(
        input.groups.flatMap((g) => g.result.targets),
      ).rows
    ) {
      console.log(`target ${id}: ${result.replaceAll("*", "")}: ${figure}\n  ${target}`);
    }
  } catch (error) {
    const usageError = error instanceof UsageError;
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    if (usageError && error.hint) console.error(`hint: ${error.hint}`);
    if (!usageError && error instanceof Error) console.error(error.stack);
    Deno.exit(usageError ? 2 : 1);
  }
}
