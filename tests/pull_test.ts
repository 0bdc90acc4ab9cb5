/**
 * `litekeep pull` against a real sshd: each remote tool and method, the local backup, WAL kept,
 * IPv6 hosts, what it checked. Failures, hostile input and races are in pull_safety_test.ts.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  assertWriterInstant,
  count,
  ls,
  makeDb,
  pull,
  remoteLitekeep,
  runCli,
  sqlite3,
  startSshd,
  startWriter,
  tempDir,
} from "./_helpers.ts";

Deno.test("pull brings a snapshot through each remote tool", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const bin = await remoteLitekeep(dir.path);
  // The remote's temporary folder, so that this test sees only its own temp files.
  const tmp = join(dir.path, "remote-tmp");
  await Deno.mkdir(tmp);
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    for (const compress of ["none", "gzip"]) {
      if (tool === "sqlite3" && compress === "gzip") continue;
      await t.step(`${tool}, --compress ${compress}`, async () => {
        const local = join(dir.path, `local-${tool}-${compress}.db`);
        const res = await pull(
          sshd,
          remote,
          local,
          "--remote-tool",
          tool,
          "--remote-bin",
          bin,
          "--compress",
          compress,
          "--remote-tmp",
          tmp,
          "--json",
        );
        assert.equal(res.code, 0, res.stderr);
        const out = JSON.parse(res.stdout);
        assert.equal(out.tool, tool);
        assert.equal(out.created, true);
        assert.equal(out.localBackup, null);
        assert.deepEqual(
          out.tables.map((x: { name: string; rows: number }) => [x.name, x.rows]),
          [["lockers", 120], ["members", 344], ["payments", 2000], ["rentals", 120]],
        );
        assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
        assert.equal(await sqlite3(local, "PRAGMA journal_mode"), "delete");
        assert.equal(count(local, "payments"), 2000);
      });
    }
  }
  // The remote side cleaned up after itself: its temporary folder is empty.
  assert.deepEqual(await ls(tmp), []);
});

Deno.test("pull picks python3 when litekeep is not on the remote", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const res = await pull(
    sshd,
    remote,
    join(dir.path, "local.db"),
    "--remote-bin",
    "/nonexistent/litekeep",
    "--json",
  );
  assert.equal(res.code, 0, res.stderr);
  assert.equal(JSON.parse(res.stdout).tool, "python3");
});

Deno.test("pull takes a consistent snapshot while the remote app writes", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 100_000, noteBytes: 100 });
  const bin = await remoteLitekeep(dir.path);
  await using writer = await startWriter(remote, dir.path);
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    await t.step(tool, async () => {
      const local = join(dir.path, `local-${tool}.db`);
      const before = count(remote, "ledger");
      const res = await pull(sshd, remote, local, "--remote-tool", tool, "--remote-bin", bin);
      const after = count(remote, "ledger");
      assert.equal(res.code, 0, res.stderr);
      await assertWriterInstant(local, before, after);
    });
  }
  const report = await writer.stop();
  assert.ok(report.commits > 50, `the writer committed only ${report.commits} times`);
  assert.equal(report.busy, 0);
});

Deno.test("pull over a local database backs it up, writes through SQLite, keeps WAL", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 3000 });
  const local = join(dir.path, "instance", "gym.db");
  await Deno.mkdir(join(dir.path, "instance"));
  makeDb(local, { payments: 10 });
  // A local reader keeps the old database open, and its WAL holds committed data.
  const reader = new DatabaseSync(local);
  reader.exec("PRAGMA wal_autocheckpoint = 0");
  reader.exec("UPDATE members SET name = 'local only' WHERE id = 1");
  const res = await pull(sshd, remote, local, "--json");
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.created, false);
  // The old local data, WAL included, is an ordinary backup.
  assert.match(out.localBackup, /instance\/backups\/gym_backup_\d{8}_\d{6}\.db$/);
  assert.equal(count(out.localBackup, "payments"), 10);
  assert.equal(
    await sqlite3(out.localBackup, "SELECT name FROM members WHERE id = 1"),
    "local only",
  );
  // The reader sees the new data on its next read; the file stays in WAL mode.
  assert.equal(
    Number((reader.prepare("SELECT count(*) AS n FROM payments").get() as { n: number }).n),
    3000,
  );
  reader.close();
  assert.equal(await sqlite3(local, "PRAGMA journal_mode"), "wal");
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.equal(count(local, "payments"), 3000);
  assert.deepEqual(
    (await ls(join(dir.path, "instance"))).filter((n) => n.startsWith(".litekeep-tmp")),
    [],
  );
});

Deno.test("pull --method scp copies the .db and -wal and warns", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const app = new DatabaseSync(remote);
  app.exec("PRAGMA wal_autocheckpoint = 0");
  app.exec("INSERT INTO members (name, joined_at) VALUES ('in the wal', '2025-01-01')");
  const local = join(dir.path, "local.db");
  const res = await pull(sshd, remote, local, "--method", "scp", "--json");
  app.close();
  assert.equal(res.code, 0, res.stderr);
  assert.equal(JSON.parse(res.stdout).method, "scp");
  assert.match(res.stderr, / scp copies the raw files/);
  assert.equal(count(local, "members"), 345);
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp")), []);
});

Deno.test("pull --method delta sends only the changed pages and rebuilds the same file", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 50_000, noteBytes: 100 });
  const bin = await remoteLitekeep(dir.path);
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    await t.step(tool, async () => {
      const local = join(dir.path, `local-${tool}.db`);
      const first = await pull(
        sshd,
        remote,
        local,
        "--method",
        "delta",
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--json",
      );
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /no local copy yet/);
      // The app changes a few rows on the remote.
      const app = new DatabaseSync(remote);
      app.exec("UPDATE members SET status = 'paused' WHERE id IN (1, 200)");
      app.exec("INSERT INTO payments VALUES (NULL, 3, 700, '2030-01-01', 'card', 'new')");
      app.close();
      const res = await pull(
        sshd,
        remote,
        local,
        "--method",
        "delta",
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--compress",
        tool === "sqlite3" ? "none" : "gzip",
        "--json",
      );
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout);
      if (tool === "sqlite3") {
        assert.equal(out.pagesSent, null);
        assert.match(res.stderr, /cannot send only changed pages: the whole snapshot travelled/);
      } else {
        const pages = Number(await sqlite3(remote, "PRAGMA page_count"));
        assert.ok(
          out.pagesSent > 0 && out.pagesSent < pages / 10,
          `${out.pagesSent} of ${pages} pages travelled`,
        );
      }
      assert.equal(count(local, "payments"), count(remote, "payments"));
      assert.equal(await sqlite3(local, "SELECT status FROM members WHERE id = 200"), "paused");
      assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
    });
  }
});

Deno.test("pull reaches an IPv6 host written [::1] or user@[::1], over ssh and scp", async (t) => {
  const lo = await new Deno.Command("ip", { args: ["-6", "addr", "show", "lo"], stdout: "piped" })
    .output().catch(() => undefined);
  if (!lo?.success || !new TextDecoder().decode(lo.stdout).includes("::1")) {
    // deno-lint-ignore no-console
    console.warn("skipped: this machine has no IPv6 loopback");
    return;
  }
  await using sshd = await startSshd({ listen: "::1" });
  // ssh matches the config's Host against the address it is given: "::1", never "[::1]".
  await sshd.addAlias("::1", [`IdentityFile ${join(sshd.dir, "user_key")}`]);
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const user = new TextDecoder().decode(
    (await new Deno.Command("id", { args: ["-un"], stdout: "piped" }).output()).stdout,
  ).trim();
  for (const host of ["[::1]", `${user}@[::1]`]) {
    for (const method of ["snapshot", "scp"]) {
      await t.step(`${host} --method ${method}`, async () => {
        const local = join(dir.path, `local-${method}-${host.length}.db`);
        const res = await runCli(["pull", `${host}:${remote}`, local, "--method", method]);
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stdout, new RegExp(`Pulled ${host.replace(/[[\]]/g, "\\$&")}:`));
        assert.equal(count(local, "members"), 344);
      });
    }
  }
});

Deno.test("pull --method scp says what it checked: row counts match, differ, or could not be compared", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  // Remote "litekeep"s that answer info with other counts, or fail: scp then has nothing to
  // compare with, and the summary must say so instead of "match".
  const other = join(dir.path, "other-counts");
  await Deno.writeTextFile(
    other,
    `#!/bin/sh\nprintf '%s\\n' 'LITEKEEP 1 {"tool":"litekeep","sqlite":"3.40.1","path":"x","size":4096,"mtime":1,"journalMode":"wal","pageSize":4096,"pageCount":1,"walSize":null,"freeBytes":null,"tables":[{"name":"members","rows":1,"newest":"1"}]}'\n`,
  );
  const failing = join(dir.path, "failing");
  await Deno.writeTextFile(failing, `#!/bin/sh\necho 'LITEKEEP-ERROR io boom' >&2\nexit 3\n`);
  await Deno.chmod(other, 0o755);
  await Deno.chmod(failing, 0o755);
  const cases: Array<[string, string, RegExp, RegExp]> = [
    [
      "match",
      "/nonexistent/litekeep",
      /^ {2}verified {2}integrity_check ok; row counts match the remote's live database$/m,
      / scp copies the raw files/,
    ],
    [
      "differ",
      other,
      /^ {2}verified {2}integrity_check ok; row counts DIFFER from the remote's \(remote vs copy\): members 1 vs 344, lockers extra/m,
      /warning: row counts differ from the remote's: members 1 vs 344/,
    ],
    [
      "could not be compared",
      failing,
      /^ {2}verified {2}integrity_check ok; row counts could not be compared with the remote's$/m,
      /warning: could not count the remote's rows to compare: .*boom/,
    ],
  ];
  for (const [name, bin, stdout, stderr] of cases) {
    await t.step(name, async () => {
      const local = join(dir.path, `local-${name.length}.db`);
      const res = await pull(sshd, remote, local, "--method", "scp", "--remote-bin", bin);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, stdout);
      assert.match(res.stderr, stderr);
      if (name !== "match") assert.doesNotMatch(res.stdout, /row counts match/);
    });
  }
  await t.step("--json says it too", async () => {
    const res = await pull(
      sshd,
      remote,
      join(dir.path, "local-json.db"),
      "--method",
      "scp",
      "--remote-bin",
      failing,
      "--json",
    );
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.integrity, "ok");
    assert.equal(out.rowCounts, "unknown");
  });
});

Deno.test("pull backs the old local database up with at most its permission bits", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 10 });
  await Deno.chmod(local, 0o600);
  const res = await pull(sshd, remote, local, "--remote-bin", "/nonexistent/litekeep", "--json");
  assert.equal(res.code, 0, res.stderr);
  const backup = JSON.parse(res.stdout).localBackup;
  assert.equal((await Deno.stat(backup)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(`${backup}.sha256`)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(local)).mode! & 0o777, 0o600, "the local database keeps its own");
});
