/**
 * `litekeep pull` in protocol 2 (litekeep to litekeep, lib/remote/protocol2.ts) against a real
 * sshd: equal to the source, deltas, unchanged pulls that touch nothing, a busy remote writer, a
 * cut connection, and remotes that speak only protocol 1 (or neither).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  BLOCK_PAGES,
  Diff,
  DIFF_PIECE_BYTES,
  ImageHashes,
  wantedPages,
} from "../lib/remote/protocol2.ts";
import {
  assertWriterInstant,
  count,
  ls,
  makeDb,
  pull,
  remoteLitekeep,
  sha256Of,
  sqlite3,
  startSshd,
  startWriter,
  tempDir,
} from "./_helpers.ts";

const TABLES = ["lockers", "members", "payments", "rentals"];

/** Row counts of every gym table, read by the sqlite3 CLI. */
async function counts(db: string): Promise<string> {
  return await sqlite3(db, TABLES.map((t) => `SELECT '${t}', count(*) FROM ${t};`).join(" "));
}

/** Changes rows in every table of a gym database, and adds some. */
function changeEverywhere(db: string, round: number): void {
  const app = new DatabaseSync(db);
  app.exec("BEGIN");
  app.exec(`UPDATE members SET phone = 'p${round}' WHERE id % 50 = ${round % 50}`);
  app.exec(`UPDATE lockers SET zone = 'z${round}' WHERE id % 10 = ${round % 10}`);
  app.exec(`UPDATE rentals SET ends_at = 'e${round}' WHERE id % 10 = ${round % 10}`);
  app.exec(`UPDATE payments SET method = 'm${round}' WHERE id % 997 = ${round}`);
  for (let i = 0; i < 50; i++) {
    app.exec(`INSERT INTO payments VALUES (NULL, 3, ${i}, '2031-01-01', 'card', 'r${round}')`);
  }
  app.exec("COMMIT");
  app.close();
}

Deno.test("pull in protocol 2 copies, then sends only changed pages, and equals the source", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 30_000, noteBytes: 100 });
  const bin = await remoteLitekeep(dir.path);
  const tmp = join(dir.path, "remote-tmp");
  await Deno.mkdir(tmp);
  const local = join(dir.path, "local.db");
  const args = ["--remote-bin", bin, "--remote-tmp", tmp, "--json"];
  const first = await pull(sshd, remote, local, ...args);
  assert.equal(first.code, 0, first.stderr);
  let out = JSON.parse(first.stdout);
  assert.deepEqual([out.protocol, out.method, out.compress, out.unchanged], [
    2,
    "snapshot",
    "zstd",
    false,
  ]);
  assert.equal(
    out.sha256,
    await sha256Of(local),
    "the copy is the remote's snapshot, byte for byte",
  );
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.equal(await counts(local), await counts(remote));
  for (const round of [1, 2]) {
    changeEverywhere(remote, round);
    const res = await pull(sshd, remote, local, ...args);
    assert.equal(res.code, 0, res.stderr);
    out = JSON.parse(res.stdout);
    assert.equal(out.method, "delta");
    assert.ok(
      out.pagesSent > 1 && out.pagesSent < out.pages / 4,
      `${out.pagesSent} of ${out.pages}`,
    );
    assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
    assert.equal(await counts(local), await counts(remote));
    assert.equal(
      await sqlite3(local, `SELECT count(*) FROM payments WHERE note = 'r${round}'`),
      "50",
    );
    assert.equal(
      await sqlite3(local, "SELECT phone FROM members WHERE id = 50 + " + round),
      `p${round}`,
    );
    // The local file is written through SQLite (WAL): its content is the remote's snapshot.
    assert.equal(out.localBackup !== null, true);
  }
  // --method snapshot is still the whole database, in protocol 2.
  const whole = await pull(
    sshd,
    remote,
    local,
    ...args,
    "--method",
    "snapshot",
    "--compress",
    "gzip",
  );
  assert.equal(whole.code, 0, whole.stderr);
  out = JSON.parse(whole.stdout);
  assert.deepEqual([out.method, out.compress, out.pagesSent], ["snapshot", "gzip", null]);
  // The agent wrote no temporary file on the remote.
  assert.deepEqual(await ls(tmp), []);
});

