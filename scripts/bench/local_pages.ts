/**
 * Local backup of a ~1 GB gym database through the page reader, beside `sqlite3 .backup`, `cp`
 * and `cp + sync` (the copy made durable: the floor of a backup, which is fsynced): interleaved runs (each round runs every tool once, the order rotated), each copy checked
 * (integrity_check and row counts), wall time and peak RSS from GNU time. Also
 * `snapshotDatabase()` in-process, once through the page reader and once through the backup API
 * (forced by a `-journal` beside a copy of the source, the fallback the page reader takes), which
 * isolates the copy from the process start and the folder work.
 *
 *   deno run --allow-all scripts/bench/local_pages.ts [--size 1gb] [--runs 3] [--data DIR]
 *     [--before DIR]
 *
 * `--before DIR`: a checkout of another commit (e.g. `git worktree add DIR COMMIT`); its
 * `litekeep backup` rows run interleaved with this checkout's, in the same rounds.
 *
 * Prints a markdown section for docs/BENCHMARKS.md on stdout; progress on stderr. The database is
 * cached in DIR (default `bench-data/`, git-ignored) between runs. Every run starts after a
 * `sync` (untimed), so that no tool pays for the writeback of the one before (`cp` syncs nothing).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { checkCopy, prepareSource, type SizeName, SIZES } from "./data.ts";
import { canMeasureMemory, loadDuringRuns, runInterleaved, type Tool } from "./measure.ts";
import { ratio, seconds, spread, table } from "./report.ts";
import { cpSyncTool, cpTool, litekeepBackup, sqliteBackupTool } from "./tools.ts";
import { snapshotDatabase } from "../../lib/engine/snapshot.ts";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);

const flags = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1gb" },
    runs: { type: "string", default: "3" },
    data: { type: "string", default: join(ROOT, "bench-data") },
    before: { type: "string" },
  },
}).values;
const size = flags.size as SizeName;
if (!(size in SIZES)) throw new Error(`--size must be one of ${Object.keys(SIZES).join(", ")}`);
const runs = Number(flags.runs);
// deno-lint-ignore no-console
const log = (line: string) => console.error(line);

await Deno.mkdir(flags.data, { recursive: true });
log(`preparing the ${size} database in ${flags.data}`);
const source = await prepareSource(flags.data, size, 1);
const work = await Deno.makeTempDir({ dir: flags.data, prefix: "pages-work-" });
try {
  const check = (file: string, what: string) => checkCopy(file, source, what);
  // cp leaves its copy dirty in the page cache, unsynced: whatever runs next would pay for its
  // writeback. A `sync` before every run (untimed) starts each tool from the same clean state.
  const syncFirst = (tool: Tool): Tool => ({
    ...tool,
    before: async () => {
      await new Deno.Command("sync").output();
    },
  });
  const cases = [
    ["litekeep backup --verify none", ["--verify", "none"]],
    ["litekeep backup --verify none --checksum none", ["--verify", "none", "--checksum", "none"]],
  ] as const;
  const before = flags.before ? join(resolve(flags.before), "main.ts") : undefined;
  const tools: Tool[] = [
    ...cases.map(([name, args]) => litekeepBackup(name, source.path, [...args], check)),
    sqliteBackupTool(source),
    cpTool(source),
    cpSyncTool(source),
    ...(before
      ? cases.map(([name, args]) =>
        litekeepBackup(`before: ${name}`, source.path, [...args], check, before)
      )
      : []),
  ].map(syncFirst);
  const samples = await runInterleaved(tools, { runs, work, log, label: size });
  const memory = await canMeasureMemory();
  const median = samples.map((s) => spread(s.map((x) => x.seconds)).median);
  const sqliteIndex = 2;
  const rows = tools.map((tool, i) => {
    const times = spread(samples[i].map((x) => x.seconds));
    const own = samples[i][0]?.figures.coreMs === undefined
      ? "-"
      : seconds(spread(samples[i].map((x) => x.figures.coreMs / 1000)).median);
    const rss = memory
      ? `${Math.round(Math.max(...samples[i].map((x) => x.maxRssKiB ?? 0)) / 1024)}`
      : "n/a";
    return [
      tool.name,
      `${seconds(times.median)} (${seconds(times.min)}-${seconds(times.max)})`,
      own,
      ratio(median[i] / median[sqliteIndex]),
      ratio(median[i] / median[sqliteIndex + 1]),
      ratio(median[i] / median[sqliteIndex + 2]),
      rss,
    ];
  });

  // In-process: the copy alone, page reader against backup API, interleaved.
  const inProcess: Record<"pages" | "backup-api", number[]> = { pages: [], "backup-api": [] };
  const withJournal = join(work, "journal-src.db");
  await Deno.copyFile(source.path, withJournal);
  await Deno.writeFile(`${withJournal}-journal`, new Uint8Array());
  for (let round = 0; round < runs; round++) {
    for (
      const method of round % 2
        ? ["backup-api", "pages"] as const
        : ["pages", "backup-api"] as const
    ) {
      const dest = join(work, `snap-${method}-${round}.db`);
      await new Deno.Command("sync").output();
      const from = method === "pages" ? source.path : withJournal;
      const started = performance.now();
      const result = await snapshotDatabase(from, dest, { busyTimeoutMs: 10_000 });
      const took = (performance.now() - started) / 1000;
      if (result.method !== method) throw new Error(`expected ${method}, got ${result.method}`);
      inProcess[method].push(took);
      log(`${size} snapshotDatabase() ${method}: ${took.toFixed(3)} s`);
      await Deno.remove(dest);
    }
  }

  const load = loadDuringRuns();
  const cores = navigator.hardwareConcurrency;
  const pagesMedian = spread(inProcess.pages).median;
  const apiMedian = spread(inProcess["backup-api"]).median;
  const out = [
    `### Local backup through the page reader (${SIZES[size].label}, ${
      (source.bytes / 1e6).toFixed(0)
    } MB, ${runs} interleaved runs)`,
    "",
    table(
      [
        "tool",
        "wall s, median (min-max)",
        "litekeep's own s",
        "vs sqlite3 .backup",
        "vs cp",
        "vs cp + sync",
        "peak RSS MiB",
      ],
      rows,
    ),
    "",
    `In-process \`snapshotDatabase()\` (the copy alone: no process start, no final sync, no folder work): page reader ${
      seconds(pagesMedian)
    } s, backup API ${seconds(apiMedian)} s (${ratio(pagesMedian / apiMedian)}).`,
    "",
    `Machine: ${cores} cores, 1-minute load ${
      load ? `${load.min.toFixed(1)}-${load.max.toFixed(1)}` : "n/a"
    } during the runs.`,
  ];
  // deno-lint-ignore no-console
  console.log(out.join("\n"));
} finally {
  await Deno.remove(work, { recursive: true });
}
