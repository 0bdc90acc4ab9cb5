/**
 * `deno task demo`: the main job on a built-in demo database. Creates a gym database in WAL
 * mode under `./demo/`, keeps a writer committing to it like the app does, and runs litekeep's
 * real command line on it: backup (twice), verify, and the resulting backup set.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { join } from "node:path";
import { PERMISSIONS } from "../lib/permissions.ts";
import { createGymDb } from "../tests/support/gym.ts";
import { startWriter } from "../tests/support/writer.ts";

const root = new URL("..", import.meta.url).pathname;
const demo = join(Deno.cwd(), "demo");
const db = join(demo, "instance", "gym_system.db");
const backups = join(demo, "data", "backups", "database");

async function litekeep(...args: string[]): Promise<number> {
  console.log(`\n$ litekeep ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      join(root, "main.ts"),
      ...args,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  console.log(`(exit ${code})`);
  return code;
}

await Deno.remove(demo, { recursive: true }).catch(() => {});
await Deno.mkdir(join(demo, "instance"), { recursive: true });
const rows = createGymDb(db, { payments: 20_000 });
console.log(`Created ${db} in WAL mode: ${JSON.stringify(rows)}`);
await Deno.writeTextFile(
  join(demo, "litekeep.json"),
  JSON.stringify({ db: "instance/gym_system.db", backupDir: "data/backups/database" }, null, 2),
);

const writer = await startWriter(db, demo, 200);
console.log("A writer is committing ~200 payments a second, as the app would.");
let failed = 0;
try {
  failed += await litekeep("backup", db, "--backup-dir", backups) === 0 ? 0 : 1;
  failed +=
    await litekeep("--config", join(demo, "litekeep.json"), "backup", "--checksum", "md5") === 0
      ? 0
      : 1;
  failed += await litekeep("verify", backups) === 0 ? 0 : 1;
} finally {
  const report = await writer.stop();
  console.log(
    `\nThe writer committed ${report.commits} transactions meanwhile, SQLITE_BUSY ${report.busy} times.`,
  );
}
console.log(`\nThe backup set in ${backups}:`);
for (const entry of [...Deno.readDirSync(backups)].sort((a, b) => a.name.localeCompare(b.name))) {
  if (entry.name.startsWith(".")) continue;
  console.log(`  ${entry.name.padEnd(48)} ${Deno.statSync(join(backups, entry.name)).size} bytes`);
}
const check = await new Deno.Command("sh", {
  args: ["-c", "sha256sum -c ./*.sha256 && md5sum -c ./*.md5"],
  cwd: backups,
  stdout: "inherit",
  stderr: "inherit",
}).output().catch(() => undefined);
if (check) console.log(`sha256sum -c / md5sum -c: ${check.success ? "OK" : "FAILED"}`);
if (failed > 0 || (check && !check.success)) Deno.exit(1);
console.log("\nDemo done. Try: deno task litekeep verify demo/data/backups/database");
