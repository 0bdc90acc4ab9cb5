import assert from "node:assert/strict";
import { join } from "node:path";
import { createPinger, OutputTail, PING_BODY_MAX, PING_TIMEOUT_MS } from "../lib/cli/ping.ts";
import { runCli, smallDb, spawnCli, tempDir } from "./_helpers.ts";

interface Received {
  method: string;
  path: string;
  query: string;
  body: string;
}

/** A real HTTP server on 127.0.0.1 that records every ping it receives. */
function pingServer(status = 200): { url: string; received: Received[] } & AsyncDisposable {
  const received: Received[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    received.push({
      method: req.method,
      path: url.pathname,
      query: url.search,
      body: await req.text(),
    });
    return new Response("OK", { status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    received,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A port nothing listens on (one just freed): connections are refused. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("--ping: a real process pings URL/start then URL, the body the job's summary", async () => {
  await using dir = await tempDir();
  await using server = pingServer();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const res = await spawnCli([
    "backup",
    db,
    "--backup-dir",
    join(dir.path, "b"),
    "--ping",
    `${server.url}/check-1`,
  ]);
  assert.equal(res.code, 0, res.stderr);
  assert.doesNotMatch(res.stderr, /warning/);
  assert.deepEqual(server.received.map((r) => `${r.method} ${r.path}`), [
    "POST /check-1/start",
    "POST /check-1",
  ]);
  assert.equal(server.received[0].body, "");
  assert.match(server.received[1].body, /Backup written: .*app_backup_\d{8}_\d{6}\.db/);
});

Deno.test("--ping: a failed job pings URL/<exit code> with the error and hint", async () => {
  await using dir = await tempDir();
  await using server = pingServer();
  const res = await runCli([
    "backup",
    join(dir.path, "missing.db"),
    "--backup-dir",
    join(dir.path, "b"),
    "--ping",
    `${server.url}/c?rid=7`,
  ]);
  assert.equal(res.code, 1);
  assert.deepEqual(server.received.map((r) => `${r.path}${r.query}`), [
    "/c/start?rid=7",
    "/c/1?rid=7",
  ]);
  const body = server.received[1].body;
  assert.match(body, /error: Cannot open database ".*missing\.db": no such file/);
  assert.match(body, /hint: check the path/);
});

Deno.test("--ping: a busy or usage-level exit code is the code pinged", async () => {
  await using dir = await tempDir();
  await using server = pingServer();
  // verify of a folder with no backups: whatever code it exits with is what the ping says.
  const res = await runCli(["verify", join(dir.path, "none"), "--ping", server.url]);
  assert.notEqual(res.code, 0);
  assert.deepEqual(server.received.map((r) => r.path), ["/start", `/${res.code}`]);
});

Deno.test("--ping: a refused connection is a warning without secrets; the exit code stays", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const url = `http://user:pa55word@127.0.0.1:${closedPort()}/check?token=s3cret#frag`;
  const res = await runCli(["backup", db, "--backup-dir", join(dir.path, "b"), "--ping", url]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stderr,
    /warning: ping http:\/\/127\.0\.0\.1:\d+\/check\/start failed: connection refused/,
  );
  assert.match(
    res.stderr,
    /warning: ping http:\/\/127\.0\.0\.1:\d+\/check failed: connection refused/,
  );
  assert.doesNotMatch(res.stderr, /pa55word|s3cret|user|frag/);
  assert.match(res.stdout, /Backup written/);
});

Deno.test("--ping: a host that never answers times out; the job still runs and succeeds", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  // Accepts connections and says nothing.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // closed at the end
    }
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const res = await runCli(
      ["backup", db, "--backup-dir", join(dir.path, "b"), "--ping", `http://127.0.0.1:${port}/h`],
      { pingTimeoutMs: 300 },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /warning: ping http:\/\/127\.0\.0\.1:\d+\/h\/start failed: no answer within 0\.3 s/,
    );
    assert.match(
      res.stderr,
      /warning: ping http:\/\/127\.0\.0\.1:\d+\/h not sent: the host did not answer/,
    );
    assert.match(res.stdout, /Backup written/);
    assert.equal(PING_TIMEOUT_MS, 10_000);
  } finally {
    listener.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("--ping: a real process and a silent host: the default 10 s, then the job's own exit", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // closed at the end
    }
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const res = await spawnCli([
      "backup",
      db,
      "--backup-dir",
      join(dir.path, "b"),
      "--ping",
      `http://127.0.0.1:${port}/h`,
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /warning: ping .*\/h\/start failed: no answer within 10 s/);
    assert.match(res.stderr, /warning: ping .*\/h not sent/);
    assert.match(res.stdout, /Backup written/);
    // Only the start ping reached the host: one connection.
    assert.equal(held.length, 1);
  } finally {
    listener.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("--ping: an HTTP error answer is a warning; the exit code stays", async () => {
  await using dir = await tempDir();
  await using server = pingServer(404);
  const db = join(dir.path, "app.db");
  smallDb(db);
  const res = await runCli([
    "backup",
    db,
    "--backup-dir",
    join(dir.path, "b"),
    "--ping",
    server.url,
  ]);
  assert.equal(res.code, 0);
  assert.match(res.stderr, /warning: ping http:\/\/127\.0\.0\.1:\d+\/start answered 404/);
});

Deno.test("--ping: a bad URL, or --ping on a look-up, is exit 2 before anything runs", async () => {
  await using dir = await tempDir();
  await using server = pingServer();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const backupDir = join(dir.path, "b");
  for (const url of ["ftp://127.0.0.1/x", "not a url", "file:///etc/passwd"]) {
    const res = await runCli(["backup", db, "--backup-dir", backupDir, "--ping", url]);
    assert.equal(res.code, 2, url);
    assert.match(res.stderr, /error: --ping: .* (is not a URL|is not an http or https URL)/);
  }
  const bare = await runCli(["backup", db, "--backup-dir", backupDir, "--ping"]);
  assert.equal(bare.code, 2);
  const info = await runCli(["info", db, "--ping", server.url]);
  assert.equal(info.code, 2);
  assert.match(info.stderr, /--ping is for jobs; "info" does not ping/);
  const stats = await runCli(["stats", backupDir, "--ping", server.url]);
  assert.equal(stats.code, 2);
  assert.match(stats.stderr, /"stats" without --max-age does not ping/);
  assert.deepEqual(server.received, []);
  await assert.rejects(Deno.stat(backupDir), Deno.errors.NotFound);
});

Deno.test("config ping: job commands ping it, look-ups do not, --ping overrides it", async () => {
  await using dir = await tempDir();
  await using server = pingServer();
  const db = join(dir.path, "app.db");
  smallDb(db);
  await Deno.writeTextFile(
    join(dir.path, "litekeep.json"),
    JSON.stringify({ db: "app.db", backupDir: "b", ping: `${server.url}/from-config` }),
  );
  const cwd = dir.path;
  assert.equal((await runCli(["backup"], { cwd })).code, 0);
  assert.equal((await runCli(["info"], { cwd })).code, 0);
  const stats = await runCli(["stats", "--max-age", "1h"], { cwd });
  assert.equal(stats.code, 0, stats.stderr);
  assert.equal(
    (await runCli(["prune", "--keep-count", "5", "--ping", `${server.url}/flag`], { cwd })).code,
    0,
  );
  assert.deepEqual(server.received.map((r) => r.path), [
    "/from-config/start",
    "/from-config",
    "/from-config/start",
    "/from-config",
    "/flag/start",
    "/flag",
  ]);
});

Deno.test("--ping: pull --info-only is a look-up: exit 2 before ssh, nothing pinged", async () => {
  await using server = pingServer();
  const res = await runCli(["pull", "--info-only", "pi:/x.db", "--ping", server.url]);
  assert.equal(res.code, 2, res.stderr);
  assert.match(res.stderr, /--ping is for jobs; "pull --info-only" does not ping/);
  assert.deepEqual(server.received, []);
});

Deno.test("config ping: a non-http URL is a config error naming the key (exit 2)", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  await Deno.writeTextFile(
    join(dir.path, "litekeep.json"),
    JSON.stringify({ db: "app.db", backupDir: "b", ping: "hc-ping.com/abc" }),
  );
  const res = await runCli(["backup"], { cwd: dir.path });
  assert.equal(res.code, 2);
  assert.match(
    res.stderr,
    /Config file ".*litekeep\.json": "ping": "hc-ping\.com\/abc" is not a URL/,
  );
  await assert.rejects(Deno.stat(join(dir.path, "b")), Deno.errors.NotFound);
});

Deno.test("OutputTail keeps the last ~10 KB, cut at a line start, and no progress redraws", () => {
  const tail = new OutputTail();
  for (let i = 0; i < 2000; i++) tail.add(`line ${i} of the log\n`);
  tail.add("\r\x1b[Kbackup: 50%");
  tail.add("error: the end\n");
  const text = tail.text();
  assert.ok(text.length <= PING_BODY_MAX + 30, String(text.length));
  assert.ok(text.length > PING_BODY_MAX - 100, String(text.length));
  assert.match(text, /^\[earlier output cut\]\nline \d+ of the log\n/);
  assert.match(text, /line 1999 of the log\nerror: the end\n$/);
  assert.doesNotMatch(text, /50%/);
});

/**
 * A raw HTTP server: for each connection, reads the request head, then hands the connection to
 * `answer`. Closed (and every connection with it) on dispose.
 */
function rawServer(
  answer: (conn: Deno.Conn, head: string) => Promise<void>,
): { url: string; heads: string[] } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: string[] = [];
  const conns: Deno.Conn[] = [];
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.push(conn);
        tasks.push(
          (async () => {
            let head = "";
            const buf = new Uint8Array(65536);
            while (!head.includes("\r\n\r\n")) {
              const n = await conn.read(buf);
              if (n === null) return;
              head += new TextDecoder().decode(buf.subarray(0, n));
            }
            heads.push(head.split("\r\n")[0]);
            await answer(conn, head);
          })().catch(() => {}),
        );
      }
    } catch {
      // closed at the end
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    heads,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await Promise.all(tasks);
    },
  };
}

