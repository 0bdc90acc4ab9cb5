/**
 * The scheduler texts `litekeep init` prints: crontab lines, launchd agents (macOS) and systemd
 * service + timer pairs (Raspberry Pi OS), all made from one list of jobs by pure functions.
 * Every path in them is absolute: cron runs jobs with `PATH=/usr/bin:/bin` and the user's home
 * as the working directory, so a bare `litekeep` or a relative path would not be found.
 *
 * @module
 */
import { shellQuote } from "../remote/ssh.ts";

/** One scheduled litekeep run. */
export interface Job {
  /** Short name, part of the unit and agent names: `backup`, `monitor`, `pull`. */
  name: string;
  /** What it does, for the comment above it (launchd, systemd). */
  about: string;
  /** What it does under cron, when that says more than `about` (cron mails the output). */
  cronAbout?: string;
  /** litekeep's arguments after `--config FILE`. */
  args: string[];
  /** The minute of the hour it runs at. */
  minute: number;
  /** The hour of the day it runs at; undefined: every hour. */
  hour?: number;
  /**
   * Append its output to the log file (cron). False for the monitor: its one error line, when
   * the backups are stale, is what cron mails to the user, so it must not vanish into a log.
   */
  logged: boolean;
}

/** Everything the texts are made from. */
export interface Schedule {
  /** The argv that runs litekeep: the binary, or `deno run ... main.ts` from source. */
  program: string[];
  /** The absolute config file every job names with `--config`. */
  config: string;
  /** The folder the jobs run in (the config's). */
  workDir: string;
  /** The absolute log file cron appends to. */
  logFile: string;
  /** The set's name in unit and agent names, e.g. the database's stem. */
  name: string;
  /** The user systemd runs the jobs as (the Pi's `pi`); undefined: say so in the unit. */
  user?: string;
  jobs: Job[];
}

/**
 * The jobs of a set-up: on the host with the database (the Pi), a nightly backup that prunes
 * only after it succeeded, and an hourly monitor that fails when the newest backup is over 26 h
 * old; on the host that pulls (the Mac), an hourly pull.
 */
export function setupJobs(kind: "backup" | "pull"): Job[] {
  if (kind === "pull") {
    return [{
      name: "pull",
      about: "every hour: pull the remote database, verified; its old copies pruned by keep",
      args: ["pull"],
      minute: 0,
      logged: true,
    }];
  }
  return [
    {
      name: "backup",
      about: "03:00 every night: back up, then prune by keep (only after the backup succeeded)",
      args: ["backup", "--prune"],
      minute: 0,
      hour: 3,
      logged: true,
    },
    {
      name: "monitor",
      about: "every hour: silent while fresh; exit 1 and one error line " +
        "when the newest backup is over 26 h old",
      cronAbout: "every hour: silent while fresh; exit 1 and one error line (mailed by cron) " +
        "when the newest backup is over 26 h old",
      args: ["stats", "--max-age", "26h", "--quiet"],
      minute: 15,
      logged: false,
    },
  ];
}

/** A name safe in a systemd unit name and a launchd label: `[A-Za-z0-9_-]`, never empty. */
export function safeName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
  return safe === "" ? "db" : safe;
}

/** The full argv of a job. */
export function jobArgv(s: Schedule, job: Job): string[] {
  return [...s.program, "--config", s.config, ...job.args];
}

/** A word for `/bin/sh`, quoted only when it needs it, so the usual line stays readable. */
function shWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : shellQuote(word);
}

/**
 * A crontab command: cron turns an unescaped `%` into a newline, so each is escaped, outside
 * the shell's quotes (`'a b'\%'c'`). A backslash is cron's escape only before a `%`: one that
 * ends a quoted part stays the shell's literal backslash, even in a path holding `\%`.
 */
function cronCommand(words: string[]): string {
  return words
    .map((word) =>
      word === "" ? shWord(word) : word.split("%").map((p) => p === "" ? "" : shWord(p)).join("\\%")
    )
    .join(" ");
}

/** The crontab lines (with comments) for `crontab -e`. */
export function crontabText(s: Schedule): string {
  const lines = [
    `# litekeep, set up by "litekeep init" for ${s.config}`,
    "# cron runs jobs with PATH=/usr/bin:/bin: every path here is absolute.",
  ];
  for (const job of s.jobs) {
    const when = `${job.minute} ${job.hour ?? "*"} * * *`;
    const log = job.logged ? ` >> ${cronCommand([s.logFile])} 2>&1` : "";
    lines.push(`# ${job.cronAbout ?? job.about}`, `${when} ${cronCommand(jobArgv(s, job))}${log}`);
  }
  return `${lines.join("\n")}\n`;
}

