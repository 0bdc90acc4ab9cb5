/**
 * What a benchmark group receives and returns, the targets of the benchmark issue, and the
 * markdown report (`docs/BENCHMARKS.md`) made of them.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { type Sample, showCommands, type Tool } from "./measure.ts";
import { ratio, seconds, type Spread, spread } from "./report.ts";
import type { SizeName, Source } from "./data.ts";

/** What every group gets from the bench. */
export interface BenchContext {
  /** The sizes asked for, smallest first. */
  sizes: SizeName[];
  /** Timed runs per tool for a size. */
  runs(size: SizeName): number;
  /** The generated database of a size (cached or made on first use). Never write to it. */
  source(size: SizeName): Promise<Source>;
  /** Scratch folder on the same file system as the sources; removed at the end. */
  work: string;
  /** Where generated databases live: `bench-data/` with `--keep`, else a temp folder. */
  dataDir: string;
  /** The repository root, ending in `/`. */
  root: string;
  /** Progress on stderr. */
  log(line: string): void;
}

/**
 * A group of cases that `--groups` can name. A group runs its cases, checks every result, and
 * returns sections for the report and the targets it can judge.
 */
export interface BenchGroup {
  /** Heading of the group's part of the report. */
  title: string;
  /** What it measures, one sentence. */
  summary: string;
  /** @throws {Error} when a check fails: the bench aborts without a report */
  run(ctx: BenchContext): Promise<GroupResult>;
}

/** A markdown table. */
export interface Table {
  header: string[];
  rows: string[][];
}

/** One part of a group's report. */
export interface Section {
  title: string;
  paragraphs: string[];
  table?: Table;
}

/** A target judged from measurements. */
export interface TargetResult {
  id: number;
  /** null: not measured (the figure says why, with any indicative number). */
  met: boolean | null;
  figure: string;
  /** What part of the target was measured, when not all of it. */
  scope?: string;
}

/** What a group returns. */
export interface GroupResult {
  sections: Section[];
  targets: TargetResult[];
  /** The tools measured, for the exact commands. */
  tools: Tool[];
}

/** The targets of the benchmark issue, with the flags that measure each. */
export const TARGETS = [
  {
    id: 1,
    text:
      "Backup of the 1 GB database, idle, `--verify none --checksum none`: at most 1.0x `sqlite3 .backup` and at most 1.5x `cp --reflink=never`",
    how: "--groups local --sizes 1gb",
  },
  {
    id: 2,
    text:
      "Default backup (snapshot + sha256 + integrity_check): at most 0.8x `sqlite3 .backup` + `sha256sum` + `sqlite3 integrity_check` run one after another",
    how: "--groups local",
  },
  {
    id: 3,
    text:
      "Backup while a writer commits 300+ small transactions/s: one pass, at most 1.5x the idle time, the writer's worst commit under 250 ms, no SQLITE_BUSY (5 s busy timeout)",
    how: "--groups writer",
  },
  {
    id: 4,
    text: "Peak memory (max RSS) of backup, verify and pull on the 1 GB database: under 150 MiB",
    how: "--groups local --sizes 1gb (pull: the remote group)",
  },
  { id: 5, text: "pull over ssh", how: "--groups remote (or deno task bench:remote)" },
  {
    id: 6,
    text: "`litekeep --version` under `deno run`: median under 100 ms",
    how: "--groups startup",
  },
] as const;

/** A size heading: `100 MB: 100.4 MB, 425,000 payments`. */
export function sizeTitle(label: string, source: Source): string {
  return `${label}: ${(source.bytes / 1e6).toFixed(1)} MB, ${
    source.rows.payments.toLocaleString("en-US")
  } payments`;
}

/** Median seconds of a tool's samples. */
export function medianSeconds(samples: Sample[]): number {
  return spread(samples.map((s) => s.seconds)).median;
}

/** Peak memory over a tool's samples in MiB; null when not measured. */
export function peakMiB(samples: Sample[]): number | null {
  const kib = samples.map((s) => s.maxRssKiB);
  return kib.some((k) => k === null) ? null : Math.max(...kib as number[]) / 1024;
}

/** Extra columns of a case table. */
export interface CaseColumns {
  /** The source's size, for a MB/s column. */
  bytes?: number;
  /** Rows whose median is divided by each tool's median, with the column headings. */
  references?: Array<{ heading: string; index: number }>;
  /** Columns of the case's own figures: a cell per tool. */
  extra?: Array<{ heading: string; cell: (index: number) => string }>;
}

/**
 * The table of one case: per tool the median, range, throughput, peak memory, the reference
 * tools' time divided by this tool's (a reference below 1.0x beats the tool), the case's own
 * columns, and the time litekeep reports itself where it does.
 */
