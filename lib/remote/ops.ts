/**
 * Running litekeep's remote side over ONE ssh connection: the dispatcher picks the tool
 * (litekeep agent, python3, sqlite3 CLI) and answers in protocol 1 (`protocol.ts`), or, for
 * `pull2` with litekeep on the remote, protocol 2 (`protocol2.ts`).
 *
 * @module
 */
import { BusyError, OperationError, UsageError } from "../errors.ts";
import { ProcessError, spawnStreaming, type StreamingChild, tail } from "../proc.ts";
import { type RemoteSpec, sshArgs, sshFailure, type SshOptions } from "./ssh.ts";
import { DISPATCH, PROTOCOL, PYTHON_AGENT, SQLITE3_AGENT } from "./scripts.ts";
import { checkInfoHeader, type DbInfo } from "./headers.ts";
import { NoHeaderError, readHeader } from "./protocol.ts";
import { StalledError, StreamReader } from "./stream.ts";
import { defaultCompress2 } from "./protocol2.ts";
import { DEFAULT_REMOTE_TIMEOUT_S } from "../limits.ts";

/** What to do when the two sides' litekeep versions do not speak the same protocol. */
const VERSION_HINT =
  "the remote litekeep is older or newer: install the same version on both hosts " +
  "(or use --remote-tool python3 meanwhile)";

/** Which program answers on the remote. */
export const REMOTE_TOOLS = ["auto", "litekeep", "python3", "sqlite3"] as const;
/** A remote tool choice. */
export type RemoteTool = typeof REMOTE_TOOLS[number];

/**
 * How the remote side may compress the stream (`--compress`). Unset: zstd between two
 * litekeeps (protocol 2), none from python3/sqlite3 (protocol 1, where zstd means gzip).
 */
export const COMPRESS_CHOICES = ["none", "gzip", "zstd"] as const;
/** A compression choice. */
export type Compression = typeof COMPRESS_CHOICES[number];

/** How to run the remote side. */
export interface RemoteOptions {
  ssh: SshOptions;
  /** @default "auto" */
  tool?: RemoteTool;
  /** The litekeep binary on the remote (name on its PATH, or a path). @default "litekeep" */
  bin?: string;
  /** Folder for the remote snapshot's temporary file. @default the remote's $TMPDIR or /tmp */
  tmpDir?: string;
  /** @default zstd in protocol 2, none in protocol 1 */
  compress?: Compression;
  /** Newest row per table by this column instead of max(rowid). */
  orderBy?: Record<string, string>;
  /** Kill the remote side after this long (info only). */
  timeoutMs?: number;
  /** Give up when the remote sends nothing for this long. @default DEFAULT_REMOTE_TIMEOUT_S */
  idleTimeoutMs?: number;
}

/** What the remote side can be asked. */
export type RemoteOp = "snapshot" | "delta" | "info" | "pull2";

/** A failure the remote side reported itself (`LITEKEEP-ERROR <kind> <message>`). */
export class RemoteError extends OperationError {
  constructor(message: string, readonly kind: string, hint: string) {
    super(message, { hint });
  }
}

/** The remote words that run `op` on `path`. */
export function remoteWords(op: RemoteOp, path: string, o: RemoteOptions): string[] {
  const orderBy = Object.entries(o.orderBy ?? {}).map(([t, c]) => `${t}\t${c}`).join("\n");
  return [
    "sh",
    "-c",
    DISPATCH,
    "litekeep-remote",
    op,
    path,
    o.tmpDir ?? "",
    o.tool ?? "auto",
    o.bin ?? "litekeep",
    op === "pull2"
      ? o.compress ?? defaultCompress2()
      : o.compress === "zstd"
      ? "gzip"
      : o.compress ?? "none",
    orderBy,
    PYTHON_AGENT,
    SQLITE3_AGENT,
  ];
}

/** Starts `op` on the remote; the caller reads the answer from `reader`. */
export function startRemote(
  op: RemoteOp,
  spec: RemoteSpec,
  o: RemoteOptions,
  stdin?: Uint8Array | "stream",
): { child: StreamingChild; reader: StreamReader } {
  let child: StreamingChild;
  try {
    child = spawnStreaming("ssh", sshArgs(spec.host, remoteWords(op, spec.path, o), o.ssh), {
      okCodes: [0],
      timeoutMs: o.timeoutMs,
      stdin,
    });
  } catch (error) {
    throw sshFailure(error, spec.host, "Cannot start ssh");
  }
  return {
    child,
    reader: new StreamReader(child.stdout, { idleTimeoutMs: idleTimeoutMs(o), host: spec.host }),
  };
}

/**
 * How long the remote may stay silent: while it answers, and after its answer until it exits
 * (a process left in the ssh session can keep it from ending).
 */
export function idleTimeoutMs(o: RemoteOptions): number {
  return o.idleTimeoutMs ?? DEFAULT_REMOTE_TIMEOUT_S * 1000;
}

/** How long a failed remote run may take to end and say why, before it is stopped. */
const REMOTE_FAILURE_GRACE_MS = 10_000;

/** The agent's words when the local side's end of the conversation went away first. */
const LOST_LOCAL = /^The connection to "the local litekeep" was lost/;

/**
 * The best explanation of a failed remote run: the remote's own `LITEKEEP-ERROR` line, else
 * ssh's failure, else `fallback`. When that line only says that the local side went away
 * (this side failed first and closed the conversation), `fallback` is the cause.
 */
