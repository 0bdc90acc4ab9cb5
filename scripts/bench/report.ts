/**
 * Numbers and markdown shared by both benchmark reports (`docs/BENCHMARKS.md` and
 * `docs/BENCHMARKS_REMOTE.md`): the one `spread()`, number formats and a markdown table. A leaf:
 * it imports nothing, so every bench module can use it without a cycle.
 *
 * @module
 */

/** Median, smallest and largest of some numbers. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** The median (mean of the middle two for an even count), min and max of `values`. */
export function spread(values: number[]): Spread {
  if (values.length === 0) throw new Error("spread() needs at least one value");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** Seconds with two decimals, or one from 100 s. */
export function secs(s: number): string {
  return s < 100 ? s.toFixed(2) : s.toFixed(1);
}

/** `1.23 (1.20-1.31)`: a median and its range; just the median for one run. */
export function secsSpread(s: Spread): string {
  return s.min === s.max ? secs(s.median) : `${secs(s.median)} (${secs(s.min)}-${secs(s.max)})`;
}

/** Megabytes (10^6) with one decimal, or two below 10. */
export function mb(bytes: number): string {
  const m = bytes / 1e6;
  return m < 10 ? m.toFixed(2) : m.toFixed(1);
}

/** Seconds for a table: three decimals below 10 s. */
export function seconds(s: number): string {
  return s < 10 ? s.toFixed(3) : s.toFixed(1);
}

/** `1 timed run`, `5 timed runs`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A ratio such as `0.93x`. */
export function ratio(r: number): string {
  return `${r.toFixed(2)}x`;
}

/** A markdown table; cells must not hold `|`. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Rotates `items` left by `by` (each run starts with a different method). */
export function rotate<T>(items: T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
