/**
 * `litekeep pull [HOST:PATH] [LOCAL_DB]`: a live remote database to a local file, verified.
 *
 * @module
 */
import { CHECKSUM_CHOICES, type ChecksumChoice } from "../backup_set/checksum.ts";
import type { Context } from "../cli/context.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";
import { UsageError } from "../errors.ts";
import { PULL_METHODS, pullDatabase, type PullMethod } from "../remote/pull.ts";
import { parseRemoteSpec, type RemoteSpec } from "../remote/ssh.ts";
import { COMPRESS_CHOICES, type Compression } from "../remote/ops.ts";
import { readInfo } from "../remote/info.ts";
import { VERIFY_MODES, type VerifyMode } from "../engine/sqlite.ts";
import {
  backupDirPath,
  busyTimeoutFlag,
  cliPath,
  optionalChoice,
  parseStrict,
  positionals,
  printJson,
} from "./_args.ts";
import {
  REMOTE_FLAGS,
  REMOTE_USAGE,
  type RemoteFlagValues,
  remoteOptions,
  remoteSource,
} from "./_remote.ts";
import { tickingProgress } from "../cli/log.ts";
import { describeInfo, infoJson } from "./_info.ts";
import { describePull, pullStatus } from "./_pull_report.ts";
import { effectivePolicy, finishWithPrune, KEEP_HELP, KEEP_OPTIONS, keepPolicy } from "./_keep.ts";
import type { RetentionPolicy } from "../backup_set/retention.ts";

/** One line for the command list. */
export const summary = "bring a live database from another host over ssh, verified";

/** Help text. */
export const usage = `Usage: litekeep pull [HOST:PATH] [LOCAL_DB] [options]

Copies a live remote database to LOCAL_DB: the remote takes a consistent snapshot and streams it
back over one ssh connection; the old local database is backed up (beside the transfer, when it
can be), the copy is checked (sha256, integrity, and the row counts of that same snapshot) and put
in place, committed only once its check passed. A failure at any point leaves the local database
as it was; the remote database is only read.

Options:
  --method M               delta (only the pages changed since the local copy travel),
                           snapshot ("query" is its old name: the whole database travels), or
                           scp (raw copy of .db and .db-wal: may be stale or torn while the app
                           writes). Default: delta when litekeep runs on the remote and a local
                           copy exists (an unchanged database then costs the ssh start and one
                           read of the database on each host, and writes nothing),
                           else snapshot
  --compress C             zstd, gzip or none. Default: zstd between two litekeeps, none from
                           python3/sqlite3 (which do gzip, not zstd)
  --verify MODE            the check of the copy: full (integrity_check, default), quick
                           (quick_check) or none (row counts only)
  --no-local-backup        do not back the old local database up
  -d, --backup-dir DIR     where the old local database is backed up (default: config, else
                           LOCAL_DB's folder/backups)
  --checksum ALG           checksum of that backup: sha256 (default), md5, none
  --info-only              only describe the remote database (like "litekeep info HOST:PATH")
  --busy-timeout MS        wait this long for local locks (default ${DEFAULT_BUSY_TIMEOUT_MS})
${REMOTE_USAGE}
  The backups pull makes of the old local database are pruned after a successful pull that
  copied (an unchanged one prunes nothing) by the keep rules below (default: config "keep";
  with neither, none is deleted):
${KEEP_HELP}
  -h, --help               show this help

Examples:
  litekeep pull raspberry-pi:/home/pi/gym-controller/instance/gym_system.db instance/gym_system.db
  litekeep pull --info-only
`;

const OPTIONS = {
  method: { type: "string" },
  compress: { type: "string" },
  verify: { type: "string" },
  "no-local-backup": { type: "boolean" },
  "backup-dir": { type: "string", short: "d" },
  checksum: { type: "string" },
  "info-only": { type: "boolean" },
  "busy-timeout": { type: "string" },
  ...REMOTE_FLAGS,
  ...KEEP_OPTIONS,
} as const;

