/**
 * `litekeep pull` in protocol 2 against a broken or hostile remote agent (a script in place of
 * the remote litekeep, behind a real sshd): the local side must refuse with a clear error, leave
 * the local database as it was, and never allocate what a header merely claims.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ls, makeDb, pull, ROOT, startSshd, tempDir } from "./_helpers.ts";

/**
 * The hostile agent: reads the REQUEST (and BLOCK_HASHES), then answers as `scenario` says.
 * It speaks the frames of protocol2.ts with that module's own encoders.
 */
const AGENT = `
import { encodeFrame, FRAME, headerLine, jsonFrame, readFrame } from "${ROOT}lib/remote/protocol2.ts";
import { StreamReader } from "${ROOT}lib/remote/stream.ts";

const input = new StreamReader(Deno.stdin.readable);
const req = await readFrame(input, [FRAME.REQUEST], "local");
const request = JSON.parse(new TextDecoder().decode(req!.payload));
if (request.mode === "delta") await readFrame(input, [FRAME.BLOCK_HASHES], "local");
const out = Deno.stdout.writable.getWriter();
const pageSize = request.pageSize ?? 4096;
const header = (pages: number) => headerLine({
  tool: "litekeep", version: "0", sqlite: "3", journalMode: "wal", pageSize, pages,
  size: pages * pageSize, mode: "delta", compress: "none", reader: "pages", fallback: null,
});
const SCENARIO = await Deno.readTextFile(new URL("./scenario", import.meta.url));
if (SCENARIO === "lie-unchanged") {
  await out.write(header(request.pageCount));
  await out.write(jsonFrame(FRAME.TRAILER, {
    sha256: null, contentSha256: "0".repeat(64), unchanged: true, pagesSent: 0, tables: [],
  }));
} else if (SCENARIO === "delta-other-page-size") {
  // A delta in 512-byte pages against a local copy of larger ones: the local pages cannot be
  // spliced into it.
  const pages = request.pageCount * (pageSize / 512);
  await out.write(headerLine({
    tool: "litekeep", version: "0", sqlite: "3", journalMode: "wal", pageSize: 512, pages,
    size: pages * 512, mode: "delta", compress: "none", reader: "pages", fallback: null,
  }));
  await out.write(encodeFrame(FRAME.DIFF, new Uint8Array(0)));
  await readFrame(input, [FRAME.WANT], "local").catch(() => undefined);
  await out.write(jsonFrame(FRAME.TRAILER, {
    sha256: "0".repeat(64), contentSha256: "0".repeat(64), unchanged: false, pagesSent: 0,
    tables: [],
  }));
} else if (SCENARIO === "huge-pages") {
  await out.write(header(0xfffffffe));
  await out.write(encodeFrame(FRAME.DIFF, new Uint8Array(0)));
  await readFrame(input, [FRAME.WANT], "local").catch(() => undefined);
}
await out.close();
`;

async function hostileAgent(dir: string, scenario: string): Promise<string> {
  const script = join(dir, "agent.ts");
  await Deno.writeTextFile(script, AGENT);
  await Deno.writeTextFile(join(dir, "scenario"), scenario);
  const bin = join(dir, "litekeep");
  await Deno.writeTextFile(
    bin,
    `#!/bin/sh\nexec ${Deno.execPath()} run --quiet -A ${script} "$@"\n`,
  );
  await Deno.chmod(bin, 0o755);
  return bin;
}

for (
  const [scenario, message] of [
    ["lie-unchanged", /content hash/],
    ["huge-pages", /pages/],
    ["delta-other-page-size", /page size/],
  ] as const
) {
  Deno.test(`pull in protocol 2 refuses a remote agent that answers ${scenario}`, async () => {
    await using sshd = await startSshd();
    await using dir = await tempDir();
    const remote = join(dir.path, "remote.db");
    makeDb(remote, { payments: 500 });
    const local = join(dir.path, "local.db");
    makeDb(local, { payments: 20_000 });
    const before = await Deno.readFile(local);
    const bin = await hostileAgent(dir.path, scenario);
    const res = await pull(sshd, remote, local, "--remote-bin", bin, "--json");
    assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stderr, message);
    assert.match(res.stderr, /testpi/);
    assert.deepEqual(await Deno.readFile(local), before);
    assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp")), []);
  });
}
