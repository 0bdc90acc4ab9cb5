import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const COMMANDS = fileURLToPath(new URL("../lib/commands/", import.meta.url));

/** The command files and helpers under lib/commands, by name. */
function commandFiles(): string[] {
  return [...Deno.readDirSync(COMMANDS)]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => e.name)
    .sort();
}

Deno.test("lib/commands/*.ts import no command file, only _ helpers", () => {
  // A command that imports another drags its flags, help and run() along, and hides shared
  // code in whichever command came first; shared code lives in lib/commands/_*.ts.
  const offending: string[] = [];
  for (const name of commandFiles()) {
    const text = Deno.readTextFileSync(`${COMMANDS}${name}`);
    for (const m of text.matchAll(/["'](?:\.\/|\.\.\/commands\/)([^"'/]+)\.ts["']/g)) {
      if (!m[1].startsWith("_")) offending.push(`${name} imports ${m[1]}.ts`);
    }
  }
  assert.deepEqual(offending, []);
});

Deno.test("the import check finds the command files", () => {
  // Guards the test above against a moved folder, where it would pass by finding nothing.
  const names = commandFiles();
  for (const name of ["backup.ts", "pull.ts", "_args.ts"]) assert.ok(names.includes(name), name);
});