Deno.test("pull in protocol 2 after a change in every block: a DIFF of several pieces, the source's copy", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  // 512-byte pages: ~20,000 pages in ~160 blocks, so a change in every block makes a DIFF of
  // ~160 KiB, written in several pieces (DIFF_PIECE_BYTES), blocks straddling two.
  makeDb(remote, { payments: 60_000, noteBytes: 60, pageSize: 512 });
  const bin = await remoteLitekeep(dir.path);
  const local = join(dir.path, "local.db");
  const args = ["--remote-bin", bin, "--json"];
  const first = await pull(sshd, remote, local, ...args);
  assert.equal(first.code, 0, first.stderr);
  // The images before and after the change, read whole (no connection is open: the WAL was
  // checkpointed into the file when the last one closed).
  const hashesOf = (image: Uint8Array) => {
    const hashes = new ImageHashes(image.length / 512);
    for (let p = 1; p <= hashes.pageCount; p++) {
      hashes.add(p, image.subarray((p - 1) * 512, p * 512));
    }
    return hashes;
  };
  const before = hashesOf(await Deno.readFile(remote));
  const app = new DatabaseSync(remote);
  app.exec("BEGIN");
  app.exec("UPDATE payments SET method = 'every block' WHERE id % 7 = 0");
  for (let i = 0; i < 500; i++) {
    app.exec(`INSERT INTO payments VALUES (NULL, 3, ${i}, '2031-01-01', 'card', 'past the end')`);
  }
  app.exec("COMMIT");
  app.close();
  const after = hashesOf(await Deno.readFile(remote));
  assert.equal(await sqlite3(remote, "PRAGMA page_size"), "512");
  assert.ok(after.pageCount > before.pageCount, "the change grew the database");
  // The DIFF the agent must send, computed here from both images.
  const diff = new Diff(after.pageHashes, before.blockHashes(), BLOCK_PAGES);
  assert.ok(diff.length > 2 * DIFF_PIECE_BYTES, `a DIFF of ${diff.length} bytes`);
  assert.equal(diff.blocks.length, Math.ceil(after.pageCount / BLOCK_PAGES), "every block");
  const res = await pull(sshd, remote, local, ...args);
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.method, "delta");
  // Exactly the pages that DIFF leads the local side to ask for: page 1, the changed ones, and
  // every page past the old end.
  const want = wantedPages(diff.bytes(), before.pageHashes, after.pageCount, BLOCK_PAGES, "pi");
  assert.equal(out.pagesSent, want.length);
  assert.ok(out.pagesSent < out.pages, `${out.pagesSent} of ${out.pages}`);
  // The copy holds the remote's rows, every one of them (its file is written through SQLite:
  // the pull itself proved its image's sha256 against the trailer's).
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.equal(await counts(local), await counts(remote));
  assert.equal(await sqlite3(local, ".dump payments"), await sqlite3(remote, ".dump payments"));
});

