/**
 * The `local` benchmark group: litekeep's backup and verify beside `cp`, `sqlite3 .backup`,
 * `VACUUM INTO`, `sha256sum`, `md5sum` and `sqlite3 integrity_check`, per size, interleaved;
 * then the in-process phases of a backup, which say what bounds its time.
 *
 * @module
 */
import { join } from "node:path";
import { backupDatabase } from "../../lib/backup_set/backup.ts";
import { checkCopy, type SizeName, SIZES, type Source } from "./data.ts";
import { runInterleaved, type Tool } from "./measure.ts";
import { plural, ratio, seconds, type Spread, spread } from "./report.ts";
import { type Phase, PHASES, profilePhases } from "./phases.ts";
import {
  type BenchContext,
  type BenchGroup,
  caseTable,
  type GroupResult,
  medianSeconds,
  peakMiB,
  sizeTitle,
  type TargetResult,
} from "./markdown.ts";
import {
  backupHashCheckTool,
  cpTool,
  digestTool,
  integrityCheckTool,
  litekeepBackup,
  litekeepVerify,
  sqliteBackupTool,
  vacuumIntoTool,
} from "./tools.ts";

/** The tools of one size, by role. */
function localTools(source: Source, backup: string) {
  const check = (file: string, what: string) => checkCopy(file, source, what);
  return {
    fast: litekeepBackup("litekeep backup, snapshot only", source.path, [
      "--verify",
      "none",
      "--checksum",
      "none",
    ], check),
    full: litekeepBackup("litekeep backup, default", source.path, [], check),
    cp: cpTool(source),
    backup: sqliteBackupTool(source),
    vacuum: vacuumIntoTool(source),
    chain: backupHashCheckTool(source),
    sha256: digestTool(source, "sha256"),
    md5: digestTool(source, "md5"),
    check: integrityCheckTool(source),
    verify: litekeepVerify(backup, source),
  };
}

type Role = keyof ReturnType<typeof localTools>;

/** Medians and peak memory per role at one size. */
interface Measured {
  size: SizeName;
  median: Record<Role, number>;
  peakMiB: Record<Role, number | null>;
  /** Median of the `durationMs` litekeep reported, in seconds (litekeep's tools only). */
  own: Record<Role, number>;
}

/** A backup with a sidecar for `litekeep verify` to check, made in-process (untimed). */
async function verifyFixture(source: Source, work: string): Promise<string> {
  const result = await backupDatabase({
    db: source.path,
    backupDir: join(work, `verify-${source.size}`),
    now: new Date(),
  });
  checkCopy(result.file, source, "verify fixture");
  return result.file;
}

/** The local group. */
export const localGroup: BenchGroup = {
  title: "Local: backup and verify beside the usual tools",
  summary: "Per size, every tool below runs interleaved on the same idle WAL database " +
    '(checkpointed, as an app leaves it when it closes). "snapshot only" is ' +
    '`--verify none --checksum none`; "default" adds sha256 and the full integrity_check, ' +
    "which run side by side (hash on the main thread, check in a worker).",
  async run(ctx: BenchContext): Promise<GroupResult> {
    const result: GroupResult = { sections: [], targets: [], tools: [] };
    const measured: Measured[] = [];
    for (const size of ctx.sizes) {
      const source = await ctx.source(size);
      const named = localTools(source, await verifyFixture(source, ctx.work));
      const roles = Object.keys(named) as Role[];
      const tools: Tool[] = Object.values(named);
      const runs = ctx.runs(size);
      const samples = await runInterleaved(tools, {
        runs,
        work: ctx.work,
        log: ctx.log,
        label: `local ${size}`,
      });
      const pick = <T>(f: (i: number) => T) =>
        Object.fromEntries(roles.map((role, i) => [role, f(i)])) as Record<Role, T>;
      measured.push({
        size,
        median: pick((i) => medianSeconds(samples[i])),
        peakMiB: pick((i) => peakMiB(samples[i])),
        own: pick((i) => spread(samples[i].map((x) => x.figures.coreMs ?? NaN)).median / 1000),
      });
      result.tools.push(...tools);
      result.sections.push({
        title: sizeTitle(SIZES[size].label, source),
        paragraphs: [
          `${plural(runs, "timed run")} per tool after one warm-up run; ${
            source.generatedSeconds === null
              ? "database from the cache"
              : `database generated in ${source.generatedSeconds.toFixed(1)} s`
          }. Ratio columns: litekeep's median over the tool's.`,
        ],
        table: caseTable(tools, samples, {
          bytes: source.bytes,
          references: [
            { heading: "snapshot only ÷ tool", index: roles.indexOf("fast") },
            { heading: "default ÷ tool", index: roles.indexOf("full") },
          ],
        }),
      });
      ctx.log(`local ${size}: timing the phases of a backup in-process`);
      const repeats = Math.min(3, runs);
      const phases = await profilePhases(source.path, ctx.work, repeats);
      result.sections.push({
        title: `${SIZES[size].label}: where a backup's time goes`,
        paragraphs: [
          `litekeep's own functions timed in the bench process (no process start), median of ${
            plural(repeats, "run")
          }:`,
          ...explain(measured[measured.length - 1], phases),
        ],
        table: {
          header: ["phase", "median ms", "min-max ms", "what"],
          rows: PHASES.map(([phase, what]) => [
            phase,
            phases[phase].median.toFixed(0),
            `${phases[phase].min.toFixed(0)}-${phases[phase].max.toFixed(0)}`,
            what,
          ]),
        },
      });
    }
    result.targets.push(...judge(measured));
    return result;
  },
};

