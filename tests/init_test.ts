import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../lib/cli/config.ts";
import { writeConfigFile } from "../lib/cli/config_write.ts";
import { shellQuote } from "../lib/remote/ssh.ts";
import {
  count,
  IN_CI,
  ls,
  makeDb,
  remoteLitekeep,
  runCli,
  spawnCli,
  sqlite3,
  startSshd,
  tempDir,
} from "./_helpers.ts";
import { litekeepArgv } from "./support/sshd.ts";

/**
 * Runs a shell command the way cron does: `env -i PATH=/usr/bin:/bin`, no terminal (stdin from
 * /dev/null, output to pipes), `/bin/sh -c`, in `cwd` (cron's is the home folder).
 */
async function asCron(command: string, cwd: string, sshBin?: string) {
  // The test sshd's ssh wrapper, when given, stands in for the user's ~/.ssh/config.
  const path = sshBin ? `${sshBin}:/usr/bin:/bin` : "/usr/bin:/bin";
  const out = await new Deno.Command("/usr/bin/env", {
    args: ["-i", `PATH=${path}`, "/bin/sh", "-c", command],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** The command of a crontab line, as cron hands it to /bin/sh. */
function cronCommand(line: string): string {
  const m = /^\S+ \S+ \S+ \S+ \S+ (.*)$/.exec(line);
  assert.ok(m, `not a crontab line: ${line}`);
  return m[1].replaceAll("\\%", "%");
}

Deno.test("init in an empty folder, then a bare `litekeep backup` works from cron", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "instance"));
  const counts = makeDb(join(dir.path, "instance", "gym_system.db"));
  const init = await spawnCli(["init", "--db", "instance/gym_system.db"], { cwd: dir.path });
  assert.equal(init.code, 0, init.stderr);
  assert.deepEqual(await ls(dir.path), ["instance", "litekeep.json", "logs"]);
  // `cd FOLDER && litekeep backup >> logs/backup.log 2>&1`, litekeep named by its full path.
  const litekeep = litekeepArgv([]).map(shellQuote).join(" ");
  const line = `cd ${shellQuote(dir.path)} && ${litekeep} backup >> logs/backup.log 2>&1`;
  for (const run of [1, 2]) {
    const res = await asCron(line, "/");
    assert.equal(res.code, 0, `run ${run}: ${res.stderr}`);
    assert.equal(res.stdout + res.stderr, "");
  }
  const backups = (await ls(join(dir.path, "instance", "backups"))).filter((n) =>
    n.endsWith(".db")
  );
  assert.equal(backups.length, 2, backups.join(", "));
  for (const name of backups) {
    const path = join(dir.path, "instance", "backups", name);
    assert.equal(await sqlite3(path, "PRAGMA integrity_check"), "ok");
    for (const [table, rows] of Object.entries(counts)) assert.equal(count(path, table), rows);
  }
  const log = await Deno.readTextFile(join(dir.path, "logs", "backup.log"));
  for (const name of backups) assert.ok(log.includes(name), log);
});

Deno.test("init's crontab lines run from cron: backup + prune, then the monitor", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "instance"));
  makeDb(join(dir.path, "instance", "gym_system.db"));
  const init = await spawnCli([
    "init",
    "--db",
    "instance/gym_system.db",
    "--backup-dir",
    "data/backups/database",
    "--keep-count",
    "1",
    "--keep-days",
    "0",
    "--json",
  ], { cwd: dir.path });
  assert.equal(init.code, 0, init.stderr);
  const report = JSON.parse(init.stdout);
  const lines = (report.schedule.crontab as string).split("\n").filter((l) =>
    l !== "" && !l.startsWith("#")
  );
  assert.equal(lines.length, 2);
  const [backup, monitor] = lines;
  assert.match(backup, /^0 3 \* \* \* \/.* --config \/\S+litekeep\.json backup --prune >> \//);
  assert.match(monitor, /^15 \* \* \* \* \/.* stats --max-age 26h --quiet$/);
  const backups = join(dir.path, "data", "backups", "database");
  // Before any backup the monitor fails, loudly: cron mails that line.
  const stale = await asCron(cronCommand(monitor), "/");
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /error: .*no backups/i);
  assert.deepEqual(await ls(backups), []);
  for (let i = 0; i < 3; i++) {
    const res = await asCron(cronCommand(backup), "/");
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout + res.stderr, "");
    if (i < 2) await new Promise((r) => setTimeout(r, 1100));
  }
  // --keep-count 1 --keep-days 0: each run pruned what the one before it made.
  const kept = (await ls(backups)).filter((n) => n.endsWith(".db"));
  assert.equal(kept.length, 1, kept.join(", "));
  const fresh = await asCron(cronCommand(monitor), "/");
  assert.deepEqual(fresh, { code: 0, stdout: "", stderr: "" });
  const log = await Deno.readTextFile(report.logFile);
  assert.ok(log.includes(kept[0]), log);
  assert.match(log, /delet/i);
});

