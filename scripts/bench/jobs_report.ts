/**
 * The report of the three-job over-ssh bench (`remote_jobs.ts`): per link and job, every tool
 * side by side with ratios to `rsync -az` and what bounds each figure, then the issue's targets
 * judged per litekeep variant. Pure: measurements in, markdown out.
 *
 * @module
 */
import { mb, ratio, secs, spread, table } from "./report.ts";

/** The three jobs. */
export type Job = "first" | "changed" | "nothing";

export const JOB_TITLES: Record<Job, string> = {
  first: "first pull (no local copy)",
  changed: "pull after the 1% change (local copy of before)",
  nothing: "pull when nothing changed (local copy equal)",
};

/** One timed run of one tool. */
export interface JobRun {
  seconds: number;
  /** Bytes on the link, both directions. */
  wireBytes: number;
  localRssKiB: number;
  /** Peak RSS of the remote litekeep (null: none ran, e.g. scp, rsync). */
  remoteRssKiB: number | null;
  /** Bytes the remote litekeep wrote to disk (`write_bytes`); null when none ran. */
  remoteWriteBytes: number | null;
  /** `ok`, or what the check of the copy found. */
  check: string;
}

/** A tool's runs of one job on one link; `error` when it could not run (e.g. a rejected flag). */
export interface ToolJob {
  tool: string;
  litekeep: boolean;
  runs: JobRun[];
  error?: string;
}

/** One link. */
export interface LinkJobs {
  mbit: number;
  /** `ssh testpi true`, median seconds. */
  sshStart: number;
  /** Interleaved rounds run on this link. */
  rounds: number;
  jobs: Record<Job, ToolJob[]>;
}

/** A copy under the writer. */
export interface WriterCopy {
  tool: string;
  litekeep: boolean;
  verdict: string;
  detail: string;
}

/** One pull of the 1 GB database. */
export interface BigRun {
  /** `first`: no local copy; `changed`: a delta onto the first pull's copy after the 1% change. */
  job: Job;
  run: JobRun | null;
  /** How it ran, from the pull's `--json`, e.g. `delta, protocol 2, zstd, 1200 of 244000 pages`. */
  ran?: string;
  error?: string;
}

/** The 1 GB local pull. */
export interface BigPull {
  size: string;
  bytes: number;
  tool: string;
  /** The first pull (as the baseline, which had no `pulls`, measured it). */
  run: JobRun | null;
  error?: string;
  /** The first pull, the delta pull after a 1% change, the unchanged pull, in that order. */
  pulls?: BigRun[];
}

/** The 1 GB pulls, a baseline's single first pull included. */
export function bigPulls(big: BigPull): BigRun[] {
  return big.pulls ?? [{ job: "first", run: big.run, error: big.error }];
}

export const BIG_TITLES: Record<Job, string> = {
  first: "first pull (no local copy)",
  changed: "pull after the 1% change (delta onto the first pull's copy)",
  nothing: "pull when nothing changed",
};

/** Everything the report needs. */
export interface JobsMeasurements {
  command: string;
  started: string;
  machine: string;
  dbBytes: number;
  dbLabel: string;
  changeSummary: string;
  rounds: number;
  rtt: string;
  links: LinkJobs[];
  writer: { rate: number; commits: number; copies: WriterCopy[] } | null;
  big: BigPull | null;
  label: string;
}

/** Medians of a tool's runs; null when it has none. */
export function medians(t: ToolJob): { seconds: number; wire: number } | null {
  if (t.runs.length === 0) return null;
  return {
    seconds: spread(t.runs.map((r) => r.seconds)).median,
    wire: spread(t.runs.map((r) => r.wireBytes)).median,
  };
}

