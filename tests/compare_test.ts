/**
 * Comparing databases: `compareTables()` and `parseOrderBy()` on plain values, then `info` and
 * `compare` end to end on local and remote databases against a real sshd (a compare is two
 * infos side by side, so the two commands are tested together).
 */
import assert from "node:assert/strict";
import { compareTables, parseOrderBy } from "../lib/remote/compare.ts";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  count,
  makeDb,
  pull,
  remoteLitekeep,
  runCli,
  sqlite3,
  startSshd,
  tempDir,
} from "./_helpers.ts";

Deno.test("compareTables() marks missing tables and differing counts or newest rows", () => {
  const c = compareTables(
    [
      { name: "members", rows: 344, newest: "344" },
      { name: "payments", rows: 2000, newest: "2024-02-09" },
      { name: "only_a", rows: 1, newest: "1" },
    ],
    [
      { name: "members", rows: 344, newest: "344" },
      { name: "payments", rows: 2000, newest: "2024-02-10" },
      { name: "only_b", rows: 0, newest: null },
    ],
  );
  assert.equal(c.equal, false);
  assert.deepEqual(c.rows.map((r) => [r.table, r.same]), [
    ["members", true],
    ["only_a", false],
    ["only_b", false],
    ["payments", false],
  ]);
  assert.equal(c.rows[1].b, null);
});

Deno.test("compareTables() finds equal databases equal", () => {
  const t = [{ name: "a", rows: 1, newest: "1" }];
  assert.equal(compareTables(t, t).equal, true);
});

Deno.test("parseOrderBy() splits TABLE.COLUMN at the first dot", () => {
  assert.deepEqual(parseOrderBy(["payments.paid_at", "t.a.b"]), { payments: "paid_at", t: "a.b" });
  assert.equal(parseOrderBy(["nodot"]), "nodot");
  assert.equal(parseOrderBy([".x"]), ".x");
  assert.equal(parseOrderBy(["x."]), "x.");
});

Deno.test("info and compare read local and remote databases side by side", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  const same = join(dir.path, "same.db");
  const other = join(dir.path, "other.db");
  makeDb(remote);
  makeDb(same);
  makeDb(other);
  const conn = new DatabaseSync(other);
  conn.exec("INSERT INTO payments VALUES (NULL, 1, 100, '2030-01-01', 'cash', 'late')");
  conn.close();
  const info = await runCli([
    "info",
    `${sshd.host}:${remote}`,
    "--remote-tool",
    "python3",
    "--json",
  ]);
  assert.equal(info.code, 0, info.stderr);
  const i = JSON.parse(info.stdout);
  assert.equal(i.journalMode, "wal");
  assert.equal(i.tool, "python3");
  assert.ok(i.freeBytes > 0);
  assert.deepEqual(i.tables.find((t: { name: string }) => t.name === "members"), {
    name: "members",
    rows: 344,
    newest: "344",
  });
  const equal = await runCli([
    "compare",
    `${sshd.host}:${remote}`,
    same,
    "--order-by",
    "payments.paid_at",
  ]);
  assert.equal(equal.code, 0, equal.stderr);
  assert.match(equal.stdout, /same tables, row counts and newest rows/);
  const differ = await runCli([
    "compare",
    `${sshd.host}:${remote}`,
    other,
    "--order-by",
    "payments.paid_at",
  ]);
  assert.equal(differ.code, 1);
  assert.match(
    differ.stdout,
    /^!= payments +2000 rows, newest 2024-02-09T00:00:00\.000Z +2001 rows, newest 2030-01-01$/m,
  );
  assert.match(differ.stderr, /error: ".*" and ".*other\.db" differ/);
});

Deno.test("info and compare agree across remote tools on awkward values, and check --order-by", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const db = join(dir.path, "odd.db");
  const conn = new DatabaseSync(db);
  conn.exec("PRAGMA journal_mode = WAL");
  conn.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, amount REAL)");
  conn.exec(
    `INSERT INTO notes VALUES (1, 'tab' || char(9) || 'quote"' || char(10) || 'back\\slash', 100.0)`,
  );
  conn.close();
  const bin = await remoteLitekeep(dir.path);
  for (const column of ["body", "amount"]) {
    await t.step(`--order-by notes.${column}`, async () => {
      const views = [];
      for (const tool of ["litekeep", "python3", "sqlite3"]) {
        const res = await runCli([
          "info",
          `${sshd.host}:${db}`,
          "--remote-tool",
          tool,
          "--remote-bin",
          bin,
          "--order-by",
          `notes.${column}`,
          "--json",
        ]);
        assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
        views.push(JSON.parse(res.stdout).tables);
      }
      assert.deepEqual(views[1], views[0]);
      assert.deepEqual(views[2], views[0]);
      const local = await runCli([
        "compare",
        db,
        `${sshd.host}:${db}`,
        "--remote-tool",
        "sqlite3",
        "--order-by",
        `notes.${column}`,
      ]);
      assert.equal(local.code, 0, local.stderr);
    });
  }
  await t.step("an unknown column is a usage error, locally and on every remote tool", async () => {
    const local = await runCli(["info", db, "--order-by", "notes.nope"]);
    assert.equal(local.code, 2);
    assert.match(local.stderr, /--order-by notes\.nope: table "notes" has no column "nope"/);
    for (const tool of ["litekeep", "python3", "sqlite3"]) {
      const res = await runCli([
        "compare",
        db,
        `${sshd.host}:${db}`,
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--order-by",
        "nope.x",
      ]);
      assert.equal(res.code, 2, `${tool}: ${res.stderr}`);
      assert.match(res.stderr, /--order-by nope\.x/);
    }
  });
});

