import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, fakeSsh, ls, tempDir } from "./_helpers.ts";

/**
 * A remote litekeep that sends a protocol-2 snapshot header and the first 64 KiB of a 1 MiB
 * PAGES frame (type 0x11), then trickles on.
 */
const TRICKLE = `printf 'LITEKEEP 2 {"tool":"litekeep","version":"0.1.0","sqlite":"3.50.0",` +
  `"journalMode":"delete","pageSize":4096,"pages":256,"size":1048576,"mode":"snapshot",` +
  `"compress":"none","reader":"pages","fallback":null}\\n'
printf '\\021\\000\\020\\000\\000'
head -c 65536 /dev/zero
# Ends by itself once litekeep is gone: the next write hits a closed pipe.
while head -c 1 /dev/zero; do sleep 0.2; done`;

Deno.test("main.ts removes the temps in flight on SIGTERM, SIGINT and SIGHUP, and exits 128+n", async (t) => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]] as const) {
    await t.step(signal, async () => {
      await using dir = await tempDir();
      const path = await fakeSsh(join(dir.path, "bin"), TRICKLE);
      const local = join(dir.path, "local");
      await Deno.mkdir(local);
      const child = new Deno.Command(Deno.execPath(), {
        args: cliCommand(["pull", "pi:/srv/gym.db", join(local, "gym.db")]),
        env: { PATH: path },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      // Wait (generously: the machine is shared) until the partial copy is there.
      let partial: string[] = [];
      for (let i = 0; i < 600 && partial.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        partial = (await ls(local)).filter((n) => n.startsWith(".litekeep-tmp-"));
      }
      assert.ok(partial.length > 0, "the pull never started writing its temp");

      child.kill(signal);
      const status = await child.status;

      assert.equal(status.code, code, await stderr);
      assert.equal(status.signal, null, "exited by itself, not killed by the signal");
      assert.deepEqual((await ls(local)).filter((n) => n.startsWith(".litekeep-tmp-")), []);
    });
  }
});

Deno.test("main.ts in a folder whose name is not UTF-8: a clear error, exit 2, not a crash", async () => {
  // Deno.cwd() throws there: litekeep died with "Uncaught (in promise) InvalidData" and a
  // stack, however the command line was meant.
  await using dir = await tempDir();
  const quoted = cliCommand(["--version"]).map((w) => `'${w.replaceAll("'", `'\\''`)}'`);
  const out = await new Deno.Command("/bin/sh", {
    args: [
      "-c",
      `d=$(printf 'x\\377y'); mkdir "$d" && cd "$d" && exec '${Deno.execPath()}' ${
        quoted.join(" ")
      }`,
    ],
    cwd: dir.path,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.doesNotMatch(stderr, /Uncaught|at file:/);
  assert.match(stderr, /error: the working folder's name is not valid UTF-8/);
  assert.match(stderr, /hint: run litekeep from another folder/);
});
