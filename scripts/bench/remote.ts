/**
 * The over-ssh benchmark group: `litekeep pull` in each method and remote tool beside `scp`,
 * `rsync -a`, `rsync -az` and `ssh cat`, against a real sshd on loopback and in a network
 * namespace behind a veth pair shaped to a LAN's and a Wi-Fi's bandwidth; every copy checked;
 * the same tools again while a writer commits, to show which copies are consistent.
 *
 * Alone, with every option:
 * ```sh
 * deno task bench:remote --size 100mb --links loopback,100,20 --runs 3 \
 *   --out docs/BENCHMARKS_REMOTE.md
 * ```
 * as a group of the bench (`deno task bench --groups remote`, see `remoteGroup`), or embedded:
 * `runRemoteGroup(options)` returns the markdown and the judged targets.
 * Needs root (network namespaces, tc), sshd, rsync, python3, sqlite3, zstd and GNU time.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { PROTOCOL, PYTHON_AGENT } from "../../lib/remote/scripts.ts";
import { createGymDb } from "../../tests/support/gym.ts";
import { createShapedLink, type ShapedLink } from "./netns.ts";
import { type CopyRun, loopbackBytes, type Method, METHODS, runCopy } from "./remote_copy.ts";
import {
  checkIdleCopy,
  inspectCopy,
  judgeWriterCopy,
  tableRows,
  type WriterCheck,
} from "./remote_check.ts";
import {
  agentAlone,
  type AgentRun,
  compressors,
  type LevelRun,
  medianPhases,
  profilePull,
  type PullPhases,
  pythonLevel,
  startupCost,
} from "./remote_probe.ts";
import { rotate } from "./report.ts";
import { renderRemoteReport } from "./remote_markdown.ts";
import type { BenchContext, BenchGroup, GroupResult } from "./markdown.ts";
import type {
  Link,
  LinkResult,
  Probes,
  RemoteGroupOptions,
  RemoteGroupResult,
  RemoteMeasurements,
  Source,
  WriterResult,
  WriterRow,
} from "./remote_types.ts";
import { remoteLitekeep, startSshd } from "../../tests/support/sshd.ts";
import { startWriter, type WriterReport } from "../../tests/support/writer.ts";

export type * from "./remote_types.ts";

/** The methods of the per-link tables. */
export const MAIN_METHODS = [
  "scp",
  "rsync -a",
  "rsync -az",
  "ssh cat",
  "pull snapshot litekeep",
  "pull snapshot litekeep gzip",
  "pull snapshot litekeep ssh -C",
  "pull snapshot python3",
  "pull snapshot python3 gzip",
  "pull snapshot sqlite3",
  "pull scp",
  "pull delta gzip",
];

/** The methods of the writer table. */
export const WRITER_METHODS = [
  "scp",
  "scp .db+wal",
  "rsync -a",
  "rsync -a .db+wal",
  "rsync -az",
  "ssh cat",
  "pull scp",
  "pull snapshot litekeep",
  "pull snapshot litekeep gzip",
  "pull snapshot python3 gzip",
  "pull snapshot sqlite3",
];

const HOST = "testpi";
/** The CPU the remote side runs on: one core, as a stand-in for a small board's budget. */
const REMOTE_CPU = "1";
/** Payments per MB of database with 100-byte notes (425,000 make the 100 MB database). */
const PAYMENTS_PER_MB = 4_250;
const NOTE_BYTES = 100;

/** Payments for a size such as `100mb`. */
export function paymentsFor(size: string): number {
  const m = /^(\d+)mb$/.exec(size);
  if (!m || Number(m[1]) < 1) throw new Error(`Bad size "${size}": write e.g. 1mb, 30mb, 100mb`);
  return Number(m[1]) * PAYMENTS_PER_MB;
}

/** `loopback` or `100 Mbit/s`. */
export function linkLabel(link: Link): string {
  return link === "loopback" ? "loopback" : `${link} Mbit/s`;
}

function isSlow(link: Link): boolean {
  return link !== "loopback" && link <= 20;
}

/**
 * The database of `size` in `cacheDir`, reused when there, else generated under a temporary
 * name and renamed once complete. The name holds a hash of the generator, so a changed
 * generator never reuses an old file. (Named `remote-*`, apart from the local bench's files.)
 */
