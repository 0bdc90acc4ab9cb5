/**
 * Reading an ssh child's stdout: lines with a bound on their length, exact byte counts, and
 * the error every malformed answer becomes.
 *
 * @module
 */
import { OperationError } from "../errors.ts";

/** The longest header line accepted: it carries the table list, so it may be long, not endless. */
export const MAX_HEADER_BYTES = 16 << 20;

/** A line longer than the reader was told to accept. */
export class LineTooLongError extends Error {
  constructor(readonly maxBytes: number) {
    super(`a line longer than ${maxBytes} bytes`);
    this.name = "LineTooLongError";
  }
}

/**
 * The remote sent nothing for the whole idle timeout: a remote tool stuck on a lock or a dying
 * SD card, or a link that keep-alives have not declared dead yet. Ends the run instead of holding
 * the local lock (and failing every later cron run with exit 75) forever.
 */
export class StalledError extends OperationError {}

/** How a stream is read. */
export interface StreamReaderOptions {
  /** Fail with `StalledError` when no byte arrives for this long; 0: wait forever. @default 0 */
  idleTimeoutMs?: number;
  /** Names the sender in messages. @default "the remote" */
  host?: string;
}

/** Reads lines and exact byte counts from a stream, holding at most one line or chunk. */
export class StreamReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #idleTimeoutMs: number;
  #host: string;
  // Live bytes are #buffer[#start, #end); it grows by doubling, so a long line costs O(n).
  #buffer: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #done = false;
  /** Bytes read from the stream so far. */
  received = 0;

  constructor(stream: ReadableStream<Uint8Array>, options: StreamReaderOptions = {}) {
    this.#reader = stream.getReader();
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 0;
    this.#host = options.host ?? "the remote";
  }

  /** The next chunk, or a `StalledError` when none comes within the idle timeout. */
  async #read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    if (this.#idleTimeoutMs <= 0) return await this.#reader.read();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const seconds = Math.round(this.#idleTimeoutMs / 1000);
        reject(
          new StalledError(
            `"${this.#host}" sent nothing for ${seconds} s: the remote side is stuck (a lock, a ` +
              "slow disk) or the link is gone",
            {
              hint: "the local database was not changed; retry later, check the remote with " +
                '"litekeep info", or raise --remote-timeout',
            },
          ),
        );
      }, this.#idleTimeoutMs);
    });
    try {
      return await Promise.race([this.#reader.read(), stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  get #length(): number {
    return this.#end - this.#start;
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const { value, done } = await this.#read();
    if (done) {
      this.#done = true;
      return false;
    }
    this.received += value.length;
    if (this.#length === 0) {
      this.#buffer = value;
      this.#start = 0;
      this.#end = value.length;
      return true;
    }
    if (this.#end + value.length > this.#buffer.length) {
      const size = Math.max(this.#length + value.length, 2 * this.#length);
      const grown = new Uint8Array(size);
      grown.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = grown;
      this.#end = this.#length;
      this.#start = 0;
    }
    this.#buffer.set(value, this.#end);
    this.#end += value.length;
    return true;
  }

  /**
   * The next line without its `\n`; undefined at the end of the stream.
   *
   * @throws {LineTooLongError} when no newline comes within `maxBytes`
   */
  async line(maxBytes = MAX_HEADER_BYTES): Promise<string | undefined> {
    let scanned = 0;
    for (;;) {
      const at = this.#buffer.subarray(this.#start + scanned, this.#end).indexOf(10);
      if (at >= 0) {
        const end = this.#start + scanned + at;
        if (end - this.#start > maxBytes) throw new LineTooLongError(maxBytes);
        const line = new TextDecoder().decode(this.#buffer.subarray(this.#start, end));
        this.#start = end + 1;
        return line;
      }
      scanned = this.#length;
      if (scanned > maxBytes) throw new LineTooLongError(maxBytes);
      // A line cut off by the end of the stream is a lost connection, not a line.
      if (!await this.#fill()) return undefined;
    }
  }

  /** Passes exactly `n` bytes to `sink` in pieces; false when the stream ends first. */
  async bytes(n: number, sink: (piece: Uint8Array) => Promise<void>): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.#length === 0 && !await this.#fill()) return false;
      const take = Math.min(left, this.#length);
      const piece = this.#buffer.subarray(this.#start, this.#start + take);
      this.#start += take;
      left -= take;
      await sink(piece);
    }
    return true;
  }

  /** True when the stream has ended and every byte was read. */
  async atEnd(): Promise<boolean> {
    while (this.#length === 0) {
      if (!await this.#fill()) return true;
    }
    return false;
  }

  /** Stops reading. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/**
 * The remote answered, but not in protocol 1 as this litekeep reads it: a bug or another
 * version on the remote, never a reason to loop, allocate without bound, or crash.
 */
export function malformed(host: string, what: string, detail: string): OperationError {
  return new OperationError(`"${host}" sent a malformed ${what}: ${detail}`, {
    hint: "the local database was not changed; install the same litekeep version on both hosts, " +
      "or try another --remote-tool (python3, sqlite3)",
  });
}