function maxOf(values: (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length ? Math.max(...v) : null;
}

/**
 * What bounds a figure: ssh's start when it is most of the time; the link when the bytes at
 * the link's rate take most of it; else the remote disk when the remote wrote about the
 * database's size, else CPU (the remote's one core, or the local side).
 */
export function boundOf(
  seconds: number,
  wireBytes: number,
  mbit: number,
  sshStart: number,
  remoteWrite: number | null,
  dbBytes: number,
): string {
  const linkSeconds = wireBytes * 8 / (mbit * 1e6);
  if (sshStart >= 0.5 * seconds) return "ssh start";
  if (linkSeconds >= 0.7 * seconds) return "link";
  if (remoteWrite !== null && remoteWrite >= 0.5 * dbBytes) {
    return `remote disk + CPU (link ${Math.round(100 * linkSeconds / seconds)}%)`;
  }
  return `CPU (link ${Math.round(100 * linkSeconds / seconds)}%)`;
}

/** A target judged for one litekeep variant: met, failed, or not measured (null). */
export interface Verdict {
  met: boolean | null;
  figure: string;
}

/** One target, judged per litekeep variant. */
export interface TargetRow {
  id: number;
  text: string;
  byVariant: Record<string, Verdict>;
  /** When judged for no variant (e.g. another bench owns it). */
  note?: string;
}

const MIB = 1024;

/** Judges the issue's targets for every litekeep variant measured. */
export function judgeJobTargets(m: JobsMeasurements): TargetRow[] {
  const variants = [
    ...new Set(
      // Every job, not only the first pull: a `--jobs nothing` run has no first pulls.
      m.links.flatMap((l) =>
        Object.values(l.jobs).flat().filter((t) => t.litekeep).map((t) => t.tool)
      ),
    ),
  ];
  const find = (l: LinkJobs, job: Job, tool: string) => l.jobs[job].find((t) => t.tool === tool);
  const per = (f: (v: string) => Verdict) => Object.fromEntries(variants.map((v) => [v, f(v)]));
  /** Against rsync -az on every link; `bytes` also compares the bytes. */
  const vsRsync = (job: Job, bytes: boolean) =>
    per((v) => {
      const parts: string[] = [];
      let met: boolean | null = true;
      for (const l of m.links) {
        const mine = find(l, job, v);
        const rs = find(l, job, "rsync -az");
        const a = mine && medians(mine);
        const b = rs && medians(rs);
        if (!a || !b || mine!.runs.some((r) => r.check !== "ok")) {
          met = null;
          parts.push(`${l.mbit} Mbit/s: n/a${mine?.error ? ` (${mine.error})` : ""}`);
          continue;
        }
        const ok = a.seconds <= b.seconds && (!bytes || a.wire <= b.wire);
        if (!ok && met !== null) met = false;
        parts.push(
          `${l.mbit} Mbit/s: ${secs(a.seconds)} s vs ${secs(b.seconds)} s` +
            (bytes ? `, ${mb(a.wire)} MB vs ${mb(b.wire)} MB` : ""),
        );
      }
      return { met: m.links.length ? met : null, figure: parts.join("; ") };
    });
  const overRuns = (
    pick: (r: JobRun) => number | null,
    limit: number,
    show: (x: number) => string,
  ) =>
    per((v) => {
      const runs = m.links.flatMap((l) =>
        (Object.keys(l.jobs) as Job[]).flatMap((j) => find(l, j, v)?.runs ?? [])
      );
      const peak = maxOf(runs.map(pick));
      const bigRuns = m.big && m.big.tool === v
        ? bigPulls(m.big).flatMap((p) => p.run ? [p.run] : [])
        : [];
      const bigPeak = maxOf(bigRuns.map(pick));
      if (peak === null && bigPeak === null) return { met: null, figure: "no remote litekeep ran" };
      const figure = [
        ...(peak === null ? [] : [`peak ${show(peak)}`]),
        ...(bigPeak === null ? [] : [`${m.big!.size} pulls: peak ${show(bigPeak)}`]),
      ].join("; ");
      return { met: Math.max(peak ?? 0, bigPeak ?? 0) < limit, figure };
    });
  const rows: TargetRow[] = [
    {
      id: 1,
      text: "first pull: at most rsync -az's time, on both links",
      byVariant: vsRsync("first", false),
    },
    {
      id: 2,
      text: "pull after the 1% change: at most rsync -az's time and bytes",
      byVariant: vsRsync("changed", true),
    },
    {
      id: 3,
      text: "pull when nothing changed: under 1.5 s (ssh's own start included)",
      byVariant: per((v) => {
        const found = m.links.map((l) => [l, find(l, "nothing", v)] as const);
        const parts = found.map(([l, t]) => {
          const a = t && medians(t);
          return a ? `${l.mbit} Mbit/s: ${secs(a.seconds)} s` : `${l.mbit} Mbit/s: n/a`;
        });
        const all = found.map(([, t]) => t && medians(t));
        const met = all.some((a) => !a) || all.length === 0
          ? null
          : all.every((a) => a!.seconds < 1.5);
        return { met, figure: parts.join("; ") };
      }),
    },
    {
      id: 4,
      text: "nothing of DB size written on the remote (agent write_bytes)",
      byVariant: overRuns((r) => r.remoteWriteBytes, 0.1 * m.dbBytes, (x) => `${mb(x)} MB`),
    },
    {
      id: 5,
      text: "remote agent peak RSS under 64 MiB",
      byVariant: overRuns((r) => r.remoteRssKiB, 64 * MIB, (x) => `${(x / MIB).toFixed(0)} MiB`),
    },
    {
      id: 6,
      text: "local pull of a 1 GB database: local peak RSS under 150 MiB",
      byVariant: per((v) => {
        if (!m.big || m.big.tool !== v) return { met: null, figure: "not run for this variant" };
        const pulls = bigPulls(m.big).filter((p) => p.job !== "nothing");
        const parts = pulls.map((p) =>
          `${p.job === "first" ? "first pull" : `delta pull${p.ran ? ` (${p.ran})` : ""}`} ` +
          (p.run ? `${(p.run.localRssKiB / MIB).toFixed(0)} MiB` : `failed: ${p.error ?? "?"}`)
        );
        const met = pulls.some((p) => !p.run)
          ? null
          : pulls.every((p) => p.run!.localRssKiB < 150 * MIB);
        return { met, figure: parts.join("; ") };
      }),
    },
    {
      id: 7,
      text: "local backup of the 1 GB database, --verify none: at most 0.5x sqlite3 .backup",
      byVariant: {},
      note: "measured by the local bench (`deno task bench`), not here",
    },
    {
      id: 8,
      text: "under a 300 commits/s remote writer every pull is consistent",
      byVariant: per((v) => {
        const c = m.writer?.copies.find((x) => x.tool === v);
        if (!c) return { met: null, figure: "not run" };
        return {
          met: c.verdict === "consistent",
          figure: c.verdict + (c.detail ? ` (${c.detail})` : ""),
        };
      }),
    },
  ];
  return rows;
}

function cell(v: Verdict | undefined): string {
  if (!v) return "-";
  const word = v.met === null ? "n/a" : v.met ? "**pass**" : "**FAIL**";
  return `${word}: ${v.figure}`;
}

/** The report's markdown. */
export function renderJobsReport(m: JobsMeasurements): string {
  const out: string[] = [];
  out.push(`## ${m.label}`, "");
  out.push(
    `Run ${m.started} with \`${m.command}\`. ${m.machine}`,
    "",
    `- Workload: ${m.dbLabel}; the change: ${m.changeSummary}.`,
    `- Links: network namespace + veth, \`tc tbf\` at ${
      m.links.map((l) => `${l.mbit}`).join(" and ")
    } Mbit/s; RTT: ${m.rtt}. sshd (and every remote litekeep) pinned to one core with ` +
      "`taskset -c 0`. Every tool runs in the same run, interleaved (the order rotates each " +
      `round); rounds: ${m.links.map((l) => `${l.rounds} on ${l.mbit} Mbit/s`).join(", ")}.`,
    "- Per run: wall time of the whole command; bytes on the link from the host veth's " +
      "counters (both directions); local peak RSS (GNU time `%M`); remote litekeep peak RSS and " +
      "disk write bytes (GNU time `%M` and `%O` = `write_bytes`/512 of /proc/PID/io, through a " +
      "wrapper around the remote litekeep). Every copy is opened and checked (integrity_check " +
      "and the row counts of the remote).",
    "- `litekeep` variants: the default (no flags), then each `--method` and `--compress` " +
      "choice read from `litekeep pull --help`; a variant the CLI rejects is marked n/a.",
    "- Bound: `ssh start` when `ssh testpi true` is half the time or more; `link` when the " +
      "bytes at the link's rate are 70% of it or more; else `remote disk + CPU` when the " +
      "remote wrote half the database or more, else `CPU`; with the link's share.",
    "",
  );
  for (const l of m.links) {
    // A --big run with --rounds 0 measured no job on this link: no empty tables.
    if (l.rounds === 0) continue;
    out.push(
      `### ${l.mbit} Mbit/s, ${l.rounds} round(s) (\`ssh testpi true\`: ${secs(l.sshStart)} s)`,
      "",
    );
    for (const job of ["first", "changed", "nothing"] as Job[]) {
      const tools = l.jobs[job];
      if (tools.length === 0) continue;
      const rs = tools.find((t) => t.tool === "rsync -az");
      const base = rs && medians(rs);
      out.push(`#### ${JOB_TITLES[job]}`, "");
      const rows = tools.map((t) => {
        const a = medians(t);
        if (!a) return [t.tool, `n/a: ${t.error ?? "no run"}`, "", "", "", "", "", "", "", ""];
        const s = spread(t.runs.map((r) => r.seconds));
        const remoteWrite = maxOf(t.runs.map((r) => r.remoteWriteBytes));
        const remoteRss = maxOf(t.runs.map((r) => r.remoteRssKiB));
        const bad = t.runs.filter((r) => r.check !== "ok");
        return [
          t.tool,
          s.min === s.max ? secs(s.median) : `${secs(s.median)} (${secs(s.min)}-${secs(s.max)})`,
          mb(a.wire),
          base ? ratio(a.seconds / base.seconds) : "-",
          base && base.wire > 0 ? ratio(a.wire / base.wire) : "-",
          String(Math.round(Math.max(...t.runs.map((r) => r.localRssKiB)) / MIB)),
          remoteRss === null ? "-" : String(Math.round(remoteRss / MIB)),
          remoteWrite === null ? "-" : mb(remoteWrite),
          boundOf(a.seconds, a.wire, l.mbit, l.sshStart, remoteWrite, m.dbBytes),
          bad.length ? `${bad.length} bad: ${bad[0].check}` : "ok",
        ];
      });
      out.push(
        table([
          "tool",
          "seconds, median (min-max)",
          "MB on the link",
          "time vs rsync -az",
          "bytes vs rsync -az",
          "local peak RSS MiB",
          "remote litekeep peak RSS MiB",
          "remote MB written",
          "bound",
          "copies checked",
        ], rows),
        "",
      );
    }
  }
  if (m.writer) {
    out.push(
      `### Under a ${m.writer.rate} commits/s remote writer (${m.links[0]?.mbit ?? "?"} Mbit/s)`,
      "",
      `The writer made ${m.writer.commits} commits; each commit adds one payment and one ledger ` +
        "row, so a consistent copy has as many of each. scp and rsync copies are checked with " +
        "integrity_check and those counts.",
      "",
      table(
        ["tool", "verdict", "detail"],
        m.writer.copies.map((c) => [c.tool, `**${c.verdict}**`, c.detail || "-"]),
      ),
      "",
    );
  }
  if (m.big) {
    const pulls = bigPulls(m.big);
    out.push(
      `### Local pull of a ${m.big.size} database (${mb(m.big.bytes)} MB), unshaped veth`,
      "",
    );
    if (m.big.pulls) {
      out.push(
        `With \`${m.big.tool}\`, one after another onto the same local copy: a first pull, a ` +
          "pull after 1% of the remote's rows changed (the same change as above, on a copy of " +
          "the database on the remote), then a pull with nothing changed.",
        "",
        table(
          [
            "pull",
            "ran as",
            "seconds",
            "MB on the link",
            "local peak RSS MiB",
            "remote peak RSS MiB",
            "remote MB written",
            "copy",
          ],
          pulls.map((p) => {
            const r = p.run;
            if (!r) return [BIG_TITLES[p.job], `failed: ${p.error ?? "?"}`, "", "", "", "", "", ""];
            return [
              BIG_TITLES[p.job],
              p.ran ?? "-",
              secs(r.seconds),
              mb(r.wireBytes),
              String(Math.round(r.localRssKiB / MIB)),
              r.remoteRssKiB === null ? "-" : String(Math.round(r.remoteRssKiB / MIB)),
              r.remoteWriteBytes === null ? "-" : mb(r.remoteWriteBytes),
              r.check,
            ];
          }),
        ),
        "",
      );
    } else {
      const r = m.big.run;
      out.push(
        r
          ? table([
            "tool",
            "seconds",
            "local peak RSS MiB",
            "remote peak RSS MiB",
            "remote MB written",
          ], [[
            m.big.tool,
            secs(r.seconds),
            String(Math.round(r.localRssKiB / MIB)),
            r.remoteRssKiB === null ? "-" : String(Math.round(r.remoteRssKiB / MIB)),
            r.remoteWriteBytes === null ? "-" : mb(r.remoteWriteBytes),
          ]])
          : `Failed: ${m.big.error}`,
        "",
      );
    }
  }
  const targets = judgeJobTargets(m);
  const variants = [...new Set(targets.flatMap((t) => Object.keys(t.byVariant)))];
  out.push(
    "### Targets (issue 10)",
    "",
    "Each target judged for every litekeep variant measured: **pass**, **FAIL**, or n/a (not " +
      "measured, or the variant could not run).",
    "",
  );
  const rows: string[][] = [];
  for (const t of targets) {
    if (t.note) rows.push([String(t.id), t.text, "-", `n/a: ${t.note}`]);
    variants.forEach((v, i) => {
      if (t.note) return;
      rows.push([i === 0 ? String(t.id) : "", i === 0 ? t.text : "", v, cell(t.byVariant[v])]);
    });
  }
  out.push(table(["#", "target", "variant", "verdict: figure"], rows), "");
  return out.join("\n");
}

/** The markers around the section `name` in the report file. */
export function markers(name: string): { begin: string; end: string } {
  return {
    begin: `<!-- bench:remote-jobs ${name} begin -->`,
    end: `<!-- bench:remote-jobs ${name} end -->`,
  };
}

/**
 * `doc` with the section `name` between its markers replaced by `section` (put after the other
 * sections of this bench, or first, when `doc` has none), so the rest of
 * docs/BENCHMARKS_REMOTE.md stays as it was.
 */
export function spliceSection(doc: string, section: string, name = "jobs"): string {
  const { begin, end } = markers(name);
  const block = `${begin}\n${section.trim()}\n${end}\n`;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) {
    return doc.slice(0, a) + block + doc.slice(b + end.length).replace(/^\n/, "");
  }
  const last = doc.lastIndexOf(" end -->\n");
  if (last >= 0 && doc.slice(0, last).includes("<!-- bench:remote-jobs ")) {
    const at = last + " end -->\n".length;
    return `${doc.slice(0, at)}\n${block}${doc.slice(at)}`;
  }
  return `${block}\n${doc}`;
}
