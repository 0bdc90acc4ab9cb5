/**
 * The three-job over-ssh bench of issue 10: a ~100 MB gym database on a "Pi" (network namespace,
 * `tc tbf` at 100 and 20 Mbit/s, sshd pinned to one core), pulled by every `litekeep pull`
 * variant the CLI offers beside `scp`, `rsync -a` and `rsync -az`, interleaved, for three jobs:
 * the first pull, the pull after a change of 1% of the rows, and the pull when nothing changed.
 * Then one copy each under a 300 commits/s writer, and optionally (`--big`) three pulls of a 1 GB
 * database onto one local copy: the first, a delta after a 1% change on the remote, an unchanged
 * one, for the local and the remote peak RSS and the remote's writes.
 *
 * ```sh
 * deno task bench:remote-jobs --size 100mb --links 100,20 --rounds 3 --big \
 *   --out docs/BENCHMARKS_REMOTE.md
 * ```
 * The report is written between markers in `--out`; the rest of the file is kept.
 * Needs root (namespaces, tc), sshd, rsync, sqlite3, taskset and GNU time.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import { applyChange, CHANGED_TABLES, planChange } from "./change.ts";
import { helpChoices, pullVariants } from "./pull_options.ts";
import {
  type BigPull,
  type Job,
  type JobRun,
  type JobsMeasurements,
  judgeJobTargets,
  type LinkJobs,
  renderJobsReport,
  spliceSection,
  type ToolJob,
  type WriterCopy,
} from "./jobs_report.ts";
import { prepareSource } from "./remote.ts";
import { type Method, METHODS, pull, runCopy } from "./remote_copy.ts";
import { inspectCopy, judgeWriterCopy, tableRows } from "./remote_check.ts";
import { createShapedLink } from "./netns.ts";
import { rotate, spread } from "./report.ts";
import { PERMISSIONS, V8_FLAGS } from "../../lib/permissions.ts";
import { litekeepArgv, ROOT, startSshd } from "../../tests/support/sshd.ts";
import { startWriter } from "../../tests/support/writer.ts";

const HOST = "testpi";
const OTHER_TOOLS = ["scp", "rsync -a", "rsync -az"];

/** Options of a run. */
export interface JobsOptions {
  size: string;
  links: number[];
  rounds: number;
  /** Rounds on links under 50 Mbit/s. @default rounds */
  slowRounds?: number;
  jobs: Job[];
  /** Only these litekeep variants (labels); all when absent. */
  variants?: string[];
  writer: boolean;
  /** Run the local litekeep as plain `deno run`, without the binary's V8 flags. */
  localPlainDeno?: boolean;
  /** Size of the big local pull, e.g. `1000mb`; null skips it. */
  big: string | null;
  cacheDir: string;
  out?: string;
  label: string;
  /** The command line, for the report. */
  command?: string;
}

/**
 * A remote litekeep that appends `%M %O` (peak KiB, 512-byte blocks written) to `log`, run with
 * the V8 flags the compiled binary has baked in (without them its RSS is not the binary's).
 */
async function measuredRemoteLitekeep(dir: string, log: string): Promise<string> {
  const path = join(dir, "litekeep");
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nexec /usr/bin/time -a -o ${log} -f "%M %O" ${Deno.execPath()} run --quiet --v8-flags=${
      V8_FLAGS.join(",")
    } ${PERMISSIONS.join(" ")} ${join(ROOT, "main.ts")} "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** Peak RSS and write bytes of the remote litekeep runs logged since the last call. */
async function takeRemote(log: string): Promise<{ rss: number | null; write: number | null }> {
  const lines = (await Deno.readTextFile(log)).split("\n").map((l) => l.trim())
    .filter((l) => /^\d+ \d+$/.test(l)).map((l) => l.split(" ").map(Number));
  await Deno.writeTextFile(log, "");
  if (lines.length === 0) return { rss: null, write: null };
  return {
    rss: Math.max(...lines.map((l) => l[0])),
    write: lines.reduce((n, l) => n + l[1] * 512, 0),
  };
}

async function sshStart(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await new Deno.Command("ssh", { args: [HOST, "true"], stdout: "null", stderr: "null" })
      .output();
    times.push((performance.now() - t) / 1000);
  }
  return spread(times).median;
}

