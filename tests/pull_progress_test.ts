import assert from "node:assert/strict";
import { join } from "node:path";
import { describePull, pullStatus } from "../lib/commands/_pull_report.ts";
import type { PullResult } from "../lib/remote/pull.ts";
import { makeDb, runCli, startSshd, tempDir } from "./_helpers.ts";

Deno.test("pullStatus() shows no rate or time left until the data can say something", () => {
  // Found by the new-user trial: "30238 s left" from the first chunk after the remote's wait.
  const early = pullStatus({ phase: "transfer", received: 64 * 1024, expected: 2 ** 30 }, 0.2);
  assert.equal(early, "pull: 64.0 KiB of 1.0 GiB");
  const few = pullStatus({ phase: "transfer", received: 1024, expected: 2 ** 30 }, 5);
  assert.equal(few, "pull: 1.0 KiB of 1.0 GiB");
  const later = pullStatus({ phase: "transfer", received: 2 ** 29, expected: 2 ** 30 }, 4);
  assert.equal(later, "pull: 512.0 MiB of 1.0 GiB, 128.0 MiB/s, 4 s left");
});

Deno.test("pullStatus() of a delta counts the changed pages, not the copy's bytes as travelled", () => {
  // Found by the new-user trial: a delta that sent 29 pages showed "70.0 MiB of 96.3 MiB", as
  // if the whole database were on its way.
  const changedPages = { received: 12, wanted: 29 };
  const early = pullStatus(
    { phase: "transfer", received: 70 * 2 ** 20, expected: 96 * 2 ** 20, changedPages },
    1,
  );
  assert.equal(early, "pull: 12 of 29 changed pages received, copy at 70.0 MiB of 96.0 MiB");
  const later = pullStatus(
    { phase: "transfer", received: 2 ** 29, expected: 2 ** 30, changedPages },
    4,
  );
  assert.equal(
    later,
    "pull: 12 of 29 changed pages received, copy at 512.0 MiB of 1.0 GiB, 4 s left",
  );
});

Deno.test("pull on a terminal says at once that it waits for the host", async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const res = await runCli(["pull", `${sshd.host}:${remote}`, join(dir.path, "local.db")], {
    terminal: true,
  });
  assert.equal(res.code, 0, res.stderr);
  assert.ok(
    res.stderr.startsWith(`\r\x1b[Kpull: waiting for ${sshd.host}...`),
    JSON.stringify(res.stderr.slice(0, 200)),
  );
  const quiet = await runCli(
    ["pull", `${sshd.host}:${remote}`, join(dir.path, "local.db"), "--quiet"],
    { terminal: true },
  );
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
});

Deno.test("describePull() names the one reason no backup of the old local database was made", () => {
  const base: PullResult = {
    source: "pi:/x.db",
    localDb: "/l/x.db",
    method: "delta",
    tool: "litekeep",
    bytes: 4096,
    pagesSent: 1,
    pages: 1,
    unchanged: false,
    protocol: 2,
    compress: "zstd",
    sha256: "ab",
    durationMs: 10,
    tables: [],
    localBackup: null,
    created: false,
    integrity: "ok",
    verify: "full",
    rowCounts: "match",
    rowCountDifferences: [],
    prune: null,
    warnings: [],
  };
  const line = (r: PullResult, asked = {}) =>
    describePull(r, asked).split("\n").find((l) => l.startsWith("  backup"));
  assert.equal(line({ ...base, created: true }), "  backup    none (there was no local database)");
  assert.equal(line(base, { localBackup: false }), "  backup    none (--no-local-backup)");
  assert.equal(line(base), "  backup    none (the local database was empty)");
  assert.equal(line({ ...base, localBackup: "/l/b.db" }), "  backup    /l/b.db");
});

Deno.test("pull warns when the litekeep named by --remote-bin is not on the remote", async () => {
  // Found by the new-user trial: a wrong --remote-bin fell back to python3 without a word.
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const remote = join(dir.path, "remote.db");
  makeDb(remote);
  const local = join(dir.path, "local.db");
  const args = ["pull", `${sshd.host}:${remote}`, local, "--remote-bin", "/nonexistent/litekeep"];
  const res = await runCli(args);
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stderr,
    /warning: litekeep "\/nonexistent\/litekeep" was not found on testpi: the pull ran through python3 \(protocol 1/,
  );
  const json = await runCli([...args, "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout);
  assert.equal(out.tool, "python3");
  assert.equal(out.warnings.length, 1, out.warnings);
  assert.match(out.warnings[0], /was not found on testpi/);
  // Without --remote-bin, python3 is the documented way: no warning.
  const plain = await runCli(["pull", `${sshd.host}:${remote}`, local]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr, /was not found/);
});
