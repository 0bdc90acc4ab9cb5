/**
 * The over-ssh benchmark report (`docs/BENCHMARKS_REMOTE.md`) and its target verdicts, made from
 * the measurements of `remote.ts`.
 *
 * @module
 */
import { type Method, METHODS, showArgv } from "./remote_copy.ts";
import { mb, ratio, secs, secsSpread, spread, table } from "./report.ts";
import { tbfArgs } from "./netns.ts";
import type {
  Link,
  LinkResult,
  MethodResult,
  RemoteMeasurements,
  RemoteTarget,
  Source,
} from "./remote_types.ts";

/** The single-core speed of a Raspberry Pi 4 is taken as this many times below this CPU's. */
export const PI_FACTOR = 4;

function linkName(link: Link): string {
  return link === "loopback" ? "loopback" : `${link} Mbit/s`;
}

function sourceName(source: Source): string {
  return `${source.size} database (${mb(source.bytes)} MB, ${
    source.rows.payments.toLocaleString("en-US")
  } payments)`;
}

/** Median seconds of a method's runs. */
function median(result: MethodResult): number {
  return spread(result.runs.map((r) => r.seconds)).median;
}

function wire(result: MethodResult): number {
  return spread(result.runs.map((r) => r.wire.down + r.wire.up)).median;
}

function find(link: LinkResult, id: string): MethodResult | undefined {
  return link.methods.find((m) => m.method.id === id);
}

async function output(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return text.trim().split("\n")[0];
  } catch {
    return "unknown";
  }
}

async function machine(): Promise<string[]> {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).split("\n")
    .find((l) => l.startsWith("model name"))?.split(":")[1]?.trim() ?? "unknown";
  const memKiB = Number(
    /MemTotal:\s+(\d+)/.exec(await Deno.readTextFile("/proc/meminfo"))?.[1] ?? 0,
  );
  return [
    `- CPU: ${cpu}, ${navigator.hardwareConcurrency} cores; ${
      (memKiB / 1024 / 1024).toFixed(0)
    } GiB RAM; ${await output("uname", ["-sr"])}`,
    `- deno ${Deno.version.deno}; ${await output("ssh", ["-V"])}; ${await output("rsync", [
      "--version",
    ])}; python3 ${await output("python3", [
      "-c",
      "import sqlite3,sys;print(sys.version.split()[0], 'sqlite', sqlite3.sqlite_version)",
    ])}; sqlite3 CLI ${(await output("sqlite3", ["-version"])).split(" ")[0]}`,
  ];
}

/** The per-link table. */
function linkTable(link: LinkResult): string {
  const scp = find(link, "scp");
  const rsyncZ = find(link, "rsync -az");
  const rows = link.methods.map((m) => {
    const t = median(m);
    const rss = Math.max(...m.runs.map((r) => r.maxRssKiB)) / 1024;
    return [
      m.method.id + (m.pagesSent !== null ? ` (${m.pagesSent} pages)` : ""),
      secsSpread(spread(m.runs.map((r) => r.seconds))),
      mb(wire(m)),
      (link.source.bytes / 1e6 / t).toFixed(1),
      scp ? ratio(t / median(scp)) : "-",
      rsyncZ ? ratio(t / median(rsyncZ)) : "-",
      rss.toFixed(0),
      m.remoteRssKiB === null ? "-" : (m.remoteRssKiB / 1024).toFixed(0),
    ];
  });
  return table(
    [
      "method",
      "seconds, median (min-max)",
      "MB on the link",
      "MB/s of database",
      "vs scp",
      "vs rsync -az",
      "local max RSS MiB",
      "remote litekeep max RSS MiB",
    ],
    rows,
  );
}

