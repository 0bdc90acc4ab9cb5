/**
 * The backup set: names, and listing the backups in a folder. A backup is
 * `{stem}_backup_{YYYYMMDD_HHMMSS}.db` (local time), then `_2`, `_3`, ... for more in the same
 * second. Files that do not match are never listed, so no command ever touches them.
 *
 * @module
 */
import { basename, extname, join } from "node:path";
import { isTempName } from "./atomic.ts";

const NAME = /^(.+)_backup_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})(?:_(\d+))?\.db$/;

/** One backup file found in a folder. */
export interface BackupEntry {
  /** Full path of the `.db` file. */
  path: string;
  /** Base name. */
  name: string;
  /** The database stem the name starts with. */
  stem: string;
  /** When it was taken, from its name (local time); mtimes change when files are copied. */
  time: Date;
  /** 1 for the first backup of a second, 2 for `_2`, ... */
  seq: number;
  /** Size in bytes. */
  size: number;
}

/** The stem of a database file: `gym_system` for `instance/gym_system.db`. */
export function dbStem(dbPath: string): string {
  const name = basename(dbPath);
  const ext = extname(name);
  return ext && ext !== name ? name.slice(0, -ext.length) : name;
}

/** `YYYYMMDD_HHMMSS` in local time. */
export function formatStamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}_` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** The backup name for `stem` taken at `date`; `seq` above 1 adds the `_N` suffix. */
export function backupName(stem: string, date: Date, seq = 1): string {
  return `${stem}_backup_${formatStamp(date)}${seq > 1 ? `_${seq}` : ""}.db`;
}

/** Parses a backup name; undefined when `name` is not one. */
export function parseBackupName(
  name: string,
): { stem: string; time: Date; seq: number } | undefined {
  const m = isTempName(name) ? null : NAME.exec(name);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(2, 8).map(Number);
  const time = new Date(y, mo - 1, d, h, mi, s);
  // Reject impossible dates (month 13, Feb 30) rather than let Date roll them over.
  if (time.getMonth() !== mo - 1 || time.getDate() !== d) return undefined;
  return { stem: m[1], time, seq: m[8] ? Number(m[8]) : 1 };
}

/**
 * The backups in `dir`, oldest first (by the time in the name, then the `_N` suffix).
 *
 * @param stem only backups of this database stem
 */
export async function listBackups(dir: string, stem?: string): Promise<BackupEntry[]> {
  const found: BackupEntry[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const parsed = parseBackupName(entry.name);
    if (!parsed || (stem !== undefined && parsed.stem !== stem)) continue;
    const path = join(dir, entry.name);
    let size = 0;
    try {
      size = (await Deno.stat(path)).size;
    } catch {
      continue;
    }
    found.push({ path, name: entry.name, ...parsed, size });
  }
  return found.sort((a, b) => a.time.getTime() - b.time.getTime() || a.seq - b.seq);
}

/** True when `path` exists (as anything). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * The first free backup path for `stem` at `date` in `dir`: `_2`, `_3`, ... when a backup (or a
 * sidecar of one) of that second already exists. Call while holding the folder's lock.
 */
export async function freeBackupPath(dir: string, stem: string, date: Date): Promise<string> {
  for (let seq = 1;; seq++) {
    const path = join(dir, backupName(stem, date, seq));
    const taken = await exists(path) || await exists(`${path}.sha256`) ||
      await exists(`${path}.md5`);
    if (!taken) return path;
  }
}
