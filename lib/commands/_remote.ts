/**
 * The ssh-related flags shared by `pull`, `info` and `compare`, and how they combine with the
 * config file's `remote` object.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { REMOTE_TOOLS, type RemoteOptions } from "../remote/ops.ts";
import type { RemoteSpec } from "../remote/ssh.ts";
import {
  CONNECT_TIMEOUT_RANGE,
  DEFAULT_REMOTE_TIMEOUT_S,
  REMOTE_TIMEOUT_RANGE,
} from "../limits.ts";
import { choiceValue, intInRange } from "./_args.ts";

/** parseArgs options for the remote flags. */
export const REMOTE_FLAGS = {
  "ssh-option": { type: "string", multiple: true },
  "connect-timeout": { type: "string" },
  "remote-tool": { type: "string" },
  "remote-bin": { type: "string" },
  "remote-tmp": { type: "string" },
  "remote-timeout": { type: "string" },
} as const;

/** Help lines for the remote flags. */
export const REMOTE_USAGE =
  `  --ssh-option OPT         an ssh -o option, e.g. Port=2222 (repeatable; also remote.sshOptions)
  --connect-timeout S      seconds to wait for the ssh connection (default 10)
  --remote-tool TOOL       auto (default), litekeep, python3 or sqlite3
  --remote-bin PATH        litekeep on the remote (default: remote.bin, else "litekeep")
  --remote-tmp DIR         remote folder for the snapshot's temporary file (default $TMPDIR or /tmp)
  --remote-timeout S       give up when the remote sends nothing for S seconds (default ${DEFAULT_REMOTE_TIMEOUT_S})`;

/** The parsed remote flags. */
export interface RemoteFlagValues {
  "ssh-option"?: string[];
  "connect-timeout"?: string;
  "remote-tool"?: string;
  "remote-bin"?: string;
  "remote-tmp"?: string;
  "remote-timeout"?: string;
}

/** Builds the remote options from flags, then the config file. @throws {UsageError} */
export function remoteOptions(
  command: string,
  values: RemoteFlagValues,
  ctx: Context,
): RemoteOptions {
  const config = ctx.config?.remote;
  const timeout = values["connect-timeout"];
  const connectTimeoutS = timeout === undefined
    ? undefined
    : intInRange(command, "connect-timeout", timeout, CONNECT_TIMEOUT_RANGE);
  const idle = values["remote-timeout"];
  const idleTimeoutS = idle === undefined
    ? DEFAULT_REMOTE_TIMEOUT_S
    : intInRange(command, "remote-timeout", idle, REMOTE_TIMEOUT_RANGE);
  const tool = values["remote-tool"] === undefined
    ? "auto"
    : choiceValue(command, "remote-tool", values["remote-tool"], REMOTE_TOOLS);
  return {
    ssh: {
      options: [...(values["ssh-option"] ?? []), ...(config?.sshOptions ?? [])],
      connectTimeoutS,
    },
    tool,
    bin: values["remote-bin"] ?? config?.bin ?? "litekeep",
    tmpDir: values["remote-tmp"],
    idleTimeoutMs: idleTimeoutS * 1000,
  };
}

/**
 * The remote database: the command line's HOST:PATH, else the config's `remote.host` and
 * `remote.db` (both, or it is not configured).
 *
 * @throws {UsageError} when there is neither
 */
export function remoteSource(
  ctx: Context,
  command: string,
  given: RemoteSpec | undefined,
): RemoteSpec {
  const config = ctx.config?.remote;
  const source = given ??
    (config?.host && config.db ? { host: config.host, path: config.db } : undefined);
  if (source === undefined) throw noRemote(command);
  return source;
}

/** A usage error for a missing remote. */
export function noRemote(command: string): UsageError {
  return new UsageError(`${command}: no remote database given`, {
    hint:
      'write HOST:PATH (e.g. raspberry-pi:/home/pi/app/instance/app.db) or set "remote" in litekeep.json',
  });
}
