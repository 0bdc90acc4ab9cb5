import assert from "node:assert/strict";
import type { Io } from "../lib/cli/io.ts";
import { createLogger, logStamp } from "../lib/cli/log.ts";

function capture(terminal: boolean): { io: Io; err: () => string } {
  let err = "";
  return {
    io: {
      stdout: () => {},
      stdoutBytes: () => Promise.resolve(),
      readStdin: () => Promise.resolve(new Uint8Array()),
      stderr: (t) => void (err += t),
      stderrIsTerminal: terminal,
      env: () => undefined,
      cwd: "/",
      now: () => new Date("2025-10-19T06:55:38.000Z"),
    },
    err: () => err,
  };
}

Deno.test("createLogger() draws progress on a terminal and clears it before the next line", () => {
  const { io, err } = capture(true);
  const log = createLogger(io, { delayMs: 0 });
  log.progress("backup: 50%");
  log.info("done");
  assert.equal(err(), "\r\x1b[Kbackup: 50%\r\x1b[Kdone\n");
});

Deno.test("createLogger() draws no progress before the delay has passed", () => {
  const { io, err } = capture(true);
  createLogger(io, { delayMs: 60_000 }).progress("backup: 50%");
  assert.equal(err(), "");
});

Deno.test("createLogger() writes timestamped lines and no progress when not a terminal", () => {
  const { io, err } = capture(false);
  const log = createLogger(io, { delayMs: 0 });
  log.progress("backup: 50%");
  log.warn("two\nlines");
  log.error("it broke", "fix it");
  const at = logStamp(new Date("2025-10-19T06:55:38.000Z"));
  assert.match(at, /^2025-10-19T\d\d:\d\d:38[+-]\d\d:\d\d$/);
  assert.equal(
    err(),
    `${at} warning: two\n${at} warning: lines\n${at} error: it broke\n${at} hint: fix it\n`,
  );
});

Deno.test("createLogger() --quiet hides info and progress but not warnings", () => {
  const { io, err } = capture(true);
  const log = createLogger(io, { quiet: true, delayMs: 0 });
  log.info("hidden");
  log.progress("hidden");
  log.debug("hidden");
  log.warn("shown");
  assert.equal(err(), "warning: shown\n");
});
