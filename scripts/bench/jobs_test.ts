import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { applyChange, planChange } from "./change.ts";
import { helpChoices, pullVariants } from "./pull_options.ts";
import {
  boundOf,
  type JobRun,
  type JobsMeasurements,
  judgeJobTargets,
  renderJobsReport,
  spliceSection,
  type ToolJob,
} from "./jobs_report.ts";
import { ranAs } from "./remote_jobs.ts";
import { createGymDb } from "../../tests/support/gym.ts";
import { tempDir } from "../../tests/_helpers.ts";

const ROWS = { members: 344, lockers: 120, rentals: 120, payments: 425_000 };

Deno.test("planChange() changes 1% of the rows, half updates half inserts, in every table", () => {
  const plan = planChange(ROWS);
  const all = plan.transactions.flat();
  const total = Object.values(ROWS).reduce((a, b) => a + b, 0);
  assert.equal(all.length, Math.round(total / 100));
  assert.ok(Math.abs(plan.updates - plan.inserts) <= 1, `${plan.updates} vs ${plan.inserts}`);
  assert.ok(plan.transactions.every((t) => t.length <= 50 && t.length > 0));
  assert.equal(plan.transactions.length, Math.ceil(all.length / 50));
  for (const table of Object.keys(ROWS)) {
    const mine = all.filter((c) => c.table === table);
    const updates = mine.filter((c) => c.kind === "update").map((c) => c.id);
    assert.ok(updates.length >= 1, `${table} has updates`);
    assert.ok(mine.some((c) => c.kind === "insert"), `${table} has inserts`);
    assert.equal(new Set(updates).size, updates.length, `${table}: distinct rows`);
    assert.ok(updates.every((id) => id >= 1 && id <= ROWS[table as keyof typeof ROWS]));
  }
  // Uniform over all rows: the payments' share of the updates is about their share of rows.
  const paymentUpdates = all.filter((c) => c.table === "payments" && c.kind === "update").length;
  assert.ok(paymentUpdates / plan.updates > 0.98);
  // Spread over the table, not bunched at its start.
  const ids = all.filter((c) => c.table === "payments" && c.kind === "update").map((c) => c.id);
  assert.ok(Math.max(...ids) > 0.9 * ROWS.payments && Math.min(...ids) < 0.1 * ROWS.payments);
});

Deno.test("applyChange() updates and inserts the planned rows of a real gym database", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "gym.db");
  const pristine = join(dir.path, "pristine.db");
  createGymDb(path, { payments: 5000 });
  createGymDb(pristine, { payments: 5000 });
  const rows = { members: 344, lockers: 120, rentals: 120, payments: 5000 };
  const plan = planChange(rows, { fraction: 0.02 });
  applyChange(path, plan);
  const conn = new DatabaseSync(path);
  try {
    for (const table of Object.keys(rows)) {
      const inserts = plan.transactions.flat().filter((c) =>
        c.table === table && c.kind === "insert"
      );
      const n = Number(conn.prepare(`SELECT count(*) AS n FROM ${table}`).get()!.n);
      assert.equal(n, rows[table as keyof typeof rows] + inserts.length, table);
    }
    // Against a pristine copy from the same seed: exactly the planned payments changed.
    conn.exec(`ATTACH '${pristine}' AS old`);
    const changed = Number(
      conn.prepare(
        "SELECT count(*) AS n FROM payments JOIN old.payments AS o USING (id) " +
          "WHERE payments.amount_cents <> o.amount_cents",
      ).get()!.n,
    );
    const planned = plan.transactions.flat()
      .filter((c) => c.table === "payments" && c.kind === "update").length;
    assert.ok(planned > 0);
    assert.equal(changed, planned);
    assert.equal(conn.prepare("PRAGMA integrity_check").get()!.integrity_check, "ok");
  } finally {
    conn.close();
  }
});

const HELP = `Options:
  --method M               snapshot (default; "query" is its old name), scp (raw copy of .db
                           and .db-wal: fastest, but may be stale or torn while the app writes),
                           or delta (only the pages changed since the local copy travel)
  --compress C             none (default) or gzip: compress the stream (slow links)
  --no-local-backup        do not back the old local database up first
`;

