/**
 * What a protocol-1 header says (a snapshot's, an info's), and the checks every field passes
 * before the local side acts on it: a remote of another version, or a broken one, must fail
 * with a plain message, never make a receive loop spin or allocate without bound.
 *
 * @module
 */
import type { TableSummary } from "../engine/sqlite.ts";
import { malformed } from "./stream.ts";

/** The header of a snapshot stream. */
export interface SnapshotHeader {
  tool: "litekeep" | "python3" | "sqlite3";
  sqlite: string;
  journalMode: string;
  pageSize: number;
  pages: number;
  size: number;
  encoding: "raw" | "gzip";
  framing: "sized" | "chunked";
  tables: TableSummary[];
  /** True when the body is delta records (page number, page) instead of the whole file. */
  delta?: boolean;
}

/** What `info` reports of a database, local or remote. */
export interface DbInfo {
  tool: string;
  sqlite: string;
  path: string;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  journalMode: string;
  pageSize: number;
  pageCount: number;
  walSize: number | null;
  freeBytes: number | null;
  tables: TableSummary[];
}

/** Tables accepted in one header. */
const MAX_TABLES = 100_000;

/** The tools that answer in protocol 1. */
const TOOLS = ["litekeep", "python3", "sqlite3"] as const;
/** SQLite's largest page count (2^32 - 2). */
const MAX_PAGES = 0xfffffffe;

/** Checks one header's fields; each check names the field it refuses. */
class Fields {
  constructor(readonly value: Record<string, unknown>, readonly host: string) {}

  static of(value: unknown, host: string, what: string): Fields {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw malformed(host, what, "it is not a JSON object");
    }
    return new Fields(value as Record<string, unknown>, host);
  }

  fail(name: string, why: string): never {
    const shown = JSON.stringify(this.value[name]) ?? "nothing";
    throw malformed(this.host, "header", `"${name}" is ${shown.slice(0, 40)}, ${why}`);
  }

  text(name: string, maxLength = 4096): string {
    const v = this.value[name];
    if (typeof v !== "string" || v.length > maxLength) {
      this.fail(name, `expected text of at most ${maxLength} characters`);
    }
    return v;
  }

  oneOf<T extends string>(name: string, choices: readonly T[]): T {
    const v = this.value[name];
    if (!choices.includes(v as T)) this.fail(name, `expected one of ${choices.join(", ")}`);
    return v as T;
  }

  int(name: string, min: number, max: number): number {
    const v = this.value[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
      this.fail(name, `expected a whole number from ${min} to ${max}`);
    }
    return v;
  }

  intOrNull(name: string, min: number, max: number): number | null {
    return this.value[name] === null ? null : this.int(name, min, max);
  }

  number(name: string): number {
    const v = this.value[name];
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(name, "expected a number");
    return v;
  }

  pageSize(name: string): number {
    const v = this.int(name, 512, 65536);
    if ((v & (v - 1)) !== 0) this.fail(name, "expected a power of two from 512 to 65536");
    return v;
  }

  tables(name: string): TableSummary[] {
    const list = this.value[name];
    if (!Array.isArray(list) || list.length > MAX_TABLES) {
      this.fail(name, `expected a list of at most ${MAX_TABLES} tables`);
    }
    return list.map((item, i) => {
      const t = Fields.of(item, this.host, "header");
      const where = (field: string) => `"${name}"[${i}].${field}`;
      if (typeof t.value.name !== "string") {
        throw malformed(this.host, "header", `${where("name")} is not text`);
      }
      const rows = t.value.rows;
      if (rows !== null && !(typeof rows === "number" && Number.isSafeInteger(rows) && rows >= 0)) {
        throw malformed(this.host, "header", `${where("rows")} is not a row count or null`);
      }
      const newest = t.value.newest;
      if (
        newest !== null && typeof newest !== "string" &&
        !(typeof newest === "number" && Number.isFinite(newest))
      ) {
        throw malformed(this.host, "header", `${where("newest")} is not text, a number or null`);
      }
      return { name: t.value.name, rows, newest } as TableSummary;
    });
  }
}

/**
 * Checks every field of a snapshot (or delta) header: a remote that sends nonsense (a page size
 * of -4, a size that is not whole pages) must fail here, never drive the receive loops.
 *
 * @throws {OperationError} naming the field
 */
export function checkSnapshotHeader(
  value: unknown,
  host: string,
  delta: boolean,
): SnapshotHeader {
  const f = Fields.of(value, host, "header");
  const pageSize = f.pageSize("pageSize");
  const pages = f.int("pages", 1, MAX_PAGES);
  const size = f.int("size", 0, Number.MAX_SAFE_INTEGER);
  // The snapshot is a whole database file: exactly `pages` pages.
  if (size !== pages * pageSize) f.fail("size", `expected pages * pageSize = ${pages * pageSize}`);
  const header: SnapshotHeader = {
    tool: f.oneOf("tool", TOOLS),
    sqlite: f.text("sqlite", 64),
    journalMode: f.text("journalMode", 64),
    pageSize,
    pages,
    size,
    encoding: f.oneOf("encoding", ["raw", "gzip"] as const),
    framing: f.oneOf("framing", ["sized", "chunked"] as const),
    tables: f.tables("tables"),
  };
  if (header.framing === "sized" && (header.encoding !== "raw" || delta)) {
    f.fail("framing", "a sized body is the raw file itself, never gzip or delta records");
  }
  const isDelta = f.value.delta ?? false;
  if (isDelta !== delta) {
    f.fail("delta", delta ? "a delta was asked for" : "a whole snapshot was asked for");
  }
  if (delta) header.delta = true;
  return header;
}

/**
 * Checks every field of an `info` header.
 *
 * @throws {OperationError} naming the field
 */
export function checkInfoHeader(value: unknown, host: string): DbInfo {
  const f = Fields.of(value, host, "header");
  const big = Number.MAX_SAFE_INTEGER;
  return {
    tool: f.oneOf("tool", TOOLS),
    sqlite: f.text("sqlite", 64),
    path: f.text("path"),
    size: f.int("size", 0, big),
    mtime: f.number("mtime"),
    journalMode: f.text("journalMode", 64),
    pageSize: f.pageSize("pageSize"),
    pageCount: f.int("pageCount", 0, MAX_PAGES),
    walSize: f.intOrNull("walSize", 0, big),
    freeBytes: f.value.freeBytes === null
      ? null
      : f.number("freeBytes") >= 0
      ? f.number("freeBytes")
      : f.fail("freeBytes", "expected a number of bytes"),
    tables: f.tables("tables"),
  };
}

/**
 * Checks a list of table summaries (protocol 2's trailer carries one).
 *
 * @throws {OperationError} naming the entry
 */
export function checkTables(value: unknown, host: string): TableSummary[] {
  return Fields.of({ tables: value }, host, "trailer").tables("tables");
}
