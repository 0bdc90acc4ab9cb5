/**
 * `litekeep pull [HOST:PATH] [LOCAL_DB]`: a live remote database to a local file, verified.
 *
 * @module
 */
import { CHECKSUM_CHOICES } from "../backup_set/checksum.ts";
import type { Context } from "../cli/context.ts";
import { BUSY_TIMEOUT_RANGE } from "../limits.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, formatDuration, formatTables } from "../cli/format.ts";
import { PULL_METHODS, pullDatabase, type PullMethod, type PullResult } from "../remote/pull.ts";
import { parseRemoteSpec, type RemoteSpec } from "../remote/ssh.ts";
import { remoteInfo } from "../remote/ops.ts";
import { choiceValue, cliPath, intInRange, parseStrict, positionals, printJson } from "./_args.ts";
import {
  noRemote,
  REMOTE_FLAGS,
  REMOTE_USAGE,
  type RemoteFlagValues,
  remoteOptions,
} from "./_remote.ts";
import { describeInfo } from "./info.ts";

/** One line for the command list. */
export const summary = "bring a live database from another host over ssh, verified";

/** Help text. */
export const usage = `Usage: litekeep pull [HOST:PATH] [LOCAL_DB] [options]

Copies a live remote database to LOCAL_DB: the remote takes a consistent snapshot and streams it
back over one ssh connection; the copy is checked (integrity, and the row counts of that same
snapshot), the old local database is backed up, then the copy is put in place. A failure at any
point leaves the local database as it was; the remote database is only read.

Options:
  --method M               snapshot (default; "query" is its old name), scp (raw copy of .db
                           and .db-wal: fastest, but may be stale or torn while the app writes),
                           or delta (only the pages changed since the local copy travel)
  --compress C             none (default) or gzip: compress the stream (slow links)
  --no-local-backup        do not back the old local database up first
  -d, --backup-dir DIR     where the old local database is backed up (default: config, else
                           LOCAL_DB's folder/backups)
  --checksum ALG           checksum of that backup: sha256 (default), md5, none
  --info-only              only describe the remote database (like "litekeep info HOST:PATH")
  --busy-timeout MS        wait this long for local locks (default 10000)
${REMOTE_USAGE}
  -h, --help               show this help

Examples:
  litekeep pull raspberry-pi:/home/pi/gym-controller/instance/gym_system.db instance/gym_system.db
  litekeep pull --info-only
`;

const OPTIONS = {
  method: { type: "string" },
  compress: { type: "string" },
  "no-local-backup": { type: "boolean" },
  "backup-dir": { type: "string", short: "d" },
  checksum: { type: "string" },
  "info-only": { type: "boolean" },
  "busy-timeout": { type: "string" },
  ...REMOTE_FLAGS,
} as const;

/** The typed flags of `pull`. */
export interface PullFlags {
  source?: RemoteSpec;
  local?: string;
  method: PullMethod;
  compress: "none" | "gzip";
  localBackup: boolean;
  backupDir?: string;
  checksum?: "sha256" | "md5" | "none";
  infoOnly: boolean;
  busyTimeoutMs?: number;
  values: RemoteFlagValues;
}

