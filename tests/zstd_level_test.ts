/**
 * The agent's adaptive zstd level (lib/remote/zstd_level.ts), fed synthetic frame costs: no
 * clock, no timing assertions.
 */
import assert from "node:assert/strict";
import {
  LevelController,
  LEVELS,
  parseForcedLevels,
  RELATIVE_COST,
  START_LEVEL,
  WINDOW_FRAMES,
} from "../lib/remote/zstd_level.ts";

const FRAME = 256 << 10;
/** A frame's reading and hashing, beside compression. */
const OTHER_MS = 1;
/** Compression milliseconds of one frame at each level: level 1 at 0.5 ms, as measured. */
const cost = (level: number) => 0.5 * RELATIVE_COST[LEVELS.indexOf(level)];

/**
 * Runs `frames` frames through `c`: each frame's wait is `wait(level, compressMs)`. Returns
 * the level of every frame.
 */
function drive(
  c: LevelController,
  frames: number,
  wait: (level: number, compressMs: number) => number,
  compress: (level: number) => number = cost,
): number[] {
  const levels: number[] = [];
  for (let i = 0; i < frames; i++) {
    const level = c.level;
    levels.push(level);
    const compressMs = compress(level);
    const waitMs = wait(level, compressMs);
    c.observe({ bytes: FRAME, compressMs, waitMs, periodMs: OTHER_MS + compressMs + waitMs });
  }
  return levels;
}

/**
 * A pipeline: the agent's frame takes `otherMs` + compression; the link takes the compressed
 * bytes' time (`linkMs` at level 1, shrinking with the level as measured on a gym database).
 * The agent waits for the difference when the link is slower.
 */
function link(linkMs: number, otherMs = OTHER_MS) {
  const size: Record<number, number> = { 1: 10.83, 3: 10.88, 6: 8.99, 8: 8.67 };
  return (level: number, compressMs: number) =>
    Math.max(0.05, linkMs * size[level] / size[1] - otherMs - compressMs);
}

Deno.test("LevelController starts at the old fixed level and changes only per window", () => {
  const c = new LevelController();
  assert.equal(c.level, START_LEVEL);
  const levels = drive(c, WINDOW_FRAMES, () => 0);
  assert.deepEqual(levels, Array(WINDOW_FRAMES).fill(START_LEVEL));
  assert.equal(c.level, 1, "one CPU-bound window lowers one step");
});

Deno.test("LevelController lowers to 1 and stays there when the writes never wait", () => {
  const c = new LevelController();
  const levels = drive(c, 20 * WINDOW_FRAMES, () => 0);
  assert.equal(levels.at(-1), 1);
  assert.equal(Math.min(...levels), 1, "never below 1");
});

Deno.test("LevelController climbs to the top level on a slow link and stays", () => {
  const c = new LevelController();
  // 20 Mbit/s: a 27 KB frame takes ~11 ms on the link.
  const levels = drive(c, 40 * WINDOW_FRAMES, link(11));
  assert.equal(levels.at(-1), LEVELS.at(-1));
  assert.ok(levels.slice(-10 * WINDOW_FRAMES).every((l) => l === LEVELS.at(-1)), "no flapping");
});

Deno.test("LevelController keeps a fast level when the next one's extra cost is not covered twice", () => {
  const c = new LevelController();
  // ~3 ms a frame on the link; level 3 leaves ~1.5 ms of wait, level 6 would add 1.15 ms of
  // compression: it would fit, just, but not with the margin.
  const levels = drive(c, 40 * WINDOW_FRAMES, link(3));
  assert.ok(levels.every((l) => l <= 3), `levels ${[...new Set(levels)]}`);
});

Deno.test("LevelController settles on the step where the link and the CPU balance", () => {
  const c = new LevelController();
  // 4.5 ms a frame at level 1: level 3 waits 3 ms, twice level 6's extra 1.15 ms; level 6
  // waits 1.1 ms, not twice level 8's extra 1.2 ms, and more than a quarter of its own 1.65.
  const levels = drive(c, 60 * WINDOW_FRAMES, link(4.5));
  const tail = levels.slice(-20 * WINDOW_FRAMES);
  assert.deepEqual([...new Set(tail)], [6]);
});

