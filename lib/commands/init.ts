/**
 * `litekeep init`: writes `litekeep.json` for this host's set-up, checks the database and the
 * remote, and prints the schedule (crontab, launchd, systemd) with absolute paths.
 *
 * @module
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "../cli/context.ts";
import { describeCause, OperationError, UsageError } from "../errors.ts";
import { checkDatabaseFile } from "../engine/sqlite.ts";
import { defaultBackupDir } from "../backup_set/backup.ts";
import { type RetentionPolicy, validatePolicy } from "../backup_set/retention.ts";
import { KEEP_RANGES } from "../limits.ts";
import { PERMISSIONS } from "../permissions.ts";
import { parseRemoteSpec, type RemoteSpec } from "../remote/ssh.ts";
import { configExists, configObject, writeConfigFile } from "../cli/config_write.ts";
import { parsePingUrl } from "../cli/ping.ts";
import {
  crontabText,
  launchdAgents,
  type Schedule,
  setupJobs,
  systemdUnits,
} from "../cli/schedule.ts";
import { intInRange, parseStrict, positionals, printJson } from "./_args.ts";
import { describeInit, type RemoteCheck, remoteWarning, tryRemote } from "./_init.ts";

/** One line for the command list. */
export const summary = "write litekeep.json, check the database and remote, print the schedule";

/** Help text. */
export const usage = `Usage: litekeep init [options]

Writes ./litekeep.json (or --config FILE) for this host, checks that the database is SQLite
(and with --remote that the remote answers, and which tool it runs), then prints crontab lines,
a launchd agent (Mac) and a systemd timer (Pi) for it, with absolute paths.

On the host with the database (the Pi): a nightly backup that then prunes, and an hourly
monitor. With --remote (the Mac): an hourly pull into DB.

Options:
  --db DB                  the database (default with --remote: the remote's file name, here)
  -d, --backup-dir DIR     where backups go (default: DB's folder/backups)
  --remote HOST:PATH       the live database to pull from, e.g. raspberry-pi:/home/pi/app/app.db
  --remote-bin PATH        litekeep on the remote, when not on its PATH (config remote.bin)
  --keep-days N            keep backups of the last N days (default 7; with --remote: 2)
  --keep-count N           and at least the newest N (default 10; with --remote: 24)
  --ping URL               the health-check URL every job pings (config ping), e.g.
                           https://hc-ping.com/<uuid>
  --force                  replace an existing config file
  -h, --help               show this help

Examples:
  litekeep init --db instance/gym_system.db --backup-dir data/backups/database --keep-days 7
  litekeep init --remote raspberry-pi:/home/pi/gym-controller/instance/gym_system.db \\
    --db instance/gym_system.db
`;

/** `init` writes the config: a broken or missing one must not stop it. */
export const writesConfig = true;

/** The typed flags of `init`. */
export interface InitFlags {
  db?: string;
  backupDir?: string;
  remote?: RemoteSpec;
  remoteBin?: string;
  keep: RetentionPolicy;
  force: boolean;
}