Deno.test("pull when nothing changed writes nothing: local file, -wal and backups untouched", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 20_000 });
  const bin = await remoteLitekeep(dir.path);
  const local = join(dir.path, "local.db");
  const first = await pull(sshd, remote, local, "--remote-bin", bin);
  assert.equal(first.code, 0, first.stderr);
  changeEverywhere(remote, 1);
  // A second pull writes into the existing local database (WAL) and backs it up.
  const second = await pull(sshd, remote, local, "--remote-bin", bin);
  assert.equal(second.code, 0, second.stderr);
  const backups = join(dir.path, "backups");
  const stat = async (p: string) => {
    const s = await Deno.stat(p).catch(() => null);
    return s && { ino: s.ino, mtime: s.mtime?.getTime(), size: s.size };
  };
  const before = {
    db: await stat(local),
    wal: await stat(`${local}-wal`),
    backups: await ls(backups),
    folder: (await ls(dir.path)).sort(),
  };
  assert.ok(before.backups.length > 0);
  const res = await pull(sshd, remote, local, "--remote-bin", bin);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /: unchanged\n/);
  assert.match(res.stdout, /nothing was written, backed up or checked again/);
  const json = await pull(sshd, remote, local, "--remote-bin", bin, "--json");
  const out = JSON.parse(json.stdout);
  assert.deepEqual([out.unchanged, out.pagesSent, out.localBackup, out.integrity], [
    true,
    0,
    null,
    "skipped",
  ]);
  assert.deepEqual({
    db: await stat(local),
    wal: await stat(`${local}-wal`),
    backups: await ls(backups),
    folder: (await ls(dir.path)).sort(),
  }, before);
  assert.equal(await counts(local), await counts(remote));
});

Deno.test("pull in protocol 2 under a 300 commits/s remote writer: every copy is one instant", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 50_000, noteBytes: 100 });
  const bin = await remoteLitekeep(dir.path);
  await using writer = await startWriter(remote, dir.path, 300);
  const local = join(dir.path, "local.db");
  for (let i = 0; i < 4; i++) {
    const before = count(remote, "ledger");
    const res = await pull(sshd, remote, local, "--remote-bin", bin, "--json");
    const after = count(remote, "ledger");
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).method, i === 0 ? "snapshot" : "delta");
    await assertWriterInstant(local, before, after);
  }
  const report = await writer.stop();
  assert.ok(report.commits > 50, `the writer committed only ${report.commits} times`);
});

Deno.test("pull in protocol 2 cut off mid-stream leaves the local database, and no remote temp", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  // Uncompressed and large, so the transfer lasts long enough to be cut.
  makeDb(remote, { payments: 200_000, noteBytes: 200 });
  const tmp = join(dir.path, "remote-tmp");
  await Deno.mkdir(tmp);
  const bin = await remoteLitekeep(dir.path);
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 7 });
  const before = await Deno.readFile(local);
  const pulling = pull(
    sshd,
    remote,
    local,
    "--remote-bin",
    bin,
    "--remote-tmp",
    tmp,
    "--compress",
    "none",
  );
  for (let i = 0;; i++) {
    const temp = (await ls(dir.path)).find((n) =>
      n.startsWith(".litekeep-tmp-") && n.endsWith("local.db")
    );
    if (temp && (await Deno.stat(join(dir.path, temp)).catch(() => ({ size: 0 }))).size > 1 << 20) {
      break;
    }
    assert.ok(i < 6000, "the transfer never started");
    await new Promise((r) => setTimeout(r, 5));
  }
  const sessions = await new Deno.Command("pgrep", {
    args: ["-P", String(sshd.pid)],
    stdout: "piped",
  }).output();
  const pids = new TextDecoder().decode(sessions.stdout).trim().split("\n").filter(Boolean)
    .map(Number);
  assert.ok(pids.length > 0, "no sshd session process found");
  for (const pid of pids) Deno.kill(pid, "SIGKILL");
  const res = await pulling;
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /connection .*lost|Cannot reach "testpi"/);
  assert.deepEqual(await Deno.readFile(local), before);
  assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp")), []);
  assert.deepEqual(await ls(tmp), []);
});

