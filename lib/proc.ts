/**
 * Subprocesses, the one way litekeep runs them: an argv array (never a shell string), stdin
 * closed unless data is given, a timeout, and a non-zero exit that throws with the tail of the
 * child's stderr unless the caller lists the codes it expects.
 *
 * @module
 */

/** How to run a command. */
export interface RunOptions {
  /** Bytes or text for the child's stdin; stdin is closed (null) otherwise. */
  stdin?: Uint8Array | string;
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
async function feedStdin(child: Deno.ChildProcess, data?: Uint8Array | string): Promise<void> {
  if (data === undefined) return;
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
  /** Waits for the exit; throws like `run()` on a code not in `okCodes`. */
  finish(): Promise<{ code: number; stderr: string }>;
  /** Kills the child (SIGTERM) if it still runs. */
  kill(): void;
}

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
  // Collect stderr as it comes, so a chatty child never blocks on a full pipe.
  const stderrText = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const kill = () => {
    if (exited) return;
    try {
      child.kill("SIGTERM");
    } catch {
      // Exited meanwhile.
    }
  };
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(kill, options.timeoutMs);
  async function finish(): Promise<{ code: number; stderr: string }> {
    const [{ code }, stderr] = await Promise.all([status, stderrText, stdinDone]);
    clearTimeout(timer);
    if (!(options.okCodes ?? [0]).includes(code)) {
      throw new ProcessError([command, ...args], code, tail(stderr));
    }
    return { code, stderr };
  }
  return {
    stdout: child.stdout,
    finish,
    kill,
    [Symbol.asyncDispose]: async () => {
      kill();
      clearTimeout(timer);
      await child.stdout.cancel().catch(() => {});
      await status;
      await stderrText.catch(() => {});
    },
  };
}