/** The typed flags of `pull`. */
export interface PullFlags {
  source?: RemoteSpec;
  local?: string;
  /** Undefined: delta against a protocol-2 litekeep with a local copy, else snapshot. */
  method?: PullMethod;
  compress?: Compression;
  verify?: VerifyMode;
  localBackup: boolean;
  backupDir?: string;
  checksum?: ChecksumChoice;
  infoOnly: boolean;
  busyTimeoutMs?: number;
  /** The keep flags given, if any: they prune the local backups after the pull. */
  policy?: RetentionPolicy;
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
    method: optionalChoice("pull", "method", values.method, PULL_METHODS),
    compress: optionalChoice("pull", "compress", values.compress, COMPRESS_CHOICES),
    verify: optionalChoice("pull", "verify", values.verify, VERIFY_MODES),
    localBackup: !values["no-local-backup"],
    backupDir: values["backup-dir"],
    checksum: optionalChoice("pull", "checksum", values.checksum, CHECKSUM_CHOICES),
    infoOnly: values["info-only"] ?? false,
    busyTimeoutMs: busyTimeoutFlag("pull", values["busy-timeout"]),
    policy: keepPolicy("pull", values),
    values,
  };
}

/** Runs `pull`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const config = ctx.config;
  const remote = { ...remoteOptions("pull", flags.values, ctx), compress: flags.compress };
  const source = remoteSource(ctx, "pull", flags.source);
  if (flags.infoOnly) {
    const info = await readInfo(source, { remote });
    const location = `${source.host}:${source.path}`;
    if (ctx.json) printJson(ctx, infoJson(location, info));
    else if (!ctx.quiet) ctx.io.stdout(describeInfo(location, info));
    return 0;
  }
  const localDb = flags.local !== undefined ? cliPath(ctx, flags.local) : config?.db;
  if (localDb === undefined) {
    throw new UsageError("pull: no local database given", {
      hint: 'name it after HOST:PATH, or set "db" in litekeep.json',
    });
  }
  // Checked before anything is touched; without rules (flags or config) nothing is pruned.
  const prune = flags.policy || config?.keep ? effectivePolicy(flags.policy, config) : undefined;
  // At once, not after the usual delay: the remote may work for seconds before data flows.
  const waiting = tickingProgress(ctx.log, `pull: waiting for ${source.host}...`);
  ctx.log.progress(`pull: waiting for ${source.host}...`, { now: true });
  // The rate counts from the first byte, not from the wait: no "30238 s left" at the start.
  let transferStarted: number | undefined;
  const result = await pullDatabase({
    source,
    localDb,
    method: flags.method ?? "auto",
    verify: flags.verify ?? config?.verify,
    remote,
    backupDir: backupDirPath(ctx, flags.backupDir),
    localBackup: flags.localBackup,
    checksum: flags.checksum ?? config?.checksum,
    busyTimeoutMs: flags.busyTimeoutMs ?? config?.busyTimeout,
    now: ctx.io.now(),
    prune,
    onProgress: (p) => {
      waiting.stop();
      if (p.phase === "transfer") transferStarted ??= performance.now();
      const seconds = (performance.now() - (transferStarted ?? performance.now())) / 1000;
      ctx.log.progress(pullStatus(p, seconds));
    },
  }).finally(() => waiting.stop());
  ctx.log.endProgress();
  // What scp is, not a problem of this run: an info line (--quiet shows only real problems).
  if (result.method === "scp") {
    ctx.log.info(
      "scp copies the raw files: if the application wrote meanwhile, the copy may be stale or " +
        "torn; --method snapshot is consistent while it writes",
    );
  }
  // A litekeep the user named (--remote-bin, remote.bin) that did not answer: the pull still
  // worked through python3/sqlite3, slower and without the default delta; never silently.
  const namedBin = flags.values["remote-bin"] ?? config?.remote?.bin;
  const fellBack = remote.tool === "auto" && !["litekeep", "scp"].includes(result.tool);
  if (namedBin !== undefined && fellBack) {
    result.warnings.push(
      `litekeep "${namedBin}" was not found on ${source.host}: the pull ran through ` +
        `${result.tool} (protocol 1: slower, and the whole database travels unless --method ` +
        `delta); check the path with "ssh ${source.host} ${namedBin} --version"`,
    );
  }
  for (const warning of result.warnings) ctx.log.warn(warning);
  return finishWithPrune(
    ctx,
    "pull",
    result,
    () => describePull(result, { localBackup: flags.localBackup }),
  );
}