/** What the phases say of the processes' times, in two sentences. */
function explain(m: Measured, phases: Record<Phase, Spread>): string[] {
  const s = (x: number) => `${seconds(x)} s`;
  const ms = (phase: Phase) => s(phases[phase].median / 1000);
  return [
    `The snapshot-only backup takes ${s(m.median.fast)} as a process, of which litekeep's own ` +
    `time is ${s(m.own.fast)}; the rest, ${s(m.median.fast - m.own.fast)}, is Deno's start ` +
    `and loading litekeep's modules (see Start-up). Its own time is about the snapshot ` +
    `(${ms("snapshot")}) plus the row-count worker (${ms("count")}); reading the file alone ` +
    `takes ${ms("read")}, and \`sqlite3 .backup\` (${s(m.median.backup)}) runs the same ` +
    "backup API as the snapshot, without the start-up and the worker.",
    `The default backup's own time, ${s(m.own.full)}, is about snapshot + fsync + hash+check ` +
    `(${ms("snapshot")} + ${ms("fsync")} + ${ms("hash+check")}). The integrity check alone ` +
    `takes ${ms("check")} and the sha256 ${ms("sha256")} beside it, so the check bounds that ` +
    `part; \`sqlite3 integrity_check\` of the source takes ${s(m.median.check)} and ` +
    `\`sha256sum\` ${s(m.median.sha256)}.`,
  ];
}

/** Targets 1, 2 and 4 from the medians and peaks of each size. */
function judge(measured: Measured[]): TargetResult[] {
  const targets: TargetResult[] = [];
  if (measured.length === 0) return targets;
  const gb = measured.find((m) => m.size === "1gb");
  const largest = measured[measured.length - 1];
  const atLargest = `not at 1 GB (add --sizes 1gb); at ${largest.size}: `;

  const vsCopies = (m: Measured) => {
    const backup = m.median.fast / m.median.backup;
    const cp = m.median.fast / m.median.cp;
    return {
      met: backup <= 1.0 && cp <= 1.5,
      figure: `${seconds(m.median.fast)} s: ${ratio(backup)} \`sqlite3 .backup\` (${
        seconds(m.median.backup)
      } s), ${ratio(cp)} \`cp\` (${seconds(m.median.cp)} s)`,
    };
  };
  const one = vsCopies(gb ?? largest);
  targets.push(gb ? { id: 1, ...one } : { id: 1, met: null, figure: atLargest + one.figure });

  // Target 2 names no size: judged at the largest size measured, every size shown.
  const chain = (m: Measured) => m.median.full / m.median.chain;
  targets.push({
    id: 2,
    met: chain(largest) <= 0.8,
    scope: `judged at ${largest.size}`,
    figure: measured.map((m) =>
      `${m.size}: ${ratio(chain(m))} (${seconds(m.median.full)} s vs ${seconds(m.median.chain)} s)`
    ).join(", "),
  });

  const m = gb ?? largest;
  const peaks = (["fast", "full", "verify"] as const).map((role) => m.peakMiB[role]);
  if (peaks.some((p) => p === null)) {
    targets.push({ id: 4, met: null, figure: "GNU time (/usr/bin/time) is not installed" });
  } else {
    const figure = `backup ${Math.max(peaks[0]!, peaks[1]!).toFixed(0)} MiB, verify ${
      peaks[2]!.toFixed(0)
    } MiB`;
    targets.push(
      gb
        ? {
          id: 4,
          met: peaks.every((p) => p! < 150),
          scope: "backup and verify; pull not measured yet",
          figure,
        }
        : { id: 4, met: null, figure: atLargest + figure },
    );
  }
  return targets;
}
