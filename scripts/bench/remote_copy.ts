/**
 * The ways the over-ssh benchmarks copy a remote database: plain tools (scp, rsync, ssh cat)
 * and `litekeep pull` in each of its methods, each one a real process timed from outside, under
 * GNU time for its peak memory, with the bytes that crossed the link counted around it.
 *
 * @module
 */
import { join } from "node:path";
import { shellQuote } from "../../lib/remote/ssh.ts";
import type { LinkBytes } from "./netns.ts";
import { litekeepArgv, ROOT } from "../../tests/support/sshd.ts";

/** Where a copy comes from and goes to. */
export interface CopyContext {
  /** The ssh alias of the remote. */
  host: string;
  /** The database on the remote. */
  remoteDb: string;
  /** The local database to write; its folder exists and holds nothing else of ours. */
  out: string;
  /** The litekeep the remote runs (`--remote-bin`). */
  remoteBin: string;
}

/**
 * What travels: the `.db` alone (what is only in the `-wal` is missing while the app runs),
 * the `.db` and its `-wal` (opened together), a consistent snapshot, or changed pages.
 */
export type CopyFiles = ".db" | ".db + .db-wal" | "snapshot" | "changed pages";

/** One way to copy the remote database. */
export interface Method {
  /** Short name for the tables, e.g. `rsync -az` or `pull snapshot litekeep gzip`. */
  id: string;
  files: CopyFiles;
  /** The argv of the copy. */
  argv(ctx: CopyContext): string[];
  /** The child's stdout is the copy (ssh cat). */
  stdoutIsCopy?: boolean;
  /** The local database must already hold an older copy (delta). */
  needsBase?: boolean;
  /** Runs `litekeep pull` (its peak memory counts for target 4). */
  litekeep?: boolean;
}

/** A `litekeep pull` method; `extra` are its flags beyond source and destination. */
export function pull(
  id: string,
  files: CopyFiles,
  extra: string[],
  more: Partial<Method> = {},
): Method {
  return {
    id,
    files,
    litekeep: true,
    argv: (c) =>
      litekeepArgv([
        "pull",
        `${c.host}:${c.remoteDb}`,
        c.out,
        "--remote-bin",
        c.remoteBin,
        ...extra,
        "--json",
      ]),
    ...more,
  };
}

/** A snapshot pull through `tool`, compressed or not. */
function snapshot(tool: string, compress: "none" | "gzip"): Method {
  const id = `pull snapshot ${tool}${compress === "gzip" ? " gzip" : ""}`;
  return pull(id, "snapshot", [
    "--method",
    "snapshot",
    "--remote-tool",
    tool,
    "--compress",
    compress,
  ]);
}

/** Every method, by id. */
export const METHODS: Record<string, Method> = Object.fromEntries(
  ([
    { id: "scp", files: ".db", argv: (c) => ["scp", "-q", `${c.host}:${c.remoteDb}`, c.out] },
    {
      id: "scp .db+wal",
      files: ".db + .db-wal",
      argv: (c) => ["scp", "-q", `${c.host}:${c.remoteDb}`, `${c.host}:${c.remoteDb}-wal`, dir(c)],
    },
    {
      id: "rsync -a",
      files: ".db",
      argv: (c) => ["rsync", "-a", `${c.host}:${c.remoteDb}`, c.out],
    },
    {
      id: "rsync -a .db+wal",
      files: ".db + .db-wal",
      argv: (c) => ["rsync", "-a", `${c.host}:${c.remoteDb}`, `:${c.remoteDb}-wal`, dir(c)],
    },
    {
      id: "rsync -az",
      files: ".db",
      argv: (c) => ["rsync", "-az", `${c.host}:${c.remoteDb}`, c.out],
    },
    {
      id: "ssh cat",
      files: ".db",
      stdoutIsCopy: true,
      argv: (c) => ["ssh", c.host, `cat ${shellQuote(c.remoteDb)}`],
    },
    snapshot("litekeep", "none"),
    snapshot("litekeep", "gzip"),
    snapshot("python3", "none"),
    snapshot("python3", "gzip"),
    snapshot("sqlite3", "none"),
    pull("pull scp", ".db + .db-wal", ["--method", "scp"]),
    pull("pull delta gzip", "changed pages", [
      "--method",
      "delta",
      "--remote-tool",
      "litekeep",
      "--compress",
      "gzip",
    ], {
      needsBase: true,
    }),
    pull("pull snapshot litekeep ssh -C", "snapshot", [
      "--method",
      "snapshot",
      "--remote-tool",
      "litekeep",
      "--ssh-option",
      "Compression=yes",
    ]),
  ] satisfies Method[]).map((m) => [m.id, m]),
);

