/**
 * A backup folder's statistics as `stats DIR` and `backup --stats-only` show them, and the
 * `--max-age` monitor on top: one report, so the old scripts' `--stats-only` and the new
 * command never drift apart.
 *
 * @module
 */
import type { Context } from "../cli/context.ts";
import { formatAge, formatBytes, formatLocalTime } from "../cli/format.ts";
import { type BackupFolderStats, backupFolderStats, staleSets } from "../backup_set/stats.ts";
import { jsonError, printJson } from "./_args.ts";

/** `--max-age`: seconds, and the text given, for messages. */
export interface MaxAge {
  seconds: number;
  text: string;
}

/**
 * Prints a backup folder's statistics; with `maxAge`, fails when a database's newest backup is
 * older.
 *
 * @returns the exit code: 1 when a backup set is stale
 */
export async function showFolderStats(
  ctx: Context,
  dir: string,
  maxAge?: MaxAge,
): Promise<number> {
  const stats = await backupFolderStats(dir, ctx.io.now());
  for (const set of stats.sets) {
    if (set.withoutSidecar.length === 0) continue;
    ctx.log.warn(
      `${set.withoutSidecar.length} backup(s) of "${set.stem}" have no checksum sidecar, so ` +
        `their checksum cannot be verified: ${set.withoutSidecar.join(", ")}`,
    );
  }
  for (const set of stats.sets) {
    if (set.future.length === 0) continue;
    ctx.log.warn(
      `${set.future.length} backup(s) of "${set.stem}" are named in the future, so a clock was ` +
        `wrong when they were taken; they are kept but never count as fresh: ${
          set.future.join(", ")
        }`,
    );
  }
  const stale = maxAge === undefined ? [] : staleSets(stats, maxAge.seconds);
  let failure: { message: string; hint: string } | undefined;
  if (stale.length > 0) {
    const what = stats.sets.length === 0 ? "there are no backups" : stale.map((stem) => {
      const age = stats.sets.find((s) => s.stem === stem)!.newestAgeSeconds;
      return age === null
        ? `"${stem}" has no backup that is not named in the future`
        : `the newest backup of "${stem}" is ${formatAge(age)} old`;
    }).join("; ");
    failure = {
      message: `Backups in "${dir}" are stale: ${what} (--max-age ${maxAge!.text})`,
      hint: "check that the backup cron job runs, and read its log",
    };
    ctx.log.error(failure.message, failure.hint);
  }
  if (ctx.json) {
    printJson(ctx, {
      ok: stale.length === 0,
      command: "stats",
      kind: "backups",
      ...stats,
      maxAgeSeconds: maxAge?.seconds ?? null,
      stale,
      ...(failure === undefined ? {} : jsonError(failure.message, failure.hint)),
    });
  } else if (!ctx.quiet) ctx.io.stdout(describeFolder(stats));
  return stale.length === 0 ? 0 : 1;
}

function describeFolder(s: BackupFolderStats): string {
  let text = `Backups in ${s.dir}: ${s.count}, ${formatBytes(s.bytes)}\n`;
  if (s.sets.length === 0) return `${text}  (no backups)\n`;
  for (const set of s.sets) {
    const t = set.trend;
    const sign = (n: number) => (n < 0 ? "-" : "+") + formatBytes(Math.abs(n));
    const age = set.newestAgeSeconds === null
      ? "named in the future"
      : `${formatAge(Math.max(0, set.newestAgeSeconds))} ago`;
    text +=
      `  ${set.stem}: ${set.count} backup${set.count === 1 ? "" : "s"}, ${
        formatBytes(set.bytes)
      }\n` +
      `    oldest  ${set.oldest.name}  ${formatLocalTime(set.oldest.time)}\n` +
      `    newest  ${set.newest.name}  ${formatLocalTime(set.newest.time)}, ${age}\n` +
      `    size    ${formatBytes(t.firstBytes)} -> ${formatBytes(t.lastBytes)} (${
        sign(t.changeBytes)
      }, ${
        t.bytesPerDay === null
          ? "not enough history for a daily rate"
          : `${sign(t.bytesPerDay)}/day`
      })\n` +
      (set.withoutSidecar.length ? `    no sidecar: ${set.withoutSidecar.length}\n` : "") +
      (set.future.length ? `    named in the future: ${set.future.join(", ")}\n` : "");
  }
  return text;
}