/** One line for a table cell: no newlines or pipes, no temp paths, at most 160 characters. */
function clean(text: string): string {
  return text.replace(/\s+/g, " ").replace(/\|/g, "/")
    .replace(/\/tmp\/litekeep-bench-jobs-[0-9a-f]+/g, "WORK").slice(0, 160);
}

/** How a pull ran, from its `--json`: e.g. `delta, protocol 2, zstd, 1200 of 244000 pages`. */
export function ranAs(json: Record<string, unknown> | undefined): string {
  if (!json) return "-";
  if (json.unchanged) return `unchanged (protocol ${json.protocol ?? "?"})`;
  const parts = [String(json.method ?? "?")];
  if (json.protocol !== null && json.protocol !== undefined) {
    parts.push(`protocol ${json.protocol}`);
  }
  if (json.compress) parts.push(String(json.compress));
  if (typeof json.pagesSent === "number") {
    parts.push(
      `${json.pagesSent}${typeof json.pages === "number" ? ` of ${json.pages}` : ""} pages`,
    );
  }
  return parts.join(", ");
}

function rowsOf(path: string): Record<string, number> {
  const conn = new DatabaseSync(path, { readOnly: true });
  try {
    return tableRows(conn);
  } finally {
    conn.close();
  }
}

function checkOf(path: string, expected: Record<string, number>): string {
  const c = inspectCopy(path);
  if (c.integrity !== "ok") return `integrity: ${c.integrity}`.slice(0, 120);
  const diff = Object.keys(expected).filter((t) => c.rows[t] !== expected[t]);
  return diff.length ? `rows differ in ${diff.join(", ")}` : "ok";
}

