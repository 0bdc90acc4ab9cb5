/**
 * A real OpenSSH server with throwaway keys, for the tests and the over-ssh benchmarks: it runs
 * on loopback, or inside a network namespace behind a shaped link (`scripts/bench/netns.ts`). And the
 * litekeep commands of both sides: this source tree under deno, as the binary's stand-in.
 *
 * @module
 */
import { join } from "node:path";
import { PERMISSIONS, V8_FLAGS } from "../../lib/permissions.ts";

/** The repository root. */
export const ROOT = new URL("../..", import.meta.url).pathname;

/** A running OpenSSH server, reached through the host alias `host`. */
export interface Sshd extends AsyncDisposable {
  /** The ssh config alias that reaches it. */
  host: string;
  /** Its temp folder (keys, configs, wrappers). */
  dir: string;
  /** The address it listens on. */
  listen: string;
  port: number;
  pid: number;
  /** The ssh client config file (`ssh -F`). */
  config: string;
  /** Writes another alias into the client config: a wrong key, or another port. */
  addAlias(alias: string, lines: string[], port?: number): Promise<void>;
}

/** Where and how sshd runs. */
export interface SshdOptions {
  /** The address sshd listens on and the client connects to. @default "127.0.0.1" */
  listen?: string;
  /**
   * A command prefix sshd runs under, e.g. `["ip", "netns", "exec", "lkbench"]` to run it (and
   * so every remote command) inside a network namespace, or `["taskset", "-c", "1"]`. Each
   * program of the prefix must exec the next, so that sshd's PID is the child's.
   * @default []
   */
  wrap?: string[];
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** The first of `paths` that is a file. */
function firstFile(paths: string[]): string | undefined {
  return paths.find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * Starts a real `sshd` on a free port (on 127.0.0.1 unless `options.listen` says otherwise)
 * with throwaway host and user keys and its own config, and puts `ssh`/`scp` wrappers that use
 * its client config first on PATH (OpenSSH reads `~/.ssh/config` from the passwd home, not
 * `$HOME`), so litekeep, rsync and scp all reach it as host `testpi`. Stops it by PID on
 * dispose.
 *
 * @throws {Error} when sshd is not installed or does not accept a login within seconds
 */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const listen = options.listen ?? "127.0.0.1";
  const sshdPath = firstFile(["/usr/sbin/sshd", "/usr/local/sbin/sshd"]);
  if (!sshdPath) throw new Error("sshd is not installed (apt-get install openssh-server)");
  const dir = await Deno.makeTempDir({ prefix: "litekeep-sshd-" });
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "user_key")]);
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "other_key")]);
  await Deno.copyFile(join(dir, "user_key.pub"), join(dir, "authorized_keys"));
  // A port free on the host's loopback; a fresh namespace has every port free.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await Deno.mkdir("/run/sshd", { recursive: true }).catch(() => {});
  const sftp = firstFile(["/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server"]) ??
    "internal-sftp";
  const pidFile = join(dir, "sshd.pid");
  await Deno.writeTextFile(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      `ListenAddress ${listen}`,
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      `Subsystem sftp ${sftp}`,
      "MaxStartups 100",
      "MaxSessions 100",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const user = await sh("id", ["-un"]);
  const hostKey = await Deno.readTextFile(join(dir, "host_key.pub"));
  await Deno.writeTextFile(join(dir, "known_hosts"), `litekeep-test ${hostKey}`);
  const config = join(dir, "ssh_config");
  const common = (to: number) => [
    `  HostName ${listen}`,
    `  Port ${to}`,
    `  User ${user}`,
    `  IdentitiesOnly yes`,
    `  UserKnownHostsFile ${join(dir, "known_hosts")}`,
    `  GlobalKnownHostsFile /dev/null`,
    `  StrictHostKeyChecking yes`,
    `  HostKeyAlias litekeep-test`,
    `  LogLevel ERROR`,
  ];
  await Deno.writeTextFile(
    config,
    ["Host testpi", `  IdentityFile ${join(dir, "user_key")}`, ...common(port), ""].join("\n"),
  );
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  for (const tool of ["ssh", "scp"]) {
    const real = await sh("sh", ["-c", `command -v ${tool}`]);
    await Deno.writeTextFile(join(bin, tool), `#!/bin/sh\nexec ${real} -F ${config} "$@"\n`);
    await Deno.chmod(join(bin, tool), 0o755);
  }
  const [program, ...prefix] = [...(options.wrap ?? []), sshdPath];
  const child = new Deno.Command(program, {
    args: [...prefix, "-D", "-e", "-f", join(dir, "sshd_config")],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const oldPath = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${bin}:${oldPath}`);
  /** Stops sshd by PID, puts PATH back, removes the folder; returns what sshd said. */
  const stop = async (): Promise<string> => {
    Deno.env.set("PATH", oldPath);
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    const said = await stderr.catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return said;
  };
  // Ready when a real login works.
  for (let i = 0;; i++) {
    const out = await new Deno.Command("ssh", {
      args: ["-o", "BatchMode=yes", "testpi", "true"],
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (out.success) break;
    if (i > 100) throw new Error(`sshd did not come up on ${listen}:${port}: ${await stop()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: "testpi",
    dir,
    listen,
    port,
    pid: child.pid,
    config,
    addAlias: async (alias, lines, to = port) => {
      await Deno.writeTextFile(
        config,
        [`Host ${alias}`, ...lines.map((l) => `  ${l}`), ...common(to), ""].join("\n"),
        {
          append: true,
        },
      );
    },
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}

/**
 * A `litekeep` for the remote side: runs this source tree under deno with the binary's
 * permissions and V8 flags (the binary's stand-in: the remote runs the same binary).
 *
 * @param rssLog when given, each run appends its peak memory in KiB (GNU time `%M`) to it
 */
export async function remoteLitekeep(dir: string, rssLog?: string): Promise<string> {
  const path = join(dir, "litekeep");
  const time = rssLog ? `/usr/bin/time -a -o ${rssLog} -f %M ` : "";
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nexec ${time}${Deno.execPath()} run --quiet --v8-flags=${V8_FLAGS.join(",")} ${
      PERMISSIONS.join(" ")
    } ${join(ROOT, "main.ts")} "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** The argv that runs litekeep from this source tree, with the compiled binary's permissions. */
export function litekeepArgv(args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    ...PERMISSIONS,
    join(ROOT, "main.ts"),
    ...args,
  ];
}
