import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  count,
  foreignWal,
  ls,
  makeDb,
  mountTmpfs,
  remoteLitekeep,
  runCli,
  spawnCli,
  sqlite3,
  startSshd,
  startWriter,
  tempDir,
} from "./_helpers.ts";
import { ledgerIds, startLedgerWriter } from "./support/ledger.ts";

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
        const res = await runCli([
          "pull",
          `${sshd.host}:${remote}`,
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
        ]);
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
  const res = await runCli([
    "pull",
    `${sshd.host}:${remote}`,
    join(dir.path, "local.db"),
    "--remote-bin",
    "/nonexistent/litekeep",
    "--json",
  ]);
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
      const res = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
        local,
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
      ]);
      const after = count(remote, "ledger");
      assert.equal(res.code, 0, res.stderr);
      assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
      const ledger = count(local, "ledger");
      const paid = Number(
        await sqlite3(local, "SELECT count(*) FROM payments WHERE note LIKE 'writer:%'"),
      );
      assert.equal(ledger, paid, "a torn copy would have payments without ledger rows");
      assert.ok(ledger >= before && ledger <= after, `${ledger} not in [${before}, ${after}]`);
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
  const res = await runCli(["pull", `${sshd.host}:${remote}`, local, "--json"]);
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
  const res = await runCli(["pull", `${sshd.host}:${remote}`, local, "--method", "scp", "--json"]);
  app.close();
  assert.equal(res.code, 0, res.stderr);
  assert.equal(JSON.parse(res.stdout).method, "scp");
  assert.match(res.stderr, /warning: scp copies the raw files/);
  assert.equal(count(local, "members"), 345);
  assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
  assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp")), []);
});

Deno.test("info and compare read local and remote databases side by side", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  const same = join(dir.path, "same.db");
  const other = join(dir.path, "other.db");
  makeDb(remote);
  makeDb(same);
  makeDb(other);
  const conn = new DatabaseSync(other);
  conn.exec("INSERT INTO payments VALUES (NULL, 1, 100, '2030-01-01', 'cash', 'late')");
  conn.close();
  const info = await runCli([
    "info",
    `${sshd.host}:${remote}`,
    "--remote-tool",
    "python3",
    "--json",
  ]);
  assert.equal(info.code, 0, info.stderr);
  const i = JSON.parse(info.stdout);
  assert.equal(i.journalMode, "wal");
  assert.equal(i.tool, "python3");
  assert.ok(i.freeBytes > 0);
  assert.deepEqual(i.tables.find((t: { name: string }) => t.name === "members"), {
    name: "members",
    rows: 344,
    newest: "344",
  });
  const equal = await runCli([
    "compare",
    `${sshd.host}:${remote}`,
    same,
    "--order-by",
    "payments.paid_at",
  ]);
  assert.equal(equal.code, 0, equal.stderr);
  assert.match(equal.stdout, /same tables, row counts and newest rows/);
  const differ = await runCli([
    "compare",
    `${sshd.host}:${remote}`,
    other,
    "--order-by",
    "payments.paid_at",
  ]);
  assert.equal(differ.code, 1);
  assert.match(
    differ.stdout,
    /^!= payments +2000 rows, newest 2024-02-09T00:00:00\.000Z +2001 rows, newest 2030-01-01$/m,
  );
  assert.match(differ.stderr, /error: ".*" and ".*other\.db" differ/);
});

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
      const res = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
        local,
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--method",
        method,
      ]);
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
  const res = await runCli([
    "pull",
    `${sshd.host}:${remote}`,
    local,
    "--remote-tool",
    "sqlite3",
    "--remote-tmp",
    tmp,
  ]);
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
  const pulling = runCli([
    "pull",
    `${sshd.host}:${remote}`,
    local,
    "--remote-tool",
    "python3",
    "--remote-tmp",
    tmp,
  ]);
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

Deno.test("pull --method delta sends only the changed pages and rebuilds the same file", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 50_000, noteBytes: 100 });
  const bin = await remoteLitekeep(dir.path);
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    await t.step(tool, async () => {
      const local = join(dir.path, `local-${tool}.db`);
      const first = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
        local,
        "--method",
        "delta",
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--json",
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /no local copy yet/);
      // The app changes a few rows on the remote.
      const app = new DatabaseSync(remote);
      app.exec("UPDATE members SET status = 'paused' WHERE id IN (1, 200)");
      app.exec("INSERT INTO payments VALUES (NULL, 3, 700, '2030-01-01', 'card', 'new')");
      app.close();
      const res = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
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
      ]);
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

