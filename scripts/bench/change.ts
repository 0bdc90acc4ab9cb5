/**
 * The change of the pull-after-change job: a given fraction of a gym database's rows (1% by
 * default), half updates spread uniformly over the rows of every table, half inserts into every
 * table in proportion to its rows, in transactions of 50 rows.
 *
 * `planChange` is pure (what to change), `applyChange` runs a plan against a database.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { random } from "../../tests/support/gym.ts";

/** The gym's tables the change touches. */
export const CHANGED_TABLES = ["members", "lockers", "rentals", "payments"] as const;

/** One row changed. */
export interface RowChange {
  table: string;
  kind: "update" | "insert";
  /** The rowid updated (1..rows); for an insert, the rowid it will get. */
  id: number;
}

/** The plan: transactions of at most `perTransaction` row changes. */
export interface ChangePlan {
  transactions: RowChange[][];
  updates: number;
  inserts: number;
}

/**
 * Plans the change of `fraction` of the rows counted in `rows` (table -> rows, rowids 1..n):
 * half updates of distinct rows drawn uniformly over all rows of all tables, half inserts shared
 * among the tables in proportion to their rows; every table gets at least one of each, and the
 * changes are shuffled into transactions of `perTransaction` rows.
 */
export function planChange(
  rows: Record<string, number>,
  options: { fraction?: number; perTransaction?: number; seed?: number } = {},
): ChangePlan {
  const fraction = options.fraction ?? 0.01;
  const per = options.perTransaction ?? 50;
  const rnd = random(options.seed ?? 7);
  const tables = Object.keys(rows).filter((t) => rows[t] > 0);
  const total = tables.reduce((n, t) => n + rows[t], 0);
  const changes = Math.max(2 * tables.length, Math.round(total * fraction));
  const updates = Math.floor(changes / 2);
  const inserts = changes - updates;
  const out: RowChange[] = [];
  // Updates: distinct rows, uniform over the concatenation of all tables, one per table first.
  const picked = new Map<string, Set<number>>(tables.map((t) => [t, new Set<number>()]));
  for (const t of tables) picked.get(t)!.add(1 + Math.floor(rnd() * rows[t]));
  let want = updates - tables.length;
  while (want > 0) {
    let k = Math.floor(rnd() * total);
    const table = tables.find((t) => (k < rows[t] ? true : (k -= rows[t], false)))!;
    const set = picked.get(table)!;
    if (set.size >= rows[table] || set.has(k + 1)) continue;
    set.add(k + 1);
    want--;
  }
  for (const [table, ids] of picked) {
    for (const id of ids) out.push({ table, kind: "update", id });
  }
  // Inserts: proportional shares, at least one each, the remainder to the largest table.
  const share = new Map(tables.map((t) => [t, Math.max(1, Math.floor(inserts * rows[t] / total))]));
  const largest = tables.reduce((a, b) => (rows[a] >= rows[b] ? a : b));
  const given = [...share.values()].reduce((a, b) => a + b, 0);
  share.set(largest, Math.max(1, share.get(largest)! + inserts - given));
  for (const [table, n] of share) {
    for (let i = 1; i <= n; i++) out.push({ table, kind: "insert", id: rows[table] + i });
  }
  // Fisher-Yates, so that every transaction mixes tables and kinds.
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  const transactions: RowChange[][] = [];
  for (let i = 0; i < out.length; i += per) transactions.push(out.slice(i, i + per));
  const updated = out.filter((c) => c.kind === "update").length;
  return { transactions, updates: updated, inserts: out.length - updated };
}

/** The SQL of one change (its parameters are the rowid). */
const SQL: Record<string, Record<RowChange["kind"], string>> = {
  members: {
    update: "UPDATE members SET phone = '011-' || id || '-' || abs(random() % 10000) WHERE id = ?",
    insert: "INSERT INTO members SELECT ?, name, phone, 'new' || email, joined_at, status " +
      "FROM members WHERE id = 1",
  },
  lockers: {
    update: "UPDATE lockers SET zone = CASE zone WHEN 'A' THEN 'B' ELSE 'A' END WHERE id = ?",
    insert: "INSERT INTO lockers SELECT ?, (SELECT max(number) + 1 FROM lockers), zone, size " +
      "FROM lockers WHERE id = 1",
  },
  rentals: {
    update: "UPDATE rentals SET returned_at = datetime('now') WHERE id = ?",
    insert: "INSERT INTO rentals SELECT ?, member_id, locker_id, datetime('now'), NULL, NULL " +
      "FROM rentals WHERE id = 1",
  },
  payments: {
    update: "UPDATE payments SET amount_cents = amount_cents + 1 WHERE id = ?",
    insert: "INSERT INTO payments SELECT ?, member_id, amount_cents, datetime('now'), method, " +
      "'change:' || note FROM payments WHERE id = 1",
  },
};

/**
 * Runs `plan` against the database at `path`, one SQLite transaction per planned one.
 *
 * @throws {Error} when a table has no SQL here or a statement fails
 */
export function applyChange(path: string, plan: ChangePlan): void {
  const conn = new DatabaseSync(path);
  try {
    conn.exec("PRAGMA busy_timeout = 5000");
    const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
    const statement = (c: RowChange) => {
      const key = `${c.table} ${c.kind}`;
      if (!statements.has(key)) {
        const sql = SQL[c.table]?.[c.kind];
        if (!sql) throw new Error(`No change SQL for table "${c.table}"`);
        statements.set(key, conn.prepare(sql));
      }
      return statements.get(key)!;
    };
    for (const tx of plan.transactions) {
      conn.exec("BEGIN IMMEDIATE");
      for (const c of tx) statement(c).run(c.id);
      conn.exec("COMMIT");
    }
  } finally {
    conn.close();
  }
}