export async function prepareSource(cacheDir: string, size: string, seed: number): Promise<Source> {
  await Deno.mkdir(cacheDir, { recursive: true });
  const generator = await Deno.readTextFile(new URL("../../tests/support/gym.ts", import.meta.url));
  const version = createHash("sha256").update(generator).update(`${PAYMENTS_PER_MB}/${NOTE_BYTES}`)
    .digest("hex").slice(0, 10);
  const name = `remote-gym-${size}-seed${seed}-${version}`;
  const path = join(cacheDir, `${name}.db`);
  const meta = join(cacheDir, `${name}.json`);
  try {
    const source = JSON.parse(await Deno.readTextFile(meta)) as Source;
    if ((await Deno.stat(path)).size === source.bytes) return { ...source, path };
  } catch {
    // Not there yet, or left half-made by an interrupted run.
  }
  const temp = join(cacheDir, `.${name}.generating.db`);
  for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(temp + suffix).catch(() => {});
  createGymDb(temp, { payments: paymentsFor(size), noteBytes: NOTE_BYTES, seed });
  const conn = new DatabaseSync(temp);
  const rows = tableRows(conn);
  conn.close();
  await Deno.rename(temp, path);
  const source = { size, path, bytes: (await Deno.stat(path)).size, rows };
  await Deno.writeTextFile(meta, JSON.stringify(source));
  return source;
}

/**
 * Copies `source` to `path` and makes a small change there (100 new payments, and 1 payment in
 * 1,000 updated): what a delta pull must bring. Returns its rows.
 */
async function changedCopy(source: Source, path: string): Promise<Record<string, number>> {
  await Deno.copyFile(source.path, path);
  const conn = new DatabaseSync(path);
  try {
    conn.exec(`BEGIN;
      UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 1000 = 0;
      INSERT INTO payments SELECT NULL, member_id, amount_cents, paid_at, method, 'delta:' || id
        FROM payments WHERE id <= 100;
      COMMIT`);
    return tableRows(conn);
  } finally {
    conn.close();
  }
}

/** Rows of the ledger in the live database `db`. */
function ledgerRows(db: string): number {
  const conn = new DatabaseSync(db, { readOnly: true, timeout: 5000 });
  try {
    return Number(conn.prepare("SELECT count(*) AS n FROM ledger").get()!.n);
  } finally {
    conn.close();
  }
}

/** Peak KiB in a GNU time log (one `%M` per line), then empties it; null when empty. */
async function takeRss(log: string): Promise<number | null> {
  const lines = (await Deno.readTextFile(log)).split("\n").filter((l) => /^\d+$/.test(l));
  await Deno.writeTextFile(log, "");
  return lines.length === 0 ? null : Math.max(...lines.map(Number));
}

/** What the phases of a run share. */
interface Env {
  work: string;
  remoteDir: string;
  remoteBin: string;
  rssLog: string;
  counter: () => Promise<{ down: number; up: number }>;
  log: (line: string) => void;
}

/** An empty local folder for one copy; the copy is `<folder>/<name of the remote file>`. */
async function localFolder(env: Env): Promise<string> {
  return await Deno.makeTempDir({ dir: env.work, prefix: "local-" });
}

