/**
 * ssh and scp, safely. Every call is an argv array with `BatchMode=yes` (cron never hangs on a
 * password prompt), a connect timeout and keep-alives; the user's `~/.ssh/config` applies, so
 * host aliases work. ssh joins the remote words into ONE shell string on the remote, so every
 * remote word is quoted exactly once by `shellQuote`; a host that starts with `-` is refused so
 * it can never be read as an option.
 *
 * @module
 */
import { describeCause, OperationError, UsageError } from "../errors.ts";
import { ProcessError } from "../proc.ts";

/** A `HOST:PATH` location. */
export interface RemoteSpec {
  host: string;
  path: string;
}

/** How to reach the remote. */
export interface SshOptions {
  /** Extra `-o` options (`Port=2222`, `IdentityFile=...`), from `--ssh-option` and the config. */
  options?: string[];
  /** Seconds to wait for the connection. @default 10 */
  connectTimeoutS?: number;
}

/** A host's parts: `user@` (optional) and the address, without the brackets of `[IPv6]`. */
interface HostParts {
  user?: string;
  address: string;
}

/**
 * Splits `user@host`, `[IPv6]` or `user@[IPv6]` (scp's and ssh's forms); undefined when it is
 * none of them. Brackets delimit a whole address, never part of one.
 */
function hostParts(host: string): HostParts | undefined {
  const m = /^(?:([A-Za-z0-9_.%+-]+)@)?(?:\[([A-Za-z0-9_.%:+-]+)\]|([A-Za-z0-9_.%:+-]+))$/.exec(
    host,
  );
  if (!m) return undefined;
  const [, user, bracketed, plain] = m;
  return { user, address: bracketed ?? plain };
}

/**
 * Checks a host (alias, name, `user@host`, IPv4, `[IPv6]`, `user@[IPv6]`, or a bare IPv6 from
 * the config): no leading `-` on the host or its address, no whitespace or control characters,
 * nothing a shell or ssh would read as syntax, brackets only around a whole address.
 *
 * @throws {UsageError}
 */
export function checkHost(host: string): string {
  if (host === "") throw new UsageError("The remote host is empty", { hint: "write HOST:PATH" });
  const parts = hostParts(host);
  if (host.startsWith("-") || parts?.address.startsWith("-")) {
    throw new UsageError(`Refusing host "${host}": a host cannot start with "-"`, {
      hint: "ssh would read it as an option; use an alias from ~/.ssh/config",
    });
  }
  if (parts === undefined) {
    throw new UsageError(
      `Refusing host "${host}": it contains characters a host name cannot have`,
      {
        hint: "use a host name, user@host, [IPv6 address], or an alias from ~/.ssh/config",
      },
    );
  }
  return host;
}

/** The host as ssh takes it: `::1`, `pi@::1` (ssh knows no brackets). @throws {UsageError} */
export function sshHost(host: string): string {
  checkHost(host);
  const { user, address } = hostParts(host)!;
  return user === undefined ? address : `${user}@${address}`;
}

/**
 * The host as scp takes it before `:PATH`: an address with colons goes in brackets
 * (`[::1]`, `pi@[::1]`), so scp does not split it at its first colon. @throws {UsageError}
 */
export function scpHost(host: string): string {
  checkHost(host);
  const { user, address } = hostParts(host)!;
  const shown = address.includes(":") ? `[${address}]` : address;
  return user === undefined ? shown : `${user}@${shown}`;
}

/**
 * Reads `HOST:PATH` the way scp does: a colon before the first slash makes it remote.
 * Returns undefined for a local path (`./a:b`, `/x/y`, `db.sqlite`).
 *
 * @throws {UsageError} for a bad host or an empty remote path
 */
export function parseRemoteSpec(text: string): RemoteSpec | undefined {
  const bracket = /^(\[[^\]]*\]|[^/:]*@\[[^\]]*\]):(.*)$/s.exec(text);
  const plain = /^([^/:]+):(.*)$/s.exec(text);
  const m = bracket ?? plain;
  if (!m) return undefined;
  if (!bracket && /^([^/:]*@)?\[/.test(text)) {
    // "[::1:/path": an opening bracket never closed; the host is not "[".
    throw new UsageError(`Refusing host in "${text}": its "[" is never closed by "]"`, {
      hint: "write an IPv6 address in brackets, e.g. [::1]:/srv/app.db or pi@[fe80::1]:/srv/app.db",
    });
  }
  const [, host, path] = m;
  checkHost(host);
  if (path === "") {
    throw new UsageError(`No remote path in "${text}"`, {
      hint: "write HOST:PATH, e.g. raspberry-pi:/home/pi/app/instance/app.db",
    });
  }
  return { host, path };
}

