/**
 * Probes that explain the over-ssh figures: the fixed cost of an ssh connection, where the time
 * of a pull goes (phase by phase, in-process through `pullDatabase`), what the gzip level of the
 * python3 remote changes, and how fast each compressor runs on this CPU and, scaled by a stated
 * factor, on a Raspberry Pi 4.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { spawnStreaming } from "../../lib/proc.ts";
import { pullDatabase, type PullProgress } from "../../lib/remote/pull.ts";
import { shellQuote, sshArgs } from "../../lib/remote/ssh.ts";
import { remoteWords } from "../../lib/remote/ops.ts";
import { PYTHON_AGENT } from "../../lib/remote/scripts.ts";
import { readHeader, receiveBody } from "../../lib/remote/protocol.ts";
import { type SnapshotHeader } from "../../lib/remote/headers.ts";
import { StreamReader } from "../../lib/remote/stream.ts";
import type { ByteCounter } from "./remote_copy.ts";
import { type Spread, spread } from "./report.ts";

/** Seconds `argv` takes, run `n` times. */
async function timeCommand(argv: string[], n: number): Promise<Spread> {
  const seconds: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    seconds.push((performance.now() - started) / 1000);
  }
  return spread(seconds);
}

/** The fixed costs of reaching the remote. */
export interface StartupCost {
  /** `ssh HOST true`: connection, authentication and the remote login shell's start-up. */
  ssh: Spread;
  /** `ssh HOST python3 -I -c 'import sqlite3'`: the python3 remote's start on top. */
  python3: Spread;
  /** `ssh HOST REMOTE_BIN --version`: the remote litekeep's start on top. */
  litekeep: Spread;
}

/** Measures `ssh HOST true` `n` times, the python3 and litekeep remotes' starts up to twice. */
export async function startupCost(
  host: string,
  remoteBin: string,
  n: number,
): Promise<StartupCost> {
  const m = Math.min(n, 2);
  return {
    ssh: await timeCommand(["ssh", host, "true"], n),
    python3: await timeCommand(["ssh", host, "python3 -I -c 'import sqlite3'"], m),
    litekeep: await timeCommand(["ssh", host, `${shellQuote(remoteBin)} --version`], m),
  };
}

/** How long each phase of a pull took, in seconds. */
export interface PullPhases {
  label: string;
  /** Until the first byte of the snapshot arrived: ssh, remote start-up, remote snapshot. */
  firstByte: number;
  /** Streaming, decompressing, hashing and writing the copy. */
  transfer: number;
  /** Syncing the copy, `integrity_check` and row counts. */
  check: number;
  /** The local backup of the old local database (null when there was none). */
  backup: number | null;
  /** Writing the copy into the local database. */
  write: number;
  total: number;
  wireBytes: number;
}

/**
 * Pulls `remoteDb` over a copy of `base` in the empty folder `dir` (so every phase runs, the
 * local backup too), in-process, and times each phase from the progress it reports.
 */
export async function profilePull(
  label: string,
  options: {
    host: string;
    remoteDb: string;
    base: string;
    dir: string;
    tool: "litekeep" | "python3";
    compress: "none" | "gzip";
    remoteBin: string;
    counter: ByteCounter;
  },
): Promise<PullPhases> {
  const localDb = join(options.dir, "profiled.db");
  await Deno.copyFile(options.base, localDb);
  const seen: Partial<Record<PullProgress["phase"], number>> = {};
  const before = await options.counter();
  const started = performance.now();
  await pullDatabase({
    source: { host: options.host, path: options.remoteDb },
    localDb,
    method: "snapshot",
    remote: {
      ssh: {},
      tool: options.tool,
      bin: options.remoteBin,
      compress: options.compress,
    },
    now: new Date(),
    onProgress: (p) => void (seen[p.phase] ??= (performance.now() - started) / 1000),
  });
  const total = (performance.now() - started) / 1000;
  const after = await options.counter();
  const { transfer = NaN, check = NaN, backup, replace = NaN } = seen;
  return {
    label,
    firstByte: transfer,
    transfer: check - transfer,
    check: (backup ?? replace) - check,
    backup: backup === undefined ? null : replace - backup,
    write: total - replace,
    total,
    wireBytes: after.down + after.up - before.down - before.up,
  };
}

/** The median of each phase over profiles of the same pull. */
export function medianPhases(runs: PullPhases[]): PullPhases {
  const m = (f: (p: PullPhases) => number) => spread(runs.map(f)).median;
  return {
    label: runs[0].label,
    firstByte: m((p) => p.firstByte),
    transfer: m((p) => p.transfer),
    check: m((p) => p.check),
    backup: runs[0].backup === null ? null : m((p) => p.backup ?? NaN),
    write: m((p) => p.write),
    total: m((p) => p.total),
    wireBytes: m((p) => p.wireBytes),
  };
}

/** The remote side alone, answering a snapshot straight into a pipe (no ssh, no network). */
export interface AgentRun {
  label: string;
  /** Start-up, snapshot into the temp file and row counts: until the header arrives. */
  firstByte: Spread;
  /** Reading, hashing, compressing and writing the body and trailer. */
  stream: Spread;
  outBytes: number;
}

