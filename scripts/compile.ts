/**
 * `deno task compile`: builds `dist/litekeep-<target>` for the four supported targets with the
 * permissions baked in. `deno compile` downloads the runtime (`denort`) of each target, so this
 * needs the internet; with `DENORT_BIN` set, that local runtime is used instead (host target
 * only), which is how CI builds without a network.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { join } from "node:path";
import { PERMISSIONS, V8_FLAGS } from "../lib/permissions.ts";

/** The targets litekeep ships for: Raspberry Pi OS 64-bit, Macs, Linux PCs. */
export const TARGETS = [
  "aarch64-unknown-linux-gnu",
  "aarch64-apple-darwin",
  "x86_64-apple-darwin",
  "x86_64-unknown-linux-gnu",
] as const;

const root = new URL("..", import.meta.url).pathname;
const wanted = Deno.args.length > 0 ? Deno.args : [...TARGETS];
const denort = Deno.env.get("DENORT_BIN");
let failed = 0;
for (const target of wanted) {
  const output = join(root, "dist", `litekeep-${target}`);
  const args = [
    "compile",
    "--no-check",
    ...PERMISSIONS,
    `--v8-flags=${V8_FLAGS.join(",")}`,
    // Workers are not found by static analysis: the integrity-check and hash workers are
    // included by hand.
    "--include",
    join(root, "lib", "engine", "check_worker.ts"),
    "--include",
    join(root, "lib", "engine", "hash_worker.ts"),
    "--target",
    target,
    "--output",
    output,
    join(root, "main.ts"),
  ];
  console.log(`deno ${args.join(" ")}`);
  const { success } = await new Deno.Command(Deno.execPath(), {
    args,
    env: denort ? { DENORT_BIN: denort } : {},
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!success) failed++;
}
if (failed > 0) {
  console.error(`${failed} of ${wanted.length} targets failed to build`);
  Deno.exit(1);
}
