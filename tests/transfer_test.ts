import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { OperationError } from "../lib/errors.ts";
import { checkInfoHeader, type DbInfo, type SnapshotHeader } from "../lib/remote/headers.ts";
import { readHeader, receiveBody, receiveDelta } from "../lib/remote/protocol.ts";
import { StreamReader } from "../lib/remote/stream.ts";
import { tempDir } from "./_helpers.ts";

function streamOf(...parts: Array<string | Uint8Array>): StreamReader {
  const chunks = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  return new StreamReader(ReadableStream.from(chunks));
}

const HEADER: SnapshotHeader = {
  tool: "python3",
  sqlite: "3.40.1",
  journalMode: "wal",
  pageSize: 512,
  pages: 1,
  size: 512,
  encoding: "raw",
  framing: "chunked",
  tables: [],
};

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** One 512-byte page: a snapshot is always whole pages. */
const HELLO = "hello".padEnd(512, "!");
const SHA_HELLO = createHash("sha256").update(HELLO).digest("hex");

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
  const hello = new TextEncoder().encode(HELLO);
  const gz = await gzip(hello);
  const cases: Array<[string, SnapshotHeader, Array<string | Uint8Array>]> = [
    ["chunked", HEADER, ["3\nhel", `1fd\n${HELLO.slice(3)}0\n`, `{"sha256":"${SHA_HELLO}"}\n`]],
    ["sized", { ...HEADER, framing: "sized" }, [HELLO, `{"sha256":"${SHA_HELLO}"}\n`]],
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
      assert.equal(await Deno.readTextFile(path), HELLO);
    });
  }
});

