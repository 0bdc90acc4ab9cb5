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
import sys, time
src, dst = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = src.read(5)
    if len(head) < 5:
        break
    if head[0] == 0x03:
        time.sleep(120)
        break
    body = src.read(int.from_bytes(head[1:5], "big"))
    dst.write(head + body)
    dst.flush()
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
    await Deno.writeTextFile(join(dir.path, "hold.py"), HOLD_WANT);
    const path = await fakeSsh(
      bin,
      'while [ $# -gt 0 ]; do [ "$1" = "--" ] && { shift; break; }; shift; done; shift; ' +
        `python3 -u ${join(dir.path, "hold.py")} | sh -c "$*"`,
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
    assert.notEqual(out.code, 0, new TextDecoder().decode(out.stderr));
    const left = (await ls(backups)).filter((n) => !n.startsWith("."));
    assert.deepEqual(left, [], "the interrupted pull left a backup no pull followed");
    assert.equal(await sqlite3(local, "SELECT sum(amount_cents) FROM payments"), before);
    assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  });
}
