import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, ROOT, runCli, smallDb, tempDir } from "./_helpers.ts";
import { logStamp } from "../lib/cli/log.ts";

/** India: +05:30 all year, no DST, so the offset is known and is not UTC's. */
const TZ = "Asia/Kolkata";
const STAMP = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\+05:30 /;

/**
 * Runs litekeep as cron does: `env -i PATH=/usr/bin:/bin`, no terminal, stdout and stderr
 * appended to one log file. DENO_DIR only so that deno finds its cache without HOME (the
 * compiled binary needs neither).
 */
async function cronRun(log: string, cwd: string, args: string[]): Promise<number> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const line = [Deno.execPath(), ...cliCommand(args)].map(quote).join(" ");
  const denoDir = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache/deno");
  const out = await new Deno.Command("/usr/bin/env", {
    args: [
      "-i",
      "PATH=/usr/bin:/bin",
      `TZ=${TZ}`,
      `DENO_DIR=${denoDir}`,
      "NO_COLOR=1",
      "/bin/sh",
      "-c",
      `${line} >> ${quote(log)} 2>&1`,
    ],
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return out.code;
}

Deno.test("under cron every line in the log is stamped in local time with its offset", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const log = join(dir.path, "cron.log");
  const backups = join(dir.path, "backups");
  assert.equal(await cronRun(log, dir.path, ["backup", db, "--backup-dir", backups]), 0);
  assert.equal(await cronRun(log, dir.path, ["backup", db, "--backup-dir", backups, "-q"]), 0);
  assert.equal(await cronRun(log, dir.path, ["verify", backups]), 0);
  assert.equal(
    await cronRun(log, dir.path, ["backup", join(dir.path, "gone.db"), "--backup-dir", backups]),
    1,
  );
  const text = await Deno.readTextFile(log);
  const lines = text.trimEnd().split("\n");
  for (const line of lines) assert.match(line, STAMP, `unstamped line in the cron log:\n${text}`);
  // The summary (stdout) and the error (stderr) are both there, in the same format.
  assert.match(text, /\+05:30 Backup written: .*app_backup_\d{8}_\d{6}\.db\n/);
  assert.match(text, /\+05:30 error: Cannot open database ".*gone\.db"/);
  assert.match(text, /\+05:30 hint: /);
  // --quiet still hides the summary: exactly two backups, one "Backup written".
  assert.equal(text.match(/Backup written/g)?.length, 1);
  // The stamp and the backup's name read the same clock (local time in TZ).
  const written = /^(\S+) Backup written: .*_backup_(\d{8})_(\d{6})\.db$/m.exec(text);
  assert.ok(written, text);
  const stamp = STAMP.exec(written[0])!;
  const fromStamp = Date.parse(written[1]);
  const [d, t] = [written[2], written[3]];
  const fromName = Date.parse(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${
      t.slice(4)
    }+05:30`,
  );
  assert.equal(stamp[1] + stamp[2] + stamp[3], d, "same local date as the file name");
  assert.ok(Math.abs(fromStamp - fromName) <= 5_000, `${written[1]} vs ${d}_${t}`);
});

Deno.test("under cron --json and the data commands stay unstamped", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const log = join(dir.path, "cron.log");
  assert.equal(
    await cronRun(log, dir.path, ["backup", db, "--backup-dir", join(dir.path, "b"), "--json"]),
    0,
  );
  const json = await Deno.readTextFile(log);
  assert.equal(JSON.parse(json).ok, true);
  await Deno.remove(log);
  assert.equal(await cronRun(log, dir.path, ["info", db]), 0);
  const info = await Deno.readTextFile(log);
  assert.doesNotMatch(info, /^\d{4}-\d\d-\d\dT/m);
  assert.match(info, /app\.db/);
});

Deno.test("logStamp() is local time with the offset, and lines of one write each get one", async () => {
  // In-process: stdout that is not a terminal gets the stamp on every line, split writes too.
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const now = new Date("2026-12-01T21:40:48.250Z");
  const res = await runCli(["backup", db, "--backup-dir", join(dir.path, "b")], {
    stdoutTerminal: false,
    now,
  });
  assert.equal(res.code, 0, res.stderr);
  for (const line of res.stdout.trimEnd().split("\n")) {
    assert.ok(line.startsWith(`${logStamp(now)} `), line);
  }
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { logStamp } from "${ROOT}lib/cli/log.ts";
      console.log(logStamp(new Date("2026-12-01T21:40:48.250Z")));
      console.log(logStamp(new Date("2026-07-01T21:40:48Z")));`,
    ],
    env: { TZ: "Europe/Berlin" },
    stdout: "piped",
  }).output();
  assert.equal(
    new TextDecoder().decode(child.stdout),
    "2026-12-01T22:40:48+01:00\n2026-07-01T23:40:48+02:00\n",
  );
});
