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

/**
 * The V8 flags the binary is built with (`deno compile --v8-flags=...`; a compiled binary reads
 * no `DENO_V8_FLAGS`), and the remote litekeep's stand-in runs with: a 1 MiB young generation
 * (V8's default grows it to 16 MiB per semi-space, which a pass over a database's pages fills
 * with dead objects) and no TurboFan (whose compiler touched ~3 MB more of the binary and heap,
 * for hot loops whose time is in native hashing, reads and zstd anyway), and `gc` exposed to
 * the page hashing (protocol2.ts, ImageHashes). Measured on the agent
 * of a 100 MB pull: peak RSS 72-75 MiB -> 61-63 MiB, CPU time unchanged within noise
 * (docs/PERF_NOTES.md).
 */
export const V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=1",
  "--no-opt",
  // For the full collections protocol2.ts's ImageHashes asks for (see there).
  "--expose-gc",
];