Deno.test("helpChoices() reads the choices of a flag from today's and a later help text", () => {
  assert.deepEqual(helpChoices(HELP, "--method"), ["snapshot", "scp", "delta"]);
  assert.deepEqual(helpChoices(HELP, "--compress"), ["none", "gzip"]);
  assert.deepEqual(
    helpChoices(
      "  --compress C   zstd (default where both ends have it), gzip or none\n",
      "--compress",
    ),
    ["zstd", "gzip", "none"],
  );
  assert.deepEqual(helpChoices(HELP, "--nope"), []);
  assert.deepEqual(pullVariants(["snapshot", "scp"], ["none", "gzip"]).map((v) => v.label), [
    "litekeep (default)",
    "litekeep snapshot",
    "litekeep snapshot gzip",
    "litekeep scp",
  ]);
  assert.deepEqual(pullVariants(["delta"], ["zstd"], true).map((v) => v.flags.join(" ")), [
    "",
    "--verify quick",
    "--verify none --no-local-backup",
    "--method delta",
  ]);
});

function run(seconds: number, wireBytes: number, extra: Partial<JobRun> = {}): JobRun {
  return {
    seconds,
    wireBytes,
    localRssKiB: 80 * 1024,
    remoteRssKiB: 50 * 1024,
    remoteWriteBytes: 0,
    check: "ok",
    ...extra,
  };
}

function measured(lk: Record<"first" | "changed" | "nothing", ToolJob>): JobsMeasurements {
  const rs = (s: number, b: number): ToolJob => ({
    tool: "rsync -az",
    litekeep: false,
    runs: [run(s, b, { remoteRssKiB: null, remoteWriteBytes: null })],
  });
  return {
    command: "x",
    started: "now",
    machine: "m",
    dbBytes: 100e6,
    dbLabel: "db",
    changeSummary: "c",
    rounds: 1,
    rtt: "r",
    label: "Baseline",
    links: [{
      mbit: 100,
      sshStart: 0.4,
      rounds: 1,
      jobs: {
        first: [rs(4, 38e6), lk.first],
        changed: [rs(3, 25e6), lk.changed],
        nothing: [rs(0.6, 0.1e6), lk.nothing],
      },
    }],
    writer: {
      rate: 300,
      commits: 10,
      copies: [{ tool: "litekeep (default)", litekeep: true, verdict: "consistent", detail: "" }],
    },
    big: null,
  };
}

