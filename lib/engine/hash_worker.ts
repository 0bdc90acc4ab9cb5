/**
 * Worker entry: hashes chunks of shared memory in the order they are posted, so that a
 * snapshot's reads (main thread) and its hash (here) use both cores. Started by `startHasher()`
 * in `hasher.ts`, which says what each message means.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createHash, type Hash } from "node:crypto";
import type { HasherReply, HasherRequest } from "./hasher.ts";

let hash: Hash | undefined;

self.onmessage = (event: MessageEvent<HasherRequest>) => {
  const request = event.data;
  const reply = (message: HasherReply) => self.postMessage(message);
  try {
    if (request.kind === "start") {
      hash = createHash(request.algorithm);
    } else if (request.kind === "update") {
      if (!hash) throw new Error("a chunk came before the algorithm");
      // A view of the caller's buffer, not a copy: it leaves the buffer alone until told.
      hash.update(new Uint8Array(request.buffer, request.offset, request.length));
      reply({ kind: "hashed" });
    } else {
      if (!hash) throw new Error("the digest was asked before the algorithm");
      reply({ kind: "digest", hex: hash.digest("hex") });
      hash = undefined;
    }
  } catch (error) {
    reply({ kind: "error", message: error instanceof Error ? error.message : String(error) });
  }
};
