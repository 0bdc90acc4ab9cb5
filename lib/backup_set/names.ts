/**
 * The backup set: names, and listing the backups in a folder. A backup is
 * `{stem}_backup_{YYYYMMDD_HHMMSS}.db` (local time), then `_2`, `_3`, ... for more in the same
 * second. Files that do not match are never listed, so no command ever touches them.
 *
 * @module
 */
import { basename, extname, join } from "node:path";
import { isTempName, writeFileAtomic } from "../files/atomic.ts";
import { exists } from "../engine/view.ts";
import { describeCause, OperationError, UsageError } from "../errors.ts";
// A cycle (checksum.ts reads sidecars with readSmallFile from here), harmless: neither module
// uses the other's exports before its functions run.
import { sidecarPaths } from "./checksum.ts";

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
 * `listBackups` for the commands that go through a whole folder (prune, list): a folder that
 * cannot be read is their error, named.
 *
 * @throws {OperationError} when `dir` cannot be read
 */
export async function listBackupFolderOrFail(dir: string, stem?: string): Promise<BackupEntry[]> {
  try {
    return await listBackups(dir, stem);
  } catch (cause) {
    throw new OperationError(`Cannot list backups in "${dir}": ${describeCause(cause)}`, {
      cause,
      hint: "check the folder's permissions",
    });
  }
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

/** True when any of `paths` exists; looks in order and stops at the first. */
export async function anyExists(paths: string[]): Promise<boolean> {
  for (const path of paths) {
    if (await exists(path)) return true;
  }
  return false;
}

/**
 * The first free backup path for `stem` at `date` in `dir`: `_2`, `_3`, ... when a backup (or a
 * sidecar of one) of that second already exists. Call while holding the folder's lock.
 */
export async function freeBackupPath(dir: string, stem: string, date: Date): Promise<string> {
  for (let seq = 1;; seq++) {
    const path = join(dir, backupName(stem, date, seq));
    const taken = await exists(path) || await anyExists(sidecarPaths(path));
    if (!taken) return path;
  }
}

/**
 * Reads a small text file (a sidecar, the sets manifest) without ever blocking or filling
 * memory: only a regular file (by `lstat`, so a symlink to `/dev/zero` does not count) of at
 * most `maxBytes`, read with one bounded read. A FIFO named like a sidecar would otherwise hang
 * the reader until someone writes to it, and `/dev/zero` would never end.
 *
 * @returns the text, or undefined when there is no such file
 * @throws {Error} with a plain reason when the path is something else, too large, or unreadable
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(describeCause(error));
  }
  if (!info.isFile) {
    throw new Error(
      info.isSymlink ? "it is a symbolic link, not a regular file" : "it is not a regular file",
    );
  }
  if (info.size > maxBytes) {
    throw new Error(`it is ${info.size} bytes, more than the ${maxBytes} it can be`);
  }
  const buffer = new Uint8Array(maxBytes + 1);
  let read = 0;
  try {
    // lstat said "regular file", but it could be swapped before the open: never follow a
    // symlink then, and never read more than the buffer, whatever it has become.
    using file = await Deno.open(path, { read: true });
    while (read < buffer.length) {
      const n = await file.read(buffer.subarray(read));
      if (n === null) break;
      read += n;
    }
  } catch (error) {
    throw new Error(describeCause(error));
  }
  if (read > maxBytes) throw new Error(`it is more than the ${maxBytes} bytes it can be`);
  return new TextDecoder().decode(buffer.subarray(0, read));
}

/**
 * The file in a backup folder that records which database each backup set belongs to:
 * `{ "version": 1, "sets": { "<stem>": "<real path of the database>" } }`. Two databases with
 * the same file name (`site1/app.db`, `site2/app.db`) would otherwise share one set, and a
 * prune of one would delete the other's backups.
 */
export const SETS_MANIFEST = ".litekeep-sets.json";

const MANIFEST_MAX_BYTES = 1 << 20;

/** The sets of a folder's manifest, by stem; empty when it has none. */
export async function readSetManifest(dir: string): Promise<Map<string, string>> {
  const path = join(dir, SETS_MANIFEST);
  const broken = (why: string, cause?: unknown) =>
    new OperationError(`Cannot read "${path}": ${why}`, {
      cause,
      hint: "fix it, or delete it: the next backup of each database records it again",
    });
  let text: string | undefined;
  try {
    text = await readSmallFile(path, MANIFEST_MAX_BYTES);
  } catch (cause) {
    throw broken(cause instanceof Error ? cause.message : String(cause), cause);
  }
  const sets = new Map<string, string>();
  if (text === undefined) return sets;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw broken("it is not valid JSON", cause);
  }
  const entries = (data as { sets?: unknown })?.sets;
  if (typeof entries !== "object" || entries === null || Array.isArray(entries)) {
    throw broken('it has no "sets" object');
  }
  for (const [stem, db] of Object.entries(entries)) {
    if (typeof db !== "string") throw broken(`the entry "${stem}" is not a path`);
    sets.set(stem, db);
  }
  return sets;
}

/**
 * A line break (or another control character) in a database's name cannot stand in a backup
 * name: `sha256sum -c` reads sidecars line by line, and a name split over two lines is no
 * backup name at all, so its backups would never be listed, verified or pruned.
 *
 * @throws {UsageError} naming the database
 */
function refuseControlCharacters(stem: string, db: string): void {
  // deno-lint-ignore no-control-regex
  if (!/[\x00-\x1f\x7f]/.test(stem)) return;
  throw new UsageError(
    `Cannot back up ${JSON.stringify(db)}: its name holds a line break or another control ` +
      "character, which no backup name (nor its sha256sum line) can carry",
    { hint: "rename the database file (and point the application at the new name)" },
  );
}

/**
 * Makes sure the backup set `stem` in `dir` belongs to the database `db` (compared by real
 * path, so a symlink to the same file is the same database). Call holding the folder's lock,
 * before anything is written.
 *
 * @returns a function that records the claim (atomically) if the manifest lacks it: call it
 *   once the backup is published, so a run that fails claims nothing
 * @throws {UsageError} when the set belongs to another database: nothing was touched
 */
export async function claimBackupSet(
  dir: string,
  stem: string,
  db: string,
): Promise<() => Promise<void>> {
  refuseControlCharacters(stem, db);
  const real = await Deno.realPath(db);
  const sets = await readSetManifest(dir);
  const owner = sets.get(stem);
  if (owner === real) return () => Promise.resolve();
  if (owner !== undefined) {
    throw new UsageError(
      `Backup folder "${dir}" holds the backups of "${owner}", and "${real}" has the same file ` +
        `name: one folder cannot hold the backups of both, or pruning one would delete the ` +
        `other's`,
      {
        hint: `back "${real}" up into another folder with --backup-dir (or "backupDir"); if ` +
          `the database was moved from "${owner}", edit or delete the "${stem}" entry in ` +
          `"${join(dir, SETS_MANIFEST)}"`,
      },
    );
  }
  return async () => {
    sets.set(stem, real);
    const sorted = [...sets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // Object.fromEntries defines own properties, so even a stem "__proto__" stays a key.
    const text = JSON.stringify({ version: 1, sets: Object.fromEntries(sorted) }, null, 2);
    await writeFileAtomic(join(dir, SETS_MANIFEST), `${text}\n`);
  };
}
