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
import { spawnStreaming } from "../lib/proc.ts";
import { pullDatabase, type PullProgress } from "../lib/pull.ts";
import { shellQuote, sshArgs } from "../lib/remote.ts";
import { remoteWords } from "../lib/remote_ops.ts";
import { PYTHON_AGENT } from "../lib/remote_scripts.ts";
import { readHeader, receiveBody, type SnapshotHeader, StreamReader } from "../lib/transfer.ts";
import type { ByteCounter } from "./_remote_copy.ts";
import { type Spread, spread } from "./_remote_report.ts";

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

/** Measures `ssh HOST true` and the python3 and litekeep remotes' starts, `n` times each. */
export async function startupCost(
  host: string,
  remoteBin: string,
  n: number,
): Promise<StartupCost> {
  return {
    ssh: await timeCommand(["ssh", host, "true"], n),
    python3: await timeCommand(["ssh", host, "python3 -I -c 'import sqlite3'"], n),
    litekeep: await timeCommand(["ssh", host, `${shellQuote(remoteBin)} --version`], n),
  };
}

/** When each phase of one pull began, in seconds from its start. */
export interface PullPhases {
  label: string;
  /** The first byte of the snapshot arrived (ssh, remote start-up and remote snapshot). */
  firstByte: number;
  /** The transfer ended and the local check began. */
  check: number;
  /** The local backup of the old database began (null when there was none). */
  backup: number | null;
  /** The copy began to be written into the local database. */
  replace: number;
  total: number;
  wireBytes: number;
}

/**
 * Pulls `remoteDb` over a copy of `base` in the empty folder `dir` (so every phase runs, the
 * local backup too), in-process, and notes when each phase began.
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
  return {
    label,
    firstByte: seen.transfer ?? NaN,
    check: seen.check ?? NaN,
    backup: seen.backup ?? null,
    replace: seen.replace ?? NaN,
    total,
    wireBytes: after.down + after.up - before.down - before.up,
  };
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