function linkSection(link: LinkResult): string[] {
  const how = link.link === "loopback"
    ? "sshd on 127.0.0.1; bytes from `/proc/net/dev` `lo` (both directions, and any other loopback traffic on the machine meanwhile)"
    : `sshd in namespace \`lkbench\` behind the veth pair shaped to ${link.link} Mbit/s; bytes from the host end's counters (both directions, Ethernet frames)`;
  return [
    `### ${linkName(link.link)}: ${sourceName(link.source)}, ${link.runs} run${
      link.runs === 1 ? "" : "s"
    }`,
    "",
    `${how}. Fixed costs in seconds: \`ssh testpi true\` ${
      secsSpread(link.startup.ssh)
    }; \`ssh testpi python3 -I -c 'import sqlite3'\` ${
      secsSpread(link.startup.python3)
    }; \`ssh testpi REMOTE_BIN --version\` (the remote litekeep under deno) ${
      secsSpread(link.startup.litekeep)
    }.`,
    "",
    linkTable(link),
    "",
  ];
}

function writerSection(m: RemoteMeasurements): string[] {
  const w = m.writer;
  if (!w) return [];
  const rows = w.rows.map((r) => [
    r.method,
    METHODS[r.method].files,
    r.seconds === null ? "-" : secs(r.seconds),
    `**${r.check.verdict}**`,
    r.check.ledger === null ? "-" : `${r.check.ledger} / ${r.check.writerPayments}`,
    `${r.check.before}..${r.check.after}`,
    r.check.detail.replaceAll("|", "/"),
  ]);
  return [
    `## Copies while the remote app writes (target 5, part 2)`,
    "",
    `On ${linkName(w.link)}, ${
      sourceName(w.source)
    }: a writer process (\`startWriter\`, ${w.rate} commits/s asked; ${w.report.commits} commits made, ${w.report.busy} SQLITE_BUSY, worst commit ${
      w.report.worstMs.toFixed(0)
    } ms) commits on the remote database while each method copies it, once each. Each commit inserts a payment noted \`writer:N\` and a \`ledger\` row, so a copy of one instant has as many ledger rows as writer payments. Raw copies of the \`.db\` alone are opened alone; \`.db + .db-wal\` copies are opened together (SQLite applies the WAL). Verdicts: **consistent** (integrity ok, ledger = writer payments, and at least the rows committed when the copy started), **stale** (one instant, but older than the copy's start: what was only in the \`-wal\` is missing), **torn** (corrupt, or payments without their ledger rows), **refused** (the tool exited non-zero: \`litekeep pull\` refuses a copy that fails its checks).`,
    "",
    table(
      [
        "method",
        "copies",
        "seconds",
        "verdict",
        "ledger / writer payments in the copy",
        "remote ledger rows at start..end",
        "detail",
      ],
      rows,
    ),
    "",
  ];
}