Deno.test("init refuses to replace a config file without --force (exit 2, file untouched)", async () => {
  await using dir = await tempDir();
  makeDb(join(dir.path, "app.db"));
  const file = join(dir.path, "litekeep.json");
  // Not even a valid config: init must not need to read it.
  await Deno.writeTextFile(file, "{ broken");
  const before = await Deno.stat(file);
  const res = await runCli(["init", "--db", "app.db"], { cwd: dir.path });
  assert.equal(res.code, 2);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, new RegExp(`error: init: "${file}" already exists; it was not changed`));
  assert.match(res.stderr, /hint: add --force/);
  assert.equal(await Deno.readTextFile(file), "{ broken");
  assert.equal((await Deno.stat(file)).mtime?.getTime(), before.mtime?.getTime());
  assert.deepEqual(await ls(dir.path), ["app.db", "litekeep.json"]);
  const forced = await runCli(["init", "--db", "app.db", "--force"], { cwd: dir.path });
  assert.equal(forced.code, 0, forced.stderr);
  const config = await loadConfig(file);
  assert.equal(config.db, join(dir.path, "app.db"));
});

Deno.test("init --config FILE writes that file, paths relative to its folder", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "etc"));
  makeDb(join(dir.path, "app.db"));
  const res = await runCli([
    "--config",
    "etc/pi.json",
    "init",
    "--db",
    "app.db",
    "-d",
    "etc/backups",
    "--keep-days",
    "3",
    "--json",
  ], { cwd: dir.path });
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout);
  const file = join(dir.path, "etc", "pi.json");
  assert.equal(report.ok, true);
  assert.equal(report.config, file);
  assert.deepEqual(report.written, {
    db: join(dir.path, "app.db"),
    backupDir: "backups",
    keep: { days: 3, count: 10 },
  });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(file)), report.written);
  const config = await loadConfig(file);
  assert.equal(config.backupDir, join(dir.path, "etc", "backups"));
  assert.equal(report.logFile, join(dir.path, "etc", "logs", "litekeep.log"));
  assert.match(report.schedule.crontab, new RegExp(`--config ${file} backup --prune`));
  assert.equal(report.schedule.launchd.length, 2);
  assert.equal(report.schedule.systemd.length, 4);
  // No temp left behind.
  assert.deepEqual(await ls(join(dir.path, "etc")), ["backups", "logs", "pi.json"]);
});

Deno.test("init checks the database and its arguments before writing anything", async (t) => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "notes.db"), "x".repeat(200));
  makeDb(join(dir.path, "app.db"));
  const cases: Array<[string[], number, RegExp]> = [
    [["init"], 2, /error: init: give --db DB .* or --remote HOST:PATH/],
    [
      ["init", "--db", "notes.db"],
      1,
      /error: Cannot open database ".*notes\.db": file is not a SQLite database/,
    ],
    [
      ["init", "--db", "missing.db"],
      1,
      // The config is what init writes: the hint is about --db, not the config file's "db".
      /error: Cannot open database ".*missing\.db": .*(not found|No such)[^]*hint: check the --db path\n/i,
    ],
    [
      ["init", "--db", "app.db", "--keep-days", "0", "--keep-count", "0"],
      2,
      /init: every retention rule given is 0/,
    ],
    [["init", "--db", "app.db", "--keep-days", "x"], 2, /init: --keep-days must be a whole number/],
    [["init", "--db", "app.db", "--frob"], 2, /init: unknown option "--frob"/],
    [["init", "--remote=-oProxyCommand=x:/a.db"], 2, /Refusing host/],
    [
      ["init", "--remote", "pi:/a/b.db", "--db", "nofolder/b.db"],
      1,
      /the folder of ".*nofolder\/b\.db" does not exist/,
    ],
    [["init", "--db", "app.db", "--remote-bin", "/opt/litekeep"], 2, /--remote-bin needs --remote/],
    // A config whose backupDir is a file made every backup fail, after init said all was well.
    [
      ["init", "--db", "app.db", "--backup-dir", "app.db"],
      2,
      /error: init: the backup folder ".*app\.db" is a file, not a folder/,
    ],
  ];
  for (const [args, code, pattern] of cases) {
    await t.step(args.join(" "), async () => {
      const res = await runCli(args, { cwd: dir.path });
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
      assert.deepEqual(await ls(dir.path), ["app.db", "notes.db"]);
    });
  }
});

