/**
 * The agent's zstd level per PAGES frame, chosen from backpressure: a pure controller fed with
 * what each frame cost (no clock inside: the agent measures and passes the numbers in).
 *
 * A pull is pipelined: the agent compresses the next frame while ssh and the link carry the
 * last ones. When the link is the bottleneck the agent's writes wait; time it spends waiting is
 * time it could have spent compressing harder for free. When the agent is the bottleneck (one
 * slow core, a fast link) its writes return at once, and every millisecond of compression is on
 * the pull's clock. So, over each window of {@linkcode WINDOW_FRAMES} frames, from the
 * window's mean wait and compression time per frame (the mean, not the median: over a shaped
 * link most writes return at once and every fifth or so waits 40-60 ms, as ssh and TCP take the
 * data in bursts; one stall, such as a busy neighbour, moves the level one step for one window):
 *
 * - **raise** one step when the wait would absorb the extra compression the next level costs
 *   {@linkcode RAISE_MARGIN} times over (its cost per byte as measured when it last ran, else
 *   estimated from {@linkcode RELATIVE_COST}), and is at least {@linkcode RAISE_WAIT} of this
 *   level's own compression time (hysteresis: steps that cost about the same do not flap);
 * - **lower** one step when the wait is under {@linkcode LOWER_WAIT} of the compression time
 *   (the writes returned at once: CPU-bound; a write that does not block still costs the agent
 *   0.1-0.3 ms here, a tenth of a level-6 frame's compression);
 * - else keep the level.
 *
 * The wait is not always the link's: on one core, time the agent waits may be time sshd or
 * another process held that core, or the receiver may be short of CPU, and then a harder level
 * only takes from them. So every raise is a trial: when the first window at the new level is
 * {@linkcode PACE_MARGIN} slower (a frame's whole time, reading to written, per byte of pages)
 * than the window before it, the level goes back. After any step down no raise is tried for
 * {@linkcode HOLD_WINDOWS} windows, twice and then four times that after trials that failed in
 * a row: a level that does not pay is retried one window in nine at most. (The margin is wide
 * because over a shaped link the pace of two windows at the same level differs by up to half:
 * ssh and TCP take the data in bursts.)
 *
 * Raising when the wait covers the extra cost is exact for an ideal pipeline: the frame's time
 * is the larger of the agent's work and the link's, and the next level only adds the first and
 * only shrinks the second. The margin is for what is not ideal: the estimate of a level not yet
 * run, and a wait that is not the link's but a receiver's short of CPU (on the over-ssh bench the
 * local side shares the remote's core: there, without the margin, 100 Mbit/s pulls climbed to
 * level 8 and ran slower). The levels are a ladder ({@linkcode LEVELS}), not 1..9: measured on one
 * core here (256 KiB frames of a gym database), levels 1-4 all give 10.8 MB per 100 MB at the
 * same speed, 5 gives 10.1 MB at 2.5x the time, 6 8.95 MB at 3.3x, 7 the same size as 6 at 4.9x,
 * 8 8.63 MB at 5.7x, 9 the same as 8 at 6.8x and 12 the same again at 73x: a step onto 5, 7 or 9
 * would only cost time.
 *
 * @module
 */
import { ZSTD_LEVEL } from "./protocol2.ts";

/** The levels the controller moves between, lowest first. */
export const LEVELS: readonly number[] = [1, 3, 6, 8];
/** Compression time per byte of each of {@linkcode LEVELS}, relative to the first (measured). */
export const RELATIVE_COST: readonly number[] = [1, 1, 3.3, 5.7];
/**
 * The level of the first frames: protocol 2's default (the fixed level of before: fast, and as
 * small as 1).
 */
export const START_LEVEL = ZSTD_LEVEL;
/** Frames per decision: 2 MiB of pages. */
export const WINDOW_FRAMES = 8;
/** Raise only when the wait is this many times the next level's extra compression time. */
export const RAISE_MARGIN = 2;
/** Raise only when the wait is at least this share of the compression time. */
export const RAISE_WAIT = 0.5;
/** Lower when the wait is under this share of the compression time. */
export const LOWER_WAIT = 0.25;
/** A raise is undone when its first window's pace is this share slower than before it. */
export const PACE_MARGIN = 0.25;
/** Windows without a raise after a step down. */
export const HOLD_WINDOWS = 2;