/** Quotes one word for a POSIX shell: `'...'` with each `'` written as `'\''`. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The options every ssh/scp call starts with. ssh keeps the FIRST value of an option, so the
 * user's options come before litekeep's defaults (a `ConnectTimeout=30` wins), except
 * `BatchMode=yes`, which comes first so that cron can never wait on a password prompt.
 */
function commonOptions(options: SshOptions): string[] {
  const base = ["-o", "BatchMode=yes"];
  for (const option of options.options ?? []) {
    if (option.startsWith("-") || !/^[A-Za-z]+[ =]/.test(option)) {
      throw new UsageError(`Bad ssh option "${option}"`, {
        hint: 'give an ssh -o option such as "Port=2222" or "IdentityFile=~/.ssh/pi"',
      });
    }
    base.push("-o", option);
  }
  base.push(
    "-o",
    `ConnectTimeout=${options.connectTimeoutS ?? 10}`,
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
  );
  return base;
}

/**
 * The ssh argv that runs `remoteWords` on `host`: each word quoted once, joined by spaces,
 * `--` before the host so nothing after it is read as an option.
 */
export function sshArgs(host: string, remoteWords: string[], options: SshOptions = {}): string[] {
  return [...commonOptions(options), "--", sshHost(host), remoteWords.map(shellQuote).join(" ")];
}

/**
 * Escapes a remote path for scp in SFTP mode (`-s`): no remote shell is involved, but scp
 * expands glob characters, so those are escaped with a backslash.
 */
export function scpPath(path: string): string {
  return path.replace(/[\\*?\[\]{}]/g, (c) => `\\${c}`);
}

/** The scp argv that copies `host:remotePath` to `localPath` over SFTP (no remote shell). */
export function scpArgs(
  host: string,
  remotePath: string,
  localPath: string,
  options: SshOptions = {},
): string[] {
  const to = scpHost(host);
  // -s: the SFTP protocol, so the remote path is never read by a shell; -p keeps times.
  return [
    "-s",
    "-q",
    "-p",
    ...commonOptions(options),
    "--",
    `${to}:${scpPath(remotePath)}`,
    localPath,
  ];
}

/**
 * Turns a failed ssh/scp run into a litekeep error that names the host and says what to do.
 * ssh exits 255 for its own failures (connection, authentication); anything else came from
 * the remote command.
 */
export function sshFailure(error: unknown, host: string, doing: string): Error {
  if (error instanceof Deno.errors.NotFound) {
    return new OperationError(`Cannot run ssh to reach "${host}": ssh is not installed`, {
      cause: error,
      hint: "install the OpenSSH client; litekeep finds ssh and scp on PATH",
    });
  }
  if (!(error instanceof ProcessError)) {
    return new OperationError(`${doing} on "${host}": ${describeCause(error)}`, { cause: error });
  }
  const text = error.stderrTail;
  if (error.timedOut) {
    return new OperationError(`${doing} on "${host}": no answer in time`, {
      cause: error,
      hint: "check that the host is up and reachable",
    });
  }
  if (error.code === 255 || /^ssh: |Permission denied|Host key verification failed/m.test(text)) {
    const why = /Permission denied/.test(text)
      ? "authentication was refused"
      : /Could not resolve hostname/.test(text)
      ? "the host name cannot be resolved"
      : /timed out/i.test(text)
      ? "the connection timed out"
      : /Connection refused/.test(text)
      ? "the connection was refused"
      : /Host key verification failed/.test(text)
      ? "its host key is unknown or changed"
      : /closed|reset|broken pipe/i.test(text)
      ? "the connection was lost"
      : "ssh failed";
    return new OperationError(
      `Cannot reach "${host}" over ssh: ${why}${text ? ` (${text.split("\n").pop()})` : ""}`,
      {
        cause: error,
        hint: why === "authentication was refused"
          ? `check that "ssh ${sshHostOr(host)}" logs in without a password (keys, ssh-agent)`
          : why === "its host key is unknown or changed"
          // BatchMode takes no new key: the fix is one login by hand, not the config.
          ? `connect once by hand and accept its key: "ssh ${sshHostOr(host)} true" ` +
            `(a reinstalled host has a new key: "ssh-keygen -R ${sshHostOr(host)}" first)`
          : `check the host and your ~/.ssh/config; try "ssh ${sshHostOr(host)} true"`,
      },
    );
  }
  return new OperationError(`${doing} on "${host}" failed: ${text || `exit code ${error.code}`}`, {
    cause: error,
  });
}

/** The host as a user would type it for ssh, for hints; the host itself if it is not valid. */
function sshHostOr(host: string): string {
  try {
    return sshHost(host);
  } catch {
    return host;
  }
}