function probeSection(m: RemoteMeasurements): string[] {
  const p = m.probes;
  if (!p) return [];
  const link = m.links.find((l) => l.link === p.link);
  const startup = link?.startup;
  const rate = p.link === "loopback" ? null : p.link * 1e6 / 8;
  const phaseRows = p.phases.map((x) => {
    // The remote tool's start measured alone (ssh included) leaves the snapshot and its counts.
    const start = x.label.includes("python3") ? startup?.python3 : startup?.litekeep;
    return [
      x.label,
      secs(x.firstByte),
      start ? secs(Math.max(0, x.firstByte - start.median)) : "-",
      secs(x.transfer),
      rate === null ? "-" : secs(x.wireBytes / rate),
      secs(x.check),
      x.backup === null ? "-" : secs(x.backup),
      secs(x.write),
      secs(x.total),
      mb(x.wireBytes),
    ];
  });
  const agentRows = p.agents.map((a) => {
    const streamPi = a.stream.median * PI_FACTOR;
    return [
      a.label,
      secsSpread(a.firstByte),
      secsSpread(a.stream),
      mb(a.outBytes),
      (p.source.bytes / 1e6 / a.stream.median).toFixed(0),
      (p.source.bytes / 1e6 / streamPi).toFixed(0),
      secs(a.firstByte.median * PI_FACTOR + Math.max(streamPi, a.outBytes / (100e6 / 8))),
      secs(a.firstByte.median * PI_FACTOR + Math.max(streamPi, a.outBytes / (20e6 / 8))),
    ];
  });
  const size = p.source.bytes;
  const model = (perSecond: number, outBytes: number, linkRate: number) =>
    Math.max(size / perSecond, outBytes / linkRate);
  const compressorRows = p.compressors.map((c) => {
    const pi = c.mbPerSecond / PI_FACTOR * 1e6;
    const isHash = c.name.startsWith("sha256");
    return [
      c.name,
      c.mbPerSecond.toFixed(0),
      isHash ? "-" : mb(c.outBytes),
      isHash ? "-" : ratio(size / c.outBytes),
      (c.mbPerSecond / PI_FACTOR).toFixed(0),
      secs(isHash ? size / pi : model(pi, c.outBytes, 100e6 / 8)),
      secs(isHash ? size / pi : model(pi, c.outBytes, 20e6 / 8)),
    ];
  });
  compressorRows.push([
    "none",
    "-",
    mb(size),
    "1.00x",
    "-",
    secs(size / (100e6 / 8)),
    secs(size / (20e6 / 8)),
  ]);
  return [
    `## Where the time of a pull goes`,
    "",
    `Each phase of \`litekeep pull --method snapshot\` of the ${sourceName(p.source)} on ${
      linkName(p.link)
    }, median of ${p.runs} run${
      p.runs === 1 ? "" : "s"
    } (interleaved), in-process through \`pullDatabase()\` (no local deno start-up), over an existing local copy so that every phase runs. **first byte**: ssh connection and login shell${
      startup ? ` (\`ssh testpi true\` alone: ${secs(startup.ssh.median)} s)` : ""
    }, remote tool start, remote snapshot into its temp file and its row counts; **remote snapshot**: first byte minus the remote tool's start measured alone over ssh (an estimate, and as noisy as ssh's start); **transfer**: streaming, decompressing, hashing, writing; **link minimum**: the bytes on the link at the link's rate; **check**: fsync, \`integrity_check\`, row counts; **backup**: the local backup of the old local database; **write**: writing the copy into the local database through SQLite.`,
    "",
    table(
      [
        "pull",
        "first byte s",
        "remote snapshot s",
        "transfer s",
        "link minimum s",
        "check s",
        "backup s",
        "write s",
        "total s",
        "MB on the link",
      ],
      phaseRows,
    ),
    "",
    `### The remote side alone`,
    "",
    `Each remote tool answering a snapshot of the same database straight into a pipe on this host (no ssh, no network), pinned to the remote's CPU (\`taskset -c 1\`), 2 runs: **first byte** is the tool's start, the snapshot into its temp file and the row counts; **stream** is reading, hashing, compressing and writing the body. The Pi 4 columns multiply this CPU's times by ${PI_FACTOR} (the stated single-core gap, an assumption; the snapshot on a Pi is also bound by its SD card, which this ignores): time at a rate = first byte + max(stream, bytes out / rate).`,
    "",
    table(
      [
        "remote tool",
        "first byte s",
        "stream s",
        "MB out",
        "MB/s of database streamed here",
        `Pi 4 model MB/s (÷${PI_FACTOR})`,
        "Pi 4 model s at 100 Mbit/s",
        "Pi 4 model s at 20 Mbit/s",
      ],
      agentRows,
    ),
    "",
    `The python3 remote's zlib level, changed in a copy of its script, over ${
      linkName(p.link)
    } (transfer only: the stream received and its sha256 checked, one run each): ${
      p.levels.map((l) => `level ${l.level} ${secs(l.seconds)} s, ${mb(l.wireBytes)} MB`).join("; ")
    }. \`rsync -az\` negotiated ${p.rsyncCompress}.`,
    "",
    `### Compressors on a Pi-class CPU budget`,
    "",
    `Each compressor alone on the whole ${
      sourceName(p.source)
    }, in memory, one core of this machine (one run). The Pi 4 columns divide by ${PI_FACTOR} (assumption as above) and model sending the database = max(compress time, compressed bytes / link rate), as streaming overlaps the two; the snapshot, ssh's cipher and sha256 come on top.`,
    "",
    table(
      [
        "compressor",
        "MB/s here",
        "MB out",
        "ratio",
        `Pi 4 MB/s (÷${PI_FACTOR})`,
        "Pi 4 model s at 100 Mbit/s",
        "Pi 4 model s at 20 Mbit/s",
      ],
      compressorRows,
    ),
    "",
  ];
}

