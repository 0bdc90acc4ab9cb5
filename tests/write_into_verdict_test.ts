/**
 * writeInto() beside the source's check (issue 10, item 5): the check's verdict comes through
 * shared memory (`verdict`), the step before the committing one waits for it, and a failing
 * verdict, or one that never comes, rolls the write back: the live database is as it was, byte
 * for byte, in WAL and in rollback-journal mode.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { VerdictFailed, writeInto } from "../lib/engine/write_into.ts";
import { OperationError } from "../lib/errors.ts";
import { makeDb, sha256Of, sqlite3, tempDir } from "./_helpers.ts";

/** A worker that sets `flag[0]` to `value` `delayMs` after it is told to (0 pending). */
function lateVerdict(flag: Int32Array, value: number, delayMs: number) {
  const code = `self.onmessage = (e) => {
    const flag = new Int32Array(e.data);
    setTimeout(() => { Atomics.store(flag, 0, ${value}); Atomics.notify(flag, 0); }, ${delayMs});
  };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  return {
    start: () => worker.postMessage(flag.buffer),
    [Symbol.dispose]: () => worker.terminate(),
  };
}

/** A local database and a larger source (several steps, more than the target's page cache). */
async function setUp(dir: string, wal: boolean) {
  const db = join(dir, "live.db");
  makeDb(db, { wal, payments: 2000 });
  const source = join(dir, "source.db");
  makeDb(source, { wal: false, payments: 40000, noteBytes: 200, seed: 7 });
  assert.ok((await Deno.stat(source)).size > 8 << 20, "the source spans many steps");
  return {
    db,
    source,
    sha: await sha256Of(db),
    dump: await sqlite3(db, ".dump"),
    mode: await sqlite3(db, "PRAGMA journal_mode"),
  };
}

async function assertUnchanged(s: Awaited<ReturnType<typeof setUp>>) {
  assert.equal(await sha256Of(s.db), s.sha, "the live database's file changed");
  assert.equal(await sqlite3(s.db, ".dump"), s.dump);
  assert.equal(await sqlite3(s.db, "PRAGMA integrity_check"), "ok");
  assert.equal(await sqlite3(s.db, "PRAGMA journal_mode"), s.mode);
}

for (const wal of [true, false]) {
  const mode = wal ? "WAL" : "rollback journal";

  Deno.test(`writeInto() rolls back when the verdict fails after the write started (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    const flag = new Int32Array(new SharedArrayBuffer(4));
    using verdict = lateVerdict(flag, 2, 300);
    const discarded: string[] = [];
    await assert.rejects(
      writeInto(s.source, s.db, {
        busyTimeoutMs: 5000,
        keep: () => Promise.resolve("kept"),
        discard: (kept) => {
          discarded.push(kept);
          return Promise.resolve();
        },
        // The verdict comes 300 ms after the write began.
        onGap: () => verdict.start(),
        verdict: { flag, timeoutMs: 30_000 },
      }),
      VerdictFailed,
    );
    assert.deepEqual(discarded, ["kept"], "the copy kept for the write is discarded");
    await assertUnchanged(s);
  });

  Deno.test(`writeInto() gives up on a verdict that never comes (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    const flag = new Int32Array(new SharedArrayBuffer(4));
    await assert.rejects(
      writeInto(s.source, s.db, { busyTimeoutMs: 5000, verdict: { flag, timeoutMs: 500 } }),
      (error: Error) => {
        assert.ok(error instanceof OperationError && !(error instanceof VerdictFailed));
        assert.match(error.message, /check of the source gave no verdict within 0\.5 s/);
        assert.match(error.message, /live\.db/);
        return true;
      },
    );
    await assertUnchanged(s);
  });

  Deno.test(`writeInto() writes once the verdict passes (${mode})`, async () => {
    await using dir = await tempDir();
    const s = await setUp(dir.path, wal);
    const flag = new Int32Array(new SharedArrayBuffer(4));
    using verdict = lateVerdict(flag, 1, 300);
    const result = await writeInto(s.source, s.db, {
      busyTimeoutMs: 5000,
      onGap: () => verdict.start(),
      verdict: { flag, timeoutMs: 30_000 },
    });
    assert.equal(result.journalModeBefore, s.mode);
    assert.equal(await sqlite3(s.db, "PRAGMA journal_mode"), s.mode, "WAL stays WAL");
    assert.equal(
      await sqlite3(s.db, "SELECT count(*), sum(amount_cents) FROM payments"),
      await sqlite3(s.source, "SELECT count(*), sum(amount_cents) FROM payments"),
    );
    assert.equal(await sqlite3(s.db, "PRAGMA integrity_check"), "ok");
  });
}
