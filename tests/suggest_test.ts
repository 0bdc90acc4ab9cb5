import assert from "node:assert/strict";
import { closest, editDistance, oldScriptCommand } from "../lib/cli/suggest.ts";
import { runCli, spawnCli, tempDir } from "./_helpers.ts";

Deno.test("editDistance() counts a swap of neighbours as one edit", () => {
  assert.equal(editDistance("keep-dyas", "keep-days"), 1);
  assert.equal(editDistance("bakup", "backup"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("same", "same"), 0);
  assert.equal(editDistance("kitten", "sitting"), 3);
});

Deno.test("closest() suggests only what looks like a typo", async (t) => {
  const flags = ["--keep-days", "--keep-count", "--keep-last", "--json", "--quiet", "--dry-run"];
  const cases: Array<[string, string | undefined]> = [
    ["--keep-dyas", "--keep-days"],
    ["--keep-cout", "--keep-count"],
    ["--KEEP-DAYS", "--keep-days"],
    ["--keep-days=7x", "--keep-days"],
    ["--jsno", "--json"],
    ["--dryrun", "--dry-run"],
    ["--fast", undefined],
    ["--frob", undefined],
    ["--xy", undefined],
    ["--keep", undefined],
  ];
  for (const [word, expected] of cases) {
    await t.step(word, () => assert.equal(closest(word, flags), expected));
  }
});

Deno.test("oldScriptCommand() names the command and echoes the user's line", () => {
  assert.deepEqual(oldScriptCommand(["--cleanup", "--keep-days", "7"]), {
    command: "backup",
    flag: "--cleanup",
    line: "litekeep backup --cleanup --keep-days 7",
  });
  assert.equal(oldScriptCommand(["--info-only"])?.line, "litekeep pull --info-only");
  assert.equal(oldScriptCommand(["--method=scp"])?.command, "pull");
  assert.equal(
    oldScriptCommand(["--stats-only", "my db.db", "it's"])?.line,
    `litekeep backup --stats-only 'my db.db' 'it'\\''s'`,
  );
  assert.equal(oldScriptCommand(["frob", "--", "--cleanup"]), undefined);
  assert.equal(oldScriptCommand(["--frob"]), undefined);
});

Deno.test("the old scripts' flags without a command word exit 2 naming the command to use", async (t) => {
  const cases: Array<[string[], string]> = [
    [["--cleanup", "--keep-days", "7"], "litekeep backup --cleanup --keep-days 7"],
    [["--keep-count", "10", "--cleanup", "-q"], "litekeep backup --keep-count 10 --cleanup -q"],
    [["--skip-checkpoint"], "litekeep backup --skip-checkpoint"],
    [["--stats-only"], "litekeep backup --stats-only"],
    [["--quiet", "--method", "scp"], "litekeep pull --quiet --method scp"],
    [["--info-only"], "litekeep pull --info-only"],
    // "deno task litekeep -- --cleanup --keep-days 7" passes the "--" on.
    [["--", "--cleanup", "--keep-days", "7"], "litekeep backup --cleanup --keep-days 7"],
  ];
  for (const [args, line] of cases) {
    await t.step(args.join(" "), async () => {
      await using dir = await tempDir();
      const res = await runCli(args, { cwd: dir.path });
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stdout, "");
      assert.ok(res.stderr.includes(`needs a command word now: use "${line}"\n`), res.stderr);
      assert.match(res.stderr, /hint: .*see "litekeep (backup|pull) --help"/);
    });
  }
});

Deno.test("the old guide's crontab line without a command word fails loudly in a real process", async () => {
  await using dir = await tempDir();
  const res = await spawnCli(["--cleanup", "--keep-days", "7"], {
    cwd: dir.path,
    env: { PATH: "/usr/bin:/bin" },
  });
  assert.equal(res.code, 2);
  assert.equal(res.stdout, "");
  assert.match(
    res.stderr,
    /error: --cleanup needs a command word now: use "litekeep backup --cleanup --keep-days 7"/,
  );
});

Deno.test("a typo'd flag or command word gets a did-you-mean, exit 2", async (t) => {
  const cases: Array<[string[], string]> = [
    [
      ["backup", "--keep-dyas", "7"],
      'backup: unknown option "--keep-dyas"; did you mean "--keep-days"?',
    ],
    [["prune", "--dry-rn"], 'prune: unknown option "--dry-rn"; did you mean "--dry-run"?'],
    [["stats", "--max-ag", "2d"], 'stats: unknown option "--max-ag"; did you mean "--max-age"?'],
    [["list", "--verfy"], 'list: unknown option "--verfy"; did you mean "--verify"?'],
    [["verify", "--jsno"], 'verify: unknown option "--jsno"; did you mean "--json"?'],
    [["bakup"], 'unknown command "bakup"; did you mean "backup"?'],
    [["lst"], 'unknown command "lst"; did you mean "list"?'],
    // A typo'd command word with an old flag is a typo, not a missing command word: "use
    // litekeep backup purne --keep-days 7" would send the user to the wrong command.
    [["purne", "--keep-days", "7"], 'unknown command "purne"; did you mean "prune"?'],
    [["pul", "--method", "scp"], 'unknown command "pul"; did you mean "pull"?'],
    [["--jsn"], 'unknown option "--jsn"; did you mean "--json"?'],
    [
      ["prune", "--stats-only"],
      'prune: unknown option "--stats-only"; it is an option of "litekeep backup"',
    ],
    // One dash where two belong: node:util reads "-keep-days" as "-k -e -e -p ...".
    [
      ["backup", "x.db", "--prune", "-keep-days", "7"],
      'backup: unknown option "-keep-days"; did you mean "--keep-days"?',
    ],
    [["stats", "-max-age=26h"], 'stats: unknown option "-max-age"; did you mean "--max-age"?'],
    [["list", "-verfy"], 'list: unknown option "-verfy"; did you mean "--verify"?'],
    [["help"], 'unknown command "help"; did you mean "litekeep --help"?'],
    [["help", "backup"], 'unknown command "help"; did you mean "litekeep backup --help"?'],
    [["backup", "--frob"], 'backup: unknown option "--frob"\n'],
    [["frobnicate"], 'unknown command "frobnicate"\n'],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      await using dir = await tempDir();
      const res = await runCli(args, { cwd: dir.path, terminal: true });
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stdout, "");
      assert.ok(res.stderr.startsWith(`error: ${message}`), res.stderr);
    });
  }
});