/**
 * What bounds `pull --method snapshot --compress gzip` against `rsync -az` on the probed link,
 * in figures measured in this run; empty when the probes or either method did not run.
 */
function boundSection(m: RemoteMeasurements): string[] {
  const p = m.probes;
  const link = m.links.find((l) => l.link === p?.link);
  const pull = link && find(link, "pull snapshot litekeep gzip");
  const rsync = link && find(link, "rsync -az");
  const phases = p?.phases.find((x) => x.label === "pull snapshot litekeep gzip");
  const agent = p?.agents.find((a) => a.label === "litekeep gzip");
  if (!p || !link || !pull || !rsync || !phases || !agent) return [];
  const rate = p.link === "loopback" ? null : p.link * 1e6 / 8;
  const serial = phases.firstByte + phases.transfer + phases.check;
  return [
    `### What bounds the gzip pull against rsync -az on ${linkName(p.link)}`,
    "",
    `- \`rsync -az\` took ${secs(median(rsync))} s (${
      mb(wire(rsync))
    } MB on the link), of which \`ssh testpi true\` alone takes ${
      secs(link.startup.ssh.median)
    } s here: reading, zstd and sending overlap in one stream, and nothing is checked after.`,
    `- \`pull snapshot litekeep gzip\` took ${secs(median(pull))} s as a process (${
      mb(wire(pull))
    } MB on the link). In-process its phases run one after another: ${
      secs(phases.firstByte)
    } s to the first byte (ssh, the remote litekeep's start, the whole snapshot into a temp file, its row counts), ${
      secs(phases.transfer)
    } s of transfer${
      rate === null ? "" : ` (the link alone needs ${secs(phases.wireBytes / rate)} s)`
    }, then ${secs(phases.check)} s of local fsync, \`integrity_check\` and counts: ${
      secs(serial)
    } s before the copy is ready, plus the local deno start and publishing in the process.`,
    `- The remote side alone (no ssh) needs ${
      secs(agent.firstByte.median)
    } s before its first byte and streams the body in ${
      secs(agent.stream.median)
    } s on one core here; scaled to a Pi 4 (×${PI_FACTOR}) that is ${
      secs(agent.firstByte.median * PI_FACTOR)
    } s and ${secs(agent.stream.median * PI_FACTOR)} s${
      rate === null
        ? ""
        : `, against ${
          secs(agent.outBytes / rate)
        } s for its bytes on this link: on a Pi the remote CPU, not the link, would bound the transfer`
    }.`,
    "",
  ];
}

