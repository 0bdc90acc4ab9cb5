/**
 * A deterministic demo database shaped like the users' gym app: members, lockers, rentals,
 * payments, with indexes, in WAL mode. Used by the demo, the tests and the benchmarks.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** How big a gym to make. */
export interface GymOptions {
  /** @default 344 */
  members?: number;
  /** @default 120 */
  lockers?: number;
  /** Payments to insert. @default 2000 */
  payments?: number;
  /** Bytes of note text per payment: pads the database to a size. @default 24 */
  noteBytes?: number;
  /** @default true */
  wal?: boolean;
  /** The database's page size; SQLite's default (4096) when absent. */
  pageSize?: number;
  /** Seed of the generator: the same seed makes the same rows. @default 1 */
  seed?: number;
}

/** The schema, also used by the writer in tests. */
export const GYM_SCHEMA = `
CREATE TABLE members (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, phone TEXT, email TEXT,
  joined_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active');
CREATE TABLE lockers (
  id INTEGER PRIMARY KEY, number INTEGER UNIQUE NOT NULL, zone TEXT NOT NULL, size TEXT NOT NULL);
CREATE TABLE rentals (
  id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL REFERENCES members(id),
  locker_id INTEGER NOT NULL REFERENCES lockers(id), started_at TEXT NOT NULL, ends_at TEXT,
  returned_at TEXT);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL REFERENCES members(id),
  amount_cents INTEGER NOT NULL, paid_at TEXT NOT NULL, method TEXT NOT NULL, note TEXT);
CREATE INDEX members_name ON members(name);
CREATE INDEX rentals_member ON rentals(member_id);
CREATE INDEX payments_member ON payments(member_id, paid_at);
CREATE INDEX payments_paid_at ON payments(paid_at);
`;

/** A small fast deterministic generator (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = [
  "Min",
  "Ji",
  "Seo",
  "Hana",
  "Alex",
  "Sam",
  "Noah",
  "Mia",
  "Leo",
  "Yuna",
  "Tae",
  "Eva",
];
const LAST = ["Kim", "Lee", "Park", "Choi", "Jung", "Smith", "Garcia", "Tanaka", "Novak", "Silva"];

/**
 * Creates the gym database at `path` (which must not exist) and returns the row counts.
 * Rows are inserted in batches of 10,000 per transaction, so large sizes build quickly.
 */
export function createGymDb(path: string, options: GymOptions = {}): Record<string, number> {
  const rnd = random(options.seed ?? 1);
  const members = options.members ?? 344;
  const lockers = options.lockers ?? 120;
  const payments = options.payments ?? 2000;
  const noteBytes = options.noteBytes ?? 24;
  const db = new DatabaseSync(path);
  try {
    // Before anything is written (and before WAL mode, which fixes it).
    if (options.pageSize !== undefined) db.exec(`PRAGMA page_size = ${options.pageSize}`);
    if (options.wal ?? true) db.exec("PRAGMA journal_mode = WAL");
    db.exec(GYM_SCHEMA);
    const day = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 86_400_000).toISOString();
    db.exec("BEGIN");
    const m = db.prepare("INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)");
    for (let i = 1; i <= members; i++) {
      const name = `${FIRST[Math.floor(rnd() * FIRST.length)]} ${
        LAST[Math.floor(rnd() * LAST.length)]
      }`;
      m.run(
        i,
        name,
        `010-${1000 + i}-${String(i * 7).padStart(4, "0")}`,
        `member${i}@gym.example`,
        day(Math.floor(rnd() * 700)),
        rnd() < 0.9 ? "active" : "paused",
      );
    }
    const l = db.prepare("INSERT INTO lockers VALUES (?, ?, ?, ?)");
    for (let i = 1; i <= lockers; i++) l.run(i, 100 + i, "ABC"[i % 3], rnd() < 0.7 ? "S" : "L");
    const r = db.prepare("INSERT INTO rentals VALUES (NULL, ?, ?, ?, ?, ?)");
    for (let i = 1; i <= Math.min(lockers, members); i++) {
      const start = Math.floor(rnd() * 600);
      r.run(
        1 + Math.floor(rnd() * members),
        i,
        day(start),
        day(start + 30),
        rnd() < 0.5 ? day(start + 20) : null,
      );
    }
    db.exec("COMMIT");
    const p = db.prepare("INSERT INTO payments VALUES (NULL, ?, ?, ?, ?, ?)");
    const filler = "memo ".repeat(Math.ceil(noteBytes / 5)).slice(0, noteBytes);
    for (let done = 0; done < payments;) {
      db.exec("BEGIN");
      const end = Math.min(payments, done + 10_000);
      for (; done < end; done++) {
        p.run(
          1 + Math.floor(rnd() * members),
          1000 * (3 + Math.floor(rnd() * 10)),
          day(Math.floor(done / 50)),
          rnd() < 0.6 ? "card" : "cash",
          `${done}:${filler}`,
        );
      }
      db.exec("COMMIT");
    }
    return { members, lockers, rentals: Math.min(lockers, members), payments };
  } finally {
    db.close();
  }
}
