/**
 * Protocol 2's zstd level is the agent's choice, frame by frame (lib/remote/zstd_level.ts): a
 * pull whose PAGES frames came at mixed levels, forced with `LITEKEEP_ZSTD_LEVELS` on the
 * remote, through a real sshd, makes the same copy, byte for byte, in a snapshot and in a delta.
 * The agent's stdout is also saved on the remote, to prove each frame came at its level.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { zstdDecompressSync } from "node:zlib";
import { compressPayload, FRAME } from "../lib/remote/protocol2.ts";
import { makeDb, pull, remoteLitekeep, sha256Of, sqlite3, startSshd, tempDir } from "./_helpers.ts";

const LEVELS = [1, 19, 6];

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The PAGES payloads of one saved protocol-2 answer (header line, then frames). */
function pagesFrames(raw: Uint8Array): Uint8Array[] {
  const header = new TextEncoder().encode("LITEKEEP 2 ");
  let at = raw.findIndex((_, i) => header.every((b, j) => raw[i + j] === b));
  assert.ok(at >= 0, "the saved answer has a protocol-2 header");
  at = raw.indexOf(10, at) + 1;
  const frames: Uint8Array[] = [];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  while (at < raw.length) {
    const type = raw[at];
    const length = view.getUint32(at + 1);
    if (type === FRAME.PAGES) frames.push(raw.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return frames;
}

/**
 * Each frame is exactly what compressing its content at the forced level gives (zstd is
 * deterministic), and at least two levels gave different bytes: the levels really were mixed.
 */
function assertMixedLevels(raw: Uint8Array): number {
  const frames = pagesFrames(raw);
  assert.ok(frames.length >= LEVELS.length, `${frames.length} PAGES frames`);
  let differing = 0;
  frames.forEach((frame, i) => {
    const records = new Uint8Array(zstdDecompressSync(frame));
    const level = LEVELS[i % LEVELS.length];
    assert.ok(
      sameBytes(compressPayload(records, "zstd", level), frame),
      `frame ${i}: level ${level}`,
    );
    if (!sameBytes(compressPayload(records, "zstd", 1), frame)) differing++;
  });
  assert.ok(differing > 0, "some frames differ from level 1's");
  return frames.length;
}

Deno.test("pull in protocol 2 of frames at mixed zstd levels equals the source, first and delta", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 30_000, noteBytes: 100 });
  const real = await remoteLitekeep(dir.path);
  // The remote litekeep with forced levels, saving its protocol-2 answers (pipefail: the
  // agent's exit code is the wrapper's).
  const raw = join(dir.path, "answer.bin");
  const bin = join(dir.path, "litekeep-levels");
  await Deno.writeTextFile(
    bin,
    `#!/bin/bash
set -o pipefail
export LITEKEEP_ZSTD_LEVELS=${LEVELS.join(",")}
if [ "$1 $3 $4" = "agent 2 pull" ]; then "${real}" "$@" | tee "${raw}"; else exec "${real}" "$@"; fi
`,
  );
  await Deno.chmod(bin, 0o755);
  const local = join(dir.path, "local.db");
  const args = ["--remote-bin", bin, "--json"];
  const dump = async (db: string) => await sqlite3(db, ".dump");

  const first = await pull(sshd, remote, local, ...args);
  assert.equal(first.code, 0, first.stderr);
  let out = JSON.parse(first.stdout);
  assert.deepEqual([out.protocol, out.method, out.compress], [2, "snapshot", "zstd"]);
  assert.ok(assertMixedLevels(await Deno.readFile(raw)) > 10, "a first pull of many frames");
  assert.equal(
    out.sha256,
    await sha256Of(local),
    "the copy is the remote's snapshot, byte for byte",
  );
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.equal(await dump(local), await dump(remote));

  const app = new DatabaseSync(remote);
  app.exec("UPDATE payments SET method = 'levels' WHERE id % 40 = 0");
  app.exec(
    "INSERT INTO payments SELECT NULL, 3, 7, '2031-01-01', 'card', note FROM payments LIMIT 500",
  );
  app.close();
  const delta = await pull(sshd, remote, local, ...args);
  assert.equal(delta.code, 0, delta.stderr);
  out = JSON.parse(delta.stdout);
  assert.equal(out.method, "delta");
  assert.ok(out.pagesSent < out.pages, `${out.pagesSent} of ${out.pages}`);
  assertMixedLevels(await Deno.readFile(raw));
  // The delta's copy had to hash to the trailer's sha256 before it was written (or the pull
  // fails); it is then written into the local database through SQLite, whose file header
  // differs: the content is compared by dump.
  assert.match(out.sha256, /^[0-9a-f]{64}$/);
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.equal(await dump(local), await dump(remote));
});
