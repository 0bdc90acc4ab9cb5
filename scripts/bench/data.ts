/**
 * The benchmarks' databases and the checks of every copy made from them. Databases are
 * generated deterministically (the gym schema of `tests/support/gym.ts`, in WAL mode) and may be cached;
 * the cache key holds the size, the seed and a hash of the generator, so a changed generator
 * never reuses an old file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { hashFile } from "../../lib/backup_set/checksum.ts";
import { createGymDb } from "../../tests/support/gym.ts";

/** Sizes the bench can generate: payments (with 100-byte notes) that come to about that size. */
export const SIZES = {
  /** For the smoke test. */
  "2mb": { label: "2 MB", payments: 8_500 },
  "10mb": { label: "10 MB", payments: 42_500 },
  "100mb": { label: "100 MB", payments: 425_000 },
  "1gb": { label: "1 GB", payments: 4_250_000 },
} as const;

/** A size name, e.g. `100mb`. */
export type SizeName = keyof typeof SIZES;

/** Bytes of note text per payment: a short memo, as shops type them. */
const NOTE_BYTES = 100;

/** A generated database, as it was when generated. */
export interface Source {
  size: SizeName;
  path: string;
  bytes: number;
  /** Rows per table at generation. */
  rows: Record<string, number>;
  sha256: string;
  md5: string;
  seed: number;
  /** Seconds the generation took; null when the file came from the cache. */
  generatedSeconds: number | null;
}

/** A hash of the generator's source and of the sizes: part of every cache key. */
async function generatorVersion(): Promise<string> {
  const code = await Deno.readTextFile(new URL("../../tests/support/gym.ts", import.meta.url));
  return createHash("sha256").update(code).update(JSON.stringify({ SIZES, NOTE_BYTES }))
    .digest("hex").slice(0, 10);
}

/**
 * The database of `size` in `dir`: reused when a complete one with the same key is there,
 * else generated (under a temporary name, renamed once complete, so an interrupted run never
 * leaves a file that looks cached). Older generations of the same size are removed.
 */
export async function prepareSource(dir: string, size: SizeName, seed: number): Promise<Source> {
  const prefix = `gym-${size}-seed${seed}-`;
  const name = `${prefix}${await generatorVersion()}`;
  const path = join(dir, `${name}.db`);
  const meta = join(dir, `${name}.json`);
  try {
    const source = JSON.parse(await Deno.readTextFile(meta)) as Source;
    if ((await Deno.stat(path)).size === source.bytes) {
      return { ...source, path, generatedSeconds: null };
    }
  } catch {
    // Not cached yet (or half-written by an interrupted run): generate it.
  }
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(prefix)) await Deno.remove(join(dir, entry.name));
  }
  const temp = join(dir, `.${name}.generating.db`);
  for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(temp + suffix).catch(() => {});
  const started = performance.now();
  const rows = createGymDb(temp, { payments: SIZES[size].payments, noteBytes: NOTE_BYTES, seed });
  const generatedSeconds = (performance.now() - started) / 1000;
  // The last connection closed: the WAL is checkpointed and gone, as on an app's idle database.
  await Deno.rename(temp, path);
  const source: Source = {
    size,
    path,
    bytes: (await Deno.stat(path)).size,
    rows,
    sha256: await hashFile(path, "sha256"),
    md5: await hashFile(path, "md5"),
    seed,
    generatedSeconds,
  };
  await Deno.writeTextFile(meta, JSON.stringify(source, null, 2));
  return source;
}

/** Rows per table of an open database (every table but SQLite's own). */
function countRows(db: DatabaseSync): Record<string, number> {
  const names = db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name",
  ).all().map((row) => String(row.name));
  return Object.fromEntries(
    names.map((name) => [name, Number(db.prepare(`SELECT count(*) AS n FROM "${name}"`).get()?.n)]),
  );
}

/**
 * Opens a copy, runs the full `PRAGMA integrity_check`, then `read`s it.
 *
 * @throws {Error} naming the copy when it is not sound
 */
function readSoundCopy<T>(path: string, what: string, read: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(path);
  try {
    const verdict = db.prepare("PRAGMA integrity_check").all().map((row) =>
      String(Object.values(row)[0])
    );
    if (verdict.join() !== "ok") {
      throw new Error(
        `${what}: integrity_check of "${path}" says ${verdict.slice(0, 3).join("; ")}`,
      );
    }
    return read(db);
  } finally {
    db.close();
  }
}

/** Rows per table, as JSON with sorted keys, for comparing. */
export function rowsKey(rows: Record<string, number | null>): string {
  return JSON.stringify(rows, Object.keys(rows).sort());
}

/**
 * Checks a copy of an idle source: sound, and exactly the source's tables and row counts.
 *
 * @throws {Error} naming the tool and saying what differs
 */
export function checkCopy(path: string, source: Source, what: string): void {
  const rows = readSoundCopy(path, what, countRows);
  if (rowsKey(rows) !== rowsKey(source.rows)) {
    throw new Error(
      `${what}: "${path}" has rows ${rowsKey(rows)}, the source ${rowsKey(source.rows)}`,
    );
  }
}

/**
 * Checks a copy taken while the writer of `tests/support/writer.ts` committed: sound, the generated rows all
 * there, and consistent: each writer transaction adds one payment and one ledger row, so a copy
 * of one instant has as many ledger rows as writer payments, and a torn copy does not.
 *
 * @returns the writer transactions in the copy
 * @throws {Error} naming the tool and saying what differs
 */
export function checkWriterCopy(path: string, source: Source, what: string): number {
  const { rows, writer } = readSoundCopy(path, what, (db) => ({
    rows: countRows(db),
    writer: Number(
      db.prepare("SELECT count(*) AS n FROM payments WHERE note LIKE 'writer:%'").get()?.n,
    ),
  }));
  const expected = { ...source.rows, payments: source.rows.payments + writer, ledger: writer };
  if (rowsKey(rows) !== rowsKey(expected)) {
    throw new Error(
      `${what}: "${path}" has rows ${rowsKey(rows)}, but ${writer} writer payments make ` +
        `${rowsKey(expected)} (a torn or incomplete snapshot)`,
    );
  }
  return writer;
}

/** Rows of one table of a live database, read-only (a reader never blocks a WAL writer). */
export function liveCount(path: string, table: string): number {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
  try {
    return Number(db.prepare(`SELECT count(*) AS n FROM "${table}"`).get()?.n);
  } finally {
    db.close();
  }
}
