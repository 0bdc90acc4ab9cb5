import assert from "node:assert/strict";
import { join } from "node:path";
import { parseFlags } from "./main.ts";
import { shellWord } from "./measure.ts";
import { spread } from "./report.ts";
import { have, ROOT, tempDir } from "../../tests/_helpers.ts";

Deno.test("parseFlags() of the bench gives defaults, orders lists and refuses unknown values", () => {
  const flags = parseFlags(["--sizes", "100mb,10mb", "--groups", "startup,local"]);
  assert.deepEqual(flags.sizes, ["10mb", "100mb"]);
  assert.deepEqual(flags.groups, ["local", "startup"]);
  assert.equal(flags.runs, undefined);
  assert.equal(flags.out, "docs/BENCHMARKS.md");
  assert.deepEqual(parseFlags([]).sizes, ["10mb", "100mb"]);
  // The remote group runs only when named: it needs sshd and takes far longer.
  assert.deepEqual(parseFlags([]).groups, ["local", "writer", "startup"]);
  assert.deepEqual(parseFlags(["--groups", "remote,local"]).groups, ["local", "remote"]);
  assert.throws(() => parseFlags(["--sizes", "5tb"]), /unknown --sizes "5tb"/);
  assert.throws(() => parseFlags(["--groups", "cloud"]), /unknown --groups "cloud"/);
  assert.throws(() => parseFlags(["--runs", "0"]), /--runs must be a positive whole number/);
  assert.throws(() => parseFlags(["--fast"]), /Unknown option '--fast'/);
});

Deno.test("spread() gives the median, min and max", () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3 });
  assert.deepEqual(spread([4, 1, 2, 3]), { median: 2.5, min: 1, max: 4 });
});

Deno.test("shellWord() leaves safe words bare and double-quotes the rest", () => {
  assert.equal(shellWord("--sizes=10mb,1gb"), "--sizes=10mb,1gb");
  assert.equal(shellWord("VACUUM INTO 'OUT/copy.db'"), `"VACUUM INTO 'OUT/copy.db'"`);
  assert.equal(shellWord('say "$HOME"'), '"say \\"\\$HOME\\""');
});

Deno.test("bench.ts writes a checked report for a 2 MB database", async () => {
  if (!await have("sqlite3")) return;
  await using dir = await tempDir();
  const out = join(dir.path, "BENCHMARKS.md");
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      join(ROOT, "scripts", "bench", "main.ts"),
      "--sizes",
      "2mb",
      "--runs",
      "1",
      "--groups",
      "local",
      "--out",
      out,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(run.stderr);
  assert.equal(run.code, 0, stderr);
  const report = await Deno.readTextFile(out);
  assert.match(report, /^# litekeep benchmarks\n/);
  assert.match(report, /\| cores \(`nproc`\) \| \d+ \|/);
  assert.match(report, /All \d+ runs, warm-up runs included, passed their checks\./);
  assert.match(report, /### 2 MB: 2\.\d MB, 8,500 payments/);
  for (const tool of ["litekeep backup, default", "cp --reflink=never", "sqlite3 .backup"]) {
    assert.match(report, new RegExp(`\\n\\| ${tool.replace(".", "\\.")} \\| \\d+\\.\\d{3} \\|`));
  }
  assert.match(report, /\| 1 \| Backup of the 1 GB database.* \| not measured \|/);
  assert.match(report, /\| 2 \| Default backup .* \| \*\*(met|not met)\*\* \(judged at 2mb\) \|/);
  assert.match(report, /\nsqlite3 SRC "VACUUM INTO 'OUT\/copy\.db'"\n/);
});
