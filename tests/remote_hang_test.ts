/**
 * Found by the second attack round: --remote-timeout bounded silence while reading, but not the
 * wait for the ssh child
 * to exit. (a) A stalled remote that ignores SIGTERM: StalledError, kill() sends SIGTERM only,
 * then remoteFailure() awaits child.finish() forever. (b) A remote that sends the whole valid
 * stream and closes stdout but does not exit (a lingering process holding the session's stderr):
 * fromRemote() awaits child.finish() with no bound at all. Both hold the local lock forever
 * (every later cron pull fails with 75). Expected: the run ends within about --remote-timeout.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { cliCommand, fakeSsh, remoteLitekeep, tempDir } from "./_helpers.ts";

async function pullWithin(script: string, limitMs: number) {
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  const r = new DatabaseSync(remote);
  r.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v)");
  r.exec("INSERT INTO t (v) VALUES (1), (2), (3)");
  r.close();
  const bin = await remoteLitekeep(dir.path);
  const pidFile = join(dir.path, "remote.pid");
  const path = await fakeSsh(join(dir.path, "bin"), `echo $$ > ${pidFile}\n${script}`);
  await Deno.mkdir(join(dir.path, "local"));
  const child = new Deno.Command(Deno.execPath(), {
    args: cliCommand([
      "pull",
      `pi:${remote}`,
      join(dir.path, "local", "local.db"),
      "--remote-bin",
      bin,
      "--remote-timeout",
      "2",
    ]),
    env: { PATH: path },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"hung">((res) => timer = setTimeout(() => res("hung"), limitMs));
  const outcome = await Promise.race([child.status.then((s) => s.code), timedOut]);
  clearTimeout(timer);
  if (outcome === "hung") {
    child.kill("SIGKILL");
    await child.status;
  }
  await child.stderr.cancel().catch(() => {});
  const pid = Number(await Deno.readTextFile(pidFile).catch(() => "0"));
  if (pid > 0) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  return outcome;
}

const SKIP_OPTIONS =
  'while [ $# -gt 0 ]; do [ "$1" = "--" ] && { shift; break; }; shift; done; shift';

Deno.test("pull ends when a stalled remote ignores SIGTERM", async () => {
  const outcome = await pullWithin(
    `trap '' TERM\nprintf 'LITEKEEP 1 {"tool":"litekeep"'\nexec sleep 3600`,
    15_000,
  );
  assert.notEqual(outcome, "hung", "pull with --remote-timeout 2 still ran after 15 s");
});

Deno.test("pull ends when the remote sent everything but does not exit", async () => {
  const outcome = await pullWithin(
    `${SKIP_OPTIONS}\nsh -c "$*"\nexec sleep 3600 >/dev/null`,
    15_000,
  );
  assert.notEqual(outcome, "hung", "pull with --remote-timeout 2 still ran after 15 s");
});