export function caseTable(tools: Tool[], samples: Sample[][], columns: CaseColumns): Table {
  const medians = samples.map(medianSeconds);
  const { bytes, references = [], extra = [] } = columns;
  const own = samples.map((runs) => runs.map((x) => x.figures.coreMs));
  const showOwn = own.some((ms) => ms.every((x) => x !== undefined));
  return {
    header: [
      "tool",
      "median s",
      "min-max s",
      ...(bytes === undefined ? [] : ["MB/s"]),
      "peak RSS MiB",
      ...references.map((r) => r.heading),
      ...extra.map((c) => c.heading),
      ...(showOwn ? ["litekeep's own s"] : []),
    ],
    rows: tools.map((tool, i) => {
      const s = spread(samples[i].map((x) => x.seconds));
      const peak = peakMiB(samples[i]);
      return [
        tool.name,
        seconds(s.median),
        `${seconds(s.min)}-${seconds(s.max)}`,
        ...(bytes === undefined ? [] : [(bytes / 1e6 / s.median).toFixed(0)]),
        peak === null ? "n/a" : peak.toFixed(0),
        ...references.map((r) => ratio(medians[r.index] / medians[i])),
        ...extra.map((c) => c.cell(i)),
        ...(!showOwn
          ? []
          : own[i].every((x) => x !== undefined)
          ? [seconds(spread(own[i]).median / 1000)]
          : [""]),
      ];
    }),
  };
}

/** What the report says about the machine. */
export interface Machine {
  cpu: string;
  cores: string;
  memory: string;
  os: string;
  disk: string;
  deno: string;
  sqlite: string;
  sqlite3Cli: string;
  coreutils: string;
  memoryTool: string;
}

/** First line of a command's output, or what went wrong. */
async function firstLine(program: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim().split("\n")[0] || `(${program}: no output)`;
  } catch (error) {
    return `(${program}: ${error instanceof Error ? error.message : error})`;
  }
}

/** The machine the bench runs on; `dataDir` is where the databases and copies live. */
export async function describeMachine(dataDir: string, memoryTool: string): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kib = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN);
  const df = await new Deno.Command("df", { args: ["-T", "-h", dataDir], stdout: "piped" })
    .output().then((o) => new TextDecoder().decode(o.stdout).trim().split("\n")[1] ?? "")
    .catch(() => "");
  const [device, type, size, , avail] = df.split(/\s+/);
  const db = new DatabaseSync(":memory:");
  const sqlite = String(db.prepare("SELECT sqlite_version() AS v").get()?.v);
  db.close();
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? "unknown",
    cores: await firstLine("nproc", []),
    memory: Number.isFinite(kib) ? `${(kib / 1024 / 1024).toFixed(1)} GiB` : "unknown",
    os: `${Deno.build.os} ${Deno.osRelease()} (${Deno.build.arch})`,
    disk: df ? `${type} on ${device} (${size}, ${avail} free), data in \`${dataDir}\`` : dataDir,
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    sqlite: `${sqlite} (node:sqlite, in litekeep)`,
    sqlite3Cli: (await firstLine("sqlite3", ["--version"])).split(" ").slice(0, 2).join(" "),
    coreutils: await firstLine("cp", ["--version"]),
    memoryTool,
  };
}

/** The 1, 5 and 15 minute load averages. */
export async function loadAverage(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "");
  return text.split(" ").slice(0, 3).join(" ") || "unknown";
}

/** Everything the report shows. */
export interface ReportInput {
  date: Date;
  /** The command line that made it. */
  command: string;
  machine: Machine;
  /** Load average before and after. */
  load: { before: string; after: string; during: Spread | null };
  /** The `--note`s, e.g. what else ran on the machine. */
  notes: string[];
  root: string;
  /** Runs that passed their checks (all of them, or there is no report). */
  checked: number;
  groups: Array<{ name: string; group: BenchGroup; result: GroupResult }>;
}

/** Figures are right-aligned: a column is when every cell looks like a number or a range. */
function renderTable(table: Table): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const numeric = (i: number) => table.rows.every((row) => /^[\d.,x% -]*$/.test(row[i] ?? ""));
  return [
    line(table.header),
    line(table.header.map((_, i) => (numeric(i) ? "---:" : "---"))),
    ...table.rows.map(line),
  ].join("\n");
}

/** The placeholders of the exact commands, explained where they appear. */
const PLACEHOLDERS: Array<[string, string]> = [
  ["SRC", "the database"],
  ["OUT", "a fresh empty folder per run"],
  ["BACKUP", "a backup litekeep made, with its sidecar"],
];

