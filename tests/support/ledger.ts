/**
 * A writer process that keeps a ledger of what it saw committed: each transaction inserts one
 * row with the next id of its own counter (never SQLite's rowid, which a restore would rewind),
 * and the id joins the ledger only once COMMIT has returned. A copy that claims to hold "all
 * committed data" must then hold every ledger id, which is how the restore and pull tests find a
 * commit lost in the gap between a safety copy and the write that replaces the database.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { superviseWriter } from "./writer.ts";

const SCRIPT = `
import { DatabaseSync } from "node:sqlite";
const [db, stopFile, rate] = Deno.args;
const conn = new DatabaseSync(db);
// node:sqlite does not honour its timeout option; the pragma is what waits.
conn.exec("PRAGMA busy_timeout = 20000; PRAGMA synchronous = OFF");
const insert = conn.prepare("INSERT INTO ledger_w (id) VALUES (?)");
const committed = [];
let next = 1, failed = 0;
const gap = 1000 / Number(rate);
const started = performance.now();
for (;;) {
  if (next % 16 === 0) {
    try { Deno.statSync(stopFile); break; } catch { /* keep writing */ }
  }
  const id = next++;
  try {
    conn.exec("BEGIN IMMEDIATE");
    insert.run(id);
    conn.exec("COMMIT");
    committed.push(id);
  } catch {
    failed++;
    try { conn.exec("ROLLBACK"); } catch { /* not in a transaction */ }
  }
  if (committed.length === 1 && id === committed[0]) console.log("ready");
  const wait = started + (next - 1) * gap - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
const seconds = (performance.now() - started) / 1000;
conn.close();
console.log(JSON.stringify({ committed, failed, seconds }));
`;

/** What the ledger writer saw. */
export interface Ledger {
  /** Every id whose COMMIT returned successfully, in order. */
  committed: number[];
  /** Transactions that failed (busy, or the table was gone); not in `committed`. */
  failed: number;
  seconds: number;
}

/** A running ledger writer. */
export interface LedgerWriter extends AsyncDisposable {
  stop(): Promise<Ledger>;
}

/**
 * Creates table `ledger_w` in `db` (so that backups taken now have it and the writer can go on
 * after a restore) and starts a writer committing `ratePerSecond` transactions a second.
 */
export async function startLedgerWriter(
  db: string,
  dir: string,
  ratePerSecond: number,
): Promise<LedgerWriter> {
  const conn = new DatabaseSync(db);
  conn.exec("CREATE TABLE IF NOT EXISTS ledger_w (id INTEGER PRIMARY KEY)");
  conn.close();
  return await superviseWriter<Ledger>("ledger_writer", SCRIPT, db, dir, ratePerSecond);
}

/** The ids in `ledger_w` of each database file (read-only; they are copies nothing writes). */
export function ledgerIds(paths: string[]): Set<number> {
  const ids = new Set<number>();
  for (const path of paths) {
    const conn = new DatabaseSync(path, { readOnly: true });
    try {
      for (const row of conn.prepare("SELECT id FROM ledger_w").all()) ids.add(Number(row.id));
    } finally {
      conn.close();
    }
  }
  return ids;
}

/**
 * Stops the writer and asserts that every id it saw committed is in one of `paths` (the copies
 * kept before each write, and the database after the last), with enough commits to mean it.
 */
export async function assertNoCommitLost(writer: LedgerWriter, paths: string[]): Promise<void> {
  const ledger = await writer.stop();
  if (ledger.committed.length <= 200) {
    throw new Error(`only ${ledger.committed.length} commits: the test proves nothing`);
  }
  const kept = ledgerIds(paths);
  const lost = ledger.committed.filter((id) => !kept.has(id));
  if (lost.length > 0) {
    throw new Error(
      `${lost.length} of ${ledger.committed.length} commits lost (${
        Math.round(ledger.committed.length / ledger.seconds)
      } commits/s)`,
    );
  }
}