/** Parses `init`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): InitFlags {
  const { values, positionals: rest } = parseStrict("init", argv, {
    db: { type: "string" },
    "backup-dir": { type: "string", short: "d" },
    remote: { type: "string" },
    "remote-bin": { type: "string" },
    "keep-days": { type: "string" },
    "keep-count": { type: "string" },
    force: { type: "boolean" },
  });
  positionals("init", rest, 0);
  let remote: RemoteSpec | undefined;
  if (values.remote !== undefined) {
    remote = parseRemoteSpec(values.remote);
    if (remote === undefined) {
      throw new UsageError(`init: --remote must be HOST:PATH, not "${values.remote}"`, {
        hint: "e.g. --remote raspberry-pi:/home/pi/gym-controller/instance/gym_system.db",
      });
    }
  }
  if (values["remote-bin"] !== undefined && remote === undefined) {
    throw new UsageError("init: --remote-bin needs --remote HOST:PATH");
  }
  if (values.db === undefined && remote === undefined) {
    throw new UsageError("init: give --db DB (the host with the database) or --remote HOST:PATH", {
      hint: 'see "litekeep init --help"',
    });
  }
  // An hourly pull makes 24 copies a day of the old local database: two days of them, not a
  // week's 168, unless asked.
  const defaults = remote ? { days: 2, count: 24 } : { days: 7, count: 10 };
  const days = values["keep-days"];
  const count = values["keep-count"];
  const keep: RetentionPolicy = {
    days: days === undefined
      ? defaults.days
      : intInRange("init", "keep-days", days, KEEP_RANGES.days),
    count: count === undefined
      ? defaults.count
      : intInRange("init", "keep-count", count, KEEP_RANGES.count),
  };
  try {
    validatePolicy(keep);
  } catch (error) {
    if (error instanceof UsageError) {
      throw new UsageError(`init: ${error.message}`, { hint: error.hint });
    }
    throw error;
  }
  return {
    db: values.db,
    backupDir: values["backup-dir"],
    remote,
    remoteBin: values["remote-bin"],
    keep,
    force: values.force ?? false,
  };
}

/** The argv that runs this litekeep: the binary itself, or `deno run ... main.ts` from source. */
function selfArgv(): string[] {
  const exec = Deno.execPath();
  if (!/^deno(\.exe)?$/.test(basename(exec))) return [exec];
  return [exec, "run", ...PERMISSIONS, fileURLToPath(new URL("../../main.ts", import.meta.url))];
}

/** Runs `init`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const { cwd } = ctx.io;
  const file = resolve(cwd, ctx.configFlag ?? "litekeep.json");
  // Every scheduled job names this path (and its folder holds the log): a crontab entry and
  // systemd's ExecStart= are one line each, and XML 1.0 (launchd) holds no control character.
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(file)) {
    throw new UsageError(
      `init: the config file's path ${JSON.stringify(file)} holds a control character (a ` +
        "line break?), which no crontab line, systemd unit or launchd plist can hold",
      { hint: "run init in a folder without one, or give --config FILE in such a folder" },
    );
  }
  // Checked first, so a refusal costs no ssh round trip; the write checks again (link(2)).
  if (!flags.force && await Deno.lstat(file).then(() => true, () => false)) {
    throw configExists(file);
  }
  const ping = ctx.pingFlag === undefined
    ? undefined
    : parsePingUrl(ctx.pingFlag, "init --ping").href;
  const db = resolve(cwd, flags.db ?? basename(flags.remote!.path));
  const header = await checkLocalDb(db, flags.remote !== undefined);
  const backupDir = flags.backupDir === undefined
    ? defaultBackupDir(db)
    : resolve(cwd, flags.backupDir);
  // Anything but a folder there (the database itself, given twice) fails every backup later.
  const existing = await Deno.stat(backupDir).catch(() => undefined);
  if (existing !== undefined && !existing.isDirectory) {
    throw new UsageError(`init: the backup folder "${backupDir}" is a file, not a folder`, {
      hint: "give --backup-dir a folder (it is created when missing), e.g. --backup-dir backups",
    });
  }
  const warnings: string[] = [];
  let remote: RemoteCheck | null = null;
  if (flags.remote) {
    ctx.log.info(`init: trying ${flags.remote.host}:${flags.remote.path} over ssh`);
    remote = await tryRemote(flags.remote, flags.remoteBin);
    const warning = remoteWarning(remote);
    if (warning !== undefined) {
      warnings.push(warning);
      ctx.log.warn(warning);
    }
  }
  const written = configObject(file, {
    db,
    backupDir,
    keep: flags.keep,
    remote: flags.remote
      ? {
        host: flags.remote.host,
        db: flags.remote.path,
        ...(flags.remoteBin ? { bin: flags.remoteBin } : {}),
      }
      : undefined,
    ping,
  });
  // A ping URL's path is the health check's secret (anyone who has it can ping): owner only.
  await writeConfigFile(
    file,
    `${JSON.stringify(written, null, 2)}\n`,
    flags.force,
    ping === undefined ? 0o644 : 0o600,
  );
  const owner = sudoOwner(ctx);
  await giveTo(owner, [file]);
  const workDir = dirname(file);
  const logs = join(workDir, "logs");
  // A crontab line whose ">> logs/..." folder is missing never runs its job at all; and a
  // monitor run before the first backup should say "no backups", not "no such folder".
  for (const folder of [logs, backupDir]) {
    try {
      const made = await missingFolders(folder);
      await Deno.mkdir(folder, { recursive: true });
      await giveTo(owner, made);
    } catch (cause) {
      const warning = `init: cannot create "${folder}": ${describeCause(cause)}`;
      warnings.push(warning);
      ctx.log.warn(warning);
    }
  }
  const schedule: Schedule = {
    program: selfArgv(),
    config: file,
    workDir,
    logFile: join(logs, "litekeep.log"),
    name: basename(db, extname(db)),
    // Under sudo, the user who ran it, not root: the jobs must own what they write.
    user: ctx.io.env("SUDO_USER") ?? ctx.io.env("USER") ?? ctx.io.env("LOGNAME"),
    jobs: setupJobs(flags.remote ? "pull" : "backup"),
  };
  const texts = {
    crontab: crontabText(schedule),
    launchd: launchdAgents(schedule),
    systemd: systemdUnits(schedule),
  };
  if (ctx.json) {
    printJson(ctx, {
      ok: true,
      command: "init",
      config: file,
      written,
      database: { path: db, exists: header !== undefined, wal: header?.wal ?? null },
      remote,
      logFile: schedule.logFile,
      schedule: texts,
      warnings,
    });
  } else if (!ctx.quiet) {
    ctx.io.stdout(describeInit(file, written, remote, texts));
  }
  return 0;
}

/**
 * The local database: it must be SQLite if it exists; with a remote it may not exist yet (the
 * first pull creates it), but its folder must.
 *
 * @throws {OperationError} naming the path (exit 1)
 */
