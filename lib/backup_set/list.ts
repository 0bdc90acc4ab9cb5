/**
 * Listing a backup folder: each backup, newest first, with its age, size, database and the
 * state of its checksum. The plan (`describeBackups`) is a pure function of the backups, what
 * was found beside them and the time; `listBackupFolder` does the I/O around it.
 *
 * What is cheap is done by default: reading the folder and each sidecar (one small read). What
 * costs a read of every byte (the hash, SQLite's `quick_check`) is done only with `verify`, and
 * the state says "not-checked" until then.
 *
 * @module
 */
import { type BackupEntry, listBackupFolderOrFail, readSetManifest } from "./names.ts";
import { readSidecar, type Sidecar } from "./checksum.ts";
import { isNamedInFuture } from "./retention.ts";
import { verifyBackup, type VerifyReport } from "../engine/verify.ts";

/**
 * The state of a backup's checksum: `ok` / `mismatch` (hashed, with `verify`), `not-checked`
 * (a readable sidecar, not hashed), `missing` (no sidecar), `unreadable` (a sidecar that is not
 * a small regular file in sha256sum/md5sum format).
 */
export type ChecksumState = "ok" | "mismatch" | "not-checked" | "missing" | "unreadable";

/** The result of SQLite's `quick_check` on a backup: `not-checked` without `verify`. */
export type IntegrityState = "ok" | "failed" | "not-checked";

/** What a `verify` found of one backup, as `describeBackups` needs it. */
export interface BackupCheck {
  checksum: ChecksumState;
  integrity: "ok" | "failed";
  problems: string[];
}

/** One backup as `list` shows it. */
export interface ListedBackup {
  path: string;
  name: string;
  stem: string;
  /** The database the set belongs to (from the folder's `.litekeep-sets.json`), or null. */
  database: string | null;
  /** When it was taken, from its name. */
  time: Date;
  /** Seconds from `time` to now; null for a backup named in the future. */
  ageSeconds: number | null;
  /** Named more than the tolerance after now: a clock was wrong (see `isNamedInFuture`). */
  future: boolean;
  bytes: number;
  checksum: { state: ChecksumState; algorithm: string | null };
  integrity: IntegrityState;
  /** Checksum and `quick_check` both pass (as prune's "newest good"); null when not checked. */
  good: boolean | null;
  /** Why it is not good (with `verify`), or why its sidecar cannot be read. */
  problems: string[];
}

/** One database's backups in the listing. */
export interface ListedSet {
  stem: string;
  database: string | null;
  count: number;
  bytes: number;
  /** The newest good backup not named in the future (with `verify`; else null). */
  newestGood: string | null;
}

/** A backup folder's listing. */
export interface BackupListing {
  dir: string;
  /** Only this database stem was listed, when given. */
  stem: string | null;
  /** True when each backup was hashed and `quick_check`ed. */
  verified: boolean;
  count: number;
  bytes: number;
  /** Newest first (by the time in the name, then the `_N` suffix), all stems together. */
  backups: ListedBackup[];
  sets: ListedSet[];
  /** Names of backups named in the future. */
  future: string[];
}

/** What was found beside one backup. */
export interface BackupFacts {
  entry: BackupEntry;
  sidecar: Sidecar | undefined;
  /** The `verify` result, when the listing verifies. */
  check?: BackupCheck;
}

/**
 * The listing of `facts` at `now`: pure, so the states and the order are tested without files.
 *
 * @param sets the folder's manifest: database by stem
 */
