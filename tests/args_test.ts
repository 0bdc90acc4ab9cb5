import assert from "node:assert/strict";
import { durationValue, intValue, parseStrict } from "../lib/commands/_args.ts";
import { UsageError } from "../lib/errors.ts";

Deno.test("durationValue() reads durations with a unit, in seconds", async (t) => {
  const cases: Array<[string, number]> = [
    ["45s", 45],
    ["90m", 5400],
    ["26h", 93_600],
    ["2d", 172_800],
    ["1w", 604_800],
    ["1d12h", 129_600],
  ];
  for (const [text, seconds] of cases) {
    await t.step(text, () => assert.equal(durationValue("stats", "max-age", text), seconds));
  }
});

Deno.test("durationValue() refuses a bare number, a zero and anything else", async (t) => {
  for (const text of ["26", "0h", "", "2 d", "1y", "-1h", "1.5h", "h"]) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(
        () => durationValue("stats", "max-age", text),
        (e) => e instanceof UsageError && e.message.includes(`not "${text}"`),
      );
    });
  }
});

Deno.test("intValue() refuses values outside its range, naming the flag and the range", async (t) => {
  const cases: Array<[string, number, number]> = [
    ["-3", 0, 36_500],
    ["36501", 0, 36_500],
    ["999999999", 0, 36_500],
    ["99999999999", 0, 86_400_000],
    ["1e9", 0, 1_000_000],
    ["0", 1, 3600],
  ];
  for (const [text, min, max] of cases) {
    await t.step(`${text} in ${min}..${max}`, () => {
      assert.throws(
        () => intValue("prune", "keep-days", text, min, max),
        (e) =>
          e instanceof UsageError &&
          e.message ===
            `prune: --keep-days must be a whole number between ${min} and ${max}, not "${text}"`,
      );
    });
  }
  assert.equal(intValue("prune", "keep-days", "36500", 0, 36_500), 36_500);
});

Deno.test("parseStrict() turns node:util's errors into one plain line", async (t) => {
  const options = { "keep-days": { type: "string" }, "dry-run": { type: "boolean" } } as const;
  const cases: Array<[string[], string]> = [
    [["--frob"], 'prune: unknown option "--frob"'],
    [["--keep-days"], "prune: --keep-days needs a value"],
    [["--dry-run=yes"], "prune: --dry-run takes no value"],
    [
      ["--keep-days", "-x"],
      'prune: --keep-days needs a value (write --keep-days=-x for one that starts with "-")',
    ],
  ];
  for (const [argv, message] of cases) {
    await t.step(argv.join(" "), () => {
      assert.throws(
        () => parseStrict("prune", argv, options),
        (e) => e instanceof UsageError && e.message === message,
      );
    });
  }
  await t.step("a negative number is a value, for the range check to refuse", () => {
    assert.equal(parseStrict("prune", ["--keep-days", "-3"], options).values["keep-days"], "-3");
  });
});
