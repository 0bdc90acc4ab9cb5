import assert from "node:assert/strict";
import { durationValue } from "../lib/commands/_args.ts";
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