Deno.test("LevelController learns a level that costs more than its estimate, and leaves it", () => {
  const c = new LevelController();
  // Level 6 costs 10x its estimate here (a slow core): the wait that justified the step does
  // not absorb it, so after one window at 6 it goes back and does not return.
  const slow = (level: number) => level === 6 ? 10 * cost(6) : cost(level);
  const levels = drive(c, 40 * WINDOW_FRAMES, link(4, 0.5), slow);
  const at6 = levels.filter((l) => l === 6).length;
  assert.ok(at6 > 0, "it tried 6");
  assert.ok(at6 <= 2 * WINDOW_FRAMES, `${at6} frames at 6`);
  assert.ok(levels.slice(-10 * WINDOW_FRAMES).every((l) => l === 3));
});

Deno.test("LevelController follows bursty backpressure, and one stall moves it one window", () => {
  // Over a shaped link ssh takes the data in bursts: most writes return at once, one in five
  // waits for all of them (mean 11 ms a frame at level 1, a 20 Mbit/s link).
  let frame = 0;
  const bursty = drive(new LevelController(), 40 * WINDOW_FRAMES, (level, compressMs) => {
    const mean = link(11)(level, compressMs);
    return frame++ % 5 === 4 ? 5 * mean : 0.05;
  });
  assert.equal(bursty.at(-1), LEVELS.at(-1));
  // CPU-bound, but one write waits 50 ms once: one window one step up, then down again.
  const c = new LevelController();
  drive(c, 4 * WINDOW_FRAMES, () => 0);
  frame = 0;
  const stalled = drive(c, 10 * WINDOW_FRAMES, () => (frame++ === 3 ? 50 : 0));
  assert.deepEqual(
    [...new Set(stalled)],
    [1, 3],
    "up one step for one window, then back to 1",
  );
  assert.equal(stalled.filter((l) => l === 3).length, WINDOW_FRAMES);
});

Deno.test("LevelController follows a link that gets slower, then faster", () => {
  const c = new LevelController();
  const fast = drive(c, 20 * WINDOW_FRAMES, () => 0);
  const slow = drive(c, 30 * WINDOW_FRAMES, link(11));
  const again = drive(c, 20 * WINDOW_FRAMES, () => 0.05);
  assert.deepEqual([fast.at(-1), slow.at(-1), again.at(-1)], [1, 8, 1]);
});

Deno.test("LevelController goes back to a faster pace when the wait is not the link's", () => {
  const c = new LevelController();
  // Every frame waits 3 ms at any level (another process holds the core, or the receiver is
  // slow): the wait covers level 6's extra cost, but each frame at 6 takes longer than at 3.
  // Each trial of 6 lasts one window, and after two failed ones it is retried one window in
  // nine.
  const levels = drive(c, 80 * WINDOW_FRAMES, () => 3);
  assert.ok(levels.some((l) => l > 3), "it tried 6");
  const tail = levels.slice(-45 * WINDOW_FRAMES).filter((l) => l > 3).length / WINDOW_FRAMES;
  assert.ok(tail <= 5, `${tail} of the last 45 windows above 3`);
});

Deno.test("LevelController with forced levels cycles them frame by frame, whatever the costs", () => {
  const c = new LevelController([1, 19, 6]);
  const levels = drive(c, 7, () => 1000);
  assert.deepEqual(levels, [1, 19, 6, 1, 19, 6, 1]);
});

Deno.test("parseForcedLevels() reads comma-separated levels 1-19", () => {
  assert.equal(parseForcedLevels(undefined), undefined);
  assert.equal(parseForcedLevels(" "), undefined);
  assert.deepEqual(parseForcedLevels("1, 19,3"), [1, 19, 3]);
  for (const bad of ["0", "20", "x", "1,,2", "2.5"]) {
    assert.throws(() => parseForcedLevels(bad), /LITEKEEP_ZSTD_LEVELS: ".*" is not a zstd level/);
  }
});
