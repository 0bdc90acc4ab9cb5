import assert from "node:assert/strict";
import { join } from "node:path";
import { ls, makeDb, runCli, tempDir } from "./_helpers.ts";

Deno.test("backup refuses a database whose name holds a line break, naming it, exit 2", async () => {
  // Found by the attack round: such backups were written but never listed, verified or pruned.
  await using dir = await tempDir();
  const db = join(dir.path, "we\nird.db");
  makeDb(db, { payments: 10 });
  const bk = join(dir.path, "bk");
  const res = await runCli(["backup", db, "--backup-dir", bk, "--prune", "--keep-count", "1"]);
  assert.equal(res.code, 2, res.stderr);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /error: Cannot back up ".*we\\nird\.db": its name holds a line break/);
  assert.match(res.stderr, /hint: rename the database file/);
  assert.deepEqual((await ls(bk)).filter((n) => n.endsWith(".db")), []);
});
