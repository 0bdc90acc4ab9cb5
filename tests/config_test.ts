import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../lib/cli/config.ts";
import { UsageError } from "../lib/errors.ts";
import { count, ls, makeDb, runCli, tempDir } from "./_helpers.ts";

Deno.test("loadConfig() resolves relative paths against the config file's folder", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "litekeep.json");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      db: "instance/gym_system.db",
      backupDir: "data/backups/database",
      keep: { days: 7, count: 10 },
      checksum: "sha256",
      remote: { host: "raspberry-pi", db: "/home/pi/gym.db", bin: "litekeep" },
    }),
  );
  const config = await loadConfig(path);
  assert.equal(config.db, join(dir.path, "instance/gym_system.db"));
  assert.equal(config.backupDir, join(dir.path, "data/backups/database"));
  assert.deepEqual(config.keep, { days: 7, count: 10 });
  assert.equal(config.remote?.host, "raspberry-pi");
});

Deno.test("a config file with an unknown key or a bad value is a usage error naming it", async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ db: "a.db", backupdir: "x" }, /unknown key "backupdir"; did you mean "backupDir"\?/],
    [{ keep: { days: 7, hours: 3 } }, /unknown key "keep\.hours"/],
    [{ keep: { day: 7 } }, /unknown key "keep\.day"; did you mean "keep\.days"\?/],
    [{ keep: { days: -1 } }, /"keep\.days" must be a whole number between 0 and 36500/],
    [{ keep: { days: 1e9 } }, /"keep\.days" must be a whole number between 0 and 36500/],
    [{ keep: { count: 1e7 } }, /"keep\.count" must be a whole number between 0 and 1000000/],
    [{ busyTimeout: 1e300 }, /"busyTimeout" must be a whole number between 0 and 86400000/],
    [{ busyTimeout: 99999999999 }, /"busyTimeout" must be a whole number between 0 and 86400000/],
    [{ constructor: {} }, /unknown key "constructor"/],
    [{ toString: {} }, /unknown key "toString"/],
    [{ valueOf: 1 }, /unknown key "valueOf"/],
    [{ keep: { hasOwnProperty: 1 } }, /unknown key "keep\.hasOwnProperty"/],
    [{ remote: { host: "-oProxyCommand=touch /tmp/x" } }, /"remote\.host": Refusing host/],
    [{ remote: { host: "a;b" } }, /"remote\.host": Refusing host "a;b"/],
    [{ checksum: "sha1" }, /"checksum" must be one of sha256, md5, none/],
    [{ remote: { sshOptions: "-p 22" } }, /"remote\.sshOptions" must be a list of strings/],
    [[1, 2], /the top level must be an object/],
  ];
  for (const [content, pattern] of cases) {
    await t.step(JSON.stringify(content), async () => {
      await using dir = await tempDir();
      const db = join(dir.path, "gym.db");
      makeDb(db, { payments: 10 });
      const path = join(dir.path, "litekeep.json");
      await Deno.writeTextFile(path, JSON.stringify(content));
      const res = await runCli(["backup", db], { cwd: dir.path });
      assert.equal(res.code, 2);
      assert.equal(res.stdout, "");
      assert.ok(res.stderr.includes(`Config file "${path}"`), res.stderr);
      assert.match(res.stderr, pattern);
      assert.deepEqual(await ls(dir.path), ["gym.db", "litekeep.json"]);
    });
  }
});

Deno.test("a config file that is not JSON, or missing, is a usage error", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "bad.json"), "{ db: ");
  const bad = await runCli(["--config", "bad.json", "backup"], { cwd: dir.path });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /is not valid JSON/);
  assert.match(bad.stderr, /hint: fix it \(JSON: "double-quoted" keys, no trailing comma\)/);
  const missing = await runCli(["backup", "--config", "nope.json"], { cwd: dir.path });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Cannot read config file ".*nope\.json": no such file/);
});

Deno.test("backup takes the database and folder from the config file", async (t) => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "instance"));
  makeDb(join(dir.path, "instance/gym_system.db"));
  const config = { db: "instance/gym_system.db", backupDir: "data/backups/database" };
  await t.step("./litekeep.json", async () => {
    await Deno.writeTextFile(join(dir.path, "litekeep.json"), JSON.stringify(config));
    const res = await runCli(["backup", "--json"], { cwd: dir.path });
    assert.equal(res.code, 0, res.stderr);
    const file = JSON.parse(res.stdout).file;
    assert.ok(file.startsWith(join(dir.path, "data/backups/database/gym_system_backup_")));
    assert.equal(count(file, "members"), 344);
    await Deno.remove(join(dir.path, "litekeep.json"));
  });
  await t.step("LITEKEEP_CONFIG", async () => {
    await Deno.writeTextFile(join(dir.path, "other.json"), JSON.stringify(config));
    const res = await runCli(["verify"], {
      cwd: "/",
      env: { LITEKEEP_CONFIG: join(dir.path, "other.json") },
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /1 ok, 0 failed/);
  });
});

Deno.test("a config number too large for JSON is shown as Infinity, not null", async () => {
  // Found by the attack round: "busyTimeout": 1e400 gave the hint "it is null".
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 10 });
  await Deno.writeTextFile(join(dir.path, "litekeep.json"), '{ "busyTimeout": 1e400 }');
  const res = await runCli(["backup", db], { cwd: dir.path });
  assert.equal(res.code, 2);
  assert.match(res.stderr, /hint: it is Infinity/);
});

Deno.test("loadConfig() refuses a FIFO or a device at once (a cron job must not hang on it)", async (t) => {
  // --config (or LITEKEEP_CONFIG) naming a FIFO waited for a writer forever, and /dev/zero
  // filled the memory: the job hung with nothing in the log.
  await using dir = await tempDir();
  const fifo = join(dir.path, "litekeep.json");
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const real = join(dir.path, "real.json");
  await Deno.writeTextFile(real, '{"db": "app.db"}');
  const link = join(dir.path, "link.json");
  await Deno.symlink(real, link);
  for (const path of [fifo, "/dev/zero"]) {
    await t.step(path, async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("hung"), 20_000);
      });
      const result = await Promise.race([
        loadConfig(path).then(() => "loaded", (e) => e),
        hung,
      ]);
      clearTimeout(timer);
      assert.ok(result instanceof UsageError, String(result));
      assert.match(result.message, /Cannot read config file ".*": it is not a regular file/);
    });
  }
  // A symlink to a config (dotfiles) is still read.
  assert.equal((await loadConfig(link)).db, join(dir.path, "app.db"));
});
