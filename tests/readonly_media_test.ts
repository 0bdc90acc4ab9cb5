import assert from "node:assert/strict";
import { join } from "node:path";
import { count, ls, makeDb, spawnCli, sqlite3, tempDir } from "./_helpers.ts";

/** A read-only bind mount of `from` at `to` (as a user mounts a card or a snapshot). */
async function bindReadOnly(from: string, to: string): Promise<AsyncDisposable> {
  await Deno.mkdir(to, { recursive: true });
  const out = await new Deno.Command("mount", { args: ["--bind", "-o", "ro", from, to] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return {
    [Symbol.asyncDispose]: async () => {
      await new Deno.Command("umount", { args: [to] }).output();
    },
  };
}

/** Rows only in the -wal, as an application killed before its checkpoint leaves them. */
async function killedWriter(db: string): Promise<void> {
  await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, os, signal
c = sqlite3.connect(${JSON.stringify(db)}, isolation_level=None)
c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("INSERT INTO members (name, joined_at) VALUES ('only-in-wal', '2025-10-20')")
os.kill(os.getpid(), signal.SIGKILL)`,
    ],
  }).output();
}

Deno.test("backup of a WAL database on read-only media works, with or without its -wal", async (t) => {
  // Found by the new-user trial: "the file cannot be opened", exit 1, no hint (SQLite needs a
  // -shm it can write beside a WAL database).
  for (const withWal of [false, true]) {
    await t.step(
      withWal ? "a -wal left by a killed app" : "checkpointed, no side files",
      async () => {
        await using dir = await tempDir();
        const folder = join(dir.path, "app");
        // On the machine's own file system (on tmpfs SQLite happened to cope without a -shm).
        await Deno.mkdir(folder);
        const made = join(folder, "app.db");
        makeDb(made, { wal: true, payments: 300 });
        // Counted by the sqlite3 CLI, whose close (read-write, the last connection) removes the
        // -wal and -shm, as the application's own close does.
        const members = Number(await sqlite3(made, "SELECT count(*) FROM members")) +
          (withWal ? 1 : 0);
        assert.deepEqual(await ls(folder), ["app.db"]);
        if (withWal) {
          await killedWriter(made);
          assert.ok((await ls(folder)).includes("app.db-wal"));
        }
        const media = join(dir.path, "media");
        await using _ro = await bindReadOnly(folder, media);
        const db = join(media, "app.db");
        const backups = join(dir.path, "backups");
        // A real process: in this one SQLite already knows the file from makeDb().
        const res = await spawnCli(["backup", db, "--backup-dir", backups, "--json"]);
        assert.equal(res.code, 0, res.stderr);
        const file = JSON.parse(res.stdout).file as string;
        // No write lock can be taken there: the backup API copies a view, and the run says so.
        assert.equal(JSON.parse(res.stdout).snapshot.method, "backup-api");
        assert.equal(JSON.parse(res.stdout).snapshot.fallback.reason, "read-only-media");
        assert.equal(await sqlite3(file, "PRAGMA integrity_check"), "ok");
        assert.equal(count(file, "payments"), 300);
        assert.equal(count(file, "members"), members, "the -wal's rows are in it");
      },
    );
  }
});

Deno.test("backup of a rollback-journal database on read-only media goes through the page reader", async () => {
  await using dir = await tempDir();
  const folder = join(dir.path, "app");
  await Deno.mkdir(folder);
  makeDb(join(folder, "app.db"), { wal: false, payments: 300 });
  const media = join(dir.path, "media");
  await using _ro = await bindReadOnly(folder, media);
  const db = join(media, "app.db");
  const res = await spawnCli([
    "backup",
    db,
    "--backup-dir",
    join(dir.path, "backups"),
    "--json",
    "--verbose",
  ]);
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  // Its shared lock is all the page reader needs there (no -shm, no write).
  assert.deepEqual(out.snapshot, { method: "pages", fallback: null });
  assert.match(res.stderr, /debug: snapshot: copied by the page reader/);
  assert.equal(await sqlite3(out.file, "PRAGMA integrity_check"), "ok");
  assert.equal(count(out.file, "payments"), 300);
  assert.deepEqual(await ls(folder), ["app.db"]);
});
