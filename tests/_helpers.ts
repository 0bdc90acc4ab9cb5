/**
 * Test helpers: disposable temp folders, real SQLite databases, the CLI in-process and as a
 * real process, and a writer process that keeps committing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { hashFile, sidecarLine } from "../lib/backup_set/checksum.ts";
import { runCli as runCliInProcess } from "../lib/cli/cli.ts";
import type { Io } from "../lib/cli/io.ts";
import { createGymDb, type GymOptions } from "./support/gym.ts";
export { startWriter, type Writer, type WriterReport } from "./support/writer.ts";
import { litekeepArgv } from "./support/sshd.ts";
export { remoteLitekeep, type Sshd, startSshd } from "./support/sshd.ts";

/** True in CI, where a missing component must fail a test instead of skipping it. */
export const IN_CI = Deno.env.get("CI") === "true";

/** The repository root. */
export const ROOT = new URL("..", import.meta.url).pathname;

/** A temp folder removed (with everything in it) at the end of the scope. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "litekeep-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** Creates the gym database at `path`. */
export function makeDb(path: string, options: GymOptions = {}): Record<string, number> {
  return createGymDb(path, options);
}

/** Rows of one query, through an independent judge: the `sqlite3` CLI. */
export async function sqlite3(db: string, sql: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: [db, sql],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`sqlite3 ${db} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** Counts rows with node:sqlite, read-only. */
export function count(db: string, table: string): number {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return Number((conn.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
  } finally {
    conn.close();
  }
}

/**
 * Asserts that `copy`, made while a ledger writer (`startWriter`) committed to its source, holds
 * one instant of it: sound, every writer payment with its ledger row and no row without its
 * payment, and between the `before` and `after` ledger counts of the source around the copy.
 */
export async function assertWriterInstant(
  copy: string,
  before: number,
  after: number,
): Promise<void> {
  assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
  const ledger = Number(await sqlite3(copy, "SELECT count(*) FROM ledger"));
  const paid = Number(
    await sqlite3(copy, "SELECT count(*) FROM payments WHERE note LIKE 'writer:%'"),
  );
  assert.equal(ledger, paid, "a torn copy would have payments without ledger rows");
  assert.ok(ledger >= before && ledger <= after, `${ledger} not in [${before}, ${after}]`);
}

/** The names in a folder, sorted. */
export async function ls(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for running the CLI. */
export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  now?: Date;
  terminal?: boolean;
  /** How long work must run before progress shows. @default 1000 */
  progressDelayMs?: number;
  /** False: stdout is a log file (a job's summary is stamped). @default true */
  stdoutTerminal?: boolean;
  /** How long one health ping may take. @default 10000 */
  pingTimeoutMs?: number;
}

/** Runs the CLI in-process with captured output. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: (t) => void (stdout += t),
    readStdin: () => Promise.resolve(new Uint8Array()),
    stdoutBytes: (chunk) => {
      stdout += new TextDecoder("latin1").decode(chunk);
      return Promise.resolve();
    },
    stderr: (t) => void (stderr += t),
    stderrIsTerminal: options.terminal ?? false,
    env: (name) => options.env?.[name],
    cwd: options.cwd ?? Deno.cwd(),
    now: () => options.now ?? new Date(),
    progressDelayMs: options.progressDelayMs,
    stdoutIsTerminal: options.stdoutTerminal ?? true,
    pingTimeoutMs: options.pingTimeoutMs,
  };
  const code = await runCliInProcess(args, io);
  return { code, stdout, stderr };
}

/**
 * Runs `litekeep pull HOST:REMOTE LOCAL ...extra` in-process against `sshd`, the argument list
 * most pull tests share.
 */
export function pull(
  sshd: { host: string },
  remote: string,
  local: string,
  ...extra: string[]
): Promise<CliResult> {
  return runCli(["pull", `${sshd.host}:${remote}`, local, ...extra]);
}

/** The argv (after deno) that runs litekeep from source as a real process. */
export function cliCommand(args: string[]): string[] {
  return litekeepArgv(args).slice(1);
}

/** Runs the CLI as a real process (the real exit path of `main.ts`). */
export async function spawnCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: cliCommand(args),
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/**
 * `systemd-analyze verify` of unit `files`, at `SYSTEMD_LOG_LEVEL` `level` (unset: its default).
 * What it printed, as text.
 */
export async function systemdVerify(
  files: string[],
  level?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("systemd-analyze", {
    args: ["verify", ...files],
    stdout: "piped",
    stderr: "piped",
    ...(level === undefined ? {} : { env: { SYSTEMD_LOG_LEVEL: level } }),
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/**
 * The plist `file` as python3's plistlib reads it (an independent reader of Apple's format).
 *
 * @throws {Error} when plistlib cannot read it
 */
export async function readPlist(file: string): Promise<Record<string, unknown>> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))",
      file,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Fails in CI when a tool is missing; elsewhere says whether to skip. */
export async function have(tool: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v "$1"`, "sh", tool],
      stdout: "null",
    }).output();
    if (out.success) return true;
  } catch {
    // fall through
  }
  if (IN_CI) throw new Error(`${tool} is not installed, and CI must not skip tests that need it`);
  return false;
}

