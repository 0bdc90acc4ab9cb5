import assert from "node:assert/strict";
import { compareTables, parseOrderBy } from "../lib/remote/compare.ts";

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
