/**
 * Every command's `parseFlags(argv)`, tested directly: the defaults, each flag, the aliases and
 * the refusals (a `UsageError`, exit code 2, and its message). Only through `parseFlags`, the
 * one export each `lib/commands/<name>.ts` keeps; the shared helpers behind it may change.
 */
import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import * as agent from "../lib/commands/agent.ts";
import * as backup from "../lib/commands/backup.ts";
import * as checkpoint from "../lib/commands/checkpoint.ts";
import * as compare from "../lib/commands/compare.ts";
import * as info from "../lib/commands/info.ts";
import * as prune from "../lib/commands/prune.ts";
import * as pull from "../lib/commands/pull.ts";
import * as restore from "../lib/commands/restore.ts";
import * as stats from "../lib/commands/stats.ts";
import * as verify from "../lib/commands/verify.ts";

/** A case that parses: the argv and the fields of the result it must have. */
type Parses = [argv: string[], expected: Record<string, unknown>];
/** A case that is refused: the argv and (part of) the message. */
type Refused = [argv: string[], message: string | RegExp];

/**
 * Runs each case as a step: the result holds `expected`'s fields (deep equal). A dotted key such
 * as `"values.ssh-option"` reaches one field of a nested object.
 */
async function parses(
  t: Deno.TestContext,
  parse: (argv: string[]) => object,
  cases: Parses[],
): Promise<void> {
  for (const [argv, expected] of cases) {
    await t.step(`parses ${JSON.stringify(argv)}`, () => {
      const flags = parse(argv) as Record<string, unknown>;
      for (const [key, value] of Object.entries(expected)) {
        const [head, ...rest] = key.split(".");
        let actual = flags[head];
        for (const part of rest) actual = (actual as Record<string, unknown>)[part];
        assert.deepEqual(actual, value, `${key} of ${JSON.stringify(argv)}`);
      }
    });
  }
}

/** Runs each case as a step: a UsageError (exit code 2) whose message matches. */
async function refuses(
  t: Deno.TestContext,
  parse: (argv: string[]) => object,
  cases: Refused[],
): Promise<void> {
  for (const [argv, message] of cases) {
    await t.step(`refuses ${JSON.stringify(argv)}`, () => {
      assert.throws(() => parse(argv), (error) => {
        assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
        assert.equal(error.exitCode, 2);
        if (typeof message === "string") assert.ok(error.message.includes(message), error.message);
        else assert.match(error.message, message);
        return true;
      });
    });
  }
}

/** Refusals every command's parser shares (it is built on `parseStrict`). */
function strict(command: string): Refused[] {
  return [
    [["--fast"], `${command}: unknown option "--fast"`],
  ];
}

Deno.test("backup parseFlags() gives defaults, reads each flag and refuses contradictions", async (t) => {
  await parses(t, backup.parseFlags, [
    [[], {
      db: undefined,
      backupDir: undefined,
      checksum: undefined,
      verify: undefined,
      checkpoint: undefined,
      busyTimeoutMs: undefined,
      prune: false,
      policy: undefined,
      statsOnly: false,
    }],
    [["gym.db"], { db: "gym.db" }],
    [["--backup-dir", "out"], { backupDir: "out" }],
    [["-d", "out"], { backupDir: "out" }],
    [["--checksum", "md5"], { checksum: "md5" }],
    [["--checksum", "none"], { checksum: "none" }],
    [["--verify", "quick"], { verify: "quick" }],
    [["--checkpoint", "TRUNCATE"], { checkpoint: "truncate" }],
    [["--busy-timeout", "5000"], { busyTimeoutMs: 5000 }],
    [["--prune"], { prune: true }],
    // The old guide's name for --prune.
    [["--cleanup"], { prune: true }],
    [["--prune", "--keep-days", "7", "--keep-count", "10"], {
      prune: true,
      policy: { days: 7, count: 10 },
    }],
    [["--cleanup", "--keep-last", "3"], { prune: true, policy: { last: 3 } }],
    [["--stats-only"], { statsOnly: true }],
    [["--skip-checkpoint"], { checkpoint: undefined }],
  ]);
  await refuses(t, backup.parseFlags, [
    ...strict("backup"),
    [["a.db", "b.db"], 'backup: unexpected argument "b.db"'],
    [["--checksum", "crc"], 'backup: --checksum must be one of sha256, md5, none, not "crc"'],
    [["--verify", "slow"], 'backup: --verify must be one of full, quick, none, not "slow"'],
    [["--checkpoint", "now"], "--checkpoint must be one of passive, full, restart, truncate"],
    [["--checkpoint", "full", "--skip-checkpoint"], "contradict each other"],
    [["--busy-timeout", "-1"], "backup: --busy-timeout must be a whole number between 0"],
    [["--keep-days", "7"], "backup: --keep-days needs --prune (or --cleanup)"],
    [["--prune", "--keep-days", "soon"], "--keep-days must be a whole number between 0"],
    [["--stats-only", "--prune"], "--stats-only and --prune cannot go together"],
    // The message names the flag the user typed.
    [["--stats-only", "--cleanup"], "--stats-only and --cleanup cannot go together"],
    [["--checksum"], "backup: --checksum needs a value"],
  ]);
});

