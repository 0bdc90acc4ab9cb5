import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import {
  checkHost,
  parseRemoteSpec,
  scpArgs,
  scpPath,
  shellQuote,
  sshArgs,
} from "../lib/remote/ssh.ts";

Deno.test("parseRemoteSpec() reads HOST:PATH the way scp does", async (t) => {
  const cases: Array<[string, { host: string; path: string } | undefined]> = [
    ["raspberry-pi:/home/pi/app.db", { host: "raspberry-pi", path: "/home/pi/app.db" }],
    ["pi@10.0.0.5:app.db", { host: "pi@10.0.0.5", path: "app.db" }],
    ["[::1]:/x.db", { host: "[::1]", path: "/x.db" }],
    ["pi@[fe80::1]:/x.db", { host: "pi@[fe80::1]", path: "/x.db" }],
    ["host:/a path/with: colon.db", { host: "host", path: "/a path/with: colon.db" }],
    ["instance/gym.db", undefined],
    ["./a:b.db", undefined],
    ["/abs/x:y.db", undefined],
    ["plain.db", undefined],
  ];
  for (const [text, expected] of cases) {
    await t.step(text, () => assert.deepEqual(parseRemoteSpec(text), expected));
  }
});

Deno.test("checkHost() refuses hosts that ssh would read as options or that hold syntax", async (t) => {
  for (
    const host of [
      "-oProxyCommand=touch x",
      "-F/tmp/evil",
      "",
      "pi host",
      "pi;reboot",
      "pi$(id)",
      "pi\nhost",
      "pi`id`",
      "pi'",
    ]
  ) {
    await t.step(JSON.stringify(host), () => assert.throws(() => checkHost(host), UsageError));
  }
  assert.equal(checkHost("raspberry-pi"), "raspberry-pi");
  assert.equal(checkHost("pi@192.168.1.20"), "pi@192.168.1.20");
});

Deno.test("shellQuote() makes every word reach sh as one literal word", async (t) => {
  const words = [
    "plain",
    "with space",
    "it's",
    `"double"`,
    "$(touch /tmp/litekeep-never)",
    "`id`",
    "a;b|c&d",
    "new\nline",
    "*?[]{}~",
    "",
    "'",
    "\\",
  ];
  for (const word of words) {
    await t.step(JSON.stringify(word), async () => {
      // printf %s\0 prints exactly the word it was given, whatever the word.
      const out = await new Deno.Command("sh", {
        args: ["-c", `printf '%s\\0' ${shellQuote(word)}`],
        stdout: "piped",
      }).output();
      assert.equal(new TextDecoder().decode(out.stdout), `${word}\0`);
    });
  }
});

Deno.test("sshArgs() puts BatchMode first, the user's options next, and -- before the host", () => {
  const args = sshArgs("pi", ["cat", "/x y.db"], { options: ["ConnectTimeout=30", "Port=2222"] });
  assert.deepEqual(args, [
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=30",
    "-o",
    "Port=2222",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
    "--",
    "pi",
    "'cat' '/x y.db'",
  ]);
});

Deno.test("sshArgs() refuses a bad host and an option that is not an -o option", () => {
  assert.throws(() => sshArgs("-oProxyCommand=x", ["true"]), /cannot start with "-"/);
  assert.throws(() => sshArgs("pi", ["true"], { options: ["-F/tmp/x"] }), /Bad ssh option/);
  assert.throws(() => sshArgs("pi", ["true"], { options: ["nonsense"] }), /Bad ssh option/);
});

Deno.test("scpArgs() copies over SFTP with glob characters escaped", () => {
  assert.equal(scpPath("/data/[x]*?{a}\\.db"), "/data/\\[x\\]\\*\\?\\{a\\}\\\\.db");
  const args = scpArgs("pi", "/home/pi/a b*.db", "/tmp/local.db", { connectTimeoutS: 5 });
  assert.deepEqual(args.slice(0, 3), ["-s", "-q", "-p"]);
  assert.deepEqual(args.slice(-3), ["--", "pi:/home/pi/a b\\*.db", "/tmp/local.db"]);
  assert.ok(args.includes("ConnectTimeout=5"));
});

Deno.test("sshArgs() gives ssh an IPv6 host without the brackets that delimit it", async (t) => {
  const cases: Array<[string, string]> = [
    ["[::1]", "::1"],
    ["pi@[::1]", "pi@::1"],
    ["[fe80::1%eth0]", "fe80::1%eth0"],
    ["::1", "::1"],
    ["pi@::1", "pi@::1"],
    ["raspberry-pi", "raspberry-pi"],
  ];
  for (const [host, expected] of cases) {
    await t.step(host, () => {
      const args = sshArgs(host, ["true"]);
      assert.deepEqual(args.slice(-3), ["--", expected, "'true'"]);
    });
  }
});

Deno.test("scpArgs() gives scp its bracket form for an IPv6 host", async (t) => {
  const cases: Array<[string, string]> = [
    ["[::1]", "[::1]:/x.db"],
    ["pi@[::1]", "pi@[::1]:/x.db"],
    ["::1", "[::1]:/x.db"],
    ["pi@::1", "pi@[::1]:/x.db"],
    ["pi@10.0.0.5", "pi@10.0.0.5:/x.db"],
  ];
  for (const [host, expected] of cases) {
    await t.step(host, () => {
      assert.deepEqual(scpArgs(host, "/x.db", "/tmp/l.db").slice(-3), [
        "--",
        expected,
        "/tmp/l.db",
      ]);
    });
  }
});

Deno.test("checkHost() accepts brackets only around a whole IPv6 address", async (t) => {
  for (
    const host of [
      "[::1",
      "::1]",
      "[]",
      "[::1]x",
      "x[::1]",
      "pi@[::1]x",
      "[[::1]]",
      "[-oProxyCommand=x]",
      "-[::1]",
      "[::1;id]",
      "[::1]@pi",
      "pi@-x",
      "@pi",
    ]
  ) {
    await t.step(JSON.stringify(host), () => assert.throws(() => checkHost(host), UsageError));
  }
  for (const host of ["[::1]", "pi@[fe80::1%eth0]", "::1", "pi@::ffff:10.0.0.5"]) {
    await t.step(`${host} is fine`, () => assert.equal(checkHost(host), host));
  }
});

Deno.test('parseRemoteSpec() names an unclosed IPv6 bracket, not a host "["', () => {
  // Found by the attack round: "[::1:/x.db" was refused as host "[".
  for (const text of ["[::1:/srv/app.db", "pi@[::1:/srv/app.db"]) {
    assert.throws(() => parseRemoteSpec(text), /its "\[" is never closed by "\]"/);
  }
});
