/**
 * `litekeep init`: writes `litekeep.json` for this host's set-up, checks the database and the
 * remote, and prints the schedule (crontab, launchd, systemd) with absolute paths.
 *
 * @module
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "../cli/context.ts";
import { describeCause, LitekeepError, OperationError, UsageError } from "../errors.ts";
import { checkDatabaseFile } from "../engine/sqlite.ts";
import { defaultBackupDir } from "../backup_set/backup.ts";
import { type RetentionPolicy, validatePolicy } from "../backup_set/retention.ts";
import { KEEP_RANGES } from "../limits.ts";
import { PERMISSIONS } from "../permissions.ts";
import { parseRemoteSpec, type RemoteSpec } from "../remote/ssh.ts";
import { remoteInfo } from "../remote/ops.ts";
import { configExists, configObject, writeConfigFile } from "../cli/config_write.ts";
import {
  crontabText,
  launchdAgents,
  type Schedule,
  setupJobs,
  systemdUnits,
} from "../cli/schedule.ts";
import { intInRange, parseStrict, positionals, printJson } from "./_args.ts";

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
  // An hourly pull keeps a day of copies, not a week of 24 a day.
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

/** What the remote said when tried. */
interface RemoteCheck {
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
async function tryRemote(spec: RemoteSpec, bin: string | undefined): Promise<RemoteCheck> {
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

/** Runs `init`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  const { cwd } = ctx.io;
  const file = resolve(cwd, ctx.configFlag ?? "litekeep.json");
  // Checked first, so a refusal costs no ssh round trip; the write checks again (link(2)).
  if (!flags.force && await Deno.lstat(file).then(() => true, () => false)) {
    throw configExists(file);
  }
  const db = resolve(cwd, flags.db ?? basename(flags.remote!.path));
  const header = await checkLocalDb(db, flags.remote !== undefined);
  const backupDir = flags.backupDir === undefined
    ? defaultBackupDir(db)
    : resolve(cwd, flags.backupDir);
  const warnings: string[] = [];
  let remote: RemoteCheck | null = null;
  if (flags.remote) {
    ctx.log.info(`init: trying ${flags.remote.host}:${flags.remote.path} over ssh`);
    remote = await tryRemote(flags.remote, flags.remoteBin);
    const where = `${flags.remote.host}:${flags.remote.path}`;
    if (remote.error) {
      const warning = `init: ${remote.error.message}. The config is written, but the pull job ` +
        `fails until this is fixed: ${remote.error.hint ?? "check ssh"}; ` +
        `then check with "litekeep info ${where}"`;
      warnings.push(warning);
      ctx.log.warn(warning);
    } else if (remote.tool !== "litekeep") {
      const warning = `init: ${flags.remote.host} has no litekeep on its PATH, so pulls use ` +
        `${remote.tool}: copy the litekeep binary to /usr/local/bin there (or give --remote-bin) ` +
        "for faster pulls and --method delta";
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
  });
  await writeConfigFile(file, `${JSON.stringify(written, null, 2)}\n`, flags.force);
  const workDir = dirname(file);
  const logs = join(workDir, "logs");
  // A crontab line whose ">> logs/..." folder is missing never runs its job at all; and a
  // monitor run before the first backup should say "no backups", not "no such folder".
  for (const folder of [logs, backupDir]) {
    await Deno.mkdir(folder, { recursive: true }).catch((cause) => {
      const warning = `init: cannot create "${folder}": ${describeCause(cause)}`;
      warnings.push(warning);
      ctx.log.warn(warning);
    });
  }
  const schedule: Schedule = {
    program: selfArgv(),
    config: file,
    workDir,
    logFile: join(logs, "litekeep.log"),
    name: basename(db, extname(db)),
    user: ctx.io.env("USER") ?? ctx.io.env("LOGNAME"),
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
    ctx.io.stdout(describe(file, written, remote, texts));
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
  return await checkDatabaseFile(db, "database", { allowEmpty: pulled });
}

function describe(
  file: string,
  written: Record<string, unknown>,
  remote: RemoteCheck | null,
  texts: {
    crontab: string;
    launchd: ReturnType<typeof launchdAgents>;
    systemd: ReturnType<typeof systemdUnits>;
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