Deno.test("pull refuses to create a database beside a stale -wal, and names a full local disk", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 20_000, noteBytes: 100 });
  await t.step("stale -wal", async () => {
    const local = join(dir.path, "local.db");
    await foreignWal(local);
    const res = await runCli(["pull", `${sshd.host}:${remote}`, local]);
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
    const res = await runCli(["pull", `${sshd.host}:${remote}`, local, "--remote-tool", "python3"]);
    assert.equal(res.code, 1);
    assert.ok(
      res.stderr.includes(`Cannot write the copy into "${small}": no space left`),
      res.stderr,
    );
    assert.deepEqual((await ls(small)).filter((n) => !n.endsWith(".litekeep.lock")), []);
  });
});

Deno.test("info and compare agree across remote tools on awkward values, and check --order-by", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const db = join(dir.path, "odd.db");
  const conn = new DatabaseSync(db);
  conn.exec("PRAGMA journal_mode = WAL");
  conn.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, amount REAL)");
  conn.exec(
    `INSERT INTO notes VALUES (1, 'tab' || char(9) || 'quote"' || char(10) || 'back\\slash', 100.0)`,
  );
  conn.close();
  const bin = await remoteLitekeep(dir.path);
  for (const column of ["body", "amount"]) {
    await t.step(`--order-by notes.${column}`, async () => {
      const views = [];
      for (const tool of ["litekeep", "python3", "sqlite3"]) {
        const res = await runCli([
          "info",
          `${sshd.host}:${db}`,
          "--remote-tool",
          tool,
          "--remote-bin",
          bin,
          "--order-by",
          `notes.${column}`,
          "--json",
        ]);
        assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
        views.push(JSON.parse(res.stdout).tables);
      }
      assert.deepEqual(views[1], views[0]);
      assert.deepEqual(views[2], views[0]);
      const local = await runCli([
        "compare",
        db,
        `${sshd.host}:${db}`,
        "--remote-tool",
        "sqlite3",
        "--order-by",
        `notes.${column}`,
      ]);
      assert.equal(local.code, 0, local.stderr);
    });
  }
  await t.step("an unknown column is a usage error, locally and on every remote tool", async () => {
    const local = await runCli(["info", db, "--order-by", "notes.nope"]);
    assert.equal(local.code, 2);
    assert.match(local.stderr, /--order-by notes\.nope: table "notes" has no column "nope"/);
    for (const tool of ["litekeep", "python3", "sqlite3"]) {
      const res = await runCli([
        "compare",
        db,
        `${sshd.host}:${db}`,
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--order-by",
        "nope.x",
      ]);
      assert.equal(res.code, 2, `${tool}: ${res.stderr}`);
      assert.match(res.stderr, /--order-by nope\.x/);
    }
  });
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
      /warning: scp copies the raw files/,
    ],
    [
      "differ",
      other,
      /^ {2}verified {2}integrity_check ok; row counts DIFFER from the remote's: members 1 vs 344, lockers extra/m,
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
      const res = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
        local,
        "--method",
        "scp",
        "--remote-bin",
        bin,
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, stdout);
      assert.match(res.stderr, stderr);
      if (name !== "match") assert.doesNotMatch(res.stdout, /row counts match/);
    });
  }
  await t.step("--json says it too", async () => {
    const res = await runCli([
      "pull",
      `${sshd.host}:${remote}`,
      join(dir.path, "local-json.db"),
      "--method",
      "scp",
      "--remote-bin",
      failing,
      "--json",
    ]);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.integrity, "ok");
    assert.equal(out.rowCounts, "unknown");
  });
});

