import assert from "node:assert/strict";
import { join } from "node:path";
import { BusyError } from "../lib/errors.ts";
import { acquireLock, acquireLocks, dbLockPath, dirLockPath } from "../lib/files/lock.ts";
import { count, holdLock, ls, makeDb, spawnCli, tempDir } from "./_helpers.ts";

Deno.test("acquireLock() is not re-entrant: a lock this process holds is busy", async () => {
  await using dir = await tempDir();
  const path = dirLockPath(dir.path);
  await using _held = await acquireLock(path, `backup folder "${dir.path}"`);
  await assert.rejects(
    acquireLock(path, `backup folder "${dir.path}"`),
    (e) => e instanceof BusyError && e.exitCode === 75 && /Another litekeep run/.test(e.message),
  );
});

/**
 * A PATH whose `scp` copies `host:path` from this machine (and whose `ssh` fails, so the row
 * counts are unknown): `pull --method scp` without any remote.
 */
async function localScp(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const script = `#!/bin/sh
for last; do :; done
src=""; for a; do case "$a" in *:/*) src="\${a#*:}";; esac; done
[ -e "$src" ] || { echo "scp: $src: No such file or directory" >&2; exit 1; }
cp "$src" "$last"
`;
  await Deno.writeTextFile(join(dir, "scp"), script, { mode: 0o755 });
  await Deno.writeTextFile(join(dir, "ssh"), "#!/bin/sh\necho 'ssh: refused' >&2\nexit 255\n", {
    mode: 0o755,
  });
  await Deno.chmod(join(dir, "scp"), 0o755);
  await Deno.chmod(join(dir, "ssh"), 0o755);
  return `${dir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
}

Deno.test("pull takes the backup folder's lock once, exits 75 while another run holds it, and frees both locks", async () => {
  await using dir = await tempDir();
  const PATH = await localScp(join(dir.path, "bin"));
  const remote = join(dir.path, "remote.db");
  makeDb(remote, { payments: 30 });
  const local = join(dir.path, "local.db");
  makeDb(local, { payments: 5 });
  const backups = join(dir.path, "backups");
  await Deno.mkdir(backups);
  const args = ["pull", `pi:${remote}`, local, "--method", "scp", "--json"];

  {
    await using _other = await holdLock(dirLockPath(backups));
    const busy = await spawnCli(args, { env: { PATH } });
    assert.equal(busy.code, 75, busy.stderr);
    const error = JSON.parse(busy.stdout).error;
    assert.equal(error.exitCode, 75);
    assert.match(error.message, /^Another litekeep run is working on backup folder ".*backups"/);
    assert.equal(count(local, "payments"), 5, "the local database was changed");
    assert.deepEqual((await ls(backups)).filter((n) => n.endsWith(".db")), []);
    assert.deepEqual((await ls(dir.path)).filter((n) => n.startsWith(".litekeep-tmp-")), []);
  }

  const res = await spawnCli(args, { env: { PATH } });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(count(local, "payments"), 30);
  assert.equal(count(out.localBackup, "payments"), 5, "the backup holds the old local database");
  // Both locks are free again once the run is over.
  await using _both = await acquireLocks([
    { path: dbLockPath(local), what: "database" },
    { path: dirLockPath(backups), what: "backup folder" },
  ]);
});
