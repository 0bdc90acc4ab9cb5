import assert from "node:assert/strict";
import { join } from "node:path";
import { splitGlobalFlags } from "../lib/cli/cli.ts";
import { VERSION } from "../lib/version.ts";
import { makeDb, runCli, spawnCli, tempDir } from "./_helpers.ts";

Deno.test("splitGlobalFlags() takes global flags before or after the command word", () => {
  const { flags, rest } = splitGlobalFlags([
    "--json",
    "backup",
    "--config=a.json",
    "db.db",
    "-q",
    "--checkpoint",
    "full",
    "--",
    "--json",
  ]);
  assert.deepEqual(flags, {
    json: true,
    quiet: true,
    verbose: false,
    help: false,
    version: false,
    config: "a.json",
  });
  assert.deepEqual(rest, ["backup", "db.db", "--checkpoint", "full", "--", "--json"]);
});

Deno.test("runCli() prints --version and --help on stdout and exits 0", async (t) => {
  for (
    const [args, pattern] of [
      [["--version"], new RegExp(`^litekeep ${VERSION.replaceAll(".", "\\.")}\n$`)],
      [["--help"], /^litekeep .*\n\nUsage: litekeep <command>/],
      [["backup", "--help"], /^Usage: litekeep backup \[DB\]/],
      [["--help", "verify"], /^Usage: litekeep verify PATH\.\.\./],
    ] as const
  ) {
    await t.step(args.join(" "), async () => {
      const res = await runCli([...args]);
      assert.equal(res.code, 0);
      assert.match(res.stdout, pattern);
      assert.equal(res.stderr, "");
    });
  }
});

Deno.test("runCli() refuses unknown commands, flags and bad values with exit 2", async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /error: no command given/],
    [["frobnicate"], /error: unknown command "frobnicate"/],
    [["--frob"], /error: unknown option "--frob"/],
    [["backup", "--frob"], /error: backup: unknown option "--frob"/],
    [["backup", "--checksum", "sha1"], /--checksum must be one of sha256, md5, none, not "sha1"/],
    [["backup", "--verify", "maybe"], /--verify must be one of full, quick, none/],
    [["backup", "--checkpoint", "soon"], /--checkpoint must be one of passive, full, restart/],
    [
      ["checkpoint", "x.db", "--mode", "trunc"],
      /--mode must be one of passive, full, restart, truncate, not "trunc"\n\S+ hint: see "litekeep checkpoint --help"/,
    ],
    [["backup", "--checkpoint"], /error: backup: --checkpoint needs a value\n/],
    [
      ["backup", "--busy-timeout=-5"],
      /--busy-timeout must be a whole number between 0 and 86400000, not "-5"/,
    ],
    [
      ["backup", "--busy-timeout", "ten"],
      /--busy-timeout must be a whole number between 0 and 86400000, not "ten"/,
    ],
    [
      ["backup", "--busy-timeout", "99999999999"],
      /backup: --busy-timeout must be a whole number between 0 and 86400000, not "99999999999"/,
    ],
    [["checkpoint", "x.db", "--busy-timeout", "99999999999"], /checkpoint: --busy-timeout must be/],
    [
      ["restore", "x.db", "y.db", "--busy-timeout", "99999999999"],
      /restore: --busy-timeout must be/,
    ],
    [["stats", "x.db", "--busy-timeout", "99999999999"], /stats: --busy-timeout must be/],
    [["pull", "h:/x.db", "y.db", "--busy-timeout", "99999999999"], /pull: --busy-timeout must be/],
    [
      ["pull", "h:/x.db", "y.db", "--connect-timeout", "99999999999"],
      /pull: --connect-timeout must be a whole number between 1 and 3600/,
    ],
    [
      ["stats", ".", "--max-age", "99999999999999999999w"],
      /stats: --max-age must be at most 36500d, not "99999999999999999999w"/,
    ],
    [["backup", "a.db", "b.db"], /unexpected argument "b\.db"/],
    [["backup", "--checkpoint", "full", "--skip-checkpoint"], /contradict/],
    [["backup"], /backup: no database given/],
    [["--config"], /--config needs a file name/],
    // The "=" form is the same flag: empty is no file (it read the working folder as one).
    [["--config=", "backup"], /--config needs a file name/],
    // Two URLs: the first check would never be pinged and alert for no visible reason.
    [
      ["backup", "--ping", "http://127.0.0.1:9/a", "--ping=http://127.0.0.1:9/b"],
      /--ping given twice/,
    ],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" ") || "(nothing)", async () => {
      await using dir = await tempDir();
      const res = await runCli(args, { cwd: dir.path });
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stdout, "");
      assert.match(res.stderr, pattern);
    });
  }
});

Deno.test("runCli() with --json prints one error object on stdout when it fails", async () => {
  await using dir = await tempDir();
  const res = await runCli(["backup", join(dir.path, "missing.db"), "--json"]);
  assert.equal(res.code, 1);
  const out = JSON.parse(res.stdout);
  assert.equal(out.ok, false);
  assert.match(out.error.message, /missing\.db/);
  assert.equal(out.error.exitCode, 1);
});

Deno.test("runCli() prefixes log lines with a timestamp when stderr is not a terminal", async () => {
  await using dir = await tempDir();
  const res = await runCli(["backup", join(dir.path, "missing.db")], { terminal: false });
  assert.match(res.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d error: Cannot open/);
  const tty = await runCli(["backup", join(dir.path, "missing.db")], { terminal: true });
  assert.match(tty.stderr, /^error: Cannot open/);
});

Deno.test("runCli() --quiet prints nothing on success", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db);
  const res = await runCli(["backup", db, "--quiet"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, "");
  assert.equal(res.stderr, "");
});

Deno.test("main.ts exits 0 for --version and 2 for an unknown command as a real process", async () => {
  const version = await spawnCli(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `litekeep ${VERSION}\n`);
  const unknown = await spawnCli(["nope"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stdout, "");
  assert.match(unknown.stderr, /unknown command "nope"/);
});

Deno.test("runCli() --version after a command prints the version and runs nothing", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "gym.db");
  makeDb(db, { payments: 10 });
  for (const args of [["backup", db, "--version"], ["prune", dir.path, "--keep-last", "1", "-V"]]) {
    const res = await runCli(args);
    assert.equal(res.code, 0);
    assert.equal(res.stdout, `litekeep ${VERSION}\n`);
  }
  assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path), (e) => e.name), ["gym.db"]);
});