Deno.test("init --help documents every flag", async () => {
  const res = await runCli(["init", "--help"]);
  assert.equal(res.code, 0);
  for (
    const flag of ["--db", "--backup-dir", "--remote", "--keep-days", "--keep-count", "--force"]
  ) {
    assert.ok(res.stdout.includes(flag), flag);
  }
  const main = await runCli(["--help"]);
  assert.match(main.stdout, /^ {2}init +write litekeep\.json/m);
});

Deno.test("init --remote tries ssh, names the remote tool, and warns when unreachable", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "pi", "gym_system.db");
  await Deno.mkdir(join(dir.path, "pi"));
  await Deno.mkdir(join(dir.path, "mac"));
  makeDb(remote);
  const bin = await remoteLitekeep(dir.path);
  const mac = join(dir.path, "mac");

  const found = await runCli(
    ["init", "--remote", `${sshd.host}:${remote}`, "--remote-bin", bin, "--json"],
    { cwd: mac },
  );
  assert.equal(found.code, 0, found.stderr);
  const report = JSON.parse(found.stdout);
  assert.deepEqual(report.remote, {
    host: sshd.host,
    path: remote,
    reached: true,
    tool: "litekeep",
    sqlite: report.remote.sqlite,
    error: null,
  });
  assert.deepEqual(report.written, {
    db: "gym_system.db",
    backupDir: "backups",
    keep: { days: 2, count: 24 },
    remote: { host: sshd.host, db: remote, bin },
  });
  assert.match(report.schedule.crontab, /^0 \* \* \* \* \/.* --config \S+ pull >> \S+ 2>&1$/m);
  assert.deepEqual(report.warnings, []);
  // The printed pull line, run as cron would, fills the empty folder with the remote's data.
  const [pullLine] = (report.schedule.crontab as string).split("\n").filter((l) =>
    l !== "" && !l.startsWith("#")
  );
  const pulled = await asCron(cronCommand(pullLine), "/", join(sshd.dir, "bin"));
  assert.deepEqual(pulled, { code: 0, stdout: "", stderr: "" });
  assert.equal(
    await sqlite3(join(mac, "gym_system.db"), "SELECT count(*) FROM members"),
    await sqlite3(remote, "SELECT count(*) FROM members"),
  );
  assert.match(await Deno.readTextFile(report.logFile), /gym_system/);

  // Without --remote-bin the remote's PATH has no litekeep: the fallback is named.
  const fallback = await runCli(
    ["init", "--remote", `${sshd.host}:${remote}`, "--force"],
    { cwd: mac },
  );
  assert.equal(fallback.code, 0, fallback.stderr);
  assert.match(fallback.stdout, /answered: tool (python3|sqlite3), SQLite \d/);
  assert.match(fallback.stderr, /warning: init: testpi has no litekeep on its PATH, so pulls use/);

  // A host that refuses the key: a warning that says what failed and how to check, exit 0.
  await sshd.addAlias("wrongkey", [`IdentityFile ${join(sshd.dir, "other_key")}`]);
  const refused = await runCli(
    ["init", "--remote", `wrongkey:${remote}`, "--force", "--json"],
    { cwd: mac },
  );
  assert.equal(refused.code, 0, refused.stderr);
  const r = JSON.parse(refused.stdout);
  assert.equal(r.remote.reached, false);
  assert.match(r.remote.error.message, /Cannot reach "wrongkey" over ssh: authentication/);
  assert.match(refused.stderr, /warning: init: Cannot reach "wrongkey".*litekeep info wrongkey:/);
  assert.equal((await loadConfig(join(mac, "litekeep.json"))).remote?.host, "wrongkey");
});