/** Times every method `runs` times on the current link, in a rotated order each run. */
async function benchLink(
  link: Link,
  source: Source,
  runs: number,
  methods: Method[],
  env: Env,
): Promise<LinkResult> {
  const label = linkLabel(link);
  const remoteDb = join(env.remoteDir, `${source.size}.db`);
  const changedDb = join(env.remoteDir, `${source.size}-changed.db`);
  await Deno.copyFile(source.path, remoteDb);
  const changedRows = await changedCopy(source, changedDb);
  const startup = await startupCost(HOST, env.remoteBin, Math.min(3, runs));
  env.log(`${label}: ssh start-up ${startup.ssh.median.toFixed(2)} s`);
  const results = methods.map((method) => ({
    method,
    runs: [] as CopyRun[],
    remoteRss: [] as number[],
    pagesSent: null as number | null,
  }));
  for (let run = 0; run < runs; run++) {
    for (const result of rotate(results, run)) {
      const { method } = result;
      const dir = await localFolder(env);
      const from = method.needsBase ? changedDb : remoteDb;
      const out = join(dir, basename(from));
      if (method.needsBase) await Deno.copyFile(source.path, out);
      await takeRss(env.rssLog);
      const copy = await runCopy(method, {
        host: HOST,
        remoteDb: from,
        out,
        remoteBin: env.remoteBin,
      }, env.counter);
      const remoteRss = await takeRss(env.rssLog);
      if (remoteRss !== null) result.remoteRss.push(remoteRss);
      if (typeof copy.json?.pagesSent === "number") result.pagesSent = Number(copy.json.pagesSent);
      checkIdleCopy(
        `${method.id} on ${label}`,
        inspectCopy(out),
        method.needsBase ? changedRows : source.rows,
      );
      result.runs.push(copy);
      await Deno.remove(dir, { recursive: true });
      env.log(
        `${label} run ${run + 1}/${runs}: ${method.id} ${copy.seconds.toFixed(2)} s, ` +
          `${((copy.wire.down + copy.wire.up) / 1e6).toFixed(1)} MB on the link`,
      );
    }
  }
  await Deno.remove(remoteDb);
  await Deno.remove(changedDb);
  return {
    link,
    source,
    runs,
    startup,
    methods: results.map((r) => ({
      method: r.method,
      runs: r.runs,
      remoteRssKiB: r.remoteRss.length ? Math.max(...r.remoteRss) : null,
      pagesSent: r.pagesSent,
    })),
  };
}

/** Each writer method once while a writer commits `rate` times a second to the remote. */
async function writerPhase(
  link: Link,
  source: Source,
  rate: number,
  methods: Method[],
  env: Env,
  onInterrupt: Set<() => void>,
): Promise<WriterResult> {
  const db = join(env.remoteDir, "writer.db");
  await Deno.copyFile(source.path, db);
  const writer = await startWriter(db, env.work, rate);
  const kill = () => Deno.kill(writer.pid, "SIGKILL");
  onInterrupt.add(kill);
  const rows: WriterRow[] = [];
  let report: WriterReport;
  try {
    for (const method of methods) {
      const dir = await localFolder(env);
      const out = join(dir, basename(db));
      const before = ledgerRows(db);
      let seconds: number | null = null;
      let failure: string | null = null;
      try {
        seconds = (await runCopy(method, {
          host: HOST,
          remoteDb: db,
          out,
          remoteBin: env.remoteBin,
        }, env.counter)).seconds;
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      }
      const after = ledgerRows(db);
      const check: WriterCheck = failure === null
        ? judgeWriterCopy(inspectCopy(out), before, after)
        : {
          verdict: "refused",
          ledger: null,
          writerPayments: null,
          before,
          after,
          // litekeep's own words, without the log line's time stamp.
          detail: /error: (.*)$/m.exec(failure)?.[1] ?? failure,
        };
      rows.push({ method: method.id, seconds, check });
      await Deno.remove(dir, { recursive: true });
      env.log(`writer on ${linkLabel(link)}: ${method.id}: ${check.verdict} ${check.detail}`);
    }
  } finally {
    report = await writer.stop();
    onInterrupt.delete(kill);
  }
  await Deno.remove(db);
  for (const suffix of ["-wal", "-shm"]) await Deno.remove(db + suffix).catch(() => {});
  return { link, rate, source, rows, report };
}

