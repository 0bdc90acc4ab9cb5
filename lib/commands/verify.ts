/**
 * `litekeep verify PATH...`: checksum, integrity and row counts of backups.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, formatTables, totalRows } from "../cli/format.ts";
import { expandBackupPaths, verifyBackup, type VerifyReport } from "../engine/verify.ts";
import { SIDECAR_EXTENSIONS } from "../backup_set/checksum.ts";
import { cliPath, jsonError, parseStrict, printJson } from "./_args.ts";

/** One line for the command list. */
export const summary = "check backups: checksum against sidecar, integrity_check, row counts";

/** Help text. */
export const usage = `Usage: litekeep verify PATH... [options]

Checks each backup file, or every backup in a folder: the checksum against its ${
  SIDECAR_EXTENSIONS.join("/")
}
sidecar (a missing sidecar is reported, not fatal), SQLite's integrity check, and the tables
with their row counts. Backups are opened immutable: verifying never changes them and creates
no side files. Exits 1 if any backup fails.

Options:
  --quick        quick_check instead of the full integrity_check
  -h, --help     show this help

Examples:
  litekeep verify data/backups/database
  litekeep verify gym_system_backup_20251019_155538.db --json
`;

/** The typed flags of `verify`. */
export interface VerifyFlags {
  paths: string[];
  quick: boolean;
}

/** Parses `verify`'s arguments. @throws {UsageError} */
export function parseFlags(argv: string[]): VerifyFlags {
  const { values, positionals } = parseStrict("verify", argv, { quick: { type: "boolean" } });
  return { paths: positionals, quick: values.quick ?? false };
}

/** Runs `verify`. */
export async function run(argv: string[], ctx: Context): Promise<number> {
  const flags = parseFlags(argv);
  let paths = flags.paths.map((p) => cliPath(ctx, p));
  if (paths.length === 0) {
    if (!ctx.config?.backupDir) {
      throw new UsageError("verify: no backup file or folder given", {
        hint: 'name one ("litekeep verify data/backups") or set "backupDir" in litekeep.json',
      });
    }
    paths = [ctx.config.backupDir];
  }
  const files = await expandBackupPaths(paths);
  const reports: VerifyReport[] = [];
  for (const [i, file] of files.entries()) {
    ctx.log.progress(`verify: ${i + 1}/${files.length} ${file}`);
    const report = await verifyBackup(file, flags.quick ? "quick" : "full");
    reports.push(report);
    ctx.log.endProgress();
    for (const warning of report.warnings) ctx.log.warn(`${file}: ${warning}`);
    if (!report.ok) {
      ctx.log.error(`Backup "${file}" failed: ${report.problems.join("; ")}`, FAILED_HINT);
    }
  }
  const failed = reports.filter((r) => !r.ok).length;
  if (ctx.json) {
    const bad = reports.filter((r) => !r.ok).map((r) => r.path);
    printJson(ctx, {
      ok: failed === 0,
      command: "verify",
      failed,
      results: reports,
      ...(failed === 0 ? {} : jsonError(
        `${failed} of ${reports.length} backup(s) failed: ${bad.join(", ")}`,
        'each result\'s "problems" says why; make a fresh backup ("litekeep backup"), and ' +
          "never restore one that failed",
      )),
    });
  } else if (!ctx.quiet) {
    ctx.io.stdout(reports.map(describe).join(""));
    ctx.io.stdout(`${reports.length - failed} ok, ${failed} failed\n`);
  }
  return failed === 0 ? 0 : 1;
}

/** What to do about a backup that failed verification. */
const FAILED_HINT = 'make a fresh backup ("litekeep backup"), and never restore one that failed';

function describe(r: VerifyReport): string {
  if (!r.ok) return `FAIL  ${r.path}\n${r.problems.map((p) => `    ${p}\n`).join("")}`;
  const sum = r.checksum.status === "ok"
    ? `${r.checksum.algorithm} ok`
    : r.checksum.status === "missing"
    ? "no sidecar"
    : r.checksum.status;
  return `ok    ${r.path}\n    ${formatBytes(r.bytes)}, ${sum}, ${
    r.integrityMode === "full" ? "integrity_check" : "quick_check"
  } ok, ${r.tables.length} tables, ${totalRows(r.tables)} rows\n${
    formatTables(r.tables, "      ")
  }`;
}