Deno.test("judgeJobTargets() marks a target failed when the figure misses it, and n/a when not run", () => {
  const tool = "litekeep (default)";
  const m = measured({
    first: { tool, litekeep: true, runs: [run(3.5, 30e6)] },
    changed: { tool, litekeep: true, runs: [run(9, 37e6, { remoteWriteBytes: 100e6 })] },
    nothing: { tool, litekeep: true, runs: [], error: "--method rejected" },
  });
  const t = Object.fromEntries(judgeJobTargets(m).map((r) => [r.id, r.byVariant[tool]]));
  assert.equal(t[1].met, true);
  assert.equal(t[2].met, false);
  assert.match(t[2].figure, /9\.00 s vs 3\.00 s, 37\.0 MB vs 25\.0 MB/);
  assert.equal(t[3].met, null);
  assert.equal(t[4].met, false, "a database's size written on the remote");
  assert.equal(t[5].met, true);
  assert.equal(t[6].met, null);
  assert.equal(t[8].met, true);
  const md = renderJobsReport(m);
  assert.match(md, /^## Baseline/);
  assert.match(md, /\*\*FAIL\*\*: 100 Mbit\/s: 9\.00 s vs 3\.00 s/);
  assert.match(md, /\| litekeep \(default\) \| n\/a: --method rejected \|/);
});

Deno.test("judgeJobTargets() judges the variants of a run that measured only the unchanged pull", () => {
  const tool = "litekeep (default)";
  const m = measured({
    first: { tool, litekeep: true, runs: [] },
    changed: { tool, litekeep: true, runs: [] },
    nothing: { tool, litekeep: true, runs: [run(1.2, 0.04e6)] },
  });
  m.links[0].jobs.first = [];
  m.links[0].jobs.changed = [];
  const t = Object.fromEntries(judgeJobTargets(m).map((r) => [r.id, r.byVariant[tool]]));
  assert.equal(t[3]?.met, true);
  assert.match(t[3].figure, /100 Mbit\/s: 1\.20 s/);
});

Deno.test("boundOf() names ssh start, the link, the remote disk or the CPU", () => {
  assert.equal(boundOf(0.7, 1e3, 100, 0.45, null, 100e6), "ssh start");
  assert.equal(boundOf(9, 100e6, 100, 0.45, 0, 100e6), "link");
  assert.match(boundOf(14, 100e6, 100, 0.45, 100e6, 100e6), /^remote disk \+ CPU \(link 57%\)$/);
  assert.match(boundOf(14, 10e6, 100, 0.45, 0, 100e6), /^CPU \(link 6%\)$/);
});

Deno.test("spliceSection() replaces its own section and keeps the rest of the report", () => {
  const once = spliceSection("# Old\n\nrest\n", "## New 1\n");
  assert.match(
    once,
    /^<!-- bench:remote-jobs jobs begin -->\n## New 1\n<!-- bench:remote-jobs jobs end -->\n\n# Old/,
  );
  const twice = spliceSection(once, "## New 2");
  assert.doesNotMatch(twice, /New 1/);
  assert.equal(twice.match(/# Old/g)?.length, 1);
  assert.match(twice, /## New 2/);
  const other = spliceSection(twice, "## Big", "big");
  assert.match(
    other,
    /## New 2\n<!-- bench:remote-jobs jobs end -->\n\n<!-- bench:remote-jobs big begin -->\n## Big\n/,
  );
  assert.equal(spliceSection(other, "## Big 2", "big").match(/## Big/g)?.length, 1);
});

Deno.test("the 1 GB part judges the local peak RSS of the first and the delta pull, and the agent's", () => {
  const tool = "litekeep (default)";
  const m = measured({
    first: { tool, litekeep: true, runs: [run(3.5, 30e6)] },
    changed: { tool, litekeep: true, runs: [run(2, 2e6)] },
    nothing: { tool, litekeep: true, runs: [run(0.6, 0.01e6)] },
  });
  const big = (job: "first" | "changed" | "nothing", localMiB: number, remoteMiB: number) => ({
    job,
    run: run(10, 1e9, { localRssKiB: localMiB * 1024, remoteRssKiB: remoteMiB * 1024 }),
    ran: job === "nothing" ? "unchanged" : "delta",
  });
  m.big = {
    size: "1000mb",
    bytes: 1e9,
    tool,
    run: big("first", 100, 40).run,
    pulls: [big("first", 100, 40), big("changed", 160, 70), big("nothing", 60, 30)],
  };
  const t = Object.fromEntries(judgeJobTargets(m).map((r) => [r.id, r.byVariant[tool]]));
  assert.equal(t[6].met, false, "the delta pull's 160 MiB misses 150 MiB");
  assert.match(t[6].figure, /first pull 100 MiB/);
  assert.match(t[6].figure, /delta pull .*160 MiB/);
  assert.equal(t[5].met, false, "the agent's 70 MiB in the 1 GB delta pull misses 64 MiB");
  assert.match(t[5].figure, /1000mb pulls: peak 70 MiB/);
  const md = renderJobsReport(m);
  assert.match(md, /\| pull after the 1% change \(delta onto the first pull's copy\) \| delta \|/);
  assert.match(md, /\| pull when nothing changed \| unchanged \|/);
  assert.match(md, /### 100 Mbit\/s, 1 round/);
  m.links[0].rounds = 0;
  assert.doesNotMatch(
    renderJobsReport(m),
    /### 100 Mbit\/s/,
    "a --rounds 0 run has no link tables",
  );
  m.links[0].rounds = 1;
  // A baseline's measurements (one first pull, no `pulls`) still render and judge.
  m.big = { size: "1000mb", bytes: 1e9, tool, run: big("first", 110, 40).run };
  const legacy = judgeJobTargets(m).find((r) => r.id === 6)!.byVariant[tool];
  assert.equal(legacy.met, true);
  assert.match(renderJobsReport(m), /\| litekeep \(default\) \| 10\.00 \| 110 \|/);
});

Deno.test("ranAs() says how a pull ran from its --json, an unchanged one included", () => {
  assert.equal(
    ranAs({ method: "delta", protocol: 2, compress: "zstd", pagesSent: 12, pages: 300 }),
    "delta, protocol 2, zstd, 12 of 300 pages",
  );
  assert.equal(
    ranAs({ method: "delta", protocol: 2, unchanged: true, sha256: null }),
    "unchanged (protocol 2)",
  );
  assert.equal(
    ranAs({ method: "snapshot", protocol: 2, compress: "zstd", pagesSent: null, pages: 300 }),
    "snapshot, protocol 2, zstd",
  );
  assert.equal(ranAs(undefined), "-");
});