/** What one frame cost, as the sender measured it. */
export interface FrameCost {
  /** Bytes of records compressed. */
  bytes: number;
  /** Milliseconds spent compressing them. */
  compressMs: number;
  /** Milliseconds spent waiting for the sink to take the compressed frame. */
  waitMs: number;
  /**
   * Milliseconds of the frame's whole time, from the end of the last frame's write (or the
   * start) to the end of this one's: reading and hashing its pages, compressing, waiting.
   */
  periodMs: number;
}

/**
 * Chooses the zstd level of each frame: {@linkcode level} for the next one, then
 * {@linkcode observe} with what it cost. With `forced` levels (tests), it cycles through them
 * frame by frame and ignores the costs.
 */
export class LevelController {
  #step: number;
  #forced: readonly number[] | undefined;
  #frame = 0;
  #window: FrameCost[] = [];
  /** Milliseconds of compression per byte of each step, when it last ran a whole window. */
  #costPerByte: (number | undefined)[] = LEVELS.map(() => undefined);
  /** The pace of the window before the last raise, until the first window after it. */
  #trial: number | undefined;
  /** Windows left without a raise. */
  #hold = 0;
  /** Raises undone in a row. */
  #failures = 0;

  constructor(forced?: readonly number[]) {
    this.#step = LEVELS.indexOf(START_LEVEL);
    this.#forced = forced !== undefined && forced.length > 0 ? forced : undefined;
  }

  /** The level for the next frame. */
  get level(): number {
    if (this.#forced) return this.#forced[this.#frame % this.#forced.length];
    return LEVELS[this.#step];
  }

  /** Records what the frame compressed at {@linkcode level} cost; may change the level. */
  observe(cost: FrameCost): void {
    this.#frame++;
    if (this.#forced) return;
    this.#window.push(cost);
    if (this.#window.length < WINDOW_FRAMES) return;
    this.#decide(this.#window);
    this.#window = [];
  }

  #decide(window: FrameCost[]): void {
    const frames = window.length;
    const bytes = window.reduce((n, f) => n + f.bytes, 0) / frames;
    if (bytes <= 0) return;
    const compressMs = window.reduce((n, f) => n + f.compressMs, 0) / frames;
    const waitMs = window.reduce((n, f) => n + f.waitMs, 0) / frames;
    const here = compressMs / bytes;
    const pace = window.reduce((n, f) => n + f.periodMs, 0) / frames / bytes;
    this.#costPerByte[this.#step] = here;
    if (this.#hold > 0) this.#hold--;
    if (this.#trial !== undefined) {
      const before = this.#trial;
      this.#trial = undefined;
      if (pace > before * (1 + PACE_MARGIN)) {
        this.#failures = Math.min(this.#failures + 1, 2);
        this.#down();
        return;
      }
      this.#failures = 0;
    }
    if (this.#step + 1 < LEVELS.length && this.#hold === 0) {
      const next = this.#costPerByte[this.#step + 1] ??
        here * RELATIVE_COST[this.#step + 1] / RELATIVE_COST[this.#step];
      const extraMs = Math.max(0, next - here) * bytes;
      if (waitMs > RAISE_MARGIN * extraMs && waitMs >= RAISE_WAIT * compressMs) {
        this.#step++;
        this.#trial = pace;
        return;
      }
    }
    if (this.#step > 0 && waitMs < LOWER_WAIT * compressMs) this.#down();
  }

  #down(): void {
    this.#step--;
    this.#hold = HOLD_WINDOWS << this.#failures;
  }
}

/**
 * Reads a forced level sequence (`LITEKEEP_ZSTD_LEVELS`, tests only): comma-separated zstd
 * levels 1-19, cycled frame by frame. Empty or absent: none (the controller chooses).
 *
 * @throws {RangeError} for anything else
 */
export function parseForcedLevels(text: string | undefined): number[] | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  return text.split(",").map((word) => {
    const n = Number(word.trim());
    if (!Number.isInteger(n) || n < 1 || n > 19) {
      throw new RangeError(`LITEKEEP_ZSTD_LEVELS: "${word}" is not a zstd level 1-19`);
    }
    return n;
  });
}
