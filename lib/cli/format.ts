/**
 * Human formatting for summaries and progress lines.
 *
 * @module
 */
import type { TableCount } from "../engine/sqlite.ts";

/** `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `0.42 s`, `3 min 12 s`, `5 h 3 min`, `2 d 4 h`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/**
 * `45 s`, `12 min 3 s`, `5 h 3 min`, `2 d 4 h`: an age in whole seconds (a backup's, from its
 * name), without the fractions of a second that `formatDuration` gives a measured time.
 */
export function formatAge(seconds: number): string {
  return seconds < 60 ? `${Math.round(seconds)} s` : formatDuration(seconds * 1000);
}

/** `2025-10-19 15:55:38`, in local time as backup names are. */
export function formatLocalTime(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

/** Table names and row counts, one per line, aligned. */
export function formatTables(tables: TableCount[], indent = "    "): string {
  if (tables.length === 0) return `${indent}(no tables)\n`;
  const width = Math.max(...tables.map((t) => t.name.length));
  return tables.map((t) => `${indent}${t.name.padEnd(width)}  ${t.rows ?? "-"}\n`).join("");
}

/** Total rows over tables that could be counted. */
export function totalRows(tables: TableCount[]): number {
  return tables.reduce((sum, t) => sum + (t.rows ?? 0), 0);
}