/** One launchd agent: its label, where it goes, and the plist. */
export interface LaunchdAgent {
  label: string;
  /** Where to save it, `~` for the home folder. */
  path: string;
  plist: string;
}

function xml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/**
 * launchd agents (macOS), one per job. Unlike cron, launchd runs a calendar job that came due
 * while the Mac slept as soon as it wakes (once, however many were missed).
 */
export function launchdAgents(s: Schedule): LaunchdAgent[] {
  return s.jobs.map((job) => {
    const label = `com.litekeep.${job.name}.${safeName(s.name)}`;
    const when = [
      ...(job.hour === undefined ? [] : [`<key>Hour</key><integer>${job.hour}</integer>`]),
      `<key>Minute</key><integer>${job.minute}</integer>`,
    ].join("");
    const args = jobArgv(s, job).map((w) => `    <string>${xml(w)}</string>`).join("\n");
    const plist = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- ${xml(job.about).replaceAll("--", "- -")} -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>${xml(label)}</string>
  <key>ProgramArguments</key>
  <array>
${args}
  </array>
  <key>WorkingDirectory</key>
  <string>${xml(s.workDir)}</string>
  <key>StartCalendarInterval</key>
  <dict>${when}</dict>
  <key>StandardOutPath</key>
  <string>${xml(s.logFile)}</string>
  <key>StandardErrorPath</key>
  <string>${xml(s.logFile)}</string>
</dict>
</plist>
`;
    return { label, path: `~/Library/LaunchAgents/${label}.plist`, plist };
  });
}

/** One systemd unit file: its name (to save under /etc/systemd/system/) and text. */
export interface SystemdUnit {
  name: string;
  text: string;
}

/**
 * A word for systemd's `ExecStart=`: double-quoted when it has spaces or quotes; `%` (a
 * specifier) and, in an argument, `$` (a variable) doubled, as systemd.service(5) asks.
 */
function systemdWord(word: string, index = 1): string {
  // Variables are expanded in the arguments only: the executable's name takes a $ as it is.
  const escaped = index === 0
    ? word.replaceAll("%", "%%")
    : word.replaceAll("%", "%%").replaceAll("$", "$$$$");
  return /^[A-Za-z0-9_@%$+=:,./-]+$/.test(escaped)
    ? escaped
    : `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * systemd units (Raspberry Pi OS), a service and a timer per job. `Persistent=true` runs a job
 * whose time passed while the Pi was off (or unplugged) at the next boot. Output goes to the
 * journal (`journalctl -u NAME`), which stamps every line.
 */
export function systemdUnits(s: Schedule): SystemdUnit[] {
  return s.jobs.flatMap((job) => {
    const unit = `litekeep-${job.name}-${safeName(s.name)}`;
    const network = job.name === "pull"
      ? ["Wants=network-online.target", "After=network-online.target"]
      : [];
    const service = [
      "[Unit]",
      `Description=${specifiersEscaped(`litekeep ${job.name} (${s.config})`)}`,
      ...network,
      "",
      "[Service]",
      "Type=oneshot",
      s.user === undefined
        ? "# User=pi   (set the user that owns the database; without it the job runs as root)"
        : `User=${s.user}`,
      // A path setting, not a command line: taken as it stands, only specifiers expanded, and
      // white space at its end stripped, unless a "/" follows it.
      `WorkingDirectory=${specifiersEscaped(s.workDir)}${/\s$/.test(s.workDir) ? "/" : ""}`,
      // systemd will not run an executable whose name holds one of these, however quoted.
      ...(/['"\\]/.test(s.program[0])
        ? [
          "# systemd refuses this program path (it holds ' \" or \\): copy litekeep to " +
          "/usr/local/bin and name it there",
        ]
        : []),
      `ExecStart=${jobArgv(s, job).map((w, i) => systemdWord(w, i)).join(" ")}`,
      "",
    ].join("\n");
    const calendar = `*-*-* ${job.hour === undefined ? "*" : pad(job.hour)}:${pad(job.minute)}:00`;
    const timer = [
      "[Unit]",
      `Description=${specifiersEscaped(`litekeep ${job.name} (${s.config}): ${job.about}`)}`,
      "",
      "[Timer]",
      `OnCalendar=${calendar}`,
      "Persistent=true",
      "",
      "[Install]",
      "WantedBy=timers.target",
      "",
    ].join("\n");
    return [{ name: `${unit}.service`, text: service }, { name: `${unit}.timer`, text: timer }];
  });
}

/** A setting where systemd expands specifiers (`Description=`, paths): each `%` doubled. */
function specifiersEscaped(text: string): string {
  return text.replaceAll("%", "%%");
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
