import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, smallDb, spawnCli, tempDir } from "./_helpers.ts";

/** `deno task litekeep -- ARGS`, typed in `cwd`, as the README tells a user from source. */
async function task(cwd: string, args: string[]): Promise<{ code: number; out: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "--config", join(ROOT, "deno.json"), "litekeep", "--", ...args],
    cwd,
    // Without the INIT_CWD of a task this test may run under (`deno task test`): deno task
    // keeps one that is already set, as npm does.
    clearEnv: true,
    env: {
      NO_COLOR: "1",
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: res.code, out: decode(res.stdout) + decode(res.stderr) };
}

Deno.test("deno task litekeep -- --version: the leading -- is not an unknown option", async () => {
  const res = await task(ROOT, ["--version"]);
  assert.equal(res.code, 0, res.out);
  assert.match(res.out, /^litekeep \d+\.\d+\.\d+/m);
});

Deno.test("deno task litekeep resolves relative paths where the user stands", async () => {
  await using dir = await tempDir();
  smallDb(join(dir.path, "app.db"));
  const res = await task(dir.path, ["backup", "app.db", "--backup-dir", "backups"]);
  assert.equal(res.code, 0, res.out);
  const names = [...Deno.readDirSync(join(dir.path, "backups"))].map((e) => e.name);
  assert.equal(names.filter((n) => /^app_backup_\d{8}_\d{6}\.db$/.test(n)).length, 1, res.out);
  await assert.rejects(Deno.stat(join(ROOT, "backups")), Deno.errors.NotFound);
});

Deno.test("INIT_CWD is ignored when litekeep does not run in its own folder (not the task)", async () => {
  await using dir = await tempDir();
  await using other = await tempDir();
  smallDb(join(dir.path, "app.db"));
  const res = await spawnCli(["info", "app.db"], { cwd: dir.path, env: { INIT_CWD: other.path } });
  assert.equal(res.code, 0, res.stderr);
});