Deno.test("prune parseFlags() reads the keep rules and --dry-run", async (t) => {
  await parses(t, prune.parseFlags, [
    [[], { dir: undefined, policy: undefined, dryRun: false }],
    [["backups"], { dir: "backups" }],
    [["--dry-run"], { dryRun: true }],
    [["--keep-days", "7", "--keep-count", "10"], { policy: { days: 7, count: 10 } }],
    [["--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "12"], {
      policy: { daily: 7, weekly: 4, monthly: 12 },
    }],
    [["--keep-last", "0"], { policy: { last: 0 } }],
  ]);
  await refuses(t, prune.parseFlags, [
    ...strict("prune"),
    [["a", "b"], 'prune: unexpected argument "b"'],
    [
      ["--keep-days", "1.5"],
      'prune: --keep-days must be a whole number between 0 and 36500, not "1.5"',
    ],
    [["--keep-days", "36501"], 'not "36501"'],
    [["--keep-count", "x"], "--keep-count must be a whole number"],
  ]);
});

Deno.test("verify parseFlags() takes any number of paths and --quick", async (t) => {
  await parses(t, verify.parseFlags, [
    [[], { paths: [], quick: false }],
    [["a.db", "backups/"], { paths: ["a.db", "backups/"] }],
    [["--quick", "a.db"], { paths: ["a.db"], quick: true }],
  ]);
  await refuses(t, verify.parseFlags, [...strict("verify"), [["--quick=yes"], "verify:"]]);
});

Deno.test("stats parseFlags() reads --max-age as seconds and keeps the text", async (t) => {
  await parses(t, stats.parseFlags, [
    [[], { path: undefined, maxAge: undefined, busyTimeoutMs: undefined }],
    [["backups"], { path: "backups" }],
    [["--max-age", "26h"], { maxAge: { seconds: 93_600, text: "26h" } }],
    [["--busy-timeout", "0"], { busyTimeoutMs: 0 }],
  ]);
  await refuses(t, stats.parseFlags, [
    ...strict("stats"),
    [["a", "b"], 'stats: unexpected argument "b"'],
    [
      ["--max-age", "26"],
      'stats: --max-age must be a duration such as 90m, 26h, 2d or 1w, not "26"',
    ],
    [
      ["--busy-timeout", "86400001"],
      "--busy-timeout must be a whole number between 0 and 86400000",
    ],
  ]);
});

Deno.test("checkpoint parseFlags() defaults to passive and reads --mode in any case", async (t) => {
  await parses(t, checkpoint.parseFlags, [
    [[], { db: undefined, mode: "passive", busyTimeoutMs: undefined }],
    [["gym.db", "--mode", "Truncate"], { db: "gym.db", mode: "truncate" }],
    [["--mode", "restart", "--busy-timeout", "250"], { mode: "restart", busyTimeoutMs: 250 }],
  ]);
  await refuses(t, checkpoint.parseFlags, [
    ...strict("checkpoint"),
    [
      ["--mode", "hard"],
      'checkpoint: --mode must be one of passive, full, restart, truncate, not "hard"',
    ],
    [["a", "b"], 'checkpoint: unexpected argument "b"'],
  ]);
});

Deno.test("restore parseFlags() needs a backup and takes an optional database", async (t) => {
  await parses(t, restore.parseFlags, [
    [["b.db"], { backup: "b.db", db: undefined, dryRun: false, busyTimeoutMs: undefined }],
    [["b.db", "gym.db", "--dry-run"], { backup: "b.db", db: "gym.db", dryRun: true }],
    [["b.db", "--busy-timeout", "100"], { busyTimeoutMs: 100 }],
  ]);
  await refuses(t, restore.parseFlags, [
    ...strict("restore"),
    [[], "restore: no backup given"],
    [["a", "b", "c"], 'restore: unexpected argument "c"'],
    [["b.db", "--busy-timeout", "soon"], "restore: --busy-timeout must be a whole number"],
  ]);
});