async function checkLocalDb(db: string, pulled: boolean) {
  if (pulled && !(await Deno.lstat(db).then(() => true, () => false))) {
    const folder = dirname(db);
    const ok = await Deno.stat(folder).then((i) => i.isDirectory, () => false);
    if (!ok) {
      throw new OperationError(`init: the folder of "${db}" does not exist: "${folder}"`, {
        hint: `create it (mkdir -p "${folder}"), or give another --db`,
      });
    }
    return undefined;
  }
  try {
    return await checkDatabaseFile(db, "database", { allowEmpty: pulled });
  } catch (error) {
    // Its hint names the config file's "db": the file init is about to write.
    if (error instanceof OperationError && /config file/.test(error.hint ?? "")) {
      throw new OperationError(error.message, { hint: "check the --db path", cause: error });
    }
    throw error;
  }
}

/**
 * Under `sudo litekeep init`, the user who ran sudo (SUDO_UID, SUDO_GID): the jobs run as that
 * user (their crontab, systemd's `User=`), so what init creates must be theirs, or the first
 * job fails at `>> logs/litekeep.log` before litekeep even starts.
 */
function sudoOwner(ctx: Context): { uid: number; gid: number } | undefined {
  const uid = Number(ctx.io.env("SUDO_UID") ?? "x");
  const gid = Number(ctx.io.env("SUDO_GID") ?? "x");
  return Number.isSafeInteger(uid) && Number.isSafeInteger(gid) && uid > 0 && gid >= 0
    ? { uid, gid }
    : undefined;
}

/**
 * Gives `paths` to `owner`. Only root may: a process that is not (SUDO_UID inherited by
 * another user's shell) leaves them as they are, which is what it could create them as.
 */
async function giveTo(owner: { uid: number; gid: number } | undefined, paths: string[]) {
  if (owner === undefined) return;
  for (const path of paths) {
    try {
      await Deno.chown(path, owner.uid, owner.gid);
    } catch (error) {
      if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
    }
  }
}

/** The folders `mkdir -p folder` would create, outermost first. */
async function missingFolders(folder: string): Promise<string[]> {
  const missing: string[] = [];
  for (let at = folder;; at = dirname(at)) {
    if (await Deno.lstat(at).then(() => true, () => false)) break;
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  return missing;
}
