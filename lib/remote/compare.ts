/**
 * `compare`: two databases side by side (table list, row counts, newest row per table). The old
 * sync checklist, "table count / record count / latest data", as one function.
 *
 * @module
 */
import type { TableSummary } from "../engine/sqlite.ts";

/** One table in both databases; a side is null where the table is missing. */
export interface CompareRow {
  table: string;
  a: { rows: number | null; newest: string | null } | null;
  b: { rows: number | null; newest: string | null } | null;
  same: boolean;
}

/** The comparison of two databases. */
export interface Comparison {
  rows: CompareRow[];
  /** True when every table exists on both sides with the same row count and newest value. */
  equal: boolean;
}

/** Compares two table lists. Pure. */
export function compareTables(a: TableSummary[], b: TableSummary[]): Comparison {
  const left = new Map(a.map((t) => [t.name, t]));
  const right = new Map(b.map((t) => [t.name, t]));
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  const rows = names.map((table): CompareRow => {
    const x = left.get(table);
    const y = right.get(table);
    const side = (t: TableSummary | undefined) => t ? { rows: t.rows, newest: t.newest } : null;
    const same = x !== undefined && y !== undefined && x.rows === y.rows && x.newest === y.newest;
    return { table, a: side(x), b: side(y), same };
  });
  return { rows, equal: rows.every((r) => r.same) };
}

/**
 * Parses `--order-by TABLE.COLUMN` values into a map (the column may itself contain dots).
 *
 * @returns the map, or the first value that is not TABLE.COLUMN
 */
export function parseOrderBy(values: string[]): Record<string, string> | string {
  const map: Record<string, string> = {};
  for (const value of values) {
    const at = value.indexOf(".");
    if (at <= 0 || at === value.length - 1) return value;
    map[value.slice(0, at)] = value.slice(at + 1);
  }
  return map;
}