Deno.test("pull falls back to protocol 1 for python3 and for a litekeep that speaks only 1", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 5_000 });
  const real = await remoteLitekeep(dir.path);
  await t.step("no litekeep on the remote: python3, protocol 1", async () => {
    const local = join(dir.path, "local-py.db");
    const res = await pull(sshd, remote, local, "--remote-bin", "/nonexistent/litekeep", "--json");
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.deepEqual([out.tool, out.protocol, out.method], ["python3", 1, "snapshot"]);
    assert.equal(await counts(local), await counts(remote));
  });
  await t.step("an older litekeep that refuses protocol 2", async () => {
    // What a protocol-1 litekeep answers to --protocol 2 (lib/commands/agent.ts before it).
    const old = join(dir.path, "litekeep-old");
    await Deno.writeTextFile(
      old,
      `#!/bin/sh\ncase "$*" in *"--protocol 2"*)\n` +
        `  echo 'LITEKEEP-ERROR protocol this litekeep speaks protocol 1, not 2' >&2; exit 3;;\n` +
        `esac\nexec ${real} "$@"\n`,
    );
    await Deno.chmod(old, 0o755);
    const local = join(dir.path, "local-old.db");
    for (const method of ["snapshot", "delta"]) {
      const res = await pull(
        sshd,
        remote,
        local,
        "--remote-bin",
        old,
        "--method",
        method,
        "--json",
      );
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout);
      assert.deepEqual([out.tool, out.protocol, out.method], ["litekeep", 1, method]);
      assert.match(res.stderr, /speaks only protocol 1: pulled with it; install this version/);
    }
    assert.equal(await counts(local), await counts(remote));
  });
  await t.step("a litekeep that speaks neither: a clear error", async () => {
    const future = join(dir.path, "litekeep-future");
    await Deno.writeTextFile(
      future,
      `#!/bin/sh\necho 'LITEKEEP-ERROR protocol this litekeep speaks protocol 3, not 1 or 2' >&2\nexit 3\n`,
    );
    await Deno.chmod(future, 0o755);
    const res = await pull(sshd, remote, join(dir.path, "local-f.db"), "--remote-bin", future);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, "");
    assert.match(res.stderr, /speaks protocol 3/);
    assert.match(res.stderr, /hint: .*install the same version on both hosts/);
  });
});

Deno.test("pull in protocol 2 from read-only media: the agent falls back to the backup API, and says so", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const folder = join(dir.path, "app");
  await Deno.mkdir(folder);
  makeDb(join(folder, "gym.db"), { payments: 3_000 });
  const ro = join(dir.path, "card");
  await Deno.mkdir(ro);
  const mounted = await new Deno.Command("mount", { args: ["--bind", "-o", "ro", folder, ro] })
    .output();
  assert.ok(mounted.success, new TextDecoder().decode(mounted.stderr));
  try {
    const bin = await remoteLitekeep(dir.path);
    const tmp = join(dir.path, "remote-tmp");
    await Deno.mkdir(tmp);
    const local = join(dir.path, "local.db");
    const res = await pull(
      sshd,
      join(ro, "gym.db"),
      local,
      "--remote-bin",
      bin,
      "--remote-tmp",
      tmp,
      "--json",
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /could not prove an image \(read-only-media: .*\): it used the backup API/,
    );
    assert.equal(JSON.parse(res.stdout).protocol, 2);
    assert.equal(await counts(local), await counts(join(folder, "gym.db")));
    assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
    // Its temporary file is gone.
    assert.deepEqual(await ls(tmp), []);
  } finally {
    await new Deno.Command("umount", { args: [ro] }).output();
  }
});

Deno.test("pull in protocol 2 of a stopped application's WAL database leaves no -wal or -shm on the remote", async () => {
  // Found by the new-user trial: every pull from a Pi whose app was stopped left an empty -wal
  // and a -shm beside its database (the page reader's last connection is read-only).
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const pi = join(dir.path, "pi");
  await Deno.mkdir(pi);
  const remote = join(pi, "gym.db");
  makeDb(remote, { payments: 5_000 });
  assert.deepEqual(await ls(pi), ["gym.db"]);
  const bin = await remoteLitekeep(dir.path);
  const local = join(dir.path, "local.db");
  for (const round of [0, 1, 2]) {
    // A first pull (snapshot), a delta after a change, and an unchanged one.
    if (round === 1) changeEverywhere(remote, round);
    const res = await pull(sshd, remote, local, "--remote-bin", bin);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await ls(pi), ["gym.db"], `round ${round}`);
  }
  assert.equal(await counts(local), await counts(remote));
});