Deno.test("info, compare and pull agree across remote tools on FTS5 tables, odd names and BLOBs", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const db = join(dir.path, "odd.db");
  const conn = new DatabaseSync(db);
  conn.exec("PRAGMA journal_mode = WAL");
  conn.exec("CREATE VIRTUAL TABLE docs USING fts5(body)");
  conn.exec("INSERT INTO docs VALUES ('hello world'), ('second')");
  conn.exec(`CREATE TABLE "a${"\n"}b" (x)`);
  conn.exec(`INSERT INTO "a${"\n"}b" VALUES (1), (2)`);
  conn.exec(`CREATE TABLE "it's ""q"" ü ${"\t"}tab" (x)`);
  conn.exec(`INSERT INTO "it's ""q"" ü ${"\t"}tab" VALUES (1)`);
  conn.exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
  conn.exec("INSERT INTO blobs (b) VALUES (x'00ff0a27'), (x'0001'), (x'ff')");
  conn.close();
  const bin = await remoteLitekeep(dir.path);
  const local = await runCli(["info", db, "--order-by", "blobs.b", "--json"]);
  assert.equal(local.code, 0, local.stderr);
  const expected = JSON.parse(local.stdout).tables;
  // The canonical form of a BLOB: x'<lower-case hex>', the same on every side.
  assert.deepEqual(expected.find((x: { name: string }) => x.name === "blobs"), {
    name: "blobs",
    rows: 3,
    newest: "x'ff'",
  });
  assert.deepEqual(expected.find((x: { name: string }) => x.name === "docs"), {
    name: "docs",
    rows: null,
    newest: null,
  });
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    await t.step(`info and compare through ${tool}`, async () => {
      const common = ["--remote-tool", tool, "--remote-bin", bin, "--order-by", "blobs.b"];
      const res = await runCli(["info", `${sshd.host}:${db}`, ...common, "--json"]);
      assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
      assert.deepEqual(JSON.parse(res.stdout).tables, expected);
      const same = await runCli(["compare", db, `${sshd.host}:${db}`, ...common]);
      assert.equal(same.code, 0, `${tool}: ${same.stdout}${same.stderr}`);
    });
    await t.step(`pull through ${tool}`, async () => {
      const copy = join(dir.path, `copy-${tool}.db`);
      const res = await pull(sshd, db, copy, "--remote-tool", tool, "--remote-bin", bin, "--json");
      assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
      assert.equal(count(copy, '"a\nb"'), 2);
      assert.equal(await sqlite3(copy, "SELECT count(*) FROM docs WHERE docs MATCH 'hello'"), "1");
    });
  }
});

Deno.test("compare --json of databases that differ gives ok:false and an error with a hint", async () => {
  await using dir = await tempDir();
  const a = join(dir.path, "a.db");
  const b = join(dir.path, "b.db");
  makeDb(a);
  makeDb(b);
  const conn = new DatabaseSync(b);
  conn.exec("INSERT INTO payments VALUES (NULL, 1, 100, '2030-01-01', 'cash', 'late')");
  conn.exec("CREATE TABLE extra (x)");
  conn.close();
  const res = await runCli(["compare", a, b, "--json"]);
  assert.equal(res.code, 1);
  const out = JSON.parse(res.stdout);
  assert.equal(out.ok, false);
  assert.equal(out.equal, false);
  assert.equal(out.error.message, `"${a}" and "${b}" differ: extra (only in B), payments`);
  assert.match(out.error.hint, /marked "!="/);
  assert.equal(out.error.exitCode, 1);
  assert.match(
    res.stderr,
    /error: ".*a\.db" and ".*b\.db" differ: extra \(only in B\), payments\n.*hint: /,
  );
  const same = JSON.parse((await runCli(["compare", a, a, "--json"])).stdout);
  assert.deepEqual([same.ok, same.error], [true, undefined]);
});

Deno.test("info --json gives mtime in ISO-8601, like every other time; its summary local time", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const mtime = new Date(2025, 9, 19, 15, 55, 38, 250);
  await Deno.utime(db, mtime, mtime);
  const res = await runCli(["info", db, "--json"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(JSON.parse(res.stdout).mtime, mtime.toISOString());
  // Found by the new-user trial: info said "2026-12-02T05:47:05.107Z" where stats said
  // "2026-12-02 06:47:05" of the same file (TZ=Europe/Berlin).
  const human = await runCli(["info", db]);
  assert.match(human.stdout, /modified {6}2025-10-19 15:55:38\n/);
});