/** The targets table: each target met, not met or not measured, with its figure. */
export function targetsTable(results: TargetResult[]): Table {
  return {
    header: ["#", "target", "result", "figure"],
    rows: TARGETS.map((target) => {
      const mine = results.filter((r) => r.id === target.id);
      if (mine.length === 0) {
        return [String(target.id), target.text, "not measured", `run with ${target.how}`];
      }
      const met = mine.some((r) => r.met === false)
        ? "**not met**"
        : mine.every((r) => r.met === null)
        ? "not measured"
        : "**met**";
      const scope = mine.map((r) => r.scope).filter(Boolean).join("; ");
      return [
        String(target.id),
        target.text,
        scope ? `${met} (${scope})` : met,
        mine.map((r) => r.figure).join("; "),
      ];
    }),
  };
}

/** The whole report, in markdown. */
export function renderReport(input: ReportInput): string {
  const m = input.machine;
  const out: string[] = [
    "# litekeep benchmarks",
    "",
    `Generated by \`${input.command}\` on ${input.date.toISOString()}. Do not edit by hand: ` +
    "run the bench again.",
    "",
    "## Machine",
    "",
    renderTable({
      header: ["", ""],
      rows: [
        ["CPU", m.cpu],
        ["cores (`nproc`)", m.cores],
        ["memory", m.memory],
        ["OS", m.os],
        ["disk (`df -T`)", m.disk],
        ["Deno", m.deno],
        ["SQLite", m.sqlite],
        ["sqlite3 CLI", m.sqlite3Cli],
        ["coreutils", m.coreutils],
        ["peak memory", m.memoryTool],
        ["load average (1, 5, 15 min)", `${input.load.before} before, ${input.load.after} after`],
        [
          "1-min load before each run",
          input.load.during
            ? `median ${input.load.during.median.toFixed(2)}, range ${
              input.load.during.min.toFixed(2)
            }-${input.load.during.max.toFixed(2)} (the bench alone keeps one or two cores busy)`
            : "unknown",
        ],
      ],
    }),
    "",
    "## How it was measured",
    "",
    "- Every time is the wall clock of real processes, from spawn to exit. litekeep runs from " +
    "source as users run it (`deno run ... main.ts`), so Deno's start (see the startup group) " +
    'is inside its time; "litekeep\'s own s" is the `durationMs` litekeep reports itself, ' +
    "the part after start-up.",
    "- Warm cache: the page cache is not dropped (that needs root and would measure the disk, " +
    "not the tools). Each tool runs once untimed before the timed runs, so the source is in " +
    "memory for every tool alike.",
    "- Interleaved: run i runs every tool of a case once, the order rotated by one each run, so " +
    "noise on the machine hits all tools alike. The table gives the median and the range.",
    "- Checked: every copy any tool makes (warm-up included) must pass `PRAGMA integrity_check` " +
    "and have the source's tables and row counts; checksums must equal the source's; a failed " +
    "check aborts the bench. Checks are not timed.",
    `- All ${input.checked} runs, warm-up runs included, passed their checks.`,
    "- Durability differs: litekeep fsyncs the backup and its folder, and SQLite syncs what " +
    "`.backup` and `VACUUM INTO` write; `cp` does not sync, so its copy may still be only in " +
    "the page cache when it exits.",
    "- Ratios are a reference tool's median divided by this tool's median: below 1.0x the " +
    "reference is faster. MB/s is the source's size (10^6 bytes) over the median.",
    ...(input.groups.some((g) => g.name === "remote") ? [] : [
      "- Nothing here crosses a network: the remote group (pull over ssh beside `scp`, " +
      "`rsync -a`, `rsync -az` and `ssh cat`) runs with `--groups remote` or " +
      "`deno task bench:remote`.",
    ]),
    ...input.notes.map((note) => `- Note: ${note}`),
    "",
    "## Targets",
    "",
    renderTable(targetsTable(input.groups.flatMap((g) => g.result.targets))),
    "",
  ];
  for (const { name, group, result } of input.groups) {
    out.push(`## ${group.title} (\`--groups ${name}\`)`, "", group.summary, "");
    for (const section of result.sections) {
      out.push(`### ${section.title}`, "");
      for (const paragraph of section.paragraphs) out.push(paragraph, "");
      if (section.table) out.push(renderTable(section.table), "");
    }
    const commands: string[] = [];
    const seen = new Set<string>();
    for (const tool of result.tools) {
      if (seen.has(tool.name)) continue;
      seen.add(tool.name);
      commands.push(`# ${tool.name}`, ...showCommands(tool, input.root));
    }
    const legend = PLACEHOLDERS.filter(([word]) => commands.some((c) => c.includes(word)))
      .map(([word, meaning]) => `\`${word}\` ${meaning}`);
    // A group that shows its commands itself (the remote group) measures no Tool here.
    if (commands.length === 0) continue;
    out.push(`Exact commands${legend.length > 0 ? ` (${legend.join(", ")})` : ""}:`, "");
    out.push("```sh", ...commands);
    out.push("```", "");
  }
  return out.join("\n");
}