Deno.test("receiveBody() fails with the host's name on a bad stream", async (t) => {
  await using dir = await tempDir();
  const gz = await gzip(new TextEncoder().encode(HELLO));
  const page = `200\n${HELLO}0\n`;
  const cases: Array<[string, SnapshotHeader, Array<string | Uint8Array>, RegExp]> = [
    ["cut off", HEADER, ["3\nhel"], /connection to "pi" was lost/],
    ["no trailer", HEADER, [page], /connection to "pi" was lost/],
    [
      "wrong sha256",
      HEADER,
      [page, `{"sha256":"${"0".repeat(64)}"}\n`],
      /does not match the remote's sha256/,
    ],
    [
      "short",
      { ...HEADER, pages: 2, size: 1024 },
      [page, `{"sha256":null}\n`],
      /has 512 bytes, the remote snapshot 1024/,
    ],
    ["bad chunk length", HEADER, ["zz\nhello"], /Garbled transfer from "pi"/],
    ["bad trailer", HEADER, [page, "{oops\n"], /Garbled transfer from "pi"/],
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

/** Fails the test instead of hanging it: a spinning receive loop must not pass unnoticed. */
async function bounded<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms: a hang`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function assertMalformed(pattern: RegExp = /malformed/) {
  return (e: Error) => {
    assert.ok(e instanceof OperationError, `${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(e.hint, "an OperationError for the user carries a hint");
    return true;
  };
}

const DELTA: SnapshotHeader = {
  ...HEADER,
  pageSize: 512,
  pages: 2,
  size: 1024,
  delta: true,
};

/** A delta record: 4-byte big-endian page number, then the page. */
function record(pageNo: number, pageSize = 512, fill = 0x61): Uint8Array {
  const out = new Uint8Array(4 + pageSize).fill(fill);
  new DataView(out.buffer).setUint32(0, pageNo);
  return out;
}

function chunk(data: Uint8Array): Uint8Array[] {
  return [new TextEncoder().encode(`${data.length.toString(16)}\n`), data];
}

Deno.test("receiveDelta() fails, never hangs, on nonsense header fields", async (t) => {
  await using dir = await tempDir();
  const cases: Array<[string, Record<string, unknown>]> = [
    ["pageSize -4", { pageSize: -4 }],
    ["pageSize 0", { pageSize: 0 }],
    ["pageSize 1000", { pageSize: 1000, size: 2000 }],
    ["pageSize 131072", { pageSize: 131072, size: 262144 }],
    ["pageSize as text", { pageSize: "512" }],
    ["pages -1", { pages: -1 }],
    ["pages 1.5", { pages: 1.5 }],
    ["pages huge", { pages: 2 ** 40, size: 512 * 2 ** 40 }],
    ["size negative", { size: -1024 }],
    ["size not pages * pageSize", { size: 1000 }],
    ["size as text", { size: "1024" }],
    ["tool unknown", { tool: "evil" }],
    ["encoding unknown", { encoding: "zip" }],
    ["framing unknown", { framing: "lines" }],
    ["sized and gzip", { framing: "sized", encoding: "gzip" }],
    ["tables not a list", { tables: {} }],
    ["table without a name", { tables: [{ rows: 1, newest: null }] }],
    ["table rows negative", { tables: [{ name: "t", rows: -1, newest: null }] }],
    ["table newest an object", { tables: [{ name: "t", rows: 1, newest: {} }] }],
    ["not a delta", { delta: false }],
  ];
  for (const [name, change] of cases) {
    await t.step(name, async () => {
      const path = join(dir.path, name);
      await Deno.writeFile(path, new Uint8Array());
      const header = { ...DELTA, ...change } as SnapshotHeader;
      const stream = streamOf(...chunk(record(1)), "0\n", `{"sha256":"${"0".repeat(64)}"}\n`);
      await bounded(assert.rejects(receiveDelta(stream, header, path, "pi"), assertMalformed()));
    });
  }
});

Deno.test("receiveDelta() fails, never hangs, on hostile records and trailers", async (t) => {
  await using dir = await tempDir();
  const sha = "0".repeat(64);
  const trailer = `{"sha256":"${sha}"}\n`;
  const cases: Array<[string, Array<string | Uint8Array>, RegExp]> = [
    ["page number 0", [...chunk(record(0)), "0\n", trailer], /malformed/],
    ["page number past the end", [...chunk(record(3)), "0\n", trailer], /malformed/],
    ["page number 2^32-1", [...chunk(record(0xffffffff)), "0\n", trailer], /malformed/],
    ["more records than pages", [
      ...chunk(record(1)),
      ...chunk(record(2)),
      ...chunk(record(1)),
      "0\n",
      trailer,
    ], /malformed/],
    ["a cut record", [...chunk(record(1).subarray(0, 100)), "0\n", trailer], /malformed|Garbled/],
    ["a chunk length that never ends", ["f".repeat(100_000)], /malformed|Garbled/],
    ["a 20 MB trailer", ["0\n", "{" + " ".repeat(20 << 20)], /malformed/],
    ["sha256 not hex", ["0\n", `{"sha256":"${"z".repeat(64)}"}\n`], /malformed/],
    ["sha256 a number", ["0\n", `{"sha256":5}\n`], /malformed/],
    ["data after the trailer", ["0\n", trailer, "more\n"], /malformed/],
  ];
  for (const [name, parts, pattern] of cases) {
    await t.step(name, async () => {
      const path = join(dir.path, name);
      await Deno.writeFile(path, new Uint8Array(1024));
      await bounded(
        assert.rejects(
          receiveDelta(streamOf(...parts), DELTA, path, "pi"),
          assertMalformed(pattern),
        ),
      );
    });
  }
});

Deno.test("receiveBody() refuses more bytes than announced, a bad trailer, and data after the end", async (t) => {
  await using dir = await tempDir();
  const cases: Array<[string, Array<string | Uint8Array>]> = [
    ["more bytes than the size", [`200\n${HELLO}`, `200\n${HELLO}`, "0\n", `{"sha256":null}\n`]],
    ["sized, data after the trailer", [`${HELLO}{"sha256":"${SHA_HELLO}"}\nextra`]],
    ["trailer not an object", [`200\n${HELLO}0\n`, `[1]\n`]],
    ["a 20 MB trailer", [`200\n${HELLO}0\n`, "{" + " ".repeat(20 << 20)]],
  ];
  for (const [name, parts] of cases) {
    await t.step(name, async () => {
      using file = await Deno.open(join(dir.path, name), { write: true, createNew: true });
      const header = name.startsWith("sized") ? { ...HEADER, framing: "sized" as const } : HEADER;
      await bounded(
        assert.rejects(receiveBody(streamOf(...parts), header, file, "pi"), assertMalformed()),
      );
    });
  }
});

Deno.test("readHeader() turns a 20 MB header line into an OperationError with a hint", async () => {
  const line = `LITEKEEP 1 {"tool":"${"a".repeat(20 << 20)}"}\n`;
  await bounded(
    assert.rejects(
      readHeader(streamOf(line), "pi"),
      assertMalformed(/"pi" sent a malformed header/),
    ),
  );
});

Deno.test("checkInfoHeader() refuses nonsense in an info header", async (t) => {
  const good: DbInfo = {
    tool: "python3",
    sqlite: "3.40.1",
    path: "/x.db",
    size: 8192,
    mtime: 1700000000.5,
    journalMode: "wal",
    pageSize: 4096,
    pageCount: 2,
    walSize: null,
    freeBytes: 1 << 30,
    tables: [{ name: "t", rows: 3, newest: "3" }],
  };
  assert.deepEqual(checkInfoHeader(good, "pi"), good);
  const cases: Array<[string, Record<string, unknown>]> = [
    ["tool unknown", { tool: "rm" }],
    ["pageSize -4", { pageSize: -4 }],
    ["pageCount negative", { pageCount: -1 }],
    ["size a string", { size: "8192" }],
    ["mtime missing", { mtime: undefined }],
    ["walSize negative", { walSize: -5 }],
    ["freeBytes text", { freeBytes: "lots" }],
    ["tables missing", { tables: undefined }],
    ["table rows fractional", { tables: [{ name: "t", rows: 1.5, newest: null }] }],
  ];
  for (const [name, change] of cases) {
    await t.step(name, () => {
      assert.throws(() => checkInfoHeader({ ...good, ...change }, "pi"), assertMalformed());
    });
  }
});