/**
 * Runs a remote tool's snapshot `runs` times on this host, pinned to the remote's CPU, its
 * answer read from a pipe, to see what the remote side alone can deliver.
 */
export async function agentAlone(label: string, argv: string[], runs: number): Promise<AgentRun> {
  const first: number[] = [];
  const stream: number[] = [];
  let outBytes = 0;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let header = 0;
    outBytes = 0;
    for await (const chunk of child.stdout) {
      header ||= performance.now();
      outBytes += chunk.length;
    }
    const status = await child.status;
    if (!status.success) throw new Error(`${label} failed: ${await stderr}`);
    await stderr;
    first.push((header - started) / 1000);
    stream.push((performance.now() - header) / 1000);
  }
  return { label, firstByte: spread(first), stream: spread(stream), outBytes };
}

/** A python3 remote snapshot streamed at one gzip level. */
export interface LevelRun {
  level: number;
  seconds: number;
  wireBytes: number;
}

/**
 * Streams a snapshot from the python3 remote with its zlib level changed from 1 to `level`
 * (the transfer only: the stream is received and its sha256 checked, nothing else), to see
 * whether another level pays off on the link.
 */
export async function pythonLevel(
  options: { host: string; remoteDb: string; out: string; level: number; counter: ByteCounter },
): Promise<LevelRun> {
  const call = "zlib.compressobj(1,";
  if (!PYTHON_AGENT.includes(call)) throw new Error(`the python3 agent no longer calls ${call}`);
  const agent = PYTHON_AGENT.replace(call, `zlib.compressobj(${options.level},`);
  const words = remoteWords("snapshot", options.remoteDb, {
    ssh: {},
    tool: "python3",
    compress: "gzip",
  }).map((w) => w === PYTHON_AGENT ? agent : w);
  const before = await options.counter();
  const started = performance.now();
  const child = spawnStreaming("ssh", sshArgs(options.host, words));
  await using _child = child;
  const reader = new StreamReader(child.stdout);
  const header = await readHeader<SnapshotHeader>(reader, options.host);
  {
    using file = await Deno.open(options.out, { write: true, create: true, truncate: true });
    await receiveBody(reader, header, file, options.host);
  }
  await child.finish();
  const seconds = (performance.now() - started) / 1000;
  const after = await options.counter();
  await Deno.remove(options.out);
  return {
    level: options.level,
    seconds,
    wireBytes: after.down + after.up - before.down - before.up,
  };
}

/** One compressor (or hash) on this CPU. */
export interface Compressor {
  name: string;
  /** Input MB/s on one core of this machine. */
  mbPerSecond: number;
  /** Output bytes for the whole input (the input's size for a hash). */
  outBytes: number;
}

async function pythonZlib(path: string, level: number): Promise<Compressor> {
  const script = `
import sys, time, zlib
data = open(sys.argv[1], "rb").read()
t = time.perf_counter()
c = zlib.compressobj(int(sys.argv[2]), zlib.DEFLATED, 31)
n = sum(len(c.compress(data[i:i + (1 << 20)])) for i in range(0, len(data), 1 << 20)) + len(c.flush())
print(time.perf_counter() - t, n, len(data))
`;
  const out = await new Deno.Command("python3", {
    args: ["-c", script, path, String(level)],
    stdout: "piped",
  }).output();
  const [seconds, n, size] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
  return { name: `python3 zlib level ${level}`, mbPerSecond: size / 1e6 / seconds, outBytes: n };
}

async function zstd(path: string, level: number, size: number): Promise<Compressor> {
  const started = performance.now();
  const child = new Deno.Command("zstd", {
    args: ["-q", "-T1", `-${level}`, "-c", path],
    stdout: "piped",
  }).spawn();
  let n = 0;
  for await (const chunk of child.stdout) n += chunk.length;
  await child.status;
  const seconds = (performance.now() - started) / 1000;
  return { name: `zstd -${level} (one thread)`, mbPerSecond: size / 1e6 / seconds, outBytes: n };
}

/**
 * Times each compressor on the whole database at `path` on one core of this machine: gzip
 * level 1 as litekeep's agent does it (`node:zlib`) and as its python3 remote does (`zlib`),
 * python's level 6 (rsync's zlib default), zstd -1 and -3 (rsync 3.2+ negotiates zstd), and
 * sha256, which every snapshot pull computes on the remote too.
 */
export async function compressors(path: string): Promise<Compressor[]> {
  const data = await Deno.readFile(path);
  const size = data.length;
  const found: Compressor[] = [];
  let started = performance.now();
  const gz = gzipSync(data, { level: 1 });
  found.push({
    name: "node:zlib gzip level 1 (litekeep agent)",
    mbPerSecond: size / 1e6 / ((performance.now() - started) / 1000),
    outBytes: gz.length,
  });
  started = performance.now();
  createHash("sha256").update(data).digest();
  found.push({
    name: "sha256 (node:crypto)",
    mbPerSecond: size / 1e6 / ((performance.now() - started) / 1000),
    outBytes: size,
  });
  found.push(await pythonZlib(path, 1), await pythonZlib(path, 6));
  found.push(await zstd(path, 1, size), await zstd(path, 3, size));
  return found;
}