/**
 * Mounts a tmpfs of `sizeKiB` at `dir` (root only). Returns a disposable that unmounts it, or
 * undefined outside CI when mounting is not allowed here.
 */
export async function mountTmpfs(
  dir: string,
  sizeKiB: number,
  readOnly = false,
): Promise<AsyncDisposable | undefined> {
  await Deno.mkdir(dir, { recursive: true });
  const options = `size=${sizeKiB}k${readOnly ? ",ro" : ""}`;
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", options, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch(() => undefined);
  if (!out?.success) {
    if (IN_CI) throw new Error(`cannot mount a tmpfs at ${dir}: CI must run these tests as root`);
    return undefined;
  }
  return {
    [Symbol.asyncDispose]: async () => {
      await new Deno.Command("umount", { args: [dir] }).output();
    },
  };
}

/** A small real database in rollback-journal mode, as backups are. */
export function smallDb(path: string, rows = 10): void {
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  db.exec("BEGIN");
  for (let i = 0; i < rows; i++) insert.run(`row ${i}`);
  db.exec("COMMIT");
  db.close();
}

/**
 * Backups named `{stem}_backup_{stamp}.db` in `dir`, copies of one small database, each with a
 * sidecar (`checksum`) unless it is null. Returns their paths.
 */
export async function fakeBackups(
  dir: string,
  stamps: string[],
  { stem = "gym", checksum = "sha256" as "sha256" | "md5" | null, rows = 10 } = {},
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const template = await Deno.makeTempFile({ suffix: ".db" });
  await Deno.remove(template);
  smallDb(template, rows);
  const paths: string[] = [];
  for (const stamp of stamps) {
    const path = join(dir, `${stem}_backup_${stamp}.db`);
    await Deno.copyFile(template, path);
    if (checksum) {
      await Deno.writeTextFile(
        `${path}.${checksum}`,
        sidecarLine(await hashFile(path, checksum), path),
      );
    }
    paths.push(path);
  }
  await Deno.remove(template);
  return paths;
}

/** Changes one byte far from the header: the checksum no longer matches. */
export async function tamper(path: string): Promise<void> {
  using f = await Deno.open(path, { read: true, write: true });
  await f.seek(-10, Deno.SeekMode.End);
  await f.write(new Uint8Array([0x42]));
}

/**
 * Corrupts one page of the gym database's `payments_paid_at` index (rollback-journal mode): the
 * data pages stay readable, so a copy succeeds, but `integrity_check` finds the index wrong.
 */
export async function corruptIndexPage(db: string): Promise<void> {
  const conn = new DatabaseSync(db);
  const { rootpage } = conn.prepare(
    "SELECT rootpage FROM sqlite_schema WHERE name = 'payments_paid_at'",
  ).get() as { rootpage: number };
  const { page_size } = conn.prepare("PRAGMA page_size").get() as { page_size: number };
  conn.close();
  using f = await Deno.open(db, { read: true, write: true });
  // The end of the page holds the cells (keys and child pointers).
  await f.seek(Number(rootpage) * Number(page_size) - 100, Deno.SeekMode.Start);
  await f.write(new Uint8Array(100).fill(0x41));
}

/**
 * Holds a litekeep lock file from another process (as a concurrent run would), until disposed.
 * In-process locks do not count: a process may take its own lock again.
 */
