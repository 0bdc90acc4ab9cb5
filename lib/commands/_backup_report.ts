/**
 * What `backup` tells the user: the progress line while it works and the summary after. Kept
 * apart from the command so `backup.ts` reads as flags in, options out.
 *
 * @module
 */
import type { BackupProgress, BackupResult } from "../backup_set/backup.ts";
import { formatBytes, formatDuration, formatTables } from "../cli/format.ts";
import { walEmptied } from "../engine/checkpoint.ts";

/** The progress line's text for a step of the backup (the caller adds the elapsed time). */
export function backupStatus(p: BackupProgress): string {
  if (p.phase === "copy") {
    return `backup: copying ${Math.floor((p.copiedPages / Math.max(p.totalPages, 1)) * 100)}% ` +
      `(${p.copiedPages}/${p.totalPages} pages)`;
  }
  // Only the work that runs: the page reader's copy was hashed as it was written.
  const work = [p.checking ? "checking" : "", p.hashing ? "hashing" : ""].filter(Boolean);
  return work.length === 0
    ? "backup: listing the copy's tables"
    : `backup: ${work.join(" and ")} the copy`;
}

/** How the snapshot was copied, for the `--verbose` log: the page reader, or which fallback. */
export function describeSnapshotMethod(r: Pick<BackupResult, "snapshot">): string {
  const { method, fallback } = r.snapshot;
  if (method === "pages") return "snapshot: copied by the page reader (database file and -wal)";
  return "snapshot: copied by SQLite's backup API" +
    (fallback ? `, the page reader's fallback (${fallback.reason}: ${fallback.detail})` : "");
}

/** The human summary of a backup. */
export function describeBackup(r: BackupResult): string {
  const checksum = r.checksum ? `${r.checksum.algorithm} ${r.checksum.hex}` : "none";
  const verified = r.verify === "none"
    ? "not verified (--verify none)"
    : `${r.verify === "full" ? "integrity_check" : "quick_check"}: ok`;
  let text = `Backup written: ${r.file}\n` +
    `  from      ${r.database} (${r.journalMode} mode)\n` +
    `  size      ${formatBytes(r.bytes)} (${r.pages} pages of ${r.pageSize} bytes)\n` +
    `  duration  ${formatDuration(r.durationMs)}\n` +
    `  checksum  ${checksum}\n` +
    `  verified  ${verified}\n`;
  if (r.checkpoint) {
    const c = r.checkpoint;
    const size = (bytes: number | null) => bytes === null ? "none" : formatBytes(bytes);
    // Sizes, not only frames: TRUNCATE reports "0 of 0" once it has emptied the -wal.
    text += c.logFrames === -1
      ? `  checkpoint ${c.mode}: not in WAL mode, nothing to checkpoint\n`
      : `  checkpoint ${c.mode}: ${c.complete ? "done" : "incomplete (readers or writers)"}, ` +
        `-wal ${size(c.walBytesBefore)} -> ${size(c.walBytesAfter)}` +
        (walEmptied(c) ? "\n" : `, ${c.checkpointedFrames} of ${c.logFrames} frames copied back\n`);
  }
  // --verify none counts no rows ("-" below): say so, or "-" reads like an empty table.
  const counted = r.verify === "none" ? " (rows not counted with --verify none)" : "";
  return `${text}  tables${counted}\n${formatTables(r.tables)}`;
}
