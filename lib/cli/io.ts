/**
 * The process boundary: where output goes and what the environment says. Commands receive an
 * `Io` instead of touching `Deno.stdout` or `Deno.env`, so that every path runs in-process in tests.
 *
 * @module
 */

/** What a command may use from the outside world. */
export interface Io {
  /** Writes results (stdout). */
  stdout(text: string): void;
  /** Writes binary results (the agent's snapshot stream) to stdout. */
  stdoutBytes(chunk: Uint8Array): Promise<void>;
  /** Reads all of stdin (the agent's delta request). */
  readStdin(): Promise<Uint8Array>;
  /** Stdin as a stream (protocol 2's agent reads a conversation); none in-process. */
  stdinStream?(): ReadableStream<Uint8Array>;
  /** Writes logs, warnings, errors and progress (stderr). */
  stderr(text: string): void;
  /** True when stderr is a terminal: progress lines instead of timestamped log lines. */
  stderrIsTerminal: boolean;
  /**
   * False when stdout is not a terminal (cron's log file): a job's summary lines are stamped
   * like the log lines. Unset counts as a terminal (unstamped).
   */
  stdoutIsTerminal?: boolean;
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** The working directory that relative paths on the command line resolve against. */
  cwd: string;
  /** The current time; tests may pin it. */
  now(): Date;
  /** Work shorter than this shows no progress line. @default 1000 */
  progressDelayMs?: number;
  /** How long one health ping may take (tests shorten it). @default 10000 */
  pingTimeoutMs?: number;
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/** The real process: Deno's stdout/stderr, environment and clock. */
export function processIo(): Io {
  // `litekeep verify DIR | head -1` closes stdout early: the reader has all it wants, and the
  // run goes on with its work and exit code (no "internal error" for a closed pipe).
  let stdoutClosed = false;
  return {
    stdout: (text) => {
      if (stdoutClosed) return;
      try {
        writeAll(Deno.stdout, text);
      } catch (error) {
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
        stdoutClosed = true;
      }
    },
    stdoutBytes: async (chunk) => {
      let offset = 0;
      while (offset < chunk.length) offset += await Deno.stdout.write(chunk.subarray(offset));
    },
    readStdin: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
    stdinStream: () => Deno.stdin.readable,
    stderr: (text) => writeAll(Deno.stderr, text),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    env: (name) => Deno.env.get(name),
    cwd: Deno.cwd(),
    now: () => new Date(),
  };
}
