/**
 * Timing for the benchmarks. Every measured command is a real process, timed by wall clock from
 * spawn to exit, with its peak memory from GNU time; the tools of a case run interleaved (each
 * run visits every tool once, in a rotated order) so that machine noise hits them alike.
 *
 * @module
 */
import { join } from "node:path";
import { type Spread, spread } from "./report.ts";

/** Numbers a run reports beside its time, e.g. litekeep's own `durationMs`. */
export type Figures = Record<string, number>;

/** One timed run of a tool. */
export interface Sample {
  /** Wall-clock seconds from the first spawn to the last exit. */
  seconds: number;
  /** Peak resident memory of the largest process, in KiB; null without GNU time. */
  maxRssKiB: number | null;
  /** What the tool's hooks and check reported. */
  figures: Figures;
}

/**
 * A command measured in a case: one or more processes run one after another. Only the
 * processes are timed; the hooks and the check are not.
 */
export interface Tool {
  /** The row label in the report. */
  name: string;
  /** The processes of one run; `out` is a fresh empty folder for what the run writes. */
  steps(out: string): string[][];
  /** Exit codes other than 0 that are a result, not a failure (e.g. 124 from `timeout`). */
  okCodes?: number[];
  /** Paths shown as placeholders in the report's commands, e.g. `{ "/tmp/x/gym.db": "SRC" }`. */
  labels?: Record<string, string>;
  /** Before the processes start, e.g. starts a writer. */
  before?(): Promise<void>;
  /** After the last process exits, even a failed one; e.g. stops the writer and reports. */
  after?(): Promise<Figures>;
  /**
   * Proves the run's result right, so that a fast wrong result cannot pass.
   *
   * @param stdout what the processes printed, one after another
   * @param code the exit code of the last process: 0 or one of `okCodes`
   * @throws {Error} saying what is wrong; it aborts the benchmark
   */
  check(out: string, stdout: string, code: number): Promise<Figures | void>;
}

/** GNU time: `-f %M` prints the peak RSS in KiB of the command it runs. */
const GNU_TIME = "/usr/bin/time";
let gnuTime: Promise<boolean> | undefined;

/** True when peak memory can be measured here (GNU time is installed). */
export function canMeasureMemory(): Promise<boolean> {
  return gnuTime ??= Deno.stat(GNU_TIME).then((info) => info.isFile, () => false);
}

/** What running a tool's processes gave. */
interface Measured {
  seconds: number;
  maxRssKiB: number | null;
  stdout: string;
  /** Exit code of the last process. */
  code: number;
}

/**
 * Runs `steps` one after another and times them. GNU time wraps each process to read its peak
 * memory; its own start (about a millisecond) is inside every tool's time alike.
 *
 * @param scratch a folder for GNU time's report
 * @param okCodes exit codes besides 0 that do not fail the run
 * @throws {Error} when a process exits with another code, with the tail of its stderr
 */
