/**
 * The README's schedule is run, not just read: every crontab line parses, and the Pi's lines run
 * under cron's environment against a real database, with the binary's path and the project
 * folder swapped for this test's; the launchd plist and systemd units pass their own readers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  have,
  ls,
  makeDb,
  readPlist,
  remoteLitekeep,
  ROOT,
  spawnCli,
  sqlite3,
  startSshd,
  systemdVerify,
  tempDir,
} from "./_helpers.ts";

/** The fenced blocks of the README with this language tag. */
async function blocks(lang: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, "README.md"));
  return [...text.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) =>
    m[1]
  );
}

/** The five time fields of a crontab line, checked against crontab(5)'s ranges. */
function checkCronLine(line: string): string {
  const m = /^(\S+) (\S+) (\S+) (\S+) (\S+) (.+)$/.exec(line);
  assert.ok(m, `not a crontab line: ${line}`);
  const ranges = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
  for (const [i, [min, max]] of ranges.entries()) {
    const field = m[i + 1];
    if (field === "*") continue;
    assert.match(field, /^\d+$/, `field ${i + 1} of: ${line}`);
    assert.ok(Number(field) >= min && Number(field) <= max, `field ${i + 1} of: ${line}`);
  }
  // cron turns an unescaped % into a newline.
  assert.doesNotMatch(m[6], /(^|[^\\])%/, line);
  return m[6].replaceAll("\\%", "%");
}

function commandLines(block: string): string[] {
  return block.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Runs a command as cron does: `env -i PATH=/usr/bin:/bin`, no terminal, `/bin/sh -c`. `ssh` is
 * the test sshd's wrapper when given: it stands in for the user's ~/.ssh/config.
 */
async function asCron(command: string, sshBin?: string) {
  const path = sshBin ? `${sshBin}:/usr/bin:/bin` : "/usr/bin:/bin";
  const out = await new Deno.Command("/usr/bin/env", {
    args: ["-i", `PATH=${path}`, "/bin/sh", "-c", command],
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, output: text(out.stdout) + text(out.stderr) };
}

Deno.test("README crontab lines parse and run from cron: the Pi's into the monitored folder, the Mac's pull", async () => {
  const cron = await blocks("cron");
  assert.ok(cron.length >= 3);
  await using dir = await tempDir();
  const project = join(dir.path, "gym-controller");
  await Deno.mkdir(join(project, "instance"), { recursive: true });
  await Deno.mkdir(join(project, "logs"));
  makeDb(join(project, "instance", "gym_system.db"));
  const bin = await remoteLitekeep(dir.path);
  const here = (line: string) =>
    line.replaceAll("/usr/local/bin/litekeep", bin).replaceAll("/home/pi/gym-controller", project);
  const monitored = join(project, "data", "backups", "database");
  let ran = 0;
  const pulls: string[] = [];
  for (const block of cron) {
    const lines = commandLines(block);
    for (const line of lines) checkCronLine(line);
    // Every line names the binary by its absolute path: cron's PATH has no /usr/local/bin.
    for (const line of lines) assert.match(line, /\/usr\/local\/bin\/litekeep /, line);
    if (lines.some((l) => / pull /.test(l))) {
      pulls.push(...lines);
      continue;
    }
    if (block.includes("litekeep.json")) {
      const init = await spawnCli([
        "init",
        "--db",
        "instance/gym_system.db",
        "--backup-dir",
        "data/backups/database",
      ], { cwd: project });
      assert.equal(init.code, 0, init.stderr);
    }
    for (const line of lines) {
      const res = await asCron(here(checkCronLine(line)));
      assert.equal(res.code, 0, `${line}\n${res.output}`);
      assert.equal(res.output, "", line);
      ran++;
    }
  }
  assert.ok(ran >= 6, `ran ${ran} lines`);
  // Every backup went where the monitor looks, and nowhere else.
  const backups = (await ls(monitored)).filter((n) => n.endsWith(".db"));
  assert.equal(backups.length, 2, backups.join(", "));
  for (const name of backups) {
    assert.equal(await sqlite3(join(monitored, name), "PRAGMA integrity_check"), "ok");
  }
  await assert.rejects(Deno.stat(join(project, "instance", "backups")), Deno.errors.NotFound);
  const log = await Deno.readTextFile(join(project, "logs", "backup.log"));
  for (const name of backups) assert.ok(log.includes(name), log);

  // The Mac's line, against a real sshd on loopback as "raspberry-pi", into an empty folder.
  assert.equal(pulls.length, 1);
  await using sshd = await startSshd();
  const mac = join(dir.path, "gym-analysis");
  await Deno.mkdir(join(mac, "instance"), { recursive: true });
  await Deno.mkdir(join(mac, "logs"));
  for (const run of [1, 2]) {
    const line = here(checkCronLine(pulls[0])).replaceAll("~/gym-analysis", mac)
      .replaceAll("raspberry-pi:", `${sshd.host}:`);
    const res = await asCron(line, join(sshd.dir, "bin"));
    assert.equal(res.code, 0, `${pulls[0]}\n${res.output}`);
    assert.equal(res.output, "");
    const local = join(mac, "instance", "gym_system.db");
    assert.equal(await sqlite3(local, "PRAGMA integrity_check"), "ok");
    assert.equal(
      await sqlite3(local, "SELECT count(*) FROM payments"),
      await sqlite3(join(project, "instance", "gym_system.db"), "SELECT count(*) FROM payments"),
    );
    // The second pull kept the first copy as a backup.
    if (run === 2) assert.equal((await ls(join(mac, "instance", "backups"))).length > 0, true);
  }
  assert.match(await Deno.readTextFile(join(mac, "logs", "sync.log")), /gym_system/);
});

Deno.test("README launchd agent is a plist launchd can read, with absolute paths", async () => {
  if (!await have("python3")) return;
  const [plist] = await blocks("xml");
  assert.ok(plist);
  await using dir = await tempDir();
  const file = join(dir.path, "agent.plist");
  await Deno.writeTextFile(file, plist);
  const agent = await readPlist(file) as {
    Label: string;
    StartCalendarInterval: unknown;
    ProgramArguments: string[];
    WorkingDirectory: string;
    StandardOutPath: string;
  };
  assert.equal(agent.Label, "com.litekeep.pull.gym_system");
  assert.deepEqual(agent.StartCalendarInterval, { Minute: 0 });
  for (const path of [agent.ProgramArguments[0], agent.WorkingDirectory, agent.StandardOutPath]) {
    assert.match(path, /^\//, path);
  }
  assert.deepEqual(agent.ProgramArguments.slice(1, 2), ["--config"]);
  assert.equal(agent.ProgramArguments.at(-1), "pull");
});

Deno.test("README systemd units pass systemd-analyze verify", async () => {
  if (!await have("systemd-analyze")) return;
  const units = await blocks("ini");
  assert.equal(units.length, 2);
  await using dir = await tempDir();
  const bin = await remoteLitekeep(dir.path);
  const files: string[] = [];
  for (const unit of units) {
    const name = /^# \/etc\/systemd\/system\/(\S+)$/m.exec(unit)?.[1];
    assert.ok(name, unit);
    files.push(join(dir.path, name));
    await Deno.writeTextFile(
      files.at(-1)!,
      unit.replaceAll("/usr/local/bin/litekeep", bin).replace(/^User=pi$/m, ""),
    );
  }
  assert.match(units[1], /^Persistent=true$/m);
  const out = await systemdVerify(files);
  const said = out.stderr;
  assert.equal(out.code, 0, said);
  assert.equal(said, "");
});
