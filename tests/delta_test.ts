/**
 * The delta pull's two ends in one process, joined by a stream instead of ssh: the agent's
 * `serveSnapshot()` with a delta request on one side, `readHeader()` and `receiveDelta()` on the
 * other, exactly as `litekeep agent` and `pull --method delta` run them.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { serveSnapshot } from "../lib/remote/agent.ts";
import type { SnapshotHeader } from "../lib/remote/headers.ts";
import { pageHashes, readHeader, receiveDelta } from "../lib/remote/protocol.ts";
import { StreamReader } from "../lib/remote/stream.ts";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { TEMP_PREFIX } from "../lib/files/atomic.ts";
import { makeDb, tempDir } from "./_helpers.ts";

/** The pages of `b` that differ from `a`'s (or that `a` lacks), 1-based. */
function changedPages(a: Uint8Array, b: Uint8Array, pageSize: number): number[] {
  const pages: number[] = [];
  for (let at = 0, page = 1; at < b.length; at += pageSize, page++) {
    const x = a.subarray(at, at + pageSize);
    const y = b.subarray(at, at + pageSize);
    if (x.length !== y.length || x.some((byte, i) => byte !== y[i])) pages.push(page);
  }
  return pages;
}

Deno.test("serveSnapshot() and receiveDelta() rebuild the changed database from its changed pages only", async (t) => {
  for (const compress of ["none", "gzip"] as const) {
    await t.step(`compress ${compress}`, async () => {
      await using dir = await tempDir();
      const remote = join(dir.path, "remote.db");
      const base = join(dir.path, "base.db");
      const expected = join(dir.path, "expected.db");
      const local = join(dir.path, "local.db");
      makeDb(remote, { payments: 3000 });
      // The local side holds a snapshot of the remote as it was ...
      const { pageSize } = await snapshotDatabase(remote, base, { busyTimeoutMs: 5000 });
      // ... then the remote app changes a few rows and adds some (the file grows).
      const conn = new DatabaseSync(remote);
      conn.exec(`UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 500 = 0;
        INSERT INTO payments SELECT NULL, member_id, amount_cents, paid_at, method, 'new'
          FROM payments WHERE id <= 300`);
      conn.close();
      await snapshotDatabase(remote, expected, { busyTimeoutMs: 5000 });
      await Deno.copyFile(base, local);

      // The request is the local copy's page hashes; the answer streams straight to the reader.
      const request = await pageHashes(local, pageSize);
      const pipe = new TransformStream<Uint8Array, Uint8Array>();
      const writer = pipe.writable.getWriter();
      const options = { tmpDir: dir.path, compress, orderBy: {}, busyTimeoutMs: 5000 };
      const sending = serveSnapshot(
        remote,
        options,
        (chunk) => writer.write(chunk.slice()),
        request,
      )
        .then(() => writer.close(), async (error) => {
          await writer.abort(error);
          throw error;
        });
      const reader = new StreamReader(pipe.readable);
      const header = await readHeader<SnapshotHeader>(reader, "pi");
      assert.equal(header.delta, true);
      const received = await receiveDelta(reader, header, local, "pi");
      await sending;

      const want = await Deno.readFile(expected);
      const got = await Deno.readFile(local);
      assert.equal(got.length, want.length);
      assert.ok(got.every((byte, i) => byte === want[i]), "the rebuilt file equals the snapshot");
      // Only the pages that differ travelled, and they are few of the file's.
      const changed = changedPages(await Deno.readFile(base), want, pageSize);
      assert.equal(received.pages, changed.length, `${changed.length} of ${header.pages} changed`);
      assert.ok(
        changed.length > 0 && changed.length < header.pages / 2,
        `${changed.length} of ${header.pages}`,
      );
      // The agent's temporary snapshot is gone.
      const names = [...Deno.readDirSync(dir.path)].map((e) => e.name);
      assert.deepEqual(names.filter((name) => name.startsWith(TEMP_PREFIX)), []);
    });
  }
});
