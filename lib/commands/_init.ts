/**
 * What `init` shares with no other command but keeps out of its command file: trying the
 * remote, and the human report of what was written and how to schedule it.
 *
 * @module
 */
import { LitekeepError } from "../errors.ts";
import { remoteInfo } from "../remote/ops.ts";
import type { RemoteSpec } from "../remote/ssh.ts";
import type { LaunchdAgent, SystemdUnit } from "../cli/schedule.ts";

/** What the remote said when tried (the `remote` of init's JSON). */
export interface RemoteCheck {
  host: string;
  path: string;
  reached: boolean;
  tool: string | null;
  sqlite: string | null;
  error: { message: string; hint: string | null } | null;
}

/**
 * Tries the remote with `info`. A failure is a warning, not an error: the config does not
 * depend on it (the Pi may be off, its key not yet installed), and the pull job fails loudly
 * on its own until it is fixed; init says what to run to check again.
 */
export async function tryRemote(spec: RemoteSpec, bin: string | undefined): Promise<RemoteCheck> {
  const base = { host: spec.host, path: spec.path };
  try {
    const info = await remoteInfo(spec, {
      ssh: {},
      bin,
      idleTimeoutMs: 120_000,
      timeoutMs: 120_000,
    });
    return { ...base, reached: true, tool: info.tool, sqlite: info.sqlite, error: null };
  } catch (error) {
    if (!(error instanceof LitekeepError)) throw error;
    return {
      ...base,
      reached: false,
      tool: null,
      sqlite: null,
      error: { message: error.message, hint: error.hint ?? null },
    };
  }
}

/**
 * The warning for a remote that did not answer (the config is written all the same), or that
 * answered without litekeep; undefined when all is well.
 */
export function remoteWarning(check: RemoteCheck): string | undefined {
  const where = `${check.host}:${check.path}`;
  if (check.error) {
    return `init: ${check.error.message}. The config is written, but the pull job fails ` +
      `until this is fixed: ${check.error.hint ?? "check ssh"}; then check with ` +
      `"litekeep info ${where}"`;
  }
  if (check.tool !== "litekeep") {
    return `init: ${check.host} has no litekeep on its PATH, so pulls use ${check.tool}: ` +
      "copy the litekeep binary to /usr/local/bin there (or give --remote-bin) for faster " +
      "pulls and --method delta";
  }
  return undefined;
}

/** The human report: the config written, the remote's answer, the schedule texts. */
export function describeInit(
  file: string,
  written: Record<string, unknown>,
  remote: RemoteCheck | null,
  texts: {
    crontab: string;
    launchd: LaunchdAgent[];
    systemd: SystemdUnit[];
  },
): string {
  const out = [`Wrote ${file}:`, JSON.stringify(written, null, 2), ""];
  if (remote?.reached) {
    out.push(
      `Remote ${remote.host}:${remote.path} answered: tool ${remote.tool}, SQLite ${remote.sqlite}`,
      "",
    );
  }
  out.push("== crontab (crontab -e, then paste) ==", texts.crontab);
  out.push("== launchd (Mac: a job missed while it slept runs when it wakes; cron skips it) ==");
  for (const a of texts.launchd) {
    out.push(`# save as ${a.path}, then: launchctl bootstrap gui/$(id -u) ${a.path}`, a.plist);
  }
  out.push(
    "== systemd (Pi: Persistent=true runs a job missed while it was off) ==",
    "# save each under /etc/systemd/system/, then: sudo systemctl daemon-reload && " +
      `sudo systemctl enable --now ${
        texts.systemd.filter((u) => u.name.endsWith(".timer")).map((u) => u.name).join(" ")
      }`,
  );
  for (const u of texts.systemd) out.push(`# ${u.name}`, u.text);
  return `${out.join("\n")}\n`;
}