Deno.test("--ping: a 200 answer with an endless body is not read on (no timeout, no memory)", async () => {
  // Reading the body to its end held a whole flood in memory (3 GB in 10 s on loopback: an
  // out-of-memory kill on a Pi) and turned a 200 into a timeout warning.
  await using server = rawServer(async (conn) => {
    const enc = new TextEncoder();
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"));
    const chunk = new Uint8Array(1 << 20).fill(120);
    for (;;) await conn.write(chunk);
  });
  const warnings: string[] = [];
  const pinger = createPinger({
    url: new URL(`${server.url}/flood`),
    warn: (m) => warnings.push(m),
    timeoutMs: 2000,
  });
  await pinger.start();
  await pinger.finish(0, "done");
  assert.deepEqual(warnings, []);
  assert.deepEqual(server.heads, ["POST /flood/start HTTP/1.1", "POST /flood HTTP/1.1"]);
});

Deno.test("--ping: a redirect is not followed (the log goes to no other host); a warning", async () => {
  await using other = pingServer();
  await using server = rawServer(async (conn) => {
    await conn.write(new TextEncoder().encode(
      `HTTP/1.1 307 Temporary Redirect\r\nlocation: ${other.url}/elsewhere?t=s3cret\r\n` +
        "content-length: 0\r\nconnection: close\r\n\r\n",
    ));
    conn.close();
  });
  await using dir = await tempDir();
  const db = join(dir.path, "app.db");
  smallDb(db);
  const res = await runCli([
    "backup",
    db,
    "--backup-dir",
    join(dir.path, "b"),
    "--ping",
    `${server.url}/check`,
  ]);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(other.received, []);
  assert.deepEqual(server.heads, ["POST /check/start HTTP/1.1", "POST /check HTTP/1.1"]);
  assert.match(
    res.stderr,
    /warning: ping http:\/\/127\.0\.0\.1:\d+\/check answered 307 .*redirect to http:\/\/127\.0\.0\.1:\d+\/elsewhere\)/,
  );
  assert.doesNotMatch(res.stderr, /s3cret/);
});

