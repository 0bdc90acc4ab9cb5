/**
 * A hash fed chunk by chunk, in order, either on this thread or in a worker (`hash_worker.ts`)
 * on another core: how a snapshot hashes its pages while the main thread reads the next ones.
 *
 * @module
 */
import { OperationError } from "../errors.ts";

/** What the worker is asked: the algorithm once, then chunks in order, then the digest. */
export type HasherRequest =
  | { kind: "start"; algorithm: "sha256" | "md5" }
  | { kind: "update"; buffer: SharedArrayBuffer; offset: number; length: number }
  | { kind: "digest" };

/** What the worker answers: one reply per request but `start`, in the same order. */
export type HasherReply =
  | { kind: "hashed" }
  | { kind: "digest"; hex: string }
  | { kind: "error"; message: string };

/** A hash fed in order; see {@linkcode startHasher}. */
export interface ChunkHasher extends Disposable {
  /**
   * Adds `bytes` to the hash, after every chunk given before. In a worker, `bytes` must be a view
   * of a `SharedArrayBuffer` and must not change until the promise settles; on this thread the
   * chunk is hashed before `update` returns.
   *
   * @throws {OperationError} (the promise) when the worker failed
   */
  update(bytes: Uint8Array): Promise<void>;
  /** The hex digest of every chunk given, once all are hashed; the hasher is then spent. */
  digest(): Promise<string>;
}

/**
 * A hash of `algorithm`, on this thread or (`inWorker`) in a worker started now: a worker costs
 * its start (~40 ms, overlapped with what the caller does meanwhile) and an isolate's memory, so
 * it pays only for large inputs, where hashing on the main thread would serialise the hash
 * behind the reads (sha256 is ~0.6 s per GiB on one core).
 */
export async function startHasher(
  algorithm: "sha256" | "md5",
  options: { inWorker: boolean },
): Promise<ChunkHasher> {
  if (!options.inWorker) {
    // Loaded only when asked: node:crypto costs start-up to commands that never hash.
    const hash = (await import("node:crypto")).createHash(algorithm);
    return {
      update(bytes) {
        hash.update(bytes);
        return Promise.resolve();
      },
      digest: () => Promise.resolve(hash.digest("hex")),
      [Symbol.dispose]() {},
    };
  }
  const worker = new Worker(new URL("./hash_worker.ts", import.meta.url).href, { type: "module" });
  // The worker answers in request order: the oldest waiter gets each reply.
  const waiting: Array<{ resolve: (reply: HasherReply) => void; reject: (e: Error) => void }> = [];
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  worker.onmessage = (event: MessageEvent<HasherReply>) => {
    const reply = event.data;
    if (reply.kind === "error") fail(new OperationError(`Cannot hash the copy: ${reply.message}`));
    else waiting.shift()?.resolve(reply);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(new OperationError(`Cannot hash the copy: ${event.message}`));
  };
  const ask = (request: HasherRequest): Promise<HasherReply> => {
    if (failure) return Promise.reject(failure);
    const reply = new Promise<HasherReply>((resolve, reject) => waiting.push({ resolve, reject }));
    worker.postMessage(request);
    return reply;
  };
  worker.postMessage({ kind: "start", algorithm } satisfies HasherRequest);
  return {
    async update(bytes) {
      if (!(bytes.buffer instanceof SharedArrayBuffer)) {
        throw new TypeError("a worker hashes views of a SharedArrayBuffer only");
      }
      await ask({
        kind: "update",
        buffer: bytes.buffer,
        offset: bytes.byteOffset,
        length: bytes.length,
      });
    },
    async digest() {
      const reply = await ask({ kind: "digest" });
      if (reply.kind !== "digest") throw new Error(`the hash worker answered ${reply.kind}`);
      return reply.hex;
    },
    [Symbol.dispose]() {
      worker.terminate();
      fail(new OperationError("Cannot hash the copy: the hasher was closed"));
    },
  };
}