/** The folder of the local copy, with a trailing slash (scp and rsync copy into it). */
function dir(c: CopyContext): string {
  return c.out.slice(0, c.out.lastIndexOf("/") + 1);
}

/** The command line of a method, as the report shows it. */
export function showArgv(method: Method): string {
  const argv = method.argv({
    host: "testpi",
    remoteDb: "/REMOTE/gym.db",
    out: "/LOCAL/gym.db",
    remoteBin: "REMOTE_BIN",
  });
  const words = method.litekeep
    ? ["litekeep", ...argv.slice(argv.indexOf(join(ROOT, "main.ts")) + 1)]
    : argv;
  return words.join(" ") + (method.stdoutIsCopy ? " > /LOCAL/gym.db" : "");
}

/** One timed copy. */
export interface CopyRun {
  seconds: number;
  /** Peak resident memory of the copying process (GNU time `%M`), KiB. */
  maxRssKiB: number;
  /** Bytes that crossed the link during the copy. */
  wire: LinkBytes;
  /** The `--json` answer of a litekeep pull. */
  json?: Record<string, unknown>;
}

/** A reading of the link's byte counters. */
export type ByteCounter = () => Promise<LinkBytes>;

/**
 * Loopback's counters from `/proc/net/dev`. Loopback counts every byte once as sent and once as
 * received, and every other process's loopback traffic too: `down` is all of it, `up` is 0.
 */
export async function loopbackBytes(): Promise<LinkBytes> {
  const line = (await Deno.readTextFile("/proc/net/dev")).split("\n")
    .find((l) => l.trim().startsWith("lo:"));
  if (!line) throw new Error("no lo in /proc/net/dev");
  const fields = line.split(":")[1].trim().split(/\s+/);
  return { down: Number(fields[8]), up: 0 };
}

/**
 * Runs `method` once under GNU time and returns its time, peak memory and bytes on the link.
 *
 * @throws {Error} when the copy exits non-zero, with the tail of its stderr
 */
export async function runCopy(
  method: Method,
  ctx: CopyContext,
  counter: ByteCounter,
): Promise<CopyRun> {
  const rssFile = `${ctx.out}.rss`;
  const [program, ...args] = ["/usr/bin/time", "-f", "%M", "-o", rssFile, ...method.argv(ctx)];
  const before = await counter();
  const started = performance.now();
  const child = new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let stdout: Promise<string>;
  if (method.stdoutIsCopy) {
    const file = await Deno.open(ctx.out, { write: true, create: true, truncate: true });
    stdout = child.stdout.pipeTo(file.writable).then(() => "");
  } else stdout = new Response(child.stdout).text();
  const [status, out, err] = await Promise.all([child.status, stdout, stderr]);
  const seconds = (performance.now() - started) / 1000;
  const after = await counter();
  if (!status.success) {
    throw new Error(
      `${method.id} failed (exit ${status.code}): ${err.trim().split("\n").slice(-5).join("\n")}`,
    );
  }
  const rss = (await Deno.readTextFile(rssFile)).trim().split("\n").pop();
  await Deno.remove(rssFile);
  return {
    seconds,
    maxRssKiB: Number(rss),
    wire: { down: after.down - before.down, up: after.up - before.up },
    json: method.litekeep ? JSON.parse(out) : undefined,
  };
}
