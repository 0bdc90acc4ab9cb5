import assert from "node:assert/strict";
import { join } from "node:path";
import { StalledError, StreamReader } from "../lib/remote/stream.ts";
import { pullDatabase } from "../lib/remote/pull.ts";
import { fakeSsh, ls, spawnCli, tempDir } from "./_helpers.ts";

Deno.test("StreamReader fails with StalledError when nothing arrives within the idle timeout", async () => {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  // Not awaited: a TransformStream's write resolves only once the chunk is read.
  const written = writer.write(new TextEncoder().encode("first line\n"));
  const reader = new StreamReader(readable, { idleTimeoutMs: 300, host: "pi" });
  assert.equal(await reader.line(), "first line");
  await written;
  const started = performance.now();
  await assert.rejects(() => reader.line(), (error: unknown) => {
    assert.ok(error instanceof StalledError);
    assert.match(error.message, /"pi" sent nothing for 0 s/);
    return true;
  });
  assert.ok(performance.now() - started < 10_000);
  await reader.cancel();
  await writer.close().catch(() => {});
});

/**
 * A remote litekeep that sends a valid protocol-2 header and part of a PAGES frame (type 0x11,
 * 16 records of 4100 bytes announced), then stops sending.
 */
const STALLS = `printf 'LITEKEEP 2 {"tool":"litekeep","version":"0.1.0","sqlite":"3.50.0",` +
  `"journalMode":"delete","pageSize":4096,"pages":256,"size":1048576,"mode":"snapshot",` +
  `"compress":"none","reader":"pages","fallback":null}\\n'
printf '\\021\\000\\001\\000\\100'
head -c 65536 /dev/zero
# As the real dispatcher and ssh do: say which tool runs; exit 255 when killed.
echo 'LITEKEEP-TOOL litekeep' >&2
trap 'exit 255' TERM
sleep 3600 &
wait`;

Deno.test("pullDatabase() gives up on a remote that stops sending, and leaves no temp", async () => {
  await using dir = await tempDir();
  const path = await fakeSsh(join(dir.path, "bin"), STALLS);
  const local = join(dir.path, "local");
  await Deno.mkdir(local);
  const saved = Deno.env.get("PATH");
  Deno.env.set("PATH", path);
  try {
    const started = performance.now();
    await assert.rejects(
      () =>
        pullDatabase({
          source: { host: "pi", path: "/srv/gym.db" },
          localDb: join(local, "gym.db"),
          method: "snapshot",
          remote: { ssh: {}, idleTimeoutMs: 1500 },
          now: new Date(),
        }),
      (error: unknown) => {
        assert.ok(error instanceof StalledError, String(error));
        return true;
      },
    );
    // Ended by the idle timeout, not by the remote's hour of sleep.
    assert.ok(performance.now() - started < 30_000);
  } finally {
    if (saved === undefined) Deno.env.delete("PATH");
    else Deno.env.set("PATH", saved);
  }
  assert.deepEqual((await ls(local)).filter((n) => n.startsWith(".litekeep-tmp-")), []);
});

Deno.test("pull --remote-timeout ends a pull whose remote stops sending, exit 1 with the remedy", async () => {
  await using dir = await tempDir();
  const path = await fakeSsh(join(dir.path, "bin"), STALLS);
  const local = join(dir.path, "local");
  await Deno.mkdir(local);
  const res = await spawnCli(
    ["pull", "pi:/srv/gym.db", join(local, "gym.db"), "--remote-timeout", "2"],
    { env: { PATH: path } },
  );
  assert.equal(res.code, 1, res.stderr);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /error: "pi" sent nothing for 2 s: the remote side is stuck/);
  assert.doesNotMatch(res.stderr, /Cannot reach|LITEKEEP-TOOL/);
  assert.match(res.stderr, /hint: the local database was not changed; .*--remote-timeout/);
  assert.deepEqual((await ls(local)).filter((n) => n.startsWith(".litekeep-tmp-")), []);
});
