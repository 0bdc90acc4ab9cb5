/**
 * The `startup` benchmark group: how long `litekeep --version` takes under `deno run`, beside
 * Deno running an empty script, which is the part of it litekeep cannot make shorter.
 *
 * @module
 */
import { join } from "node:path";
import { VERSION } from "../../lib/version.ts";
import { runInterleaved, type Tool } from "./measure.ts";
import {
  type BenchContext,
  type BenchGroup,
  caseTable,
  type GroupResult,
  medianSeconds,
} from "./markdown.ts";
import { litekeepArgv } from "../../tests/support/sshd.ts";

/** Runs of each: start-up is short and noisy, so more than the sizes get. */
const RUNS = 20;

/** A tool that must print exactly `expected`. */
function printing(name: string, argv: string[], expected: string): Tool {
  return {
    name,
    steps: () => [argv],
    check(_out, stdout) {
      if (stdout !== expected) throw new Error(`${name}: printed ${JSON.stringify(stdout)}`);
      return Promise.resolve();
    },
  };
}

function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(0)} ms`;
}

/** The startup group. */
export const startupGroup: BenchGroup = {
  title: "Start-up",
  summary: "`litekeep --version` run from source, against `deno run` of an empty script " +
    `(Deno's own start), ${RUNS} runs each, interleaved, after one warm-up run.`,
  async run(ctx: BenchContext): Promise<GroupResult> {
    const script = async (name: string, text: string) => {
      const path = join(ctx.work, name);
      await Deno.writeTextFile(path, text);
      return path;
    };
    const empty = await script("empty.ts", "");
    const crypto = await script("crypto.ts", 'import "node:crypto";\n');
    const tools = [
      printing("litekeep --version", litekeepArgv(["--version"]), `litekeep ${VERSION}\n`),
      {
        ...printing("deno run (empty script)", [Deno.execPath(), "run", empty], ""),
        labels: { [empty]: "empty.ts" },
      },
      // One import of litekeep's, alone: it is most of the gap between Deno's start and litekeep's.
      {
        ...printing("deno run (import node:crypto only)", [Deno.execPath(), "run", crypto], ""),
        labels: { [crypto]: "crypto.ts" },
      },
    ];
    const samples = await runInterleaved(tools, {
      runs: RUNS,
      work: ctx.work,
      log: ctx.log,
      label: "startup",
    });
    const [litekeep, deno, nodeCrypto] = samples.map(medianSeconds);
    return {
      tools,
      sections: [{
        title: "litekeep --version",
        paragraphs: [
          `Deno's start is ${ms(deno)} of litekeep's ${ms(litekeep)}; the rest is loading ` +
          `litekeep's modules, of which importing \`node:crypto\` alone takes ${
            ms(nodeCrypto - deno)
          } (\`crypto.ts\` holds only \`import "node:crypto";\`).`,
        ],
        table: caseTable(tools, samples, {
          references: [{ heading: "litekeep ÷ tool", index: 0 }],
        }),
      }],
      targets: [{
        id: 6,
        met: litekeep < 0.1,
        figure: `median ${ms(litekeep)} (Deno alone ${ms(deno)}, node:crypto ${
          ms(nodeCrypto - deno)
        })`,
      }],
    };
  },
};