Deno.test("pull parseFlags() reads HOST:PATH, the local path, methods and remote flags", async (t) => {
  await parses(t, pull.parseFlags, [
    [[], {
      source: undefined,
      local: undefined,
      // Unset: delta against a protocol-2 litekeep with a local copy, else snapshot.
      method: undefined,
      compress: undefined,
      verify: undefined,
      localBackup: true,
      backupDir: undefined,
      checksum: undefined,
      infoOnly: false,
      busyTimeoutMs: undefined,
    }],
    [["pi:/home/pi/app.db"], { source: { host: "pi", path: "/home/pi/app.db" }, local: undefined }],
    [["pi:/home/pi/app.db", "instance/app.db"], {
      source: { host: "pi", path: "/home/pi/app.db" },
      local: "instance/app.db",
    }],
    [["pi@[::1]:/db"], { source: { host: "pi@[::1]", path: "/db" } }],
    // One argument that is not HOST:PATH is the local database (the remote from the config).
    [["instance/app.db"], { source: undefined, local: "instance/app.db" }],
    [["--method", "scp"], { method: "scp" }],
    [["--method", "delta"], { method: "delta" }],
    // "query" is snapshot's old name: accepted, and pullDatabase runs it as snapshot.
    [["--method", "query"], { method: "query" }],
    [["--compress", "gzip"], { compress: "gzip" }],
    [["--compress", "zstd"], { compress: "zstd" }],
    [["--verify", "quick"], { verify: "quick" }],
    [["--no-local-backup"], { localBackup: false }],
    [["-d", "backups", "--checksum", "md5"], { backupDir: "backups", checksum: "md5" }],
    [["--info-only"], { infoOnly: true }],
    [["--busy-timeout", "9"], { busyTimeoutMs: 9 }],
    [["--ssh-option", "Port=2222", "--ssh-option", "Compression=no", "--remote-tool", "python3"], {
      "values.ssh-option": ["Port=2222", "Compression=no"],
      "values.remote-tool": "python3",
    }],
  ]);
  await refuses(t, pull.parseFlags, [
    ...strict("pull"),
    [["a.db", "b.db"], 'pull: "a.db" is not HOST:PATH'],
    [["pi:/a", "b", "c"], 'pull: unexpected argument "c"'],
    [["pi:"], 'No remote path in "pi:"'],
    // After "--" a host that ssh would read as an option is refused, not passed on.
    [["--", "-pi:/db"], 'Refusing host "-pi": a host cannot start with "-"'],
    [
      ["--method", "rsync"],
      'pull: --method must be one of snapshot, query, scp, delta, not "rsync"',
    ],
    [["--compress", "lz4"], 'pull: --compress must be one of none, gzip, zstd, not "lz4"'],
    [["--verify", "fast"], 'pull: --verify must be one of full, quick, none, not "fast"'],
    [["--checksum", "sha1"], 'pull: --checksum must be one of sha256, md5, none, not "sha1"'],
  ]);
});

Deno.test("info parseFlags() reads a location, --order-by and the remote flags", async (t) => {
  await parses(t, info.parseFlags, [
    [[], { location: undefined, orderBy: {}, busyTimeoutMs: undefined }],
    [["pi:/db", "--order-by", "payments.paid_at", "--order-by", "notes.id"], {
      location: "pi:/db",
      orderBy: { payments: "paid_at", notes: "id" },
    }],
    [["gym.db", "--connect-timeout", "3", "--remote-bin", "/opt/litekeep"], {
      "values.connect-timeout": "3",
      "values.remote-bin": "/opt/litekeep",
    }],
  ]);
  await refuses(t, info.parseFlags, [
    ...strict("info"),
    [["a", "b"], 'info: unexpected argument "b"'],
    [["--order-by", "paid_at"], 'info: --order-by must be TABLE.COLUMN, not "paid_at"'],
    [["--busy-timeout", "x"], "info: --busy-timeout must be a whole number"],
  ]);
});

Deno.test("compare parseFlags() needs exactly two databases", async (t) => {
  await parses(t, compare.parseFlags, [
    [["a.db", "pi:/b.db"], { a: "a.db", b: "pi:/b.db", orderBy: {} }],
    [["a.db", "b.db", "--order-by", "t.c", "--remote-tool", "sqlite3"], {
      orderBy: { t: "c" },
      "values.remote-tool": "sqlite3",
    }],
  ]);
  await refuses(t, compare.parseFlags, [
    ...strict("compare"),
    [[], "compare: needs two databases, got 0"],
    [["a.db"], "compare: needs two databases, got 1"],
    [["a", "b", "c"], "compare: needs two databases, got 3"],
    [["a", "b", "--order-by", "t"], 'compare: --order-by must be TABLE.COLUMN, not "t"'],
  ]);
});

Deno.test("agent parseFlags() reads the protocol and the positional words ssh carries", async (t) => {
  await parses(t, agent.parseFlags, [
    [["--protocol", "3", "snapshot", "/db", "/tmp", "gzip", "t\tc\nu\td"], {
      protocol: 3,
      op: "snapshot",
      db: "/db",
      tmpDir: "/tmp",
      compress: "gzip",
      orderBy: { t: "c", u: "d" },
    }],
    // Missing words are empty, and any compression other than gzip is none.
    [["--protocol", "3", "info"], {
      op: "info",
      db: "",
      tmpDir: "",
      compress: "none",
      orderBy: {},
    }],
    [["--protocol", "3", "snapshot", "/db", "", "zstd", ""], { compress: "none" }],
  ]);
  await refuses(t, agent.parseFlags, strict("agent"));
});
