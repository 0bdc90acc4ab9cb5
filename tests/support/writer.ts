/**
 * A writer process that keeps committing to a database, as the users' app does: used by the
 * tests, the demo and the benchmarks.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";

/**
 * A writer process: each transaction inserts one payment and one `ledger` row naming it, so a
 * consistent copy always has as many ledger rows as writer payments, and a torn one does not.
 * It runs until the stop file appears, then prints a JSON summary.
 */
export const WRITER_SCRIPT = `
import { DatabaseSync } from "node:sqlite";
const [db, stopFile, rate] = Deno.args;
const conn = new DatabaseSync(db, { timeout: 5000 });
conn.exec("CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, payment_id INTEGER NOT NULL)");
const pay = conn.prepare("INSERT INTO payments VALUES (NULL, 1, 500, datetime('now'), 'card', 'writer:' || ?)");
const led = conn.prepare("INSERT INTO ledger VALUES (NULL, ?)");
let commits = 0, busy = 0, worst = 0;
const gap = Number(rate) > 0 ? 1000 / Number(rate) : 0;
const started = performance.now();
for (;;) {
  if (commits % 16 === 0) {
    try { Deno.statSync(stopFile); break; } catch { /* keep writing */ }
  }
  const t0 = performance.now();
  try {
    conn.exec("BEGIN IMMEDIATE");
    const id = pay.run(commits).lastInsertRowid;
    led.run(id);
    conn.exec("COMMIT");
    commits++;
  } catch (e) {
    busy++;
    try { conn.exec("ROLLBACK"); } catch { /* not in a transaction */ }
  }
  worst = Math.max(worst, performance.now() - t0);
  if (commits === 1) console.log("ready");
  if (gap > 0) {
    const due = started + commits * gap;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
conn.close();
console.log(JSON.stringify({ commits, busy, worstMs: worst }));
`;

/** What the writer reported when stopped. */
export interface WriterReport {
  commits: number;
  busy: number;
  worstMs: number;
}

/** A running writer process. */
export interface Writer extends AsyncDisposable {
  /** The writer process, for a last-resort kill when the caller is interrupted. */
  pid: number;
  /** Stops it and returns its report. */
  stop(): Promise<WriterReport>;
}

/**
 * Starts a writer process on `db` and waits for its first commit.
 *
 * @param ratePerSecond commits per second; 0 for as fast as it can
 */
export async function startWriter(db: string, dir: string, ratePerSecond = 0): Promise<Writer> {
  // The ledger table is created before the writer starts, so every copy has it.
  const conn = new DatabaseSync(db);
  conn.exec(
    "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, payment_id INTEGER NOT NULL)",
  );
  conn.close();
  return await superviseWriter<WriterReport>("writer", WRITER_SCRIPT, db, dir, ratePerSecond);
}

/** A writer process that prints "ready" after its first commit and a JSON report when stopped. */
export interface SupervisedWriter<R> extends AsyncDisposable {
  pid: number;
  /** Stops it (through its stop file) and returns its report: the last line it printed. */
  stop(): Promise<R>;
}

/**
 * Runs `script` (a Deno program taking DB, STOP_FILE and RATE) as a separate process and waits
 * for its first commit. Shared by the tests' writers.
 */
export async function superviseWriter<R>(
  name: string,
  script: string,
  db: string,
  dir: string,
  ratePerSecond: number,
): Promise<SupervisedWriter<R>> {
  const path = join(dir, `${name}.ts`);
  const stopFile = join(dir, `${name}-stop-${crypto.randomUUID()}`);
  await Deno.writeTextFile(path, script);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", path, db, stopFile, String(ratePerSecond)],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} on ${db} exited before its first commit`);
    text += value;
  }
  let stopped: Promise<R> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      await Deno.writeTextFile(stopFile, "");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      await child.status;
      return JSON.parse(text.trim().split("\n").pop() ?? "{}") as R;
    })();
  return { pid: child.pid, stop, [Symbol.asyncDispose]: async () => void await stop() };
}