/** Runs the bench and returns the measurements. */
export async function runJobs(
  options: JobsOptions,
  log: (line: string) => void,
): Promise<JobsMeasurements> {
  const started = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const source = await prepareSource(options.cacheDir, options.size, 1);
  log(`database ${options.size}: ${source.bytes} bytes`);
  const work = await Deno.makeTempDir({ prefix: "litekeep-bench-jobs-" });
  const cleanups: (() => void)[] = [() => Deno.removeSync(work, { recursive: true })];
  const interrupted = () => {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch { /* best effort */ }
    }
    Deno.exit(130);
  };
  for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, interrupted);
  try {
    const remoteDir = join(work, "remote");
    await Deno.mkdir(join(remoteDir, "changed"), { recursive: true });
    const remoteDb = join(remoteDir, "gym.db");
    const changedDb = join(remoteDir, "changed", "gym.db");
    await Deno.copyFile(source.path, remoteDb);
    await Deno.copyFile(source.path, changedDb);
    const gymRows = Object.fromEntries(CHANGED_TABLES.map((t) => [t, source.rows[t]]));
    const plan = planChange(gymRows);
    applyChange(changedDb, plan);
    const changedRows = rowsOf(changedDb);
    const totalRows = Object.values(gymRows).reduce((a, b) => a + b, 0);
    const changeSummary = `${plan.updates} updates and ${plan.inserts} inserts ` +
      `(${(100 * (plan.updates + plan.inserts) / totalRows).toFixed(2)}% of ${totalRows} rows, ` +
      `every table) in ${plan.transactions.length} transactions of up to 50 rows`;
    log(`change: ${changeSummary}`);

    const remoteLog = join(work, "remote.log");
    await Deno.writeTextFile(remoteLog, "");
    const remoteBin = await measuredRemoteLitekeep(work, remoteLog);
    const help = new TextDecoder().decode(
      (await new Deno.Command(litekeepArgv(["pull", "--help"])[0], {
        args: litekeepArgv(["pull", "--help"]).slice(1),
        stdout: "piped",
        stderr: "piped",
      }).output()).stdout,
    );
    let variants = pullVariants(
      helpChoices(help, "--method"),
      helpChoices(help, "--compress"),
      /--verify\b/.test(help) && /--no-local-backup\b/.test(help),
    );
    if (options.variants) variants = variants.filter((v) => options.variants!.includes(v.label));
    log(`litekeep variants: ${variants.map((v) => v.label).join(", ")}`);
    const tools: Method[] = [
      ...OTHER_TOOLS.map((id) => METHODS[id]),
      ...variants.map((v) => {
        const method = pull(v.label, "snapshot", v.flags);
        // The local side as the compiled binary runs too (its V8 flags are baked in, as the
        // remote stand-in's are given above), unless --local-plain-deno.
        if (options.localPlainDeno) return method;
        return {
          ...method,
          argv: (c: Parameters<typeof method.argv>[0]) => {
            const argv = method.argv(c);
            argv.splice(2, 0, `--v8-flags=${V8_FLAGS.join(",")}`);
            return argv;
          },
        };
      }),
    ];

    await using link = await createShapedLink({
      name: "lkjobs",
      rateMbit: null,
      hostAddress: "10.232.0.1",
      nsAddress: "10.232.0.2",
    });
    cleanups.push(() => link.removeSync());
    await using sshd = await startSshd({
      listen: link.nsAddress,
      wrap: [...link.wrap, "taskset", "-c", "0"],
    });
    cleanups.push(() => Deno.kill(sshd.pid, "SIGTERM"));
    const rtt = "+2 ms not added: this kernel is built without netem " +
      "(`CONFIG_NET_SCH_NETEM is not set`), so the round trip is a veth's, well under 1 ms";

    /** One run of `tool` for `job`; null check failures are recorded, not thrown. */
    const once = async (tool: Method, job: Job): Promise<JobRun> => {
      const dir = await Deno.makeTempDir({ dir: work, prefix: "local-" });
      try {
        const from = job === "changed" ? changedDb : remoteDb;
        const out = join(dir, basename(from));
        if (job !== "first") {
          await Deno.copyFile(source.path, out);
          // What a previous rsync -a would have left: the remote file's time stamp.
          if (job === "nothing") {
            const st = await Deno.stat(from);
            await Deno.utime(out, st.atime ?? new Date(), st.mtime ?? new Date());
          }
        }
        await takeRemote(remoteLog);
        const copy = await runCopy(
          tool,
          { host: HOST, remoteDb: from, out, remoteBin },
          link.bytes,
        );
        const remote = await takeRemote(remoteLog);
        return {
          seconds: copy.seconds,
          wireBytes: copy.wire.down + copy.wire.up,
          localRssKiB: copy.maxRssKiB,
          remoteRssKiB: remote.rss,
          remoteWriteBytes: remote.write,
          check: checkOf(out, job === "changed" ? changedRows : source.rows),
        };
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    };

    const links: LinkJobs[] = [];
    for (const mbit of options.links) {
      await link.setRate(mbit);
      const start = await sshStart();
      log(`${mbit} Mbit/s: ssh start ${start.toFixed(2)} s`);
      const jobs = Object.fromEntries(
        (["first", "changed", "nothing"] as Job[]).map((j) => [
          j,
          options.jobs.includes(j)
            ? tools.map((t): ToolJob => ({ tool: t.id, litekeep: !!t.litekeep, runs: [] }))
            : [],
        ]),
      ) as Record<Job, ToolJob[]>;
      const rounds = mbit < 50 ? options.slowRounds ?? options.rounds : options.rounds;
      for (let round = 0; round < rounds; round++) {
        for (const job of options.jobs) {
          for (const [i, tool] of rotate(tools.map((t, i) => [i, t] as const), round)) {
            const slot = jobs[job][i];
            if (slot.error) continue;
            try {
              const run = await once(tool, job);
              slot.runs.push(run);
              log(
                `${mbit} Mbit/s round ${round + 1} ${job}: ${tool.id} ${
                  run.seconds.toFixed(2)
                } s ` +
                  `${(run.wireBytes / 1e6).toFixed(1)} MB ${run.check}`,
              );
            } catch (error) {
              slot.error = (error instanceof Error ? error.message : String(error))
                .replace(/\s+/g, " ").slice(0, 160);
              log(`${mbit} Mbit/s ${job}: ${tool.id} n/a: ${slot.error}`);
            }
          }
        }
      }
      links.push({ mbit, sshStart: start, rounds, jobs });
    }

    let writer: JobsMeasurements["writer"] = null;
    if (options.writer) {
      await link.setRate(options.links[0] ?? 100);
      const db = join(remoteDir, "writer.db");
      await Deno.copyFile(source.path, db);
      const w = await startWriter(db, work, 300);
      cleanups.push(() => Deno.kill(w.pid, "SIGKILL"));
      const copies: WriterCopy[] = [];
      try {
        for (const tool of tools) {
          const dir = await Deno.makeTempDir({ dir: work, prefix: "writer-" });
          const out = join(dir, "writer.db");
          const count = () => {
            const c = new DatabaseSync(db, { readOnly: true });
            c.exec("PRAGMA busy_timeout = 5000");
            try {
              return Number(c.prepare("SELECT count(*) AS n FROM ledger").get()!.n);
            } finally {
              c.close();
            }
          };
          const before = count();
          try {
            await runCopy(tool, { host: HOST, remoteDb: db, out, remoteBin }, link.bytes);
            const v = judgeWriterCopy(inspectCopy(out), before, count());
            copies.push({
              tool: tool.id,
              litekeep: !!tool.litekeep,
              verdict: v.verdict,
              detail: v.detail,
            });
          } catch (error) {
            const text = error instanceof Error ? error.message : String(error);
            copies.push({
              tool: tool.id,
              litekeep: !!tool.litekeep,
              verdict: "refused",
              detail: clean(/error: (.*)$/m.exec(text)?.[1] ?? text),
            });
          }
          log(`writer: ${tool.id}: ${copies.at(-1)!.verdict} ${copies.at(-1)!.detail}`);
          await takeRemote(remoteLog);
          await Deno.remove(dir, { recursive: true });
        }
      } finally {
        const report = await w.stop();
        writer = { rate: 300, commits: report.commits, copies };
      }
    }

    let big: BigPull | null = null;
    if (options.big) {
      // Absolute: the remote shell starts in its home, not here.
      const bigSource = await prepareSource(resolve(options.cacheDir), options.big, 1);
      const tool = tools.find((t) => t.litekeep)!;
      log(`big pull: ${options.big} (${bigSource.bytes} bytes) with ${tool.id}`);
      await link.setRate(null);
      // The remote's own copy: the 1% change is made to it, never to the cached database.
      const remoteBig = join(remoteDir, "big", "gym.db");
      await Deno.mkdir(join(remoteDir, "big"));
      await Deno.copyFile(bigSource.path, remoteBig);
      const dir = await Deno.makeTempDir({ dir: work, prefix: "big-" });
      const out = join(dir, "big.db");
      big = { size: options.big, bytes: bigSource.bytes, tool: tool.id, run: null, pulls: [] };
      try {
        for (const job of ["first", "changed", "nothing"] as Job[]) {
          if (job === "changed") {
            const bigRows = Object.fromEntries(CHANGED_TABLES.map((t) => [t, bigSource.rows[t]]));
            applyChange(remoteBig, planChange(bigRows));
            log(`big pull: 1% of the remote's rows changed`);
          }
          const expected = rowsOf(remoteBig);
          try {
            await takeRemote(remoteLog);
            const copy = await runCopy(
              tool,
              { host: HOST, remoteDb: remoteBig, out, remoteBin },
              link.bytes,
            );
            const remote = await takeRemote(remoteLog);
            const rows = rowsOf(out);
            const diff = Object.keys(expected).filter((t) => rows[t] !== expected[t]);
            const run: JobRun = {
              seconds: copy.seconds,
              wireBytes: copy.wire.down + copy.wire.up,
              localRssKiB: copy.maxRssKiB,
              remoteRssKiB: remote.rss,
              remoteWriteBytes: remote.write,
              // integrity_check of 1 GB is the pull's own (--verify full); the counts are ours.
              check: diff.length ? `rows differ in ${diff.join(", ")}` : "row counts ok",
            };
            big.pulls!.push({ job, run, ran: ranAs(copy.json) });
            if (job === "first") big.run = run;
            log(
              `big pull ${job}: ${run.seconds.toFixed(2)} s, local ${
                Math.round(run.localRssKiB / 1024)
              } MiB, remote ${Math.round((run.remoteRssKiB ?? 0) / 1024)} MiB, remote wrote ${
                ((run.remoteWriteBytes ?? 0) / 1e6).toFixed(2)
              } MB, ${ranAs(copy.json)}, ${run.check}`,
            );
          } catch (error) {
            const text = (error instanceof Error ? error.message : String(error)).slice(0, 200);
            big.pulls!.push({ job, run: null, error: clean(text) });
            if (job === "first") big.error = text;
            log(`big pull ${job}: failed: ${text}`);
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
        await Deno.remove(join(remoteDir, "big"), { recursive: true });
      }
    }

    const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
    return {
      command: options.command ?? "deno task bench:remote-jobs",
      started,
      machine: `Machine: ${cpu ?? "?"}, ${navigator.hardwareConcurrency} cores shared with ` +
        `other work (load average before: ${
          (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")
        }); deno ${Deno.version.deno}.`,
      dbBytes: source.bytes,
      dbLabel: `gym database ${options.size} (${(source.bytes / 1e6).toFixed(1)} MB, ` +
        `${source.rows.payments} payments, 4 KiB pages, WAL mode)`,
      changeSummary,
      rounds: options.rounds,
      rtt,
      links,
      writer,
      big,
      label: options.label,
    };
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(s, interrupted);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

export const usage = `Usage: deno task bench:remote-jobs [options]

  --size SIZE      database, e.g. 100mb (default 100mb)
  --links LIST     Mbit/s rates (default 100,20)
  --rounds N       interleaved rounds (default 3)
  --slow-rounds N  rounds on links under 50 Mbit/s (default: --rounds)
  --jobs LIST      first,changed,nothing (default all)
  --variants LIST  only these litekeep variants, e.g. "litekeep (default),litekeep delta gzip"
  --no-writer      skip the copies under a 300 commits/s writer
  --local-plain-deno  run the local litekeep without the binary's V8 flags (plain deno run)
  --big SIZE       also pull a database of SIZE (e.g. 1000mb) unshaped, three times onto one
                   local copy (first, after a 1% change, unchanged): peak RSS both sides
  --label TEXT     the report's title
  --out FILE       splice the report into FILE (default: print it)
  --json FILE      also save the measurements there
  --section NAME   the section of --out to replace (default jobs; e.g. big for a --big run)
  --render FILE    no measuring: write the report of measurements saved with --json
Needs root.`;

if (import.meta.main) {
  // deno-lint-ignore no-console
  const print = (line: string) => console.error(line);
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "100mb" },
      links: { type: "string", default: "100,20" },
      rounds: { type: "string", default: "3" },
      "slow-rounds": { type: "string" },
      jobs: { type: "string", default: "first,changed,nothing" },
      variants: { type: "string" },
      "no-writer": { type: "boolean" },
      "local-plain-deno": { type: "boolean" },
      big: { type: "string" },
      label: { type: "string", default: "Three jobs over ssh (issue 10)" },
      "cache-dir": { type: "string", default: "bench-data" },
      out: { type: "string" },
      json: { type: "string" },
      section: { type: "string", default: "jobs" },
      render: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) print(usage);
  else {
    const options: JobsOptions & { command?: string } = {
      size: values.size,
      links: values.links.split(",").map(Number),
      rounds: Number(values.rounds), // 0: no jobs (e.g. only --big)
      slowRounds: values["slow-rounds"] ? Number(values["slow-rounds"]) : undefined,
      jobs: values.jobs.split(",") as Job[],
      variants: values.variants?.split(","),
      writer: !values["no-writer"],
      localPlainDeno: values["local-plain-deno"] ?? false,
      big: values.big ?? null,
      cacheDir: values["cache-dir"],
      out: values.out,
      label: values.label,
      command: `deno task bench:remote-jobs ${
        Deno.args.map((a) => (/^[\w.,\/=-]+$/.test(a) ? a : `'${a}'`)).join(" ")
      }`,
    };
    const m: JobsMeasurements = values.render
      ? JSON.parse(await Deno.readTextFile(values.render))
      : await runJobs(options, (l) => print(`[${new Date().toISOString().slice(11, 19)}] ${l}`));
    if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(m, null, 1));
    const section = renderJobsReport(m);
    if (options.out) {
      const doc = await Deno.readTextFile(options.out).catch(() => "");
      await Deno.writeTextFile(options.out, spliceSection(doc, section, values.section));
    } else await Deno.stdout.write(new TextEncoder().encode(section));
    for (const t of judgeJobTargets(m)) {
      print(
        `target ${t.id}: ${
          Object.entries(t.byVariant).map(([v, x]) =>
            `${v}=${x.met === null ? "n/a" : x.met ? "pass" : "FAIL"}`
          ).join(" ")
        }`,
      );
    }
  }
}