Deno.test("OutputTail keeps an error line that holds a carriage return (only redraws go)", () => {
  // A remote tool's message can end in "\r" (CRLF output over ssh): the error is what a
  // failure ping must carry, so only progress redraws ("\r\x1b[K...") are left out.
  const tail = new OutputTail();
  tail.add("\r\x1b[Kpull: 10%");
  tail.add("\r\x1b[K");
  tail.add("error: remote said: Permission denied\r\n");
  tail.add("hint: check ssh\n");
  assert.equal(tail.text(), "error: remote said: Permission denied\r\nhint: check ssh\n");
});

Deno.test("--ping: a broken config file is a failed job too: URL/start, then URL/2 with the error", async () => {
  // The config was read before the first ping: a typo in litekeep.json ended the cron job with
  // exit 2 and no ping at all, where the monitor should hear "failed, and why" at once.
  await using dir = await tempDir();
  await using server = pingServer();
  await Deno.writeTextFile(join(dir.path, "litekeep.json"), '{"db": "app.db", "kepe": {}}');
  const res = await runCli(["backup", "--ping", `${server.url}/c`], { cwd: dir.path });
  assert.equal(res.code, 2, res.stderr);
  assert.deepEqual(server.received.map((r) => r.path), ["/c/start", "/c/2"]);
  assert.match(server.received[1].body, /error: .*litekeep\.json.*kepe/);
});
