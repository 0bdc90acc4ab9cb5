import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { hashFile } from "../lib/backup_set/checksum.ts";
import { checkDatabaseFile, openReadOnly } from "../lib/engine/sqlite.ts";
import { readAt } from "../lib/engine/db_file.ts";
import { databaseStats } from "../lib/backup_set/stats.ts";
import { localInfo } from "../lib/remote/info.ts";
import { have, makeDb, ROOT, tempDir } from "./_helpers.ts";

/** What another process gets when it tries to take the database out of WAL mode. */
async function otherProcessLeavesWal(db: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: ["-batch", "-cmd", ".timeout 0", db, "PRAGMA journal_mode = DELETE"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  return `${text(out.stdout)} ${text(out.stderr)}`.trim();
}

Deno.test("raw reads of a database keep this process's SQLite locks on it", async (t) => {
  if (!await have("sqlite3")) return;
  // Each runs raw reads of the database or its side files while a read transaction is open.
  const paths: Record<string, (db: string) => Promise<unknown>> = {
    "checkDatabaseFile() header": (db) => checkDatabaseFile(db),
    "databaseStats() header and -wal": (db) => databaseStats(db, 1000),
    "localInfo()": (db) => localInfo(db, {}, 1000),
    "hashFile() of the database": (db) => hashFile(db, "sha256"),
    "hashFile() of the -wal": (db) => hashFile(`${db}-wal`, "sha256"),
  };
  for (const [name, run] of Object.entries(paths)) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { payments: 200 });
      using reader = openReadOnly(db, 1000);
      reader.exec("BEGIN");
      reader.prepare("SELECT count(*) FROM payments").get();
      // Before: the reader's shared lock keeps any other process from leaving WAL mode.
      assert.match(await otherProcessLeavesWal(db), /locked/);
      await run(db);
      // POSIX locks belong to the process: a close of any descriptor of the file would have
      // dropped the reader's, and the other process would delete the -wal under it.
      assert.match(await otherProcessLeavesWal(db), /locked/);
      await Deno.stat(`${db}-wal`);
      reader.exec("COMMIT");
    });
  }
});

Deno.test("openReadOnly() keeps descriptors only while a connection is open", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 50 });
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const before = fds();
  {
    using reader = openReadOnly(db, 1000);
    reader.prepare("SELECT count(*) FROM payments").get();
    await checkDatabaseFile(db);
    await hashFile(db, "sha256");
  }
  // Closed with its last connection: nothing leaks however often this runs.
  assert.equal(fds(), before);
});

Deno.test("raw reads follow a name to the file it shows now: replaced, renamed over, symlink retargeted", async () => {
  await using dir = await tempDir();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const write = (name: string, content: string) =>
    Deno.writeTextFileSync(join(dir.path, name), content);
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 50 });
  write("a.bin", "first a");
  write("b.bin", "second b");
  const link = join(dir.path, "link.bin");
  Deno.symlinkSync(join(dir.path, "a.bin"), link);
  // With and without a connection open (descriptors kept, or opened and closed per read).
  for (const connected of [false, true]) {
    using reader = connected ? openReadOnly(db, 1000) : undefined;
    reader?.prepare("SELECT count(*) FROM payments").get();
    assert.equal(text(readAt(link, 0, 100)), "first a");
    Deno.removeSync(link);
    Deno.symlinkSync(join(dir.path, "b.bin"), link);
    assert.equal(text(readAt(link, 0, 100)), "second b", "the retargeted symlink");
    Deno.removeSync(link);
    Deno.symlinkSync(join(dir.path, "a.bin"), link);
    assert.equal(text(readAt(link, 0, 100)), "first a", "retargeted back");
    // A file renamed over the name: the new inode is read, not a kept descriptor of the old.
    const plain = join(dir.path, "plain.bin");
    write("plain.bin", "old file");
    assert.equal(text(readAt(plain, 0, 100)), "old file");
    write("new.bin", "new file");
    Deno.renameSync(join(dir.path, "new.bin"), plain);
    assert.equal(text(readAt(plain, 0, 100)), "new file", "the file renamed over it");
    // A plain name replaced by a symlink to another file.
    Deno.removeSync(plain);
    Deno.symlinkSync(join(dir.path, "b.bin"), plain);
    assert.equal(text(readAt(plain, 0, 100)), "second b", "the name now a symlink");
    Deno.removeSync(plain);
  }
});

/**
 * Raw file calls that may touch a database file (the database, -wal, -shm, -journal, a backup
 * or a snapshot) belong in lib/engine/db_file.ts. Each other one is listed here with why it is safe.
 */
const ALLOWED: Record<string, { count: number; why: string }> = {
  "lib/files/atomic.ts": {
    count: 6,
    why: "syncs temps and folders, writes sidecars, and holds the temps' .alive markers: " +
      "no connection is open on any of them",
  },
  "lib/cli/config.ts": { count: 1, why: "reads the config file" },
  "lib/files/lock.ts": { count: 2, why: "lock files, never databases" },
  "lib/backup_set/names.ts": {
    count: 1,
    why: "readSmallFile() reads sidecars and the set manifest, never a database",
  },
  "lib/remote/fetch.ts": {
    count: 2,
    why: "writes pull's private temp as it arrives, and empties it for the delta fallback, " +
      "before any connection opens it",
  },
  "lib/remote/fetch2.ts": {
    count: 1,
    why: "writes pull's private temp (protocol 2) as pages arrive; no connection is open on it",
  },
  "lib/remote/protocol.ts": {
    count: 2,
    why: "hashes pages of and writes a delta into pull's private temp copy; no connection is " +
      "open on it in this process",
  },
  "lib/engine/snapshot.ts": {
    count: 2,
    why: "creates the empty snapshot temp with the source's mode and flushes it while the " +
      "backup API writes it, closing it only after",
  },
  "lib/engine/view.ts": {
    count: 1,
    why: "probes a folder for read-only media with a new temp name, never a database",
  },
  "lib/engine/publish.ts": {
    count: 1,
    why: "publishNew() creates a missing database exclusively, before any connection opens it",
  },
};

Deno.test("lib/ opens database files only through db_file.ts", async () => {
  const raw =
    /\bDeno\.(open|openSync|readFile|readFileSync|readTextFile|readTextFileSync|copyFile|copyFileSync|truncate|truncateSync|writeFile|writeFileSync)\(|\bfrom "node:fs(\/promises)?"|\bnew DatabaseSync\(/g;
  const found: Record<string, string[]> = {};
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(path);
        const hits = [...text.matchAll(raw)].map((m) => m[0])
          // statfs reads no file; sqlite.ts is where connections are opened and registered.
          .filter((hit) => !hit.startsWith('from "node:fs"') || !/statfsSync/.test(text))
          .filter((hit) => hit !== "new DatabaseSync(" || !path.endsWith("lib/engine/sqlite.ts"));
        if (hits.length) found[relative(ROOT, path)] = hits;
      }
    }
  };
  await walk(join(ROOT, "lib"));
  delete found["lib/engine/db_file.ts"];
  const unexpected = Object.entries(found).filter(([file, hits]) =>
    hits.length !== (ALLOWED[file]?.count ?? 0)
  );
  assert.deepEqual(
    unexpected,
    [],
    "raw file access outside lib/engine/db_file.ts: route it through db_file.ts, or list it in " +
      "ALLOWED with why it can never close a descriptor of a database that has a connection open",
  );
});
