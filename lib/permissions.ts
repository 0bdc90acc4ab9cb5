/**
 * The permissions litekeep runs with, said once. `scripts/compile.ts` bakes them into the
 * binary; everything that runs litekeep from source as the binary's stand-in uses them too (the
 * demo, the tests' and benches' spawned litekeep, the remote litekeep over ssh). deno.json's
 * `litekeep` task and the README cannot import this, so `tests/permissions_test.ts` checks that
 * they spell the same list. The narrowest that work, because a binary's are fixed at build time.
 *
 * @module
 */

/** The `deno run` / `deno compile` flags litekeep needs, in this order. */
export const PERMISSIONS: readonly string[] = [
  // Databases, backups and configs live wherever the user says, so files anywhere.
  "--allow-read",
  "--allow-write",
  // The config file's settings, TMPDIR for the remote agent's temps, HOME for ssh.
  "--allow-env",
  // Free disk space for `info` (statfs), and nothing else of the system.
  "--allow-sys=statfs",
  // pull, info and compare over ssh: ssh and scp are the only programs litekeep starts.
  "--allow-run=ssh,scp",
  // Health pings (`--ping URL`, config "ping") to a monitor such as healthchecks.io. Any host:
  // the URL is the user's, and a binary's permissions are fixed before anyone has chosen it.
  "--allow-net",
];
