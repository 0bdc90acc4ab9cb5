/**
 * Peak memory and time of protocol-2 pulls through a real loopback sshd: a first pull, a pull
 * after a 1% change (half updates spread over all tables, half inserts, 50-row transactions)
 * and an unchanged pull. Prints the remote agent's and the local litekeep's peak RSS (GNU time
 * `%M`, KiB) and the wall time of each. Not a test; see docs/PERF_NOTES.md.
 *
 *   deno run --allow-all scripts/bench/perf_pull.ts [MB] [rounds] [-- extra deno flags for the remote]
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { createGymDb } from "../../tests/support/gym.ts";
import { V8_FLAGS } from "../../lib/permissions.ts";
import { litekeepArgv, remoteLitekeep, startSshd } from "../../tests/support/sshd.ts";

const mb = Number(Deno.args[0] ?? 100);
const rounds = Number(Deno.args[1] ?? 1);
const ROOT = new URL("../..", import.meta.url).pathname;
const cache = join(ROOT, "bench-data");
await Deno.mkdir(cache, { recursive: true });
const cached = join(cache, `perf-gym-${mb}mb.db`);
if (!(await Deno.stat(cached).catch(() => null))) {
  const temp = `${cached}.generating`;
  createGymDb(temp, { payments: mb * 4_250, noteBytes: 100 });
  const c = new DatabaseSync(temp);
  c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  c.close();
  await Deno.rename(temp, cached);
}

/** 1% of the rows: half updates spread over every table, half inserts, 50-row transactions. */
function changeOnePercent(db: string, round: number): void {
  const c = new DatabaseSync(db);
  const tables = ["members", "lockers", "rentals", "payments"];
  const counts = tables.map((t) =>
    Number((c.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n)
  );
  const total = counts.reduce((a, b) => a + b, 0);
  const change = Math.floor(total / 100);
  let done = 0;
  let seed = round * 7919;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  while (done < change) {
    c.exec("BEGIN");
    for (let i = 0; i < 50 && done < change; i++, done++) {
      if (done % 2 === 0) {
        const t = Math.floor(rnd() * tables.length);
        const id = 1 + Math.floor(rnd() * counts[t]);
        const col = { members: "phone", lockers: "zone", rentals: "ends_at", payments: "method" }[
          tables[t]
        ];
        c.exec(`UPDATE ${tables[t]} SET ${col} = 'u${round}-${done}' WHERE id = ${id}`);
      } else {
        c.exec(
          `INSERT INTO payments SELECT NULL, member_id, amount_cents, paid_at, method, 'i${round}-${done}' || note FROM payments WHERE id = ${
            1 + Math.floor(rnd() * counts[3])
          }`,
        );
      }
    }
    c.exec("COMMIT");
  }
  c.close();
}

await using sshd = await startSshd();
const work = await Deno.makeTempDir({ prefix: "perf-pull-", dir: cache });
try {
  const remote = join(work, "remote.db");
  await Deno.copyFile(cached, remote);
  const rssLog = join(work, "rss.log");
  await Deno.writeTextFile(rssLog, "");
  const bin = await remoteLitekeep(work, rssLog);
  // Each run logs "peak-KiB user-s system-s"; the remote's extra deno flags follow "--".
  const extra = Deno.args.indexOf("--");
  const flags = extra >= 0 ? Deno.args.slice(extra + 1).join(" ") : "";
  const text = await Deno.readTextFile(bin);
  await Deno.writeTextFile(
    bin,
    text.replace("-f %M ", `-f "%M %U %S" `).replace(" run --quiet ", ` run --quiet ${flags} `),
  );
  const takeRss = async (log: string) => {
    const lines = (await Deno.readTextFile(log)).split("\n").filter((l) => /^\d+ /.test(l))
      .map((l) => l.split(" ").map(Number));
    await Deno.writeTextFile(log, "");
    return lines.length
      ? {
        kib: Math.max(...lines.map((l) => l[0])),
        cpu: lines.reduce((n, l) => n + l[1] + l[2], 0),
      }
      : { kib: NaN, cpu: NaN };
  };
  const local = join(work, "local.db");
  const localRssLog = join(work, "local-rss.log");
  const run = async (what: string) => {
    const argv = litekeepArgv([
      "pull",
      `${sshd.host}:${remote}`,
      local,
      "--remote-bin",
      bin,
      "--json",
    ]);
    // PERF_LOCAL_FLAGS=1: the local side with the binary's V8 flags, as the compiled binary runs.
    if (Deno.env.get("PERF_LOCAL_FLAGS") === "1") {
      argv.splice(2, 0, `--v8-flags=${V8_FLAGS.join(",")}`);
    }
    const t0 = performance.now();
    const child = new Deno.Command("/usr/bin/time", {
      args: ["-a", "-o", localRssLog, "-f", "%M %U %S", ...argv],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // PERF_TIMELINE=1: the local litekeep's RSS over time (every 50 ms, when it moved 4 MiB).
    const timeline: string[] = [];
    let sampling = Deno.env.get("PERF_TIMELINE") === "1";
    const sampler = (async () => {
      let last = 0;
      while (sampling) {
        await new Promise((r) => setTimeout(r, 50));
        try {
          const kids = (await Deno.readTextFile(`/proc/${child.pid}/task/${child.pid}/children`))
            .trim();
          if (!kids) continue;
          const status = await Deno.readTextFile(`/proc/${kids.split(" ")[0]}/status`);
          const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
          if (Math.abs(rss - last) >= 4) {
            timeline.push(`${((performance.now() - t0) / 1000).toFixed(2)}s:${rss.toFixed(0)}`);
            last = rss;
          }
        } catch {
          // Not started yet, or gone.
        }
      }
    })();
    const out = await child.output();
    sampling = false;
    await sampler;
    if (timeline.length) console.log(`  local RSS MiB: ${timeline.join(" ")}`);
    const seconds = (performance.now() - t0) / 1000;
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    const json = JSON.parse(new TextDecoder().decode(out.stdout));
    const r = await takeRss(rssLog);
    const l = await takeRss(localRssLog);
    console.log(
      `${what.padEnd(10)} ${seconds.toFixed(2)} s  remote ${(r.kib / 1024).toFixed(1)} MiB ${
        r.cpu.toFixed(2)
      } cpu-s  local ${(l.kib / 1024).toFixed(1)} MiB ${
        l.cpu.toFixed(2)
      } cpu-s  pagesSent ${json.pagesSent} of ${json.pages}`,
    );
  };
  for (let i = 0; i < rounds; i++) {
    await Deno.remove(local).catch(() => {});
    for (const s of ["-wal", "-shm"]) await Deno.remove(local + s).catch(() => {});
    await Deno.remove(join(work, "backups"), { recursive: true }).catch(() => {});
    await run("first");
    changeOnePercent(remote, i + 1);
    await run("delta");
    await run("unchanged");
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
