/**
 * `litekeep pull` when things go wrong, against a real sshd: an unreachable or refusing remote,
 * hostile hosts and paths, full disks, a cut connection, mismatched versions, bad temp folders,
 * and races with a local writer or the application creating the database.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  count,
  foreignWal,
  ls,
  makeDb,
  mountTmpfs,
  pull,
  remoteLitekeep,
  runCli,
  spawnCli,
  sqlite3,
  startSshd,
  tempDir,
} from "./_helpers.ts";
import { assertNoCommitLost, startLedgerWriter } from "./support/ledger.ts";

Deno.test("pull fails cleanly when the remote cannot be reached or refuses", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 5 });
  const before = await Deno.readFile(local);
  // A port that accepts connections and never says a word: only the timeout ends the wait.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  await sshd.addAlias("silentpi", [], (silent.addr as Deno.NetAddr).port);
  await sshd.addAlias("wrongkey", [`IdentityFile ${join(sshd.dir, "other_key")}`]);
  // A host seen for the first time: its key is in no known_hosts file, and BatchMode asks not.
  await sshd.addAlias("newpi", [
    `IdentityFile ${join(sshd.dir, "user_key")}`,
    "UserKnownHostsFile /dev/null",
  ]);
  const cases: Array<[string, string[], RegExp]> = [
    [
      "timeout",
      ["silentpi:/x.db", "--connect-timeout", "2"],
      /Cannot reach "silentpi" over ssh: (the connection timed out|ssh failed)/,
    ],
    [
      "auth refused",
      ["wrongkey:/x.db"],
      /Cannot reach "wrongkey" over ssh: authentication was refused/,
    ],
    [
      "host key unknown",
      ["newpi:/x.db"],
      /Cannot reach "newpi" over ssh: its host key is unknown or changed[^]*hint: connect once by hand and accept its key: "ssh newpi true" \(a reinstalled host has a new key: "ssh-keygen -R newpi" first\)/,
    ],
    [
      "remote missing",
      [`${sshd.host}:${join(dir.path, "missing.db")}`],
      /Remote database "testpi:.*missing\.db": no such file/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(name, async () => {
      const t0 = performance.now();
      const res = await runCli(["pull", args[0], local, ...args.slice(1)]);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
      assert.match(res.stderr, /hint: /);
      assert.ok(performance.now() - t0 < 15_000, "must give up within the connect timeout");
      assert.deepEqual(await Deno.readFile(local), before);
      // Only the lock file (kept, and harmless: the lock is a flock) besides the database.
      assert.deepEqual(await ls(dir.path), [".local.db.litekeep.lock", "local.db"]);
    });
  }
  silent.close();
  for (const conn of held) conn.close();
});

Deno.test("pull refuses hostile hosts and carries hostile paths as one literal path", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const canary = join(dir.path, "canary");
  await t.step("a host that is an ssh option", async () => {
    // Run from the temp folder, so a relative "touch canary" would land there.
    const cases: Array<[string, RegExp]> = [
      [
        "-oProxyCommand=touch canary:/x.db",
        /Refusing host "-oProxyCommand=touch canary": a host cannot start with "-"/,
      ],
      [`-oProxyCommand=touch ${canary}:/x.db`, /is not HOST:PATH|cannot start with "-"/],
    ];
    for (const [spec, pattern] of cases) {
      for (
        const command of [["pull", "--", spec, join(dir.path, "l.db")], ["info", "--", spec], [
          "compare",
          "--",
          spec,
          spec,
        ]]
      ) {
        const res = await runCli(command, { cwd: dir.path });
        // With a "/" before the colon it is a local path (scp's rule): missing, so exit 1.
        const local = spec.split(":")[0].includes("/") && command[0] !== "pull";
        assert.equal(res.code, local ? 1 : 2, `${command.join(" ")}: ${res.stderr}`);
        if (!local && command[0] !== "compare") assert.match(res.stderr, pattern);
      }
    }
    await assert.rejects(Deno.stat(canary), Deno.errors.NotFound);
  });
  // Names that would run commands if any shell on the way read them: none may.
  const pwned = `litekeep-pwned-${crypto.randomUUID()}`;
  const folder = join(dir.path, `it's a "gym" $(touch ${pwned}); \`touch ${pwned}\` *\nline`);
  await Deno.mkdir(folder);
  const remote = join(folder, "gym system; rm -rf x.db");
  makeDb(remote);
  const bin = await remoteLitekeep(dir.path);
  for (
    const [tool, method] of [["litekeep", "snapshot"], ["python3", "snapshot"], [
      "sqlite3",
      "snapshot",
    ], ["auto", "scp"]]
  ) {
    await t.step(`${tool} ${method}`, async () => {
      const local = join(dir.path, `local-${tool}-${method}.db`);
      const res = await pull(
        sshd,
        remote,
        local,
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--method",
        method,
      );
      assert.equal(res.code, 0, res.stderr);
      assert.equal(count(local, "members"), 344);
    });
  }
  await assert.rejects(Deno.stat(canary), Deno.errors.NotFound);
  for (const where of [dir.path, Deno.env.get("HOME") ?? "/root", "/", Deno.cwd()]) {
    await assert.rejects(Deno.stat(join(where, pwned)), Deno.errors.NotFound);
  }
});

Deno.test("pull through sqlite3 reports a full remote temp folder and leaves nothing", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 20_000, noteBytes: 100 });
  const tmp = join(dir.path, "remote-tmp");
  await using mount = await mountTmpfs(tmp, 256);
  if (!mount) return;
  const local = join(dir.path, "local.db");
  const res = await pull(sshd, remote, local, "--remote-tool", "sqlite3", "--remote-tmp", tmp);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /Remote database ".*remote\.db": .*full/);
  assert.match(res.stderr, /hint: free space in the remote temporary folder/);
  assert.deepEqual(await ls(tmp), []);
  assert.equal((await ls(dir.path)).includes("local.db"), false);
});

Deno.test("pull cut off mid-transfer leaves the local database and no temp files", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 400_000, noteBytes: 200 });
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 7 });
  const before = await Deno.readFile(local);
  const tmp = join(dir.path, "remote-tmp");
  await Deno.mkdir(tmp);
  const pulling = pull(sshd, remote, local, "--remote-tool", "python3", "--remote-tmp", tmp);
  // Once bytes flow, kill the sshd session process that serves this connection.
  for (let i = 0;; i++) {
    const temp = (await ls(dir.path)).find((n) =>
      n.startsWith(".litekeep-tmp-") && n.endsWith("local.db")
    );
    if (temp && (await Deno.stat(join(dir.path, temp))).size > 1 << 20) break;
    assert.ok(i < 3000, "the transfer never started");
    await new Promise((r) => setTimeout(r, 5));
  }
  const sessions = await new Deno.Command("pgrep", {
    args: ["-P", String(sshd.pid)],
    stdout: "piped",
  }).output();
  const pids = new TextDecoder().decode(sessions.stdout).trim().split("\n").filter(Boolean).map(
    Number,
  );
  assert.ok(pids.length > 0, "no sshd session process found");
  for (const pid of pids) Deno.kill(pid, "SIGKILL");
  const res = await pulling;
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /connection .*lost|Cannot reach "testpi"/);
  assert.deepEqual(await Deno.readFile(local), before);
  assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp")), []);
  // The remote side removes its temporary file when its connection dies.
  for (let i = 0; (await ls(tmp)).length > 0 && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.deepEqual(await ls(tmp), []);
});

Deno.test("pull into a folder that does not exist exits 1 and creates nothing", async () => {
  await using dir = await tempDir();
  const res = await runCli(["pull", "testpi:/x.db", join(dir.path, "nope", "local.db")]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /Cannot pull into ".*nope\/local\.db": folder ".*nope": no such file/);
  assert.deepEqual(await ls(dir.path), []);
});

Deno.test("pull refuses to create a database beside a stale -wal, and names a full local disk", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 20_000, noteBytes: 100 });
  await t.step("stale -wal", async () => {
    const local = join(dir.path, "local.db");
    await foreignWal(local);
    const res = await pull(sshd, remote, local);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /Cannot pull into ".*local\.db": it does not exist, but ".*local\.db-wal" does/,
    );
    assert.equal((await ls(dir.path)).includes("local.db"), false);
  });
  await t.step("full disk", async () => {
    const small = join(dir.path, "small");
    await using mount = await mountTmpfs(small, 1024);
    if (!mount) return;
    const local = join(small, "local.db");
    const res = await pull(sshd, remote, local, "--remote-tool", "python3");
    assert.equal(res.code, 1);
    assert.ok(
      res.stderr.includes(`Cannot write the copy into "${small}": no space left`),
      res.stderr,
    );
    assert.deepEqual((await ls(small)).filter((n) => !n.endsWith(".litekeep.lock")), []);
  });
});

Deno.test("pull shows what a too-old or too-new remote litekeep said, and says to match versions", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const cases: Array<[string, string, RegExp]> = [
    ["older", `echo 'error: Unknown command "agent"' >&2\nexit 2`, /Unknown command "agent"/],
    [
      "newer",
      `echo 'LITEKEEP-ERROR protocol this litekeep speaks protocol 2, not 1' >&2\nexit 3`,
      /speaks protocol 2, not 1/,
    ],
  ];
  for (const [name, body, said] of cases) {
    await t.step(name, async () => {
      const bin = join(dir.path, `litekeep-${name}`);
      await Deno.writeTextFile(bin, `#!/bin/sh\n${body}\n`);
      await Deno.chmod(bin, 0o755);
      const res = await pull(sshd, remote, join(dir.path, "local.db"), "--remote-bin", bin);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, said);
      assert.match(res.stderr, /older or newer.*install the same version on both hosts/);
      assert.doesNotMatch(res.stderr, /shell startup files/);
    });
  }
});

Deno.test("a bad TMPDIR, remote or local, is a plain error that names it and the remedy", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const bin = await remoteLitekeep(dir.path);
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    await t.step(`--remote-tmp /nonexistent through ${tool}`, async () => {
      const res = await pull(
        sshd,
        remote,
        join(dir.path, `local-${tool}.db`),
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--remote-tmp",
        "/nonexistent/tmp",
      );
      assert.doesNotMatch(res.stderr, /internal error/);
      // litekeep speaks protocol 2, which writes no temporary file on the remote.
      if (tool === "litekeep") return assert.equal(res.code, 0, res.stderr);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /temporary (file|folder) in "\/nonexistent\/tmp"/);
      assert.match(res.stderr, /hint: .*--remote-tmp.*TMPDIR/);
    });
  }
  await t.step("the remote's TMPDIR", async () => {
    const wrapper = join(dir.path, "litekeep-badtmp");
    await Deno.writeTextFile(wrapper, `#!/bin/sh\nTMPDIR=/nonexistent/tmp exec ${bin} "$@"\n`);
    await Deno.chmod(wrapper, 0o755);
    // Protocol 2 needs no temporary folder on the remote.
    const v2 = await pull(sshd, remote, join(dir.path, "local-env2.db"), "--remote-bin", wrapper);
    assert.equal(v2.code, 0, v2.stderr);
    // Protocol 1 (the --method delta of an older litekeep) snapshots into a temporary file.
    const old = join(dir.path, "litekeep-v1");
    await Deno.writeTextFile(
      old,
      `#!/bin/sh\ncase "$*" in *"--protocol 2"*)\n` +
        `  echo 'LITEKEEP-ERROR protocol this litekeep speaks protocol 1, not 2' >&2; exit 3;;\n` +
        `esac\nTMPDIR=/nonexistent/tmp exec ${bin} "$@"\n`,
    );
    await Deno.chmod(old, 0o755);
    const res = await pull(sshd, remote, join(dir.path, "local-env.db"), "--remote-bin", old);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /temporary (file|folder) in "\/nonexistent\/tmp"/);
    assert.match(res.stderr, /hint: .*TMPDIR/);
  });
  await t.step(
    "the local TMPDIR (verify copies a WAL-header backup to the temp folder)",
    async () => {
      const wal = join(dir.path, "wal-header.db");
      await Deno.copyFile(remote, wal);
      const res = await spawnCli(["verify", wal], { env: { TMPDIR: "/nonexistent/tmp" } });
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stdout.includes("internal error"), false);
      assert.doesNotMatch(res.stderr, /internal error/);
      assert.match(res.stderr, /temporary folder in "\/nonexistent\/tmp"/);
      assert.match(res.stderr, /hint: .*TMPDIR/);
    },
  );
});

Deno.test("pull loses no commit of a local writer: each is in the local backup or the result", async (t) => {
  await using sshd = await startSshd();
  for (const wal of [true, false]) {
    await t.step(wal ? "WAL" : "rollback journal", async () => {
      await using dir = await tempDir();
      const remote = join(dir.path, "remote.db");
      makeDb(remote, { payments: 5000 });
      // The remote has the writer's table, empty: after each pull the local writer goes on.
      const conn = new DatabaseSync(remote);
      conn.exec("CREATE TABLE ledger_w (id INTEGER PRIMARY KEY)");
      conn.close();
      const local = join(dir.path, "local.db");
      makeDb(local, { wal, payments: 30_000, noteBytes: 100 });
      await using writer = await startLedgerWriter(local, dir.path, 400);
      const copies: string[] = [];
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 150));
        const res = await pull(sshd, remote, local, "--busy-timeout", "20000", "--json");
        assert.equal(res.code, 0, res.stderr);
        copies.push(JSON.parse(res.stdout).localBackup);
      }
      await new Promise((r) => setTimeout(r, 150));
      // Each commit the writer saw succeed is in the copy kept before the write that replaced
      // it, or in the database after the last one.
      await assertNoCommitLost(writer, [...copies, local]);
      assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
    });
  }
});

Deno.test("pull into a database the application creates meanwhile exits 75 and replays nothing", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 400_000, noteBytes: 200 });
  const local = join(dir.path, "local.db");
  const pulling = pull(sshd, remote, local, "--remote-tool", "python3");
  for (let i = 0;; i++) {
    const temp = (await ls(dir.path)).find((n) => n.startsWith(".litekeep-tmp-"));
    if (temp && (await Deno.stat(join(dir.path, temp))).size > 1 << 20) break;
    assert.ok(i < 3000, "the transfer never started");
    await new Promise((r) => setTimeout(r, 5));
  }
  // The application starts while the copy travels: it creates the database, in WAL mode.
  const app = new DatabaseSync(local);
  app.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0");
  app.exec("CREATE TABLE app (x); INSERT INTO app VALUES (1), (2), (3)");
  const res = await pulling;
  assert.equal(res.code, 75, res.stderr);
  assert.match(
    res.stderr,
    /error: Cannot pull into ".*local\.db": .* appeared while litekeep worked/,
  );
  assert.match(res.stderr, /hint: run again/);
  // The application's database is its own, untouched by the pulled pages.
  assert.equal(Number((app.prepare("SELECT count(*) AS n FROM app").get() as { n: number }).n), 3);
  app.close();
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.equal(await sqlite3(local, "SELECT group_concat(name) FROM sqlite_schema"), "app");
  assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp")), []);
});

Deno.test("pull names the local database when a local writer holds its lock past --busy-timeout", async () => {
  // Found by the new-user trial: the delta's pin of the local copy gave up (busy, exit 75), and
  // the agent's complaint that the local side had gone ("connection ... lost", exit 1) was shown.
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 50 });
  const local = join(dir.path, "local.db");
  const bin = await remoteLitekeep(dir.path);
  const first = await pull(sshd, remote, local, "--remote-bin", bin);
  assert.equal(first.code, 0, first.stderr);
  const db = new DatabaseSync(remote);
  db.exec(
    "INSERT INTO payments (member_id, amount_cents, paid_at, method) VALUES (1, 5, 'x', 'cash')",
  );
  db.close();
  const local0 = new DatabaseSync(local);
  local0.exec("PRAGMA journal_mode = WAL");
  local0.close();
  const before = await Deno.readFile(local);
  // Another process holds the local write lock (POSIX locks are per process).
  const holder = new Deno.Command("python3", {
    args: [
      "-c",
      "import sqlite3,sys,time\n" +
      "db=sqlite3.connect(sys.argv[1], isolation_level=None)\n" +
      "db.execute('BEGIN IMMEDIATE')\n" +
      "db.execute(\"INSERT INTO payments (member_id, amount_cents, paid_at, method) VALUES (1, 1, 'y', 'cash')\")\n" +
      "print('held', flush=True)\n" +
      "sys.stdin.read()\n" +
      "db.execute('ROLLBACK')\n",
      local,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const out = holder.stdout.getReader();
  assert.match(new TextDecoder().decode((await out.read()).value), /held/);
  try {
    const res = await pull(sshd, remote, local, "--remote-bin", bin, "--busy-timeout", "500");
    assert.equal(res.code, 75, res.stderr);
    assert.match(res.stderr, /local\.db": the database is locked by another process/);
    assert.doesNotMatch(res.stderr, /was lost/);
  } finally {
    await holder.stdin.close();
    out.releaseLock();
    await holder.stdout.cancel();
    await holder.status;
  }
  assert.deepEqual(await Deno.readFile(local), before);
});
