/**
 * `snapshotDatabase()` of a database large enough (64 MiB or more) that its copy is hashed in a
 * worker, while another process commits, checkpoints in every mode and VACUUMs: each copy holds
 * one instant (the writer's counter, its ledger and its payload agree), is sound and
 * self-contained, and its sha256 is `sha256sum`'s of the file.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { snapshotDatabase } from "../lib/engine/snapshot.ts";
import { sqlite3, tempDir } from "./_helpers.ts";

/** Each transaction adds ledger row k and payload k and sets state to k; some delete too. */
const WRITER = `import sqlite3, sys, os, random
db, stop = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None, timeout=10)
k = c.execute("SELECT n FROM state").fetchone()[0]
i = 0
while not os.path.exists(stop):
    i += 1
    k += 1
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO ledger VALUES (?)", (k,))
    c.execute("INSERT INTO payload VALUES (?, randomblob(?))", (k, random.choice([100, 3000, 20000])))
    if i % 7 == 0:
        c.execute("DELETE FROM payload WHERE k < ? AND k % 3 = 0", (k - 50,))
        c.execute("DELETE FROM filler WHERE rowid IN (SELECT rowid FROM filler ORDER BY random() LIMIT 200)")
    c.execute("UPDATE state SET n = ?", (k,))
    c.execute("COMMIT")
    if i % 40 == 0:
        c.execute("PRAGMA wal_checkpoint(%s)" % random.choice(["PASSIVE", "RESTART", "TRUNCATE", "FULL"]))
    if i % 300 == 0:
        c.execute("VACUUM")
    if i == 1:
        print("ready", flush=True)
`;

Deno.test("snapshotDatabase() hashed in a worker under a writer that checkpoints and VACUUMs: one instant each, sha256sum of the file", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "live.db");
  const made = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA synchronous = OFF")
c.execute("CREATE TABLE ledger (k INTEGER PRIMARY KEY)")
c.execute("CREATE TABLE payload (k INTEGER PRIMARY KEY, v BLOB)")
c.execute("CREATE TABLE state (n INTEGER)")
c.execute("INSERT INTO state VALUES (0)")
c.execute("CREATE TABLE filler (v BLOB)")
c.execute("INSERT INTO filler SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 75000) SELECT i FROM n)")
c.execute("PRAGMA journal_mode = WAL")`,
      db,
    ],
  }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  assert.ok((await Deno.stat(db)).size >= 64 << 20, "the copy must be hashed in a worker");
  const script = join(dir.path, "writer.py");
  await Deno.writeTextFile(script, WRITER);
  const stop = join(dir.path, "stop");
  const writer = new Deno.Command("python3", {
    args: [script, db, stop],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = writer.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    assert.match((await lines.read()).value ?? "", /ready/);
    let seen = 0;
    for (let round = 0; round < 8; round++) {
      const copy = join(dir.path, `copy-${round}.db`);
      const snap = await snapshotDatabase(db, copy, { busyTimeoutMs: 5000, checksum: "sha256" });
      if (snap.method === "pages") {
        const out = await new Deno.Command("sha256sum", { args: [copy], stdout: "piped" }).output();
        assert.equal(snap.checksum?.hex, new TextDecoder().decode(out.stdout).split(" ")[0]);
      }
      assert.equal(await sqlite3(copy, "PRAGMA integrity_check"), "ok");
      const [n, count, max, payload] = (await sqlite3(
        copy,
        "SELECT (SELECT n FROM state), (SELECT count(*) FROM ledger), " +
          "(SELECT coalesce(max(k), 0) FROM ledger), (SELECT coalesce(max(k), 0) FROM payload)",
      )).split("|").map(Number);
      assert.deepEqual([count, max, payload], [n, n, n], `round ${round}: a torn copy`);
      assert.ok(n >= seen, `round ${round}: the copy went back in time (${n} < ${seen})`);
      seen = n;
      // Self-contained: a rollback-journal file that needs no -wal.
      assert.equal(await sqlite3(copy, "PRAGMA journal_mode"), "delete");
      await Deno.remove(copy);
    }
    assert.ok(seen > 0, "the writer never committed");
  } finally {
    await Deno.writeTextFile(stop, "");
    await lines.cancel();
    await writer.status;
  }
});
