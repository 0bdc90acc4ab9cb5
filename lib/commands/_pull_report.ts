/**
 * What `pull` tells the user: the progress line while it works and the summary after. Kept
 * apart from the command so `pull.ts` reads as flags in, options out.
 *
 * @module
 */
import type { PullProgress, PullResult } from "../remote/pull.ts";
import { formatBytes, formatDuration, formatTables } from "../cli/format.ts";

const STEPS = {
  check: "checking the copy",
  backup: "backing up the local database",
  replace: "putting the copy in place",
};

/** A rate from less data than this says nothing yet: no rate or time left before it. */
const ETA_AFTER = { seconds: 2, share: 0.01 };

/** The progress line for a step of the pull, `seconds` after the first byte arrived. */
export function pullStatus(p: PullProgress, seconds: number): string {
  if (p.phase !== "transfer") return `pull: ${STEPS[p.phase]}`;
  // A delta builds the copy mostly from local pages: its bytes are not what travels, so the
  // line says how many changed pages came, and gives no rate that would read as a link's.
  const changed = p.changedPages;
  const head = changed
    ? `pull: ${changed.received} of ${changed.wanted} changed pages received, copy at ` +
      `${formatBytes(p.received)} of ${formatBytes(p.expected)}`
    : `pull: ${formatBytes(p.received)} of ${formatBytes(p.expected)}`;
  if (seconds < ETA_AFTER.seconds || p.received < p.expected * ETA_AFTER.share) return head;
  const rate = p.received / seconds;
  const eta = rate > 0 ? (p.expected - p.received) / rate : 0;
  const left = `${Math.ceil(eta)} s left`;
  return changed ? `${head}, ${left}` : `${head}, ${formatBytes(rate)}/s, ${left}`;
}

/** What the run was asked for that the result alone does not say. */
export interface PullAsked {
  /** False with --no-local-backup. @default true */
  localBackup?: boolean;
}

/** The human summary of a pull. */
export function describePull(r: PullResult, asked: PullAsked = {}): string {
  if (r.unchanged) {
    return `Pulled ${r.source} into ${r.localDb}: unchanged\n` +
      `  method    ${method(r)}\n` +
      `  size      ${formatBytes(r.bytes)}\n` +
      `  duration  ${formatDuration(r.durationMs)}\n` +
      `  verified  the remote's content equals the local copy's (sha256 of every page); ` +
      `nothing was written, backed up or checked again\n` +
      `  tables\n${formatTables(r.tables)}`;
  }
  return `Pulled ${r.source} into ${r.localDb}${r.created ? " (new file)" : ""}\n` +
    `  method    ${method(r)}\n` +
    `  size      ${formatBytes(r.bytes)}\n` +
    `  duration  ${formatDuration(r.durationMs)}\n` +
    `  sha256    ${r.sha256}\n` +
    `  verified  ${verified(r)}\n` +
    `  backup    ${r.localBackup ?? noBackup(r, asked)}\n` +
    `  tables\n${formatTables(r.tables)}`;
}

/** Why no backup of the old local database was made: the one reason that applies. */
function noBackup(r: PullResult, asked: PullAsked): string {
  if (r.created) return "none (there was no local database)";
  if (asked.localBackup === false) return "none (--no-local-backup)";
  return "none (the local database was empty)";
}

/** How the data travelled: the method that ran (a delta with no base travels whole). */
function method(r: PullResult): string {
  const how = [`remote tool: ${r.tool}`];
  if (r.protocol !== null) how.push(`protocol ${r.protocol}`);
  if (r.compress !== null) how.push(`compression ${r.compress}`);
  if (r.unchanged) return `delta: no page sent (${how.join(", ")})`;
  if (r.method === "delta" && r.pagesSent !== null) {
    const of = r.pages === null ? "" : ` of ${r.pages}`;
    return `delta: ${r.pagesSent}${of} pages sent (${how.join(", ")})`;
  }
  return `${r.method} (${how.join(", ")})`;
}

/** What was checked, and only that: scp's counts come from the live remote, or from nowhere. */
function verified(r: PullResult): string {
  const against = r.method === "scp" ? "the remote's live database" : "the remote's snapshot";
  const counts = r.rowCounts === "match"
    ? `row counts match ${against}`
    : r.rowCounts === "differ"
    ? `row counts DIFFER from the remote's (remote vs copy): ${r.rowCountDifferences.join(", ")}`
    : "row counts could not be compared with the remote's";
  const check = r.verify === "none"
    ? "not checked (--verify none)"
    : r.verify === "quick"
    ? "quick_check ok"
    : "integrity_check ok";
  return `${check}; ${counts}`;
}
