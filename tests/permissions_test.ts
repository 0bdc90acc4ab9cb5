import assert from "node:assert/strict";
import { join } from "node:path";
import { PERMISSIONS } from "../lib/permissions.ts";
import { cliCommand, ROOT } from "./_helpers.ts";

Deno.test("PERMISSIONS are what deno.json's litekeep task runs with", async () => {
  // deno.json cannot import the list, so it spells it again: this keeps the two equal.
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const words = (config.tasks.litekeep as string).split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "run"]);
  assert.equal(words.at(-1), "main.ts");
  assert.deepEqual(words.slice(2, -1), [...PERMISSIONS]);
});

Deno.test("PERMISSIONS are what the README says the binary has baked in", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const shown = /Permissions\s+baked in[^`]*\(`lib\/permissions\.ts`[^`]*\):\s+`([^`]+)`/.exec(
    readme,
  );
  assert.ok(shown, "the README's build section shows the permissions once");
  assert.deepEqual(shown[1].split(/\s+/), [...PERMISSIONS]);
});

Deno.test("PERMISSIONS are what litekeep from source runs with in the tests and benches", () => {
  const argv = cliCommand(["--version"]);
  assert.deepEqual(argv.slice(0, 1 + PERMISSIONS.length), ["run", ...PERMISSIONS]);
  assert.deepEqual(argv.slice(-2), [join(ROOT, "main.ts"), "--version"]);
});
