/**
 * Checks of every copy the over-ssh benchmarks make: SQLite's `integrity_check` and the row
 * counts, against the source when it was idle, or against the writer's ledger when a writer
 * committed during the copy (each writer commit adds one payment noted `writer:N` and one
 * `ledger` row, so a copy of one instant has as many of each).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** What a copy holds. */
export interface CopyContents {
  /** `ok`, the first problems `integrity_check` found, or why SQLite could not open it. */
  integrity: string;
  /** Rows per table (user tables only). */
  rows: Record<string, number>;
  /** Payments the writer made (`note LIKE 'writer:%'`). */
  writerPayments: number;
}

/** Rows per table of `conn`, without SQLite's own tables. */
export function tableRows(conn: DatabaseSync): Record<string, number> {
  const names = conn.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
  ).all().map((r) => String(r.name));
  return Object.fromEntries(names.map((name) => [
    name,
    Number(conn.prepare(`SELECT count(*) AS n FROM "${name}"`).get()!.n),
  ]));
}

/**
 * Opens the copy at `path` read-write, as an application would (a `-wal` beside it is applied),
 * and reads its integrity and row counts. A copy SQLite cannot read is reported, not thrown.
 */
export function inspectCopy(path: string): CopyContents {
  let conn: DatabaseSync | undefined;
  try {
    conn = new DatabaseSync(path);
    const problems = conn.prepare("PRAGMA integrity_check(5)").all().map((r) =>
      String(Object.values(r)[0])
    );
    const rows = tableRows(conn);
    const writerPayments = Number(
      conn.prepare("SELECT count(*) AS n FROM payments WHERE note LIKE 'writer:%'").get()!.n,
    );
    return { integrity: problems.join("; "), rows, writerPayments };
  } catch (error) {
    return {
      integrity: `cannot read: ${error instanceof Error ? error.message : String(error)}`,
      rows: {},
      writerPayments: 0,
    };
  } finally {
    conn?.close();
  }
}

/**
 * Checks a copy of an idle database: integrity ok and every table's rows as in `expected`.
 *
 * @throws {Error} naming the method and the difference
 */
export function checkIdleCopy(
  what: string,
  contents: CopyContents,
  expected: Record<string, number>,
): void {
  if (contents.integrity !== "ok") {
    throw new Error(`The copy by ${what} failed integrity_check: ${contents.integrity}`);
  }
  const want = JSON.stringify(expected);
  const got = JSON.stringify(contents.rows);
  if (want !== got) throw new Error(`The copy by ${what} has rows ${got}, the source ${want}`);
}

/** How a copy taken while the writer committed turned out. */
export type Verdict = "consistent" | "stale" | "torn" | "refused";

/** A copy taken under the writer, judged. */
export interface WriterCheck {
  verdict: Verdict;
  /** Ledger rows in the copy (null when unreadable). */
  ledger: number | null;
  writerPayments: number | null;
  /** The remote's ledger rows when the copy started and when it ended. */
  before: number;
  after: number;
  detail: string;
}

/**
 * Judges a copy taken while the writer committed: torn when SQLite finds it corrupt or it holds
 * a payment without its ledger row (or the reverse); stale when it is one instant, but one
 * before the copy started (what was in the `-wal` is missing); consistent when it is one instant
 * within the copy's run. `before`/`after` are the remote's ledger rows at start and end.
 */
export function judgeWriterCopy(
  contents: CopyContents,
  before: number,
  after: number,
): WriterCheck {
  const ledger = contents.rows.ledger;
  const base = { before, after, ledger: ledger ?? null, writerPayments: contents.writerPayments };
  if (contents.integrity !== "ok" || ledger === undefined) {
    return { ...base, verdict: "torn", detail: contents.integrity };
  }
  if (ledger !== contents.writerPayments) {
    return {
      ...base,
      verdict: "torn",
      detail: `${contents.writerPayments} writer payments but ${ledger} ledger rows`,
    };
  }
  if (ledger < before) {
    return { ...base, verdict: "stale", detail: `misses ${before - ledger} commits made before` };
  }
  if (ledger > after) {
    // Cannot happen for a real copy: it would hold commits made after it finished.
    return { ...base, verdict: "torn", detail: `${ledger} rows, more than the remote had` };
  }
  return { ...base, verdict: "consistent", detail: "" };
}
