import assert from "node:assert/strict";
import { join } from "node:path";
import { OperationError } from "../lib/errors.ts";
import { readHeader, receiveBody, type SnapshotHeader, StreamReader } from "../lib/transfer.ts";
import { tempDir } from "./_helpers.ts";

function streamOf(...parts: Array<string | Uint8Array>): StreamReader {
  const chunks = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  return new StreamReader(ReadableStream.from(chunks));
}

const HEADER: SnapshotHeader = {
  tool: "python3",
  sqlite: "3.40.1",
  journalMode: "wal",
  pageSize: 4096,
  pages: 1,
  size: 5,
  encoding: "raw",
  framing: "chunked",
  tables: [],
};

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const SHA_HELLO = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

Deno.test("readHeader() skips a banner printed by the remote's shell startup", async () => {
  const reader = streamOf(
    "Welcome to Raspberry Pi OS\n\nLast login: today\n",
    `LITEKEEP 1 {"a":1}\n`,
  );
  assert.deepEqual(await readHeader(reader, "pi"), { a: 1 });
});

Deno.test("readHeader() names the host for no answer, garbage, or another protocol", async (t) => {
  const cases: Array<[string, RegExp]> = [
    ["", /Unexpected answer from "pi": nothing/],
    ["bash: litekeep: command not found\n", /Unexpected answer from "pi": "bash: litekeep/],
    ["LITEKEEP 2 {}\n", /"pi" speaks litekeep protocol 2/],
    ["LITEKEEP 1 {not json}\n", /Garbled transfer from "pi"/],
  ];
  for (const [text, pattern] of cases) {
    await t.step(JSON.stringify(text), async () => {
      await assert.rejects(readHeader(streamOf(text), "pi"), (e: Error) => {
        assert.ok(e instanceof OperationError);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }
});

Deno.test("receiveBody() writes chunked, sized and gzip bodies and checks the sha256", async (t) => {
  await using dir = await tempDir();
  const hello = new TextEncoder().encode("hello");
  const gz = await gzip(hello);
  const cases: Array<[string, SnapshotHeader, Array<string | Uint8Array>]> = [
    ["chunked", HEADER, ["3\nhel", "2\nlo0\n", `{"sha256":"${SHA_HELLO}"}\n`]],
    ["sized", { ...HEADER, framing: "sized" }, ["hello", `{"sha256":"${SHA_HELLO}"}\n`]],
    ["gzip", { ...HEADER, encoding: "gzip" }, [
      `${gz.length.toString(16)}\n`,
      gz,
      "0\n",
      `{"sha256":null}\n`,
    ]],
  ];
  for (const [name, header, parts] of cases) {
    await t.step(name, async () => {
      const path = join(dir.path, name);
      {
        using file = await Deno.open(path, { write: true, createNew: true });
        assert.equal(await receiveBody(streamOf(...parts), header, file, "pi"), SHA_HELLO);
      }
      assert.equal(await Deno.readTextFile(path), "hello");
    });
  }
});

Deno.test("receiveBody() fails with the host's name on a bad stream", async (t) => {
  await using dir = await tempDir();
  const gz = await gzip(new TextEncoder().encode("hello"));
  const cases: Array<[string, SnapshotHeader, Array<string | Uint8Array>, RegExp]> = [
    ["cut off", HEADER, ["3\nhel"], /connection to "pi" was lost/],
    ["no trailer", HEADER, ["5\nhello0\n"], /connection to "pi" was lost/],
    [
      "wrong sha256",
      HEADER,
      ["5\nhello0\n", `{"sha256":"${"0".repeat(64)}"}\n`],
      /does not match the remote's sha256/,
    ],
    [
      "short",
      { ...HEADER, size: 6 },
      ["5\nhello0\n", `{"sha256":null}\n`],
      /has 5 bytes, the remote snapshot 6/,
    ],
    ["bad chunk length", HEADER, ["zz\nhello"], /Garbled transfer from "pi"/],
    ["bad trailer", HEADER, ["5\nhello0\n", "{oops\n"], /Garbled transfer from "pi"/],
    [
      "bad gzip",
      { ...HEADER, encoding: "gzip" },
      ["5\nhello0\n", `{"sha256":null}\n`],
      /Garbled (compressed )?transfer from "pi"/,
    ],
    ["gzip cut", { ...HEADER, encoding: "gzip" }, [
      `a\n`,
      gz.subarray(0, 10),
      "0\n",
      `{"sha256":null}\n`,
    ], /Garbled (compressed )?transfer from "pi"/],
  ];
  for (const [name, header, parts, pattern] of cases) {
    await t.step(name, async () => {
      using file = await Deno.open(join(dir.path, name), { write: true, createNew: true });
      await assert.rejects(receiveBody(streamOf(...parts), header, file, "pi"), (e: Error) => {
        assert.ok(e instanceof OperationError, `${e.name}: ${e.message}`);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }
});