Deno.test("info, compare and pull agree across remote tools on FTS5 tables, odd names and BLOBs", async (t) => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const db = join(dir.path, "odd.db");
  const conn = new DatabaseSync(db);
  conn.exec("PRAGMA journal_mode = WAL");
  conn.exec("CREATE VIRTUAL TABLE docs USING fts5(body)");
  conn.exec("INSERT INTO docs VALUES ('hello world'), ('second')");
  conn.exec(`CREATE TABLE "a${"\n"}b" (x)`);
  conn.exec(`INSERT INTO "a${"\n"}b" VALUES (1), (2)`);
  conn.exec(`CREATE TABLE "it's ""q"" ü ${"\t"}tab" (x)`);
  conn.exec(`INSERT INTO "it's ""q"" ü ${"\t"}tab" VALUES (1)`);
  conn.exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
  conn.exec("INSERT INTO blobs (b) VALUES (x'00ff0a27'), (x'0001'), (x'ff')");
  conn.close();
  const bin = await remoteLitekeep(dir.path);
  const local = await runCli(["info", db, "--order-by", "blobs.b", "--json"]);
  assert.equal(local.code, 0, local.stderr);
  const expected = JSON.parse(local.stdout).tables;
  // The canonical form of a BLOB: x'<lower-case hex>', the same on every side.
  assert.deepEqual(expected.find((x: { name: string }) => x.name === "blobs"), {
    name: "blobs",
    rows: 3,
    newest: "x'ff'",
  });
  assert.deepEqual(expected.find((x: { name: string }) => x.name === "docs"), {
    name: "docs",
    rows: null,
    newest: null,
  });
  for (const tool of ["litekeep", "python3", "sqlite3"]) {
    await t.step(`info and compare through ${tool}`, async () => {
      const common = ["--remote-tool", tool, "--remote-bin", bin, "--order-by", "blobs.b"];
      const res = await runCli(["info", `${sshd.host}:${db}`, ...common, "--json"]);
      assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
      assert.deepEqual(JSON.parse(res.stdout).tables, expected);
      const same = await runCli(["compare", db, `${sshd.host}:${db}`, ...common]);
      assert.equal(same.code, 0, `${tool}: ${same.stdout}${same.stderr}`);
    });
    await t.step(`pull through ${tool}`, async () => {
      const copy = join(dir.path, `copy-${tool}.db`);
      const res = await runCli([
        "pull",
        `${sshd.host}:${db}`,
        copy,
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--json",
      ]);
      assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
      assert.equal(count(copy, '"a\nb"'), 2);
      assert.equal(await sqlite3(copy, "SELECT count(*) FROM docs WHERE docs MATCH 'hello'"), "1");
    });
  }
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
      const res = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
        join(dir.path, "local.db"),
        "--remote-bin",
        bin,
      ]);
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
      const res = await runCli([
        "pull",
        `${sshd.host}:${remote}`,
        join(dir.path, `local-${tool}.db`),
        "--remote-tool",
        tool,
        "--remote-bin",
        bin,
        "--remote-tmp",
        "/nonexistent/tmp",
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /temporary (file|folder) in "\/nonexistent\/tmp"/);
      assert.match(res.stderr, /hint: .*--remote-tmp.*TMPDIR/);
      assert.doesNotMatch(res.stderr, /internal error/);
    });
  }
  await t.step("the remote's TMPDIR", async () => {
    const wrapper = join(dir.path, "litekeep-badtmp");
    await Deno.writeTextFile(wrapper, `#!/bin/sh\nTMPDIR=/nonexistent/tmp exec ${bin} "$@"\n`);
    await Deno.chmod(wrapper, 0o755);
    const res = await runCli([
      "pull",
      `${sshd.host}:${remote}`,
      join(dir.path, "local-env.db"),
      "--remote-bin",
      wrapper,
    ]);
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
        const res = await runCli([
          "pull",
          `${sshd.host}:${remote}`,
          local,
          "--busy-timeout",
          "20000",
          "--json",
        ]);
        assert.equal(res.code, 0, res.stderr);
        copies.push(JSON.parse(res.stdout).localBackup);
      }
      await new Promise((r) => setTimeout(r, 150));
      const ledger = await writer.stop();
      assert.ok(ledger.committed.length > 200, `only ${ledger.committed.length} commits`);
      const kept = ledgerIds([...copies, local]);
      const lost = ledger.committed.filter((id) => !kept.has(id));
      assert.equal(
        lost.length,
        0,
        `${lost.length} of ${ledger.committed.length} commits lost (${
          Math.round(ledger.committed.length / ledger.seconds)
        } commits/s)`,
      );
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
  const pulling = runCli(["pull", `${sshd.host}:${remote}`, local, "--remote-tool", "python3"]);
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

Deno.test("pull backs the old local database up with at most its permission bits", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 10 });
  await Deno.chmod(local, 0o600);
  const res = await runCli([
    "pull",
    `${sshd.host}:${remote}`,
    local,
    "--remote-bin",
    "/nonexistent/litekeep",
    "--json",
  ]);
  assert.equal(res.code, 0, res.stderr);
  const backup = JSON.parse(res.stdout).localBackup;
  assert.equal((await Deno.stat(backup)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(`${backup}.sha256`)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(local)).mode! & 0o777, 0o600, "the local database keeps its own");
});