export function describeBackups(
  dir: string,
  facts: BackupFacts[],
  sets: Map<string, string>,
  now: Date,
  options: { stem?: string; verified: boolean },
): BackupListing {
  const newestFirst = [...facts].sort((a, b) =>
    b.entry.time.getTime() - a.entry.time.getTime() || b.entry.seq - a.entry.seq ||
    (a.entry.stem < b.entry.stem ? -1 : a.entry.stem > b.entry.stem ? 1 : 0)
  );
  const backups = newestFirst.map(({ entry, sidecar, check }): ListedBackup => {
    const future = isNamedInFuture(entry.time, now);
    const sidecarState: ChecksumState = sidecar === undefined
      ? "missing"
      : sidecar.hex
      ? "not-checked"
      : "unreadable";
    const problems = check?.problems ??
      (sidecar !== undefined && !sidecar.hex
        ? [
          sidecar.unreadable
            ? `sidecar "${sidecar.path}" cannot be read: ${sidecar.unreadable}`
            : `sidecar "${sidecar.path}" is not in sha256sum/md5sum format`,
        ]
        : []);
    return {
      path: entry.path,
      name: entry.name,
      stem: entry.stem,
      database: sets.get(entry.stem) ?? null,
      time: entry.time,
      ageSeconds: future
        ? null
        : Math.max(0, Math.floor((now.getTime() - entry.time.getTime()) / 1000)),
      future,
      bytes: entry.size,
      checksum: { state: check?.checksum ?? sidecarState, algorithm: sidecar?.algorithm ?? null },
      integrity: check?.integrity ?? "not-checked",
      // A set made with --checksum none has no sidecar: good on quick_check alone, as prune's
      // newest good backup is.
      good: check === undefined
        ? null
        : (check.checksum === "ok" || check.checksum === "missing") && check.integrity === "ok",
      problems,
    };
  });
  const stems = [...new Set(backups.map((b) => b.stem))].sort();
  const listedSets = stems.map((stem): ListedSet => {
    const own = backups.filter((b) => b.stem === stem);
    const good = options.verified ? own.find((b) => b.good && !b.future) : undefined;
    return {
      stem,
      database: sets.get(stem) ?? null,
      count: own.length,
      bytes: own.reduce((sum, b) => sum + b.bytes, 0),
      newestGood: good?.name ?? null,
    };
  });
  return {
    dir,
    stem: options.stem ?? null,
    verified: options.verified,
    count: backups.length,
    bytes: backups.reduce((sum, b) => sum + b.bytes, 0),
    backups,
    sets: listedSets,
    future: backups.filter((b) => b.future).map((b) => b.name),
  };
}

/**
 * The parts of a `VerifyReport` that a listing shows. A file that is no database at all is not
 * hashed by `verifyBackup`: its checksum is then "not-checked" when it has a sidecar.
 */
export function checkOf(report: VerifyReport, sidecar: Sidecar | undefined): BackupCheck {
  const unhashed = report.checksum.status === "missing" && sidecar?.hex;
  return {
    checksum: unhashed ? "not-checked" : report.checksum.status,
    integrity: report.integrity === "ok" ? "ok" : "failed",
    problems: report.problems,
  };
}

/** Options of {@linkcode listBackupFolder}. */
export interface ListOptions {
  /** Only the backups of this database stem. */
  stem?: string;
  /** Hash each backup against its sidecar and run `quick_check` on it. */
  verify: boolean;
  now: Date;
  /** Called before each backup is verified (1-based), for a progress line. */
  onVerify?: (index: number, total: number, entry: BackupEntry) => void;
}

/**
 * Lists the backups in `dir`. Reads only: it takes no lock and changes nothing.
 *
 * @throws {OperationError} when the folder or its manifest cannot be read
 */
export async function listBackupFolder(dir: string, options: ListOptions): Promise<BackupListing> {
  const entries = await listBackupFolderOrFail(dir, options.stem);
  const sets = await readSetManifest(dir);
  const facts: BackupFacts[] = [];
  for (const [i, entry] of entries.entries()) {
    const sidecar = await readSidecar(entry.path);
    let check: BackupCheck | undefined;
    if (options.verify) {
      options.onVerify?.(i + 1, entries.length, entry);
      // The same check as prune's newest good backup: checksum AND quick_check.
      check = checkOf(await verifyBackup(entry.path, "quick"), sidecar);
      // Deleted since the folder was read (a prune: list takes no lock): gone, not failed.
      const gone = check.problems.length > 0 &&
        await Deno.lstat(entry.path).then(() => false, (e) => e instanceof Deno.errors.NotFound);
      if (gone) continue;
    }
    facts.push({ entry, sidecar, check });
  }
  return describeBackups(dir, facts, sets, options.now, {
    stem: options.stem,
    verified: options.verify,
  });
}