Deno.test("writeConfigFile() never replaces a file that appeared after the check", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "litekeep.json");
  await Deno.writeTextFile(file, "theirs");
  // No pre-check here: the publish itself (link(2)) must refuse.
  await assert.rejects(writeConfigFile(file, "ours", false), /already exists; it was not changed/);
  assert.equal(await Deno.readTextFile(file), "theirs");
  assert.deepEqual(await ls(dir.path), ["litekeep.json"]);
  await writeConfigFile(file, "ours", true);
  assert.equal(await Deno.readTextFile(file), "ours");
  assert.deepEqual(await ls(dir.path), ["litekeep.json"]);
});

Deno.test("init into a missing folder exits 1, naming it", async () => {
  await using dir = await tempDir();
  makeDb(join(dir.path, "app.db"));
  const res = await runCli(["--config", "nowhere/x.json", "init", "--db", "app.db"], {
    cwd: dir.path,
  });
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /error: Cannot write config file ".*nowhere\/x\.json": /);
  assert.match(res.stderr, /hint: check that the folder ".*nowhere" exists/);
  assert.deepEqual(await ls(dir.path), ["app.db"]);
});

Deno.test("init --ping URL writes the config's ping, which the printed backup line then uses", async () => {
  await using dir = await tempDir();
  makeDb(join(dir.path, "app.db"));
  const received: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    received.push(new URL(req.url).pathname);
    return new Response("OK");
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/check-1`;
    const res = await runCli(["init", "--db", "app.db", "--ping", url, "--json"], {
      cwd: dir.path,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).written.ping, url);
    // The URL is the check's secret: the config is the owner's alone.
    assert.equal((await Deno.stat(join(dir.path, "litekeep.json"))).mode! & 0o777, 0o600);
    // init itself is no job: it pings nothing.
    assert.deepEqual(received, []);
    const backup = await runCli(["backup"], { cwd: dir.path });
    assert.equal(backup.code, 0, backup.stderr);
    assert.deepEqual(received, ["/check-1/start", "/check-1"]);
    const bad = await runCli(["init", "--db", "app.db", "--ping", "ftp://x", "--force"], {
      cwd: dir.path,
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not an http or https URL/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("init refuses a config path with a line break or control character: exit 2", async (t) => {
  // A crontab entry is one line, and so is systemd's ExecStart=: the printed schedule would
  // split the --config path in two and never run. XML 1.0 (launchd's plist) cannot hold
  // other control characters at all.
  for (const name of ["a\nb", "a\x01b", "a\x1b[31mb"]) {
    await t.step(JSON.stringify(name), async () => {
      await using dir = await tempDir();
      const folder = join(dir.path, name);
      await Deno.mkdir(folder);
      makeDb(join(folder, "app.db"));
      const res = await runCli(["init", "--db", "app.db"], { cwd: folder });
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, /error: init: the config file's path .* holds a control character/);
      assert.match(res.stderr, /hint: .*folder without/);
      assert.deepEqual(await ls(folder), ["app.db"]);
    });
  }
});

Deno.test("sudo litekeep init: what it creates belongs to the user who ran sudo", async () => {
  // Under sudo, the config, logs/ and the backup folder were root's: the user's own cron job
  // (and systemd's User=) then failed at ">> logs/litekeep.log" before litekeep even ran.
  if (Deno.uid() !== 0) {
    if (IN_CI) throw new Error("CI must run this test as root");
    return;
  }
  await using dir = await tempDir();
  makeDb(join(dir.path, "app.db"));
  const env = { SUDO_USER: "nobody", SUDO_UID: "65534", SUDO_GID: "65534" };
  const res = await runCli(["init", "--db", "app.db", "--backup-dir", "data/backups"], {
    cwd: dir.path,
    env,
  });
  assert.equal(res.code, 0, res.stderr);
  for (const made of ["litekeep.json", "logs", "data", "data/backups"]) {
    const info = await Deno.stat(join(dir.path, made));
    assert.deepEqual([made, info.uid, info.gid], [made, 65534, 65534]);
  }
  // What was there before stays whose it was.
  assert.equal((await Deno.stat(dir.path)).uid, 0);
  assert.equal((await Deno.stat(join(dir.path, "app.db"))).uid, 0);
});
