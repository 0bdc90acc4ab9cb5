import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cleanTemps,
  isTempName,
  removeTempDb,
  type TempFileStep,
  tempPathFor,
  withTempFile,
} from "../lib/files/atomic.ts";

/** A scratch folder, removed when disposed. */
async function scratch(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "litekeep-atomic-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

/** 1 MiB that no prefix of, and no other version, equals: a partial write cannot pass for it. */
function content(seed: number): Uint8Array {
  const bytes = new Uint8Array(1 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

const STEPS: Array<TempFileStep | "half-written"> = [
  "named",
  "half-written",
  "written",
  "synced",
  "published",
  "folder-synced",
];

/**
 * Runs withTempFile() in a real process that kills itself with SIGKILL at `step` (as `kill -9`
 * or a crash would: no `finally`, no signal handler), replacing `<dir>/gym.db` by content(2).
 */
async function crashAt(dir: string, step: string): Promise<Deno.CommandStatus> {
  const atomic = JSON.stringify(new URL("../lib/files/atomic.ts", import.meta.url).href);
  const code = `
    import { withTempFile } from ${atomic};
    const [dir, step] = ${JSON.stringify([dir, step])};
    const bytes = new Uint8Array(1 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 2) & 0xff;
    const die = (at) => { if (at === step) Deno.kill(Deno.pid, "SIGKILL"); };
    await withTempFile(dir, "gym.db", async (temp) => {
      using file = await Deno.open(temp, { write: true, createNew: true });
      await file.write(bytes.subarray(0, bytes.length / 2));
      die("half-written");
      let offset = bytes.length / 2;
      while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
    }, { onStep: (at) => die(at) });
    console.log("finished");
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  return out;
}

Deno.test("withTempFile() leaves the old file or the whole new one when killed at any step, and the next run cleans the temp", async (t) => {
  for (const step of STEPS) {
    await t.step(`killed after "${step}"`, async () => {
      await using dir = await scratch();
      const final = join(dir.path, "gym.db");
      await Deno.writeFile(final, content(1));

      const status = await crashAt(dir.path, step);
      assert.equal(status.signal, "SIGKILL", `the writer was not killed at ${step}`);

      const published = step === "published" || step === "folder-synced";
      const expected = content(published ? 2 : 1);
      const now = await Deno.readFile(final);
      assert.ok(
        now.length === expected.length && now.every((b, i) => b === expected[i]),
        `after ${step}: "gym.db" is not the ${published ? "whole new" : "old"} file`,
      );
      // The killed run leaves its temp (or only its marker) behind: the next run removes it,
      // however fresh, because no live process holds its marker.
      const before = await names(dir.path);
      assert.ok(before.some(isTempName), `after ${step}: no leftover, so nothing was tested`);
      // A minute later at the soonest: a marker alone may be younger than its lock.
      await cleanTemps(dir.path, new Date(Date.now() + 61_000));
      assert.deepEqual(await names(dir.path), ["gym.db"]);
    });
  }
});

Deno.test("withTempFile() publishes the synced temp and leaves nothing else behind", async () => {
  await using dir = await scratch();
  const { value, path } = await withTempFile(dir.path, "gym.db", async (temp) => {
    await Deno.writeTextFile(temp, "new");
    return 42;
  });
  assert.equal(value, 42);
  assert.equal(path, join(dir.path, "gym.db"));
  assert.equal(await Deno.readTextFile(path), "new");
  assert.deepEqual(await names(dir.path), ["gym.db"]);
});

Deno.test("withTempFile() removes the temp, its SQLite side files and its marker when fn fails", async () => {
  await using dir = await scratch();
  await assert.rejects(
    withTempFile(dir.path, "gym.db", async (temp) => {
      for (const suffix of ["", "-journal", "-wal", "-shm"]) {
        await Deno.writeTextFile(temp + suffix, "partial");
      }
      throw new Error("disk full");
    }),
    /disk full/,
  );
  assert.deepEqual(await names(dir.path), []);
});

Deno.test("withTempFile() publishes nothing and cleans up when the publish refuses", async () => {
  await using dir = await scratch();
  await Deno.writeTextFile(join(dir.path, "gym.db"), "appeared meanwhile");
  await assert.rejects(
    withTempFile(dir.path, "gym.db", (temp) => Deno.writeTextFile(temp, "new"), {
      publish: () => Promise.reject(new Error("the database appeared")),
    }),
    /the database appeared/,
  );
  assert.deepEqual(await names(dir.path), ["gym.db"]);
  assert.equal(await Deno.readTextFile(join(dir.path, "gym.db")), "appeared meanwhile");
});

Deno.test('withTempFile() with publish "none" only lends the temp to fn', async () => {
  await using dir = await scratch();
  const { path } = await withTempFile(dir.path, "gym.db", async (temp) => {
    await Deno.writeTextFile(temp, "source");
    assert.ok((await names(dir.path)).some((n) => n.endsWith(".alive")), "a marker while alive");
  }, { publish: "none" });
  assert.ok(isTempName(join(path).slice(dir.path.length + 1)));
  assert.deepEqual(await names(dir.path), []);
});

Deno.test("withTempFile() chooses the final name only once fn succeeded", async () => {
  await using dir = await scratch();
  const asked: string[] = [];
  const { path } = await withTempFile(dir.path, "gym_backup.db", async (temp) => {
    asked.push("fn");
    await Deno.writeTextFile(temp, "backup");
  }, {
    publishTo: () => {
      asked.push("name");
      return Promise.resolve(join(dir.path, "gym_backup_20251019_155538.db"));
    },
  });
  assert.deepEqual(asked, ["fn", "name"]);
  assert.equal(await Deno.readTextFile(path), "backup");
});

Deno.test("withTempFile() gives two temps for the same final name in the same second distinct names", async () => {
  await using dir = await scratch();
  const seen: string[] = [];
  await withTempFile(dir.path, "gym.db", async (outer) => {
    seen.push(outer);
    await Deno.writeTextFile(outer, "outer");
    await withTempFile(dir.path, "gym.db", async (inner) => {
      seen.push(inner);
      await Deno.writeTextFile(inner, "inner");
    }, { publish: "none" });
  }, { publish: "none" });
  assert.notEqual(seen[0], seen[1]);
  // Many at once, as a busy folder would see them: every one distinct.
  const many = Array.from({ length: 200 }, () => tempPathFor(dir.path, "gym.db"));
  try {
    assert.equal(new Set(many).size, many.length);
  } finally {
    for (const temp of many) await removeTempDb(temp);
  }
  assert.deepEqual(await names(dir.path), []);
});
