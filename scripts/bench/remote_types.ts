/**
 * What the over-ssh benchmark group is asked to run and what it measured: the contract between
 * `remote.ts`, which measures, and `remote_markdown.ts`, which writes the report. Types only,
 * in their own module so that neither of the two imports the other's implementation.
 *
 * @module
 */
import type { CopyRun, Method } from "./remote_copy.ts";
import type { WriterCheck } from "./remote_check.ts";
import type { AgentRun, Compressor, LevelRun, PullPhases, StartupCost } from "./remote_probe.ts";
import type { WriterReport } from "../../tests/support/writer.ts";

/** A link: loopback, or a namespace shaped to this many Mbit/s. */
export type Link = "loopback" | number;

/** What to run. */
export interface RemoteGroupOptions {
  /** Database size for loopback and links faster than 20 Mbit/s, e.g. `100mb`. */
  size: string;
  /** Database size for links of 20 Mbit/s or less. @default "30mb" */
  slowSize?: string;
  links: Link[];
  /** Timed runs of each method per link. */
  runs: number;
  /** Runs on links of 20 Mbit/s or less. @default max(1, floor(runs / 3)) */
  slowRuns?: number;
  /** Method ids (of `METHODS`). @default MAIN_METHODS */
  methods?: string[];
  /** Methods run once each while a writer commits; [] skips this. @default WRITER_METHODS */
  writerMethods?: string[];
  /** The writer's commits per second. @default 300 */
  writerRate?: number;
  /** Phase profile, gzip levels and compressor speeds. @default true */
  probes?: boolean;
  /** Untimed pulls first, so deno's caches are warm. @default true */
  warmUp?: boolean;
  /** Where generated databases are kept and reused. @default "bench-data" */
  cacheDir?: string;
  /** @default 1 */
  seed?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A target judged here (ids of the benchmark issue). */
export interface RemoteTarget {
  id: number;
  /** null when not measured. */
  met: boolean | null;
  figure: string;
  /** What part of the target was measured, when not all of it. */
  scope?: string;
}

/** What the group returns. */
export interface RemoteGroupResult {
  markdown: string;
  targets: RemoteTarget[];
  /** Copies made and checked. */
  checkedCopies: number;
}

/** A generated database. */
export interface Source {
  size: string;
  path: string;
  bytes: number;
  rows: Record<string, number>;
}

/** What one method did on one link. */
export interface MethodResult {
  method: Method;
  runs: CopyRun[];
  /** Peak memory of the remote litekeep over the runs, KiB; null when it did not run. */
  remoteRssKiB: number | null;
  /** Pages a delta pull sent. */
  pagesSent: number | null;
}

/** One link's results. */
export interface LinkResult {
  link: Link;
  source: Source;
  runs: number;
  startup: StartupCost;
  methods: MethodResult[];
}

/** One copy taken while the writer committed. */
export interface WriterRow {
  method: string;
  seconds: number | null;
  check: WriterCheck;
}

/** The writer table. */
export interface WriterResult {
  link: Link;
  rate: number;
  source: Source;
  rows: WriterRow[];
  report: WriterReport;
}

/** The probes' findings. */
export interface Probes {
  link: Link;
  source: Source;
  /** Runs of each profiled pull (each remote tool alone runs twice). */
  runs: number;
  /** Medians of the phases of each profiled pull. */
  phases: PullPhases[];
  agents: AgentRun[];
  levels: LevelRun[];
  compressors: Compressor[];
  /** What rsync -z negotiated, as its `--debug=nstr` says. */
  rsyncCompress: string;
}

/** Everything measured, for the report. */
export interface RemoteMeasurements {
  options: RemoteGroupOptions;
  started: Date;
  loadBefore: string;
  loadAfter: string;
  links: LinkResult[];
  writer: WriterResult | null;
  probes: Probes | null;
}