export async function remoteFailure(
  child: StreamingChild,
  reader: StreamReader,
  spec: RemoteSpec,
  fallback?: unknown,
): Promise<Error> {
  // Stop reading first: a child blocked on a full stdout pipe would never exit. A stalled one
  // would not exit either: it is ended, and its end (ssh killed: exit 255) is no reason to
  // blame the connection, which worked (found by the new-user trial).
  if (fallback instanceof StalledError) {
    child.kill();
    await reader.cancel();
    await child.finish().catch(() => {});
    return fallback;
  }
  if (fallback instanceof ProcessError && fallback.timedOut) {
    return new OperationError(
      `The remote side on "${spec.host}" sent its answer but did not end within the remote ` +
        "timeout, so it was stopped",
      {
        cause: fallback,
        hint: "the local database was not changed; run again, and check the remote for a " +
          "process that hangs (e.g. one left in the ssh session)",
      },
    );
  }
  await reader.cancel();
  let stderr = "";
  let processError: unknown;
  try {
    // Bounded: after a local failure (a malformed header, a full disk) a silent remote would
    // never learn that its stdout is gone (found by the final review).
    await child.finish(REMOTE_FAILURE_GRACE_MS);
  } catch (error) {
    processError = error;
    if (error instanceof ProcessError) stderr = error.stderrTail;
  }
  const m = /^LITEKEEP-ERROR (\w+) (.*)$/m.exec(stderr);
  const where = `${spec.host}:${spec.path}`;
  if (m) {
    const [, kind, message] = m;
    // The agent lost us: this side ended the conversation, and its own error is the cause (a
    // busy local database, a full local disk), with its own exit code. Found by the new-user
    // trial: a local writer holding the lock showed as "connection ... lost", exit 1.
    if (
      fallback instanceof Error && !(fallback instanceof ProcessError) && LOST_LOCAL.test(message)
    ) {
      return fallback;
    }
    if (kind === "usage") return new UsageError(message, { hint: 'see "litekeep --help"' });
    if (kind === "busy") {
      return new BusyError(`Remote database "${where}" is busy: ${message}`, {
        hint: "retry later",
      });
    }
    const hints: Record<string, string> = {
      notfound: "check the remote path (and remote.db in the config)",
      notdb: "check the remote path: it must be the application's .db file",
      empty: "check that the application on the remote writes to this path",
      space: "free space in the remote temporary folder, or choose another with --remote-tmp",
      notool: "install python3 or sqlite3 on the remote, or copy the litekeep binary there",
      nodelta: "install python3 or litekeep on the remote, or use --method snapshot",
      noproto2: "copy the litekeep binary to the remote for faster pulls",
      tmpdir: "give --remote-tmp DIR, a writable folder on the remote, or fix the remote's TMPDIR",
      protocol: VERSION_HINT,
    };
    return new RemoteError(
      `Remote database "${where}": ${message}`,
      kind,
      hints[kind] ?? "check the remote host",
    );
  }
  if (processError instanceof ProcessError && processError.code === 255) {
    return sshFailure(processError, spec.host, "Cannot reach remote");
  }
  // Output that is not protocol 1 while a remote litekeep ran: another version, whose own
  // words (its stderr) say more than any guess about shell startup files.
  const said = tail(stderr.replace(/^LITEKEEP-TOOL .*$/gm, ""));
  if (processError instanceof ProcessError && /^LITEKEEP-TOOL litekeep$/m.test(stderr)) {
    if (fallback instanceof NoHeaderError || fallback instanceof ProcessError) {
      return new OperationError(
        `The remote litekeep on "${spec.host}" did not answer in protocol ${PROTOCOL}: ${
          said || `exit code ${processError.code}`
        }`,
        { cause: processError, hint: VERSION_HINT },
      );
    }
  }
  if (fallback instanceof NoHeaderError && said) {
    return new OperationError(`${fallback.message}; the remote said: ${said}`, {
      cause: fallback,
      hint: fallback.hint,
    });
  }
  if (fallback instanceof Error && !(fallback instanceof ProcessError)) return fallback;
  if (processError) return sshFailure(processError, spec.host, `Remote command for "${where}"`);
  return fallback instanceof Error
    ? fallback
    : new OperationError(`Remote command for "${where}" failed: ${tail(stderr)}`);
}

/**
 * Describes a remote database (`info`): size, mtime, SQLite version, journal mode, WAL size,
 * tables, row counts and newest rows, free disk. Read-only on the remote.
 *
 * @throws {OperationError} or {BusyError} naming the host and the cause
 */
export async function remoteInfo(spec: RemoteSpec, o: RemoteOptions): Promise<DbInfo> {
  const { child, reader } = startRemote("info", spec, o);
  await using _child = child;
  let info: DbInfo;
  try {
    info = checkInfoHeader(await readHeader<unknown>(reader, spec.host), spec.host);
  } catch (error) {
    throw await remoteFailure(child, reader, spec, error);
  }
  try {
    await child.finish(idleTimeoutMs(o));
  } catch (error) {
    throw await remoteFailure(child, reader, spec, error);
  }
  return { ...info, tables: info.tables.map((t) => ({ ...t, newest: normalize(t.newest) })) };
}

/** Newest values compare as text: the sqlite3 CLI reports every value as text. */
export function normalize(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