/** Parses `pull`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): PullFlags {
  const { values, positionals: rest } = parseStrict("pull", argv, OPTIONS);
  const args = positionals("pull", rest, 2);
  let source: RemoteSpec | undefined;
  let local: string | undefined;
  if (args.length > 0) {
    source = parseRemoteSpec(args[0]);
    if (source === undefined && args.length === 2) {
      throw new UsageError(`pull: "${args[0]}" is not HOST:PATH`, {
        hint: "the first argument is the remote database, e.g. raspberry-pi:/home/pi/app.db",
      });
    }
    local = source === undefined ? args[0] : args[1];
  }
  return {
    source,
    local,
    method: values.method === undefined
      ? "snapshot"
      : choiceValue("pull", "method", values.method, PULL_METHODS),
    compress: values.compress === undefined
      ? "none"
      : choiceValue("pull", "compress", values.compress, ["none", "gzip"] as const),
    localBackup: !values["no-local-backup"],
    backupDir: values["backup-dir"],
    checksum: values.checksum === undefined
      ? undefined
      : choiceValue("pull", "checksum", values.checksum, CHECKSUM_CHOICES),
    infoOnly: values["info-only"] ?? false,
    busyTimeoutMs: values["busy-timeout"] === undefined
      ? undefined
      : intInRange("pull", "busy-timeout", values["busy-timeout"], BUSY_TIMEOUT_RANGE),
    values,
  };
}

/** Runs `pull`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const config = ctx.config;
  const remote = { ...remoteOptions("pull", flags.values, ctx), compress: flags.compress };
  const source = flags.source ??
    (config?.remote?.host && config.remote.db
      ? { host: config.remote.host, path: config.remote.db }
      : undefined);
  if (source === undefined) throw noRemote("pull");
  if (flags.infoOnly) {
    const info = await remoteInfo(source, remote);
    if (ctx.json) {
      printJson(ctx, {
        ok: true,
        command: "info",
        ...info,
        location: `${source.host}:${source.path}`,
      });
    } else if (!ctx.quiet) ctx.io.stdout(describeInfo(`${source.host}:${source.path}`, info));
    return 0;
  }
  const localDb = flags.local !== undefined ? cliPath(ctx, flags.local) : config?.db;
  if (localDb === undefined) {
    throw new UsageError("pull: no local database given", {
      hint: 'name it after HOST:PATH, or set "db" in litekeep.json',
    });
  }
  const started = performance.now();
  const result = await pullDatabase({
    source,
    localDb,
    method: flags.method,
    remote,
    backupDir: flags.backupDir !== undefined ? cliPath(ctx, flags.backupDir) : config?.backupDir,
    localBackup: flags.localBackup,
    checksum: flags.checksum ?? config?.checksum,
    busyTimeoutMs: flags.busyTimeoutMs ?? config?.busyTimeout,
    now: ctx.io.now(),
    onProgress: (p) => {
      if (p.phase !== "transfer") {
        ctx.log.progress(
          `pull: ${
            p.phase === "check"
              ? "checking the copy"
              : p.phase === "backup"
              ? "backing up the local database"
              : "putting the copy in place"
          }`,
        );
        return;
      }
      const seconds = (performance.now() - started) / 1000;
      const rate = p.received / Math.max(seconds, 0.001);
      const eta = rate > 0 ? (p.expected - p.received) / rate : 0;
      ctx.log.progress(
        `pull: ${formatBytes(p.received)} of ${formatBytes(p.expected)}, ${formatBytes(rate)}/s, ${
          Math.ceil(eta)
        } s left`,
      );
    },
  });
  ctx.log.endProgress();
  for (const warning of result.warnings) ctx.log.warn(warning);
  if (ctx.json) printJson(ctx, { ok: true, command: "pull", ...result });
  else if (!ctx.quiet) ctx.io.stdout(describe(result));
  return 0;
}

function describe(r: PullResult): string {
  return `Pulled ${r.source} into ${r.localDb}${r.created ? " (new file)" : ""}\n` +
    `  method    ${r.method} (remote tool: ${r.tool})\n` +
    `  size      ${formatBytes(r.bytes)}\n` +
    `  duration  ${formatDuration(r.durationMs)}\n` +
    `  sha256    ${r.sha256}\n` +
    `  verified  ${verified(r)}\n` +
    `  backup    ${r.localBackup ?? "none (no local database, or --no-local-backup)"}\n` +
    `  tables\n${formatTables(r.tables)}`;
}

/** What was checked, and only that: scp's counts come from the live remote, or from nowhere. */
function verified(r: PullResult): string {
  const against = r.method === "scp" ? "the remote's live database" : "the remote's snapshot";
  const counts = r.rowCounts === "match"
    ? `row counts match ${against}`
    : r.rowCounts === "differ"
    ? `row counts DIFFER from the remote's: ${r.rowCountDifferences.join(", ")}`
    : "row counts could not be compared with the remote's";
  return `integrity_check ok; ${counts}`;
}