/** What a reader must keep in mind. */
function caveats(m: RemoteMeasurements): string[] {
  return [
    `## Caveats`,
    "",
    `- Other work ran on this 2-core machine during the run (load average ${m.loadBefore} before, ${m.loadAfter} after): single runs can be off by seconds (see the min-max ranges), loopback most of all.`,
    `- Remote and local are the same machine: the remote reads its database from the page cache, not from a Pi's SD card, and its CPU is one core of this one. The Pi 4 figures are models (÷${PI_FACTOR}), not measurements on a Pi.`,
    `- No \`netem\`: the shaped links have the bandwidth of a LAN or Wi-Fi but a veth's latency and no loss. Real round trips add to every ssh connection and slow window-limited streams.`,
    `- Every ssh connection pays this machine's login-shell start-up (pyenv in root's \`~/.bashrc\`); methods that open more connections pay it more often (\`pull --method scp\`: two scp runs and one remote info).`,
    `- litekeep runs from source under \`deno run\` on both sides, not as the compiled binary.`,
    `- The generated database is very compressible (repeated note text): 7-9x here; real data compresses less, which favours no method in particular but shrinks every compressed figure's advantage.`,
    `- Loopback byte counts include any other loopback traffic on the machine at the time; the shaped links' counts are exact (only our sshd is in the namespace).`,
    `- The writer table is one copy per method: whether a raw copy comes out torn or merely stale depends on when checkpoints fall during it.`,
    "",
  ];
}

/** Target 4 (peak memory of pull) and target 5 (pull over ssh), judged. */
export function judgeTargets(m: RemoteMeasurements): RemoteTarget[] {
  const targets: RemoteTarget[] = [];
  const biggest = Math.max(...m.links.map((l) => l.source.bytes));
  const pulls = m.links.filter((l) => l.source.bytes === biggest).flatMap((l) =>
    l.methods.filter((x) => x.method.litekeep).flatMap((x) =>
      x.runs.map((r) => ({ id: x.method.id, link: l.link, kib: r.maxRssKiB }))
    )
  );
  if (pulls.length > 0) {
    const worst = pulls.reduce((a, b) => (b.kib > a.kib ? b : a));
    const mib = worst.kib / 1024;
    const size = m.links.find((l) => l.source.bytes === biggest)!.source;
    targets.push({
      id: 4,
      met: mib < 150,
      figure: `litekeep pull peaks at ${mib.toFixed(0)} MiB max RSS (${worst.id}, ${
        linkName(worst.link)
      }, ${sourceName(size)}); limit 150 MiB`,
      scope: `pull only, on the ${size.size} database, not 1 GB`,
    });
  }
  const fast = m.links.find((l) => l.link === 100);
  const pull = fast && find(fast, "pull snapshot litekeep gzip");
  const rsync = fast && find(fast, "rsync -az");
  if (!fast || !pull || !rsync) {
    targets.push({
      id: 5,
      met: null,
      figure: "needs the 100 Mbit/s link, with pull snapshot litekeep gzip and rsync -az",
    });
    return targets;
  }
  const speed = median(pull) <= median(rsync);
  const w = m.writer;
  const snapshots = w?.rows.filter((r) => r.method.startsWith("pull snapshot")) ?? [];
  const raw = w?.rows.filter((r) => !r.method.startsWith("pull")) ?? [];
  const safe = snapshots.length > 0 && snapshots.every((r) => r.check.verdict === "consistent");
  const rawBad = raw.filter((r) => r.check.verdict !== "consistent").length;
  const writerText = w
    ? `; under a writer at ${w.rate}/s: pull snapshot consistent ${
      snapshots.filter((r) => r.check.verdict === "consistent").length
    }/${snapshots.length}, raw scp/rsync/ssh cat copies not consistent ${rawBad}/${raw.length}`
    : "; the writer part was not run";
  targets.push({
    id: 5,
    met: w ? speed && safe : null,
    figure: `${sourceName(fast.source)} at 100 Mbit/s: pull snapshot litekeep gzip ${
      secs(median(pull))
    } s vs rsync -az ${secs(median(rsync))} s (${
      ratio(median(pull) / median(rsync))
    })${writerText}`,
  });
  return targets;
}