export async function runSteps(
  steps: string[][],
  scratch: string,
  okCodes: number[] = [],
): Promise<Measured> {
  const memory = await canMeasureMemory();
  const report = join(scratch, ".bench-rss");
  const result: Measured = { seconds: 0, maxRssKiB: memory ? 0 : null, stdout: "", code: 0 };
  for (const [program, ...args] of steps) {
    const command = memory
      ? new Deno.Command(GNU_TIME, {
        args: ["-o", report, "-f", "%M", program, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      })
      : new Deno.Command(program, { args, stdin: "null", stdout: "piped", stderr: "piped" });
    const started = performance.now();
    const out = await command.output();
    result.seconds += (performance.now() - started) / 1000;
    const decoder = new TextDecoder();
    result.code = out.code;
    if (!out.success && !okCodes.includes(out.code)) {
      const tail = decoder.decode(out.stderr).trim().split("\n").slice(-5).join("\n");
      throw new Error(`Command "${[program, ...args].join(" ")}" exited with ${out.code}: ${tail}`);
    }
    result.stdout += decoder.decode(out.stdout);
    if (result.maxRssKiB !== null) {
      const kib = Number((await Deno.readTextFile(report)).trim().split("\n").pop());
      if (!Number.isFinite(kib)) throw new Error(`GNU time gave no peak memory for "${program}"`);
      result.maxRssKiB = Math.max(result.maxRssKiB, kib);
    }
  }
  return result;
}

/** How to run a case. */
export interface CaseOptions {
  /** Timed runs per tool. */
  runs: number;
  /** Scratch folder: each run writes into a fresh folder below it, removed once checked. */
  work: string;
  /** Says what is running (progress on stderr). */
  log: (line: string) => void;
  /** Names the case in progress lines. */
  label: string;
}

let runCounter = 0;
let checkedCounter = 0;

const loads: number[] = [];

/** The 1-minute load average sampled before every run so far; null where Linux's is missing. */
export function loadDuringRuns(): Spread | null {
  return loads.length > 0 ? spread(loads) : null;
}

/** How many runs (warm-up included) have passed their check so far. */
export function checkedRuns(): number {
  return checkedCounter;
}

/** Runs one tool once: hooks, processes, check; removes what it wrote. */
async function runTool(tool: Tool, work: string): Promise<Sample> {
  const out = join(work, `run-${++runCounter}`);
  await Deno.mkdir(out);
  // Other work on the machine shows here; the report gives the spread.
  const load = Number((await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ")[0]);
  if (Number.isFinite(load)) loads.push(load);
  try {
    await tool.before?.();
    let measured: Measured;
    let figures: Figures = {};
    try {
      measured = await runSteps(tool.steps(out), work, tool.okCodes);
    } finally {
      if (tool.after) figures = await tool.after();
    }
    const checked = await tool.check(out, measured.stdout, measured.code);
    checkedCounter++;
    return {
      seconds: measured.seconds,
      maxRssKiB: measured.maxRssKiB,
      figures: { ...figures, ...checked },
    };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

/**
 * Runs every tool once untimed (warm-up: the page cache holds the source afterwards, and Deno's
 * module cache is filled), then `runs` rounds in which every tool runs once, the order rotated
 * by one each round. Every run, warm-up included, is checked.
 *
 * @returns the timed samples of each tool, in the order of `tools`
 */
export async function runInterleaved(tools: Tool[], options: CaseOptions): Promise<Sample[][]> {
  const samples: Sample[][] = tools.map(() => []);
  for (let round = 0; round <= options.runs; round++) {
    for (let k = 0; k < tools.length; k++) {
      const index = (k + round) % tools.length;
      const tool = tools[index];
      const sample = await runTool(tool, options.work);
      const what = round === 0 ? "warm-up" : `run ${round}/${options.runs}`;
      options.log(`${options.label} ${what}: ${tool.name} ${sample.seconds.toFixed(3)} s`);
      if (round > 0) samples[index].push(sample);
    }
  }
  return samples;
}

/**
 * A tool's commands as the report shows them: `deno` for this Deno, paths relative to the
 * repository, the tool's labels for its inputs, and shell quoting where a word needs it.
 */
export function showCommands(tool: Tool, root: string): string[] {
  const labels = Object.entries(tool.labels ?? {}).sort((a, b) => b[0].length - a[0].length);
  return tool.steps("OUT").map((argv) =>
    argv.map((word, i) => {
      let shown = i === 0 && word === Deno.execPath() ? "deno" : word;
      for (const [path, label] of labels) shown = shown.replaceAll(path, label);
      if (shown.startsWith(root)) shown = shown.slice(root.length);
      return shellWord(shown);
    }).join(" ")
  );
}

/** A word as a POSIX shell reads it back: bare when safe, else in double quotes. */
export function shellWord(word: string): string {
  return /^[\w./=:,@%+-]+$/.test(word) ? word : `"${word.replace(/["\\$`]/g, "\\$&")}"`;
}
