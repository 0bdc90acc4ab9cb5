/**
 * Subprocesses, the one way litekeep runs them: an argv array (never a shell string), stdin
 * closed unless data is given, a timeout, and a non-zero exit that throws with the tail of the
 * child's stderr unless the caller lists the codes it expects.
 *
 * @module
 */

/** How to run a command. */
export interface RunOptions {
  /**
   * Bytes or text for the child's stdin; `"stream"` (spawnStreaming only) keeps it open for
   * `StreamingChild.writeStdin`; stdin is closed (null) otherwise.
   */
  stdin?: Uint8Array | string | "stream";
  /** Exit codes that are not failures. @default [0] */
  okCodes?: number[];
  /** Kill the child after this long. */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
  cwd?: string;
}

/** What a finished command produced. */
export interface RunResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** A command that failed: exit code, argv and the tail of its stderr. */
export class ProcessError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number,
    readonly stderrTail: string,
    readonly timedOut = false,
    options?: ErrorOptions,
  ) {
    super(
      timedOut
        ? `${argv[0]} did not finish in time`
        : `${argv[0]} exited with code ${code}${stderrTail ? `: ${stderrTail}` : ""}`,
      options,
    );
    this.name = "ProcessError";
  }
}

/** Starts a child with stdout and stderr piped, and stdin piped only when there is data. */
function spawnPiped(
  command: string,
  args: string[],
  options: RunOptions,
  signal?: AbortSignal,
): Deno.ChildProcess {
  return new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
}

/** Writes `data` to a piped stdin and closes it; nothing when there is no data. */
async function feedStdin(
  child: Deno.ChildProcess,
  data?: Uint8Array | string | "stream",
): Promise<void> {
  if (data === undefined || data === "stream") return;
  const writer = child.stdin.getWriter();
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  // A child that exits without reading its input is not our failure: its exit code tells.
  await writer.write(bytes).catch(() => {});
  await writer.close().catch(() => {});
}

/** The last `lines` non-empty lines of `text`. */
export function tail(text: string, lines = 5): string {
  return text.trim().split("\n").filter((l) => l.trim() !== "").slice(-lines).join("\n");
}

/**
 * Runs `command` with `args` and collects its output.
 *
 * @throws {ProcessError} when it exits with a code not in `okCodes`, or times out
 * @throws {Deno.errors.NotFound} when the command is not on PATH
 */
export async function run(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const signal = options.timeoutMs === undefined
    ? undefined
    : AbortSignal.timeout(options.timeoutMs);
  const child = spawnPiped(command, args, options, signal);
  const [out] = await Promise.all([child.output(), feedStdin(child, options.stdin)]);
  const stderr = new TextDecoder().decode(out.stderr);
  const argv = [command, ...args];
  if (signal?.aborted) throw new ProcessError(argv, out.code, tail(stderr), true);
  if (!(options.okCodes ?? [0]).includes(out.code)) {
    throw new ProcessError(argv, out.code, tail(stderr));
  }
  return { code: out.code, stdout: out.stdout, stderr };
}

/** A child whose stdout is read as a stream. */
export interface StreamingChild extends AsyncDisposable {
  /** The child's stdout. */
  stdout: ReadableStream<Uint8Array>;
  /**
   * Waits for the exit; throws like `run()` on a code not in `okCodes`. A child that has not
   * exited within `exitGraceMs` of the call is killed and reported as timed out.
   */
  finish(exitGraceMs?: number): Promise<{ code: number; stderr: string }>;
  /** Kills the child (SIGTERM, then SIGKILL after a short grace) if it still runs. */
  kill(): void;
  /**
   * Writes to the child's stdin (`stdin: "stream"` only). A child that has gone away is not an
   * error here: its exit code and stderr tell why.
   */
  writeStdin(data: Uint8Array): Promise<void>;
  /** Closes the child's stdin (`stdin: "stream"` only). */
  closeStdin(): Promise<void>;
}

/** How long a killed child may take to end before SIGKILL, and stderr to close after an exit. */
const KILL_GRACE_MS = 2000;

/**
 * Starts `command` with its stdout as a stream (for transfers too large to hold in memory).
 * The caller must read stdout to the end or cancel it, then call `finish()`.
 */
export function spawnStreaming(
  command: string,
  args: string[],
  options: RunOptions = {},
): StreamingChild {
  const child = spawnPiped(command, args, options);
  const stdinDone = feedStdin(child, options.stdin);
  const stdinWriter = options.stdin === "stream" ? child.stdin.getWriter() : undefined;
  let stdinClosed = false;
  const closeStdin = async () => {
    if (stdinWriter === undefined || stdinClosed) return;
    stdinClosed = true;
    await stdinWriter.close().catch(() => {});
  };
  // Collect stderr as it comes, so a chatty child never blocks on a full pipe; kept as text
  // read so far, because a process the child left behind may hold the pipe open for ever.
  let stderr = "";
  const stderrReader = child.stderr.getReader();
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await stderrReader.read();
        if (done) return;
        stderr = (stderr + decoder.decode(value, { stream: true })).slice(-(1 << 16));
      }
    } catch {
      // Cancelled: what was read is what there is.
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // Exited meanwhile.
    }
  };
  let killing: ReturnType<typeof setTimeout> | undefined;
  // A remote side that ignores SIGTERM must not keep a run waiting (found by an attack round).
  const kill = () => {
    if (exited || killing !== undefined) return;
    signal("SIGTERM");
    killing = setTimeout(() => !exited && signal("SIGKILL"), KILL_GRACE_MS);
  };
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(kill, options.timeoutMs);
  const within = <T>(promise: Promise<T>, ms: number) => {
    let t: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      promise.then((value) => ({ value })),
      new Promise<undefined>((resolve) => (t = setTimeout(() => resolve(undefined), ms))),
    ]).finally(() => clearTimeout(t));
  };
  async function finish(exitGraceMs?: number): Promise<{ code: number; stderr: string }> {
    const argv = [command, ...args];
    const done = exitGraceMs === undefined
      ? { value: await status }
      : await within(status, exitGraceMs);
    if (done === undefined) {
      kill();
      await status;
    }
    // stderr closes with the child, unless something it left behind still holds it.
    if (await within(stderrDone, KILL_GRACE_MS) === undefined) {
      await stderrReader.cancel().catch(() => {});
    }
    await stdinDone;
    await closeStdin();
    clearTimeout(timer);
    clearTimeout(killing);
    const { code } = await status;
    if (done === undefined) throw new ProcessError(argv, code, tail(stderr), true);
    if (!(options.okCodes ?? [0]).includes(code)) {
      throw new ProcessError(argv, code, tail(stderr));
    }
    return { code, stderr };
  }
  return {
    stdout: child.stdout,
    finish,
    kill,
    writeStdin: async (data) => {
      if (stdinWriter === undefined || stdinClosed) throw new Error("stdin is not a stream");
      await stdinWriter.write(data).catch(() => {});
    },
    closeStdin,
    [Symbol.asyncDispose]: async () => {
      kill();
      await closeStdin();
      clearTimeout(timer);
      await child.stdout.cancel().catch(() => {});
      await status;
      clearTimeout(killing);
      if (await within(stderrDone, KILL_GRACE_MS) === undefined) {
        await stderrReader.cancel().catch(() => {});
      }
    },
  };
}
