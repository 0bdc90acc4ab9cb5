/**
 * Attack round on the early backup (pull backs the old local database up beside the transfer):
 * a run cut by a signal while pages still travel leaves no backup behind, as it did when the
 * backup was only taken under the write lock, right before the write.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { cliCommand, fakeSsh, ls, makeDb, remoteLitekeep, sqlite3, tempDir } from "./_helpers.ts";

/**
 * An ssh that runs the remote command here, with its stdin passed through frame by frame up to
 * the WANT frame, which it holds back: the transfer stalls after the local side has sent it
 * (and so started its early backup), for as long as the test wants.
 */
const HOLD_WANT = `
async function readN(n) {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const k = await Deno.stdin.read(buf.subarray(off));
    if (k === null) return buf.subarray(0, off);
    off += k;
  }
  return buf;
}
async function writeAll(bytes) {
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
}
for (;;) {
  const head = await readN(5);
  if (head.length < 5) break;
  if (head[0] === 0x03) {
    // Held until the test is done (it writes the stop file), then the agent sees its end.
    for (let i = 0; i < 1200; i++) {
      // The stop file, or the test's folder gone (it may be removed right after).
      const stopped = [Deno.args[0], Deno.args[1]].some((path, i) => {
        try {
          Deno.statSync(path);
          return i === 0;
        } catch {
          return i === 1;
        }
      });
      if (stopped) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    break;
  }
  const body = await readN(new DataView(head.buffer).getUint32(1));
  await writeAll(head);
  await writeAll(body);
}
`;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`a pull cut by ${signal} during the transfer leaves no early backup`, async () => {
    await using dir = await tempDir();
    const local = join(dir.path, "local.db");
    makeDb(local, { wal: true, payments: 3000 });
    const remote = join(dir.path, "remote.db");
    await Deno.copyFile(local, remote);
    const conn = new DatabaseSync(remote);
    conn.exec("UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 50 = 3");
    conn.close();
    const before = await sqlite3(local, "SELECT sum(amount_cents) FROM payments");
    const bin = join(dir.path, "bin");
    await Deno.writeTextFile(join(dir.path, "hold.js"), HOLD_WANT);
    const stop = join(dir.path, "stop");
    const path = await fakeSsh(
      bin,
      'while [ $# -gt 0 ]; do [ "$1" = "--" ] && { shift; break; }; shift; done; shift; ' +
        `${Deno.execPath()} run --quiet --allow-read ${
          join(dir.path, "hold.js")
        } ${stop} ${dir.path} | sh -c "$*"`,
    );
    await remoteLitekeep(bin);
    const child = new Deno.Command(Deno.execPath(), {
      args: cliCommand(["pull", `pi:${remote}`, local]),
      env: { PATH: path },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    // The early backup is in place (with its sidecar) while the transfer is held back.
    const backups = join(dir.path, "backups");
    const deadline = Date.now() + 60_000;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      seen = (await ls(backups).catch(() => [])).filter((n) => !n.startsWith("."));
      if (seen.some((n) => n.endsWith(".db")) && seen.some((n) => n.endsWith(".sha256"))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(seen.some((n) => n.endsWith(".db")), `no early backup was made: ${seen}`);
    child.kill(signal);
    const out = await output;
    // The held ssh ends, and the remote agent with it.
    await Deno.writeTextFile(stop, "");
    assert.notEqual(out.code, 0, new TextDecoder().decode(out.stderr));
    const left = (await ls(backups)).filter((n) => !n.startsWith("."));
    assert.deepEqual(left, [], "the interrupted pull left a backup no pull followed");
    assert.equal(await sqlite3(local, "SELECT sum(amount_cents) FROM payments"), before);
    assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  });
}