/** What rsync -z negotiated with the remote, copying `remoteFile` into the folder `dir`. */
async function rsyncCompression(remoteFile: string, dir: string): Promise<string> {
  // Never a device such as /dev/null as the destination: rsync replaces the destination by
  // renaming a temporary file over it, and as root it would replace the device itself.
  const out = await new Deno.Command("rsync", {
    args: ["-az", "--debug=nstr", `${HOST}:${remoteFile}`, join(dir, "rsync-probe.db")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return /negotiated compress: (.*)/.exec(text)?.[1]?.trim() ?? "unknown";
}

/** The probes on the current link. */
async function probePhase(link: Link, source: Source, env: Env, runs: number): Promise<Probes> {
  const remoteDb = join(env.remoteDir, `probe-${source.size}.db`);
  await Deno.copyFile(source.path, remoteDb);
  // The gzip pulls only: the uncompressed pull's transfer is the link's (the per-link table).
  const profiled = [["litekeep", "gzip"], ["python3", "gzip"]] as const;
  const profiles = new Map<string, PullPhases[]>();
  for (let run = 0; run < runs; run++) {
    for (const [tool, compress] of rotate([...profiled], run)) {
      const label = `pull snapshot ${tool}${compress === "gzip" ? " gzip" : ""}`;
      const dir = await localFolder(env);
      const phases = await profilePull(label, {
        host: HOST,
        remoteDb,
        base: source.path,
        dir,
        tool,
        compress,
        remoteBin: env.remoteBin,
        counter: env.counter,
      });
      await Deno.remove(dir, { recursive: true });
      profiles.set(label, [...profiles.get(label) ?? [], phases]);
      env.log(`probe on ${linkLabel(link)} run ${run + 1}/${runs}: phases of ${label}`);
    }
  }
  const levels: LevelRun[] = [];
  for (const level of [1, 6]) {
    levels.push(
      await pythonLevel({
        host: HOST,
        remoteDb,
        out: join(env.work, "level.db"),
        level,
        counter: env.counter,
      }),
    );
    env.log(`probe on ${linkLabel(link)}: python3 zlib level ${level}`);
  }
  const dir = await localFolder(env);
  const rsyncCompress = await rsyncCompression(remoteDb, dir);
  await Deno.remove(dir, { recursive: true });
  const agents: AgentRun[] = [];
  const variants = [["litekeep", "gzip"], ["litekeep", "none"], ["python3", "gzip"]] as const;
  for (const [tool, compress] of variants) {
    const words = ["snapshot", remoteDb, "", compress, ""];
    const argv = tool === "litekeep"
      ? [env.remoteBin, "agent", "--protocol", String(PROTOCOL), ...words]
      : ["python3", "-I", "-c", PYTHON_AGENT, ...words];
    agents.push(
      await agentAlone(`${tool} ${compress}`, ["taskset", "-c", REMOTE_CPU, ...argv], 2),
    );
  }
  await takeRss(env.rssLog);
  env.log("probe: the remote side alone");
  await Deno.remove(remoteDb);
  const found = await compressors(source.path);
  env.log("probe: compressor speeds measured");
  return {
    link,
    source,
    runs,
    phases: [...profiles.values()].map(medianPhases),
    agents,
    levels,
    compressors: found,
    rsyncCompress,
  };
}

/**
 * One untimed pull of a small database, so that deno's caches (module graph, V8 code cache),
 * which the local and the remote litekeep share here, are warm before the first timed run.
 */
async function warmUp(env: Env): Promise<void> {
  const db = join(env.remoteDir, "warm.db");
  createGymDb(db, { payments: 500 });
  const dir = await localFolder(env);
  await runCopy(METHODS["pull snapshot litekeep gzip"], {
    host: HOST,
    remoteDb: db,
    out: join(dir, "warm.db"),
    remoteBin: env.remoteBin,
  }, env.counter);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(db);
}

function byId(ids: string[]): Method[] {
  return ids.map((id) => {
    const method = METHODS[id];
    if (!method) throw new Error(`Unknown method "${id}": one of ${Object.keys(METHODS)}`);
    return method;
  });
}

async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
}

/**
 * Runs the over-ssh group: for each link, each method `runs` times (interleaved), every copy
 * checked; then the writer table and the probes on the 100 Mbit/s link (else the first link).
 * SIGINT and SIGTERM stop sshd, the writer and the namespace before the process exits.
 *
 * @throws {Error} when a copy of an idle database fails its checks, or a tool fails
 */
export async function runRemoteGroup(options: RemoteGroupOptions): Promise<RemoteGroupResult> {
  const log = options.log ?? (() => {});
  const runs = options.runs;
  const slowRuns = options.slowRuns ?? Math.max(1, Math.floor(runs / 3));
  const methods = byId(options.methods ?? MAIN_METHODS);
  const writerMethods = byId(options.writerMethods ?? WRITER_METHODS);
  const focus: Link = options.links.includes(100) ? 100 : options.links[0];
  const started = new Date();
  const loadBefore = await loadAverage();
  const cacheDir = options.cacheDir ?? "bench-data";
  const seed = options.seed ?? 1;
  const sources = new Map<string, Source>();
  const sourceFor = async (link: Link) => {
    const size = isSlow(link) ? options.slowSize ?? "30mb" : options.size;
    if (!sources.has(size)) {
      log(`database ${size}: preparing (cached in ${cacheDir}/)`);
      sources.set(size, await prepareSource(cacheDir, size, seed));
    }
    return sources.get(size)!;
  };

  // Cleanups a signal handler runs before exiting: `finally` blocks never run after Deno.exit.
  const onInterrupt = new Set<() => void>();
  const interrupted = () => {
    for (const cleanup of [...onInterrupt].reverse()) {
      try {
        cleanup();
      } catch {
        // Best effort: the next cleanup still runs.
      }
    }
    // A script's signal handler is the one place besides main that may exit: the default
    // action (dying at once) would leave the namespace behind.
    Deno.exit(130);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, interrupted);

  const work = await Deno.makeTempDir({ prefix: "litekeep-bench-remote-" });
  const removeWork = () => Deno.removeSync(work, { recursive: true });
  onInterrupt.add(removeWork);
  const remoteDir = join(work, "remote");
  await Deno.mkdir(remoteDir);
  const rssLog = join(work, "remote-rss.log");
  await Deno.writeTextFile(rssLog, "");
  const env: Env = {
    work,
    remoteDir,
    remoteBin: await remoteLitekeep(work, rssLog),
    rssLog,
    counter: loopbackBytes,
    log,
  };
  const links: LinkResult[] = [];
  let writer: WriterResult | null = null;
  let probes: Probes | null = null;
  let warm = !(options.warmUp ?? true);
  let checkedCopies = 0;
  /** Everything done on the link that is up now. */
  const onLink = async (link: Link) => {
    const source = await sourceFor(link);
    if (!warm) {
      log("warm-up pulls (untimed)");
      await warmUp(env);
      warm = true;
    }
    const result = await benchLink(link, source, isSlow(link) ? slowRuns : runs, methods, env);
    links.push(result);
    checkedCopies += result.methods.reduce((n, m) => n + m.runs.length, 0);
    if (link !== focus) return;
    if (writerMethods.length > 0) {
      const rate = options.writerRate ?? 300;
      writer = await writerPhase(link, source, rate, writerMethods, env, onInterrupt);
      checkedCopies += writer.rows.length;
    }
    if (options.probes ?? true) probes = await probePhase(link, source, env, Math.min(3, runs));
  };

  try {
    if (options.links.includes("loopback")) {
      await using sshd = await startSshd({ wrap: ["taskset", "-c", REMOTE_CPU] });
      const stop = () => Deno.kill(sshd.pid, "SIGTERM");
      onInterrupt.add(stop);
      await onLink("loopback");
      onInterrupt.delete(stop);
    }
    const rates = options.links.filter((l): l is number => l !== "loopback");
    if (rates.length > 0) {
      await using link: ShapedLink = await createShapedLink({ name: "lkbench", rateMbit: null });
      const removeLink = () => link.removeSync();
      onInterrupt.add(removeLink);
      await using sshd = await startSshd({
        listen: link.nsAddress,
        wrap: [...link.wrap, "taskset", "-c", REMOTE_CPU],
      });
      const stop = () => Deno.kill(sshd.pid, "SIGTERM");
      onInterrupt.add(stop);
      env.counter = link.bytes;
      for (const rate of rates) {
        await link.setRate(rate);
        log(`link shaped to ${rate} Mbit/s`);
        await onLink(rate);
      }
      onInterrupt.delete(stop);
      onInterrupt.delete(removeLink);
    }
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.removeSignalListener(signal, interrupted);
    }
    onInterrupt.delete(removeWork);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  const measured: RemoteMeasurements = {
    options,
    started,
    loadBefore,
    loadAfter: await loadAverage(),
    links,
    writer,
    probes,
  };
  const { markdown, targets } = await renderRemoteReport(measured);
  return { markdown, targets, checkedCopies };
}

/**
 * The remote group as `deno task bench --groups remote` runs it: the largest size asked for, on
 * loopback, and on the 100 and 20 Mbit/s shaped links too when run as root (network namespaces
 * and tc need it). Its report goes into the bench's, one heading level down; for every option
 * (links, methods, a report of its own) run `deno task bench:remote`.
 */
export const remoteGroup: BenchGroup = {
  title: "Over ssh",
  summary: "`litekeep pull` in each method beside `scp`, `rsync -a`, `rsync -az` and `ssh cat`, " +
    "against a real sshd on loopback (and on shaped links as root), every copy checked; then " +
    "the same tools while a writer commits.",
  async run(ctx: BenchContext): Promise<GroupResult> {
    const largest = ctx.sizes[ctx.sizes.length - 1];
    // The remote sizes are in MB; 1,000 MB has the payments of the local bench's 1 GB.
    const size = largest === "1gb" ? "1000mb" : largest;
    const { markdown, targets } = await runRemoteGroup({
      size,
      slowSize: size,
      links: Deno.uid() === 0 ? ["loopback", 100, 20] : ["loopback"],
      runs: ctx.runs(largest),
      cacheDir: ctx.dataDir,
      log: ctx.log,
    });
    // The report's own title is the group's heading; its sections move one level down.
    const body = markdown.replace(/^## .*\n+/, "").replace(/^(#+) /gm, "#$1 ");
    return {
      sections: [{ title: `${size} database`, paragraphs: [body.trim()] }],
      targets,
      tools: [],
    };
  },
};

/** Help text. */
export const usage = `Usage: deno task bench:remote [options]

Options:
  --size SIZE        database for loopback and fast links (default 100mb)
  --slow-size SIZE   database for links of 20 Mbit/s or less (default 30mb)
  --links LIST       loopback and/or Mbit/s rates (default loopback,100,20)
  --runs N           timed runs per method and link (default 3)
  --slow-runs N      runs on links of 20 Mbit/s or less (default runs / 3, at least 1)
  --methods LIST     method ids, comma-separated (default: all of the per-link table)
  --no-writer        skip the copies under a writer
  --no-probes        skip the phase profile, gzip levels and compressor speeds
  --out FILE         write the report there (default: print it)
  -h, --help         show this help

Needs root: the shaped links are a network namespace and tc. Methods: ${
  Object.keys(METHODS).join(", ")
}.`;

/** The options of the command line. */
export function parseRemoteArgs(argv: string[]): RemoteGroupOptions & { out?: string } | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      size: { type: "string", default: "100mb" },
      "slow-size": { type: "string", default: "30mb" },
      links: { type: "string", default: "loopback,100,20" },
      runs: { type: "string", default: "3" },
      "slow-runs": { type: "string" },
      methods: { type: "string" },
      "no-writer": { type: "boolean" },
      "no-probes": { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return null;
  const count = (text: string, flag: string) => {
    if (!/^[1-9]\d*$/.test(text)) throw new Error(`--${flag} must be a whole number above 0`);
    return Number(text);
  };
  const links = values.links.split(",").map((l): Link => {
    if (l === "loopback") return l;
    return count(l, "links");
  });
  paymentsFor(values.size);
  paymentsFor(values["slow-size"]);
  return {
    size: values.size,
    slowSize: values["slow-size"],
    links,
    runs: count(values.runs, "runs"),
    slowRuns: values["slow-runs"] ? count(values["slow-runs"], "slow-runs") : undefined,
    methods: values.methods?.split(","),
    writerMethods: values["no-writer"] ? [] : undefined,
    probes: !values["no-probes"],
    out: values.out,
  };
}

if (import.meta.main) {
  // deno-lint-ignore no-console
  const print = (line: string) => console.error(line);
  const options = parseRemoteArgs(Deno.args);
  if (options === null) print(usage);
  else {
    const result = await runRemoteGroup({
      ...options,
      log: (line) => print(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
    });
    if (options.out) await Deno.writeTextFile(options.out, result.markdown);
    else await Deno.stdout.write(new TextEncoder().encode(result.markdown));
    for (const t of result.targets) {
      print(
        `target ${t.id}: ${
          t.met === null ? "not measured" : t.met ? "met" : "NOT met"
        }: ${t.figure}`,
      );
    }
  }
}