export async function holdLock(path: string): Promise<{ pid: number } & AsyncDisposable> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const f = await Deno.open(${
        JSON.stringify(path)
      }, { read: true, write: true, create: true });
       await f.lock(true);
       await f.truncate(0);
       await f.write(new TextEncoder().encode(Deno.pid + "\\n"));
       console.log("locked");
       await new Promise(() => setTimeout(() => {}, 600_000));`,
    ],
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  if (value?.trim() !== "locked") throw new Error(`the lock holder did not start: ${value}`);
  return {
    pid: child.pid,
    [Symbol.asyncDispose]: async () => {
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel().catch(() => {});
    },
  };
}

/**
 * Puts a `-wal` of ANOTHER database beside `target` (committed frames that add a table
 * `injected`), as a copy or a crash can leave one: SQLite would replay it into `target`.
 */
export async function foreignWal(target: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "litekeep-foreign-" });
  try {
    const other = join(dir, "other.db");
    makeDb(other, { payments: 10 });
    const conn = new DatabaseSync(other);
    conn.exec("PRAGMA wal_autocheckpoint = 0");
    conn.exec("CREATE TABLE injected (x); INSERT INTO injected VALUES (1), (2), (3)");
    await Deno.copyFile(`${other}-wal`, `${target}-wal`);
    conn.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Puts an executable `ssh` in `dir` that runs `script` (sh) instead of connecting anywhere,
 * and returns the PATH that finds it first: for runs that must not need a real remote.
 */
export async function fakeSsh(dir: string, script: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "ssh"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  await Deno.chmod(join(dir, "ssh"), 0o755);
  return `${dir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
}

/**
 * A fake `ssh` in `dir` that runs the remote command HERE: it skips its options up to `--` and
 * the host, runs `first` (a shell command, e.g. `sleep 3;` for a slow link), then the command.
 * Returns the PATH that finds it first (see {@linkcode fakeSsh}).
 */
export function localSsh(dir: string, first = ""): Promise<string> {
  return fakeSsh(
    dir,
    'while [ $# -gt 0 ]; do [ "$1" = "--" ] && { shift; break; }; shift; done; shift; ' +
      `${first}exec sh -c "$*"`,
  );
}

/** Runs `fn` (an in-process pull, say) with `path` in front of PATH, then puts PATH back. */
export async function withPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const saved = Deno.env.get("PATH");
  Deno.env.set("PATH", `${path}:${saved}`);
  try {
    return await fn();
  } finally {
    Deno.env.set("PATH", saved!);
  }
}

/** The sha256 of a file's bytes as they are now (e.g. that a database is byte-identical). */
export async function sha256Of(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

/**
 * A real process that names a temp in `dir` through lib/files/atomic.ts (as a run does), writes it and
 * its `-journal`, and waits. `kill()` ends it with SIGKILL, as `kill -9` or a crash would;
 * disposing kills it too. `names` are the temp and its journal (not its marker).
 */
export async function tempWriter(
  dir: string,
  finalName: string,
): Promise<{ names: string[]; kill(): Promise<void> } & AsyncDisposable> {
  const atomic = JSON.stringify(new URL("../lib/files/atomic.ts", import.meta.url).href);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { tempPathFor } from ${atomic};
       const temp = tempPathFor(${JSON.stringify(dir)}, ${JSON.stringify(finalName)});
       Deno.writeTextFileSync(temp, "partial");
       Deno.writeTextFileSync(temp + "-journal", "journal");
       console.log(JSON.stringify(temp));
       setTimeout(() => {}, 600_000);`,
    ],
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  const temp = JSON.parse(value?.trim() || '""') as string;
  let ended = false;
  const kill = async () => {
    if (ended) return;
    ended = true;
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
  };
  if (!temp) {
    await kill();
    throw new Error("the temp writer did not start");
  }
  const base = temp.slice(temp.lastIndexOf("/") + 1);
  return { names: [base, `${base}-journal`], kill, [Symbol.asyncDispose]: kill };
}

/**
 * Runs a python3 `code` with `args` as another process (another process's SQLite locks are what
 * these tests need) until it prints `ready` on a line of its own; disposing kills it.
 *
 * @throws {Error} when it ends or prints anything else first
 */
export async function python3Until(
  code: string,
  args: string[],
  ready: string,
): Promise<AsyncDisposable> {
  const child = new Deno.Command("python3", {
    args: ["-c", code, ...args],
    stdin: "null",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Ended already.
    }
    await child.status;
    await reader.cancel().catch(() => {});
  };
  if (value?.trim() !== ready) {
    await stop();
    throw new Error(`python3 did not print "${ready}": ${value}`);
  }
  return { [Symbol.asyncDispose]: stop };
}