/** The report and the targets. */
export async function renderRemoteReport(
  m: RemoteMeasurements,
): Promise<{ markdown: string; targets: RemoteTarget[] }> {
  const targets = judgeTargets(m);
  const o = m.options;
  const methods = [
    ...new Set([
      ...m.links.flatMap((l) => l.methods.map((x) => x.method)),
      ...(m.writer?.rows.map((r) => METHODS[r.method]) ?? []),
    ]),
  ] as Method[];
  const shaped = m.links.filter((l) => l.link !== "loopback").map((l) => l.link as number);
  const lines = [
    `## Over ssh: \`litekeep pull\` beside scp, rsync and ssh cat`,
    "",
    `Run ${
      m.started.toISOString().slice(0, 16).replace("T", " ")
    } UTC with \`deno task bench:remote --size ${o.size} --slow-size ${
      o.slowSize ?? "30mb"
    } --links ${o.links.join(",")} --runs ${o.runs}${
      o.slowRuns ? ` --slow-runs ${o.slowRuns}` : ""
    }\`. Load average (1, 5, 15 min) before: ${m.loadBefore}; after: ${m.loadAfter}. Other work ran on this machine meanwhile, so the timings carry its noise.`,
    "",
    ...await machine(),
    "",
    `### How it was measured`,
    "",
    `- The remote is a real OpenSSH sshd with throwaway keys (\`tests/support/sshd.ts\`), reached as host \`testpi\` through an ssh client config; all tools (scp, rsync, ssh, litekeep) use it. sshd and everything it starts run pinned to one CPU (\`taskset -c 1\`), a stand-in for a small board's CPU budget; the local side is not pinned.`,
    shaped.length > 0
      ? `- Shaped links (\`scripts/bench/netns.ts\`): sshd runs in network namespace \`lkbench\`, joined to the host by a veth pair (10.231.0.1/24 host end, 10.231.0.2/24 namespace end), each end's egress shaped by \`tc ${
        tbfArgs("DEV", shaped[0]).join(" ")
      }\` (the rate changed between links). This kernel has no \`netem\`: bandwidth only, no added latency or loss, so round trips are a veth's (microseconds), unlike a real LAN or Wi-Fi.`
      : `- Loopback only: no shaped link was run.`,
    `- Every ssh connection pays a fixed start-up on this machine: root's \`~/.bashrc\` runs \`pyenv init\` (\`ssh testpi true\` medians per link in each section). \`python3\` on the remote is pyenv's shim, which adds its own start-up to the python3 remote tool (measured per link too). A Pi with a plain shell and \`/usr/bin/python3\` pays far less.`,
    `- Each method runs ${o.runs} time${
      o.runs === 1 ? "" : "s"
    } per link (fewer on links of 20 Mbit/s or less), interleaved: the order of the methods rotates each run. Every copy is then opened and checked (\`PRAGMA integrity_check\` ok and every table's row count equal to the source); a failed check aborts the bench. \`litekeep pull\` runs as a real process (\`deno run\` of this tree, with the binary's permissions) into an empty folder (a first pull: no local backup), except \`pull delta\`, which runs over a copy of the database before the change (so it also backs that up and writes into it). The remote litekeep is this tree under \`deno run\` too. Seconds are wall time of the whole command; max RSS is GNU time's \`%M\`.`,
    `- \`pull delta\`: the remote is the database after a small change (100 new payments and 1 payment in 1,000 updated).`,
    "",
    `### Commands`,
    "",
    table(
      ["method", "command"],
      methods.map((x) => [x.id, `\`${showArgv(x).replaceAll("|", "\\|")}\``]),
    ),
    "",
    `### Results per link`,
    "",
    ...m.links.flatMap(linkSection),
    ...writerSection(m),
    ...probeSection(m),
    ...boundSection(m),
    `## Targets`,
    "",
    table(
      ["#", "result", "figure"],
      targets.map((t) => [
        String(t.id),
        (t.met === null ? "not measured" : t.met ? "**met**" : "**not met**") +
        (t.scope ? ` (${t.scope})` : ""),
        t.figure,
      ]),
    ),
    "",
  ];
  lines.push(...caveats(m));
  return { markdown: lines.join("\n"), targets };
}
