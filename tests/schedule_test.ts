import assert from "node:assert/strict";
import { join } from "node:path";
import {
  crontabText,
  jobArgv,
  launchdAgents,
  safeName,
  type Schedule,
  setupJobs,
  systemdUnits,
} from "../lib/cli/schedule.ts";
import { have, readPlist, systemdVerify, tempDir } from "./_helpers.ts";

/** A program that prints each argument it gets on a line of its own. */
async function argPrinter(dir: string): Promise<string> {
  const path = join(dir, "print args");
  await Deno.writeTextFile(path, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

/** A schedule of `kind`'s jobs for user pi, run in `home`, its config and log there. */
function scheduleIn(
  home: string,
  program: string[],
  kind: "backup" | "pull" = "backup",
  name = "gym",
): Schedule {
  return {
    program,
    config: join(home, "litekeep.json"),
    workDir: home,
    logFile: join(home, "logs", "litekeep.log"),
    name,
    user: "pi",
    jobs: setupJobs(kind),
  };
}

/** A schedule whose paths hold what shells, cron and systemd each treat specially. */
function awkward(dir: string, program: string, kind: "backup" | "pull"): Schedule {
  return scheduleIn(join(dir, "it's 100% $HOME %zone \\%d"), [program, "run"], kind, "gym system");
}

/** `systemd-analyze verify` of the schedule's first unit (the service), written into `dir`. */
async function verifyService(dir: string, s: Schedule, level: string) {
  const service = systemdUnits(s)[0];
  const path = join(dir, service.name);
  await Deno.writeTextFile(path, service.text);
  return await systemdVerify([path], level);
}

/** A crontab line as cron runs it: five time fields, then `%` unescaped, then `sh -c`. */
function cronFields(line: string): { fields: string[]; command: string } {
  const m = /^(\S+) (\S+) (\S+) (\S+) (\S+) (.*)$/.exec(line);
  assert.ok(m, `not a crontab line: ${line}`);
  const [, ...rest] = m;
  return { fields: rest.slice(0, 5), command: rest[5] };
}

/**
 * Cron's own reading of a command (cronie's and Vixie cron's do_command): a backslash escapes
 * the character after it, and only before a `%` is it dropped; an unescaped `%` ends the
 * command (the rest is its stdin), which must never happen here.
 */
function cronUnescape(command: string): string {
  let out = "";
  let escaped = false;
  for (const [i, ch] of [...command].entries()) {
    if (escaped) {
      out = ch === "%" ? out.slice(0, -1) + ch : out + ch;
      escaped = false;
    } else if (ch === "\\") {
      out += ch;
      escaped = true;
    } else if (ch === "%") {
      assert.fail(`an unescaped % at ${i} ends the command: ${command}`);
    } else out += ch;
  }
  return out;
}

Deno.test("crontabText() lines run, under /bin/sh, exactly each job's argv", async () => {
  await using dir = await tempDir();
  const program = await argPrinter(dir.path);
  for (const kind of ["backup", "pull"] as const) {
    const s = awkward(dir.path, program, kind);
    await Deno.mkdir(join(s.workDir, "logs"), { recursive: true });
    const lines = crontabText(s).split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    assert.equal(lines.length, s.jobs.length);
    for (const [i, line] of lines.entries()) {
      const { fields, command } = cronFields(line);
      const job = s.jobs[i];
      assert.deepEqual(fields, [String(job.minute), String(job.hour ?? "*"), "*", "*", "*"]);
      await Deno.remove(s.logFile).catch(() => {});
      const out = await new Deno.Command("/bin/sh", {
        args: ["-c", cronUnescape(command)],
        env: { PATH: "/usr/bin:/bin" },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const printed = job.logged
        ? await Deno.readTextFile(s.logFile)
        : new TextDecoder().decode(out.stdout);
      assert.deepEqual(printed.split("\n").slice(0, -1), jobArgv(s, job).slice(1), line);
    }
  }
});

Deno.test("setupJobs() backs up then prunes nightly and monitors hourly; pulls hourly", () => {
  assert.deepEqual(setupJobs("backup").map((j) => [j.args, j.minute, j.hour, j.logged]), [
    [["backup", "--prune"], 0, 3, true],
    [["stats", "--max-age", "26h", "--quiet"], 15, undefined, false],
  ]);
  assert.deepEqual(setupJobs("pull").map((j) => [j.args, j.hour]), [[["pull"], undefined]]);
});

Deno.test("safeName() keeps unit and label names to [A-Za-z0-9_-]", () => {
  assert.equal(safeName("gym_system"), "gym_system");
  assert.equal(safeName("my db.v2"), "my-db-v2");
  assert.equal(safeName("..."), "db");
});

Deno.test("systemdUnits() pass systemd-analyze verify, with Persistent=true", async () => {
  if (!await have("systemd-analyze")) return;
  await using dir = await tempDir();
  const program = await argPrinter(dir.path);
  for (const kind of ["backup", "pull"] as const) {
    const s = awkward(dir.path, program, kind);
    const units = systemdUnits(s);
    assert.equal(units.length, 2 * s.jobs.length);
    const unitDir = join(dir.path, `units-${kind}`);
    await Deno.mkdir(unitDir);
    for (const u of units) await Deno.writeTextFile(join(unitDir, u.name), u.text);
    const files = units.map((u) => join(unitDir, u.name));
    const out = await systemdVerify(files, "warning");
    const said = out.stderr;
    assert.equal(out.code, 0, said);
    // Warnings (an unknown key, a specifier that does not parse) still exit 0.
    assert.equal(said, "");
    // A specifier that does not parse in Description= is said only at level info.
    const info = await systemdVerify(files, "info");
    assert.doesNotMatch(info.stderr, /specifier/i);
    for (const u of units.filter((u) => u.name.endsWith(".timer"))) {
      assert.match(u.text, /^Persistent=true$/m);
    }
    // The journal, not cron, gets the monitor's error line.
    for (const u of units) assert.doesNotMatch(u.text, /cron/, u.name);
    // The ExecStart words, as systemd splits and unescapes them, are the job's argv.
    for (const [i, job] of s.jobs.entries()) {
      const exec = /^ExecStart=(.*)$/m.exec(units[2 * i].text)![1];
      assert.deepEqual(splitExecStart(exec), jobArgv(s, job));
    }
  }
});

/** systemd's reading of `ExecStart=` for the forms `systemdUnits()` writes. */
function splitExecStart(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const word = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
    // Variables ($$ for a $) are expanded in the arguments, not in the executable's name.
    const unescaped = word.replaceAll("%%", "%");
    words.push(words.length === 0 ? unescaped : unescaped.replaceAll("$$", "$"));
  }
  return words;
}

Deno.test("launchdAgents() are plists launchd reads: argv, calendar, log, label", async () => {
  if (!await have("python3")) return;
  await using dir = await tempDir();
  const s = awkward(dir.path, "/usr/local/bin/litekeep", "backup");
  const agents = launchdAgents(s);
  assert.deepEqual(agents.map((a) => a.label), [
    "com.litekeep.backup.gym-system",
    "com.litekeep.monitor.gym-system",
  ]);
  for (const [i, agent] of agents.entries()) {
    assert.equal(agent.path, `~/Library/LaunchAgents/${agent.label}.plist`);
    // Its output goes to the log file: no cron mails it.
    assert.doesNotMatch(agent.plist, /cron/);
    const file = join(dir.path, `${agent.label}.plist`);
    await Deno.writeTextFile(file, agent.plist);
    // python3's plistlib as the independent reader of Apple's format.
    const plist = await readPlist(file);
    const job = s.jobs[i];
    assert.deepEqual(plist, {
      Label: agent.label,
      ProgramArguments: jobArgv(s, job),
      WorkingDirectory: s.workDir,
      StartCalendarInterval: job.hour === undefined
        ? { Minute: job.minute }
        : { Hour: job.hour, Minute: job.minute },
      StandardOutPath: s.logFile,
      StandardErrorPath: s.logFile,
    });
  }
});

Deno.test("systemdUnits(): systemd itself reads WorkingDirectory= as the folder, end spaces kept", async () => {
  if (!await have("systemd-analyze")) return;
  await using dir = await tempDir();
  const program = await argPrinter(dir.path);
  // systemd strips the white space at the end of a setting's value: a folder named "data "
  // became "data", a folder that does not exist, and the job failed to start.
  const home = join(dir.path, "gym data ");
  await Deno.mkdir(home);
  const out = await verifyService(dir.path, scheduleIn(home, [program]), "debug");
  // The debug log dumps the unit as loaded (on stdout or stderr, by version).
  const dump = out.stdout + out.stderr;
  const read = /^\s*WorkingDirectory: (.*)$/m.exec(dump);
  assert.ok(read, dump.slice(-2000));
  assert.equal(read[1], home);
});

Deno.test("systemdUnits(): systemd finds the program at a path holding $, % and spaces", async () => {
  if (!await have("systemd-analyze")) return;
  // systemd expands variables ($$ for a $) in the arguments, not in the executable's name:
  // a doubled $ there named a file that does not exist ("is not executable").
  await using dir = await tempDir();
  const home = join(dir.path, "cost $5 100% $HOME");
  await Deno.mkdir(home);
  const program = await argPrinter(home);
  const out = await verifyService(dir.path, scheduleIn(home, [program]), "warning");
  const said = out.stderr;
  assert.equal(out.code, 0, said);
  assert.equal(said, "");
});

Deno.test("systemdUnits(): a program path systemd refuses (a quote or backslash) is said so", () => {
  // systemd will not run an executable whose name holds ' " or \ ("contains special
  // characters"), however it is quoted: the unit must say what to do instead of failing.
  const s = scheduleIn("/home/pi/app", ["/home/pi/it's/litekeep"]);
  const service = systemdUnits(s)[0].text;
  assert.match(
    service,
    /^# systemd refuses this program path \(it holds ' " or \\\): copy litekeep to \/usr\/local\/bin/m,
  );
  const clean = systemdUnits({ ...s, program: ["/usr/local/bin/litekeep"] })[0].text;
  assert.doesNotMatch(clean, /refuses/);
});
