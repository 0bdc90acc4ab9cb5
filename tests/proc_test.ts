import assert from "node:assert/strict";
import { ProcessError, run, spawnStreaming, tail } from "../lib/proc.ts";

Deno.test("run() returns the output of a command that succeeds", async () => {
  const out = await run("sh", ["-c", "printf 'a b'; printf 'warn' >&2"]);
  assert.equal(new TextDecoder().decode(out.stdout), "a b");
  assert.equal(out.stderr, "warn");
  assert.equal(out.code, 0);
});

/** The ProcessError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<ProcessError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProcessError, String(error));
    return error;
  }
  throw new Error("expected a ProcessError");
}

Deno.test("run() throws on a non-zero exit with the tail of stderr", async () => {
  const error = await failure(
    run("sh", ["-c", "for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3"]),
  );
  assert.equal(error.code, 3);
  assert.equal(error.stderrTail, "line3\nline4\nline5\nline6\nline7");
  assert.match(error.message, /^sh exited with code 3: line3/);
});

Deno.test("run() accepts the exit codes the caller expects", async () => {
  const out = await run("sh", ["-c", "exit 1"], { okCodes: [0, 1] });
  assert.equal(out.code, 1);
});

Deno.test("run() gives stdin only when asked, and closes it otherwise", async () => {
  const fed = await run("cat", [], { stdin: "hello" });
  assert.equal(new TextDecoder().decode(fed.stdout), "hello");
  // With stdin closed, cat ends at once instead of waiting for input.
  const closed = await run("cat", [], { timeoutMs: 5000 });
  assert.equal(closed.stdout.length, 0);
});

Deno.test("run() kills a command that outlives its timeout", async () => {
  const error = await failure(run("sleep", ["10"], { timeoutMs: 200 }));
  assert.equal(error.timedOut, true);
});

Deno.test("spawnStreaming() streams stdout and reports the exit like run()", async () => {
  const child = spawnStreaming("sh", ["-c", "printf abc; echo oops >&2; exit 2"]);
  const text = await new Response(child.stdout).text();
  assert.equal(text, "abc");
  await assert.rejects(child.finish(), /exited with code 2: oops/);
});

Deno.test("tail() keeps the last non-empty lines", () => {
  assert.equal(tail("a\n\nb\nc\n\n", 2), "b\nc");
});
