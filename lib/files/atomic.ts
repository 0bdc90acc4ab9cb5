/**
 * Durable writes. Every file litekeep creates is first written under a temporary name in the
 * same folder, synced, then renamed into place and the folder synced, so a crash or `kill -9`
 * at any moment leaves the old state or the new one, never half of one.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Prefix of every temporary name. No backup name starts with a dot, so no command mistakes one. */
export const TEMP_PREFIX = ".litekeep-tmp-";

/** Temps older than this belong to no live run, whoever wrote them. */
export const STALE_TEMP_MS = 3_600_000;

/** True when `name` (a base name) is one of litekeep's temporary files or their side files. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/**
 * Temps this process has named and not yet removed, each with its open "alive" marker: what a
 * signal handler must remove before the process exits, since no `finally` runs then.
 */
const inFlight = new Map<string, { key: string; marker?: Deno.FsFile }>();

/**
 * The run that owns a temp is told by a lock, not by its pid: next to each temp in flight sits
 * an empty `.litekeep-tmp-<pid>-<random>.alive` file that its process holds flock'ed for as long
 * as the temp lives. The kernel drops the lock when that process dies, even on `kill -9`, so a
 * later run that can take it knows the temps of that `<pid>-<random>` are leftovers, however
 * fresh, on any system (no `/proc` needed, which Deno's permissions forbid without --allow-all)
 * and whatever pid namespace wrote them. SQLite's own locks are POSIX locks on the temp itself,
 * so the marker is a file of its own: a flock on the temp could meet them (on NFS it is one).
 */
const MARKER_SUFFIX = ".alive";

/** A marker without a temp is a dead run's leftover only once this old; see `cleanTemps`. */
const ORPHAN_MARKER_MS = 60_000;

/**
 * A fresh temporary path in `dir` for a file that will become `finalName`, registered as in
 * flight (with its "alive" marker) until {@linkcode removeTempDb} or {@linkcode removeQuietly}
 * removes it. The pid and a random part make it unique between concurrent processes.
 */
export function tempPathFor(dir: string, finalName: string): string {
  let key: string;
  let path: string;
  // Two temps for the same name in the same instant differ by their random part; one this
  // process already has in flight is never handed out twice.
  do {
    const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
    key = `${Deno.pid}-${random}`;
    path = join(dir, `${TEMP_PREFIX}${key}-${finalName}`);
  } while ([...inFlight.values()].some((e) => e.key === key));
  const marker = holdMarker(join(dir, `${TEMP_PREFIX}${key}${MARKER_SUFFIX}`));
  inFlight.set(path, { key, marker });
  return path;
}

/**
 * Creates and locks a marker. Without one (an unwritable folder, where the temp itself will
 * fail with a better message) a later run falls back to the age rule for this temp.
 */
function holdMarker(path: string): Deno.FsFile | undefined {
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(path, { write: true, createNew: true });
    file.lockSync(true);
    return file;
  } catch {
    if (file !== undefined) {
      file.close();
      // Created but not lockable (a file system without flock): an unlocked marker would say
      // "dead" to the next run, so none at all.
      try {
        Deno.removeSync(path);
      } catch {
        // Nothing more can be done; the age rule still protects the temp.
      }
    }
    return undefined;
  }
}

/** Removes and closes the marker of a temp that is gone, and forgets the temp. */
function forget(path: string): void {
  const entry = inFlight.get(path);
  if (entry === undefined) return;
  inFlight.delete(path);
  if (entry.marker === undefined) return;
  try {
    Deno.removeSync(join(dirname(path), `${TEMP_PREFIX}${entry.key}${MARKER_SUFFIX}`));
  } catch {
    // Already removed by a cleaner that found it unlocked: nothing left to do.
  }
  entry.marker.close();
}

/** `<pid>-<random>` of a temp, its side files and its marker; undefined for other names. */
function tempKey(name: string): string | undefined {
  return /^\.litekeep-tmp-(\d+-[0-9a-z]+)[-.]/.exec(name)?.[1];
}

/**
 * Files already under their final names that a run cut short by a signal must not leave:
 * pull's early backup, which is the pull's only once its write takes it (a SIGINT during the
 * transfer left it in the backup folder, a backup no pull followed, found by the attack round).
 */
const provisional = new Set<string>();

/**
 * Marks `paths` (in place already, or about to be: a path not there yet is skipped) for removal
 * by {@linkcode removeTempsInFlightSync} when a signal ends the run before the returned release
 * is called.
 */
export function removeOnInterrupt(paths: string[]): () => void {
  for (const path of paths) provisional.add(path);
  return () => {
    for (const path of paths) provisional.delete(path);
  };
}

/**
 * Removes every temp in flight, its side files (SQLite's `-journal`, `-wal`, `-shm`, pull's
 * `.raw` copy) and its marker, synchronously: for a signal handler, which exits right after.
 * All of them start with `.litekeep-tmp-<this pid>-<random>`, which nothing else does.
 */
export function removeTempsInFlightSync(): void {
  for (const path of provisional) {
    try {
      Deno.removeSync(path);
    } catch {
      // Gone already: nothing more to do on the way out.
    }
  }
  provisional.clear();
  for (const [temp, { key }] of inFlight) {
    const dir = dirname(temp);
    try {
      for (const entry of Deno.readDirSync(dir)) {
        if (tempKey(entry.name) !== key) continue;
        try {
          Deno.removeSync(join(dir, entry.name));
        } catch {
          // Gone meanwhile, or not ours to remove: nothing more to do on the way out.
        }
      }
    } catch {
      // The folder is gone or unreadable: nothing of ours is left in it that we could remove.
    }
  }
  inFlight.clear();
}

/**
 * Flushes a file's data and metadata to the device. Opened read-only: fsync needs no write
 * access, and a copy of a 0400 database is 0400 itself.
 */
export async function syncFile(path: string): Promise<void> {
  using file = await openToSync(path);
  await file.sync();
}

/**
 * Opens `path` (read-only, as {@linkcode syncFile}) for a sync that runs beside other work on
 * the file: the descriptor stays open until disposed, so a caller whose worker has a SQLite
 * connection on the file disposes of it only once that connection is closed (closing any
 * descriptor of a file drops this process's locks on it).
 */
export async function openToSync(path: string): Promise<{ sync(): Promise<void> } & Disposable> {
  const file = await Deno.open(path, { read: true });
  return { sync: () => file.sync(), [Symbol.dispose]: () => file.close() };
}

/**
 * Flushes a folder's entries, so that a rename inside it survives a power cut.
 * Some platforms cannot open folders for syncing; there the rename is as durable as the OS makes it.
 */
export async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(dir, { read: true });
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // EINVAL/EBADF on folders on some systems: nothing more can be done there.
  } finally {
    handle.close();
  }
}

/** Removes `path` if it exists (and forgets it as a temp in flight); never throws. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Already gone, or never created.
  }
  forget(path);
}

/** Removes a temporary database and the side files SQLite may have left beside it. */
export async function removeTempDb(path: string): Promise<void> {
  for (const suffix of ["", "-journal", "-wal", "-shm"]) await removeQuietly(path + suffix);
}

/** The steps of {@linkcode withTempFile}, in order, for tests that stop a run between two. */
export type TempFileStep = "named" | "written" | "synced" | "published" | "folder-synced";

/**
 * How {@linkcode withTempFile} puts the temp in place: `"rename"` (over whatever is there), a
 * function that must publish it without ever replacing a file that appeared meanwhile (a
 * database, see `publishNew` in lib/engine/write_into.ts), or `"none"` for a temp that is only a
 * source `fn` reads (pull writes it INTO an existing database through SQLite).
 */
export type Publish = "rename" | "none" | ((temp: string, finalPath: string) => Promise<void>);

/** Options of {@linkcode withTempFile}. */
export interface TempFileOptions {
  /**
   * Where the temp goes: a path, or a function asked once `fn` succeeded (a backup's free name
   * is chosen only after the copy passed its checks). @default `<dir>/<finalName>`
   */
  publishTo?: string | (() => Promise<string>);
  /** @default "rename" */
  publish?: Publish;
  /** `fn` synced the temp on the handle that wrote it: no second open to sync it. */
  synced?: boolean;
  /** For tests: called after each step, e.g. to kill the process there. */
  onStep?: (step: TempFileStep, temp: string) => void | Promise<void>;
}

/**
 * The one durable-write path: names a temp for `finalName` in `dir` (registered as in flight,
 * with its "alive" marker, so signals and later runs can clean it), runs `fn(temp)` to write
 * it, fsyncs it, publishes it, fsyncs the folder, and removes the temp (with SQLite's side files
 * and the marker) in `finally`, whatever happened. The content is complete and synced before
 * its final name appears, and the folder is synced after: a crash at any moment leaves no file
 * or the whole one, never half of one, plus a temp that the next run removes.
 *
 * @param finalName the base name the temp is named after (it must not look like a backup)
 * @returns what `fn` returned and the path the temp was published to
 * @throws whatever `fn` or the publish throws; nothing is published then
 */
export async function withTempFile<T>(
  dir: string,
  finalName: string,
  fn: (temp: string) => Promise<T>,
  options: TempFileOptions = {},
): Promise<{ value: T; path: string }> {
  const publish = options.publish ?? "rename";
  const temp = tempPathFor(dir, finalName);
  try {
    await options.onStep?.("named", temp);
    const value = await fn(temp);
    await options.onStep?.("written", temp);
    if (publish === "none") return { value, path: temp };
    if (!options.synced) await syncFile(temp);
    await options.onStep?.("synced", temp);
    const to = options.publishTo ?? join(dir, finalName);
    const path = typeof to === "string" ? to : await to();
    if (publish === "rename") await Deno.rename(temp, path);
    else await publish(temp, path);
    await options.onStep?.("published", temp);
    await syncDir(dirname(path));
    await options.onStep?.("folder-synced", temp);
    return { value, path };
  } finally {
    await removeTempDb(temp);
  }
}

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileOptions {
  /** Permission bits of the new file, masked by the umask. @default 0o666 */
  mode?: number;
}

/**
 * Writes `data` to `path` atomically through {@linkcode withTempFile}: temp in the same folder,
 * write, fsync, rename, fsync the folder. The temp file is removed on any failure.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await withTempFile(dirname(path), basename(path), async (temp) => {
    // The mode applies from creation on: a sidecar is never readable by more than its backup.
    using file = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode: (options.mode ?? 0o666) & 0o666,
    });
    let offset = 0;
    while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
    // Synced here, on the handle that wrote it: a sidecar of mode 0o200 could not be reopened.
    await file.sync();
  }, { publishTo: path, synced: true });
}

/**
 * Removes leftovers of killed runs (temporary files, their SQLite side files and markers) from
 * `dir`. A temp whose "alive" marker is no longer locked is a leftover whatever its age; one
 * whose marker is locked belongs to a live run and is kept (a long pull may wait on the network
 * without touching its temp), whatever `isOwn` says. A temp without a marker (written by an older
 * litekeep, or where none could be made) falls back to `olderThanMs` and `isOwn`. This
 * process's own temps in flight are never removed.
 *
 * @param olderThanMs for a temp without a marker, only when last modified at least this long
 *   ago: temps of other kinds may belong to a live run that does not hold this folder's lock (a
 *   pull into the same folder)
 * @param isOwn temps of the caller's own kind without a marker, removed whatever their age:
 *   call with it only while holding the lock that every writer of that kind holds
 * Markers of dead runs go too, with their temps or (a minute after) without any.
 *
 * @returns the paths removed (markers not listed)
 */
export async function cleanTemps(
  dir: string,
  now: Date,
  olderThanMs = 0,
  isOwn: (name: string) => boolean = () => false,
): Promise<string[]> {
  const mine = new Set([...inFlight.values()].map((e) => e.key));
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && isTempName(entry.name)) names.push(entry.name);
  }
  const removed: string[] = [];
  const dead = new Map<string, Deno.FsFile>();
  try {
    for (const name of names) {
      const key = tempKey(name);
      if ((key !== undefined && mine.has(key)) || name.endsWith(MARKER_SUFFIX)) continue;
      const path = join(dir, name);
      try {
        const state = key === undefined ? "unknown" : await markerState(dir, key, dead);
        if (state === "alive") continue;
        if (state === "unknown" && !isOwn(name)) {
          const info = await Deno.stat(path);
          if (now.getTime() - (info.mtime?.getTime() ?? 0) < olderThanMs) continue;
        }
        await Deno.remove(path);
        removed.push(path);
      } catch {
        // Vanished meanwhile: nothing to clean.
      }
    }
    // A run killed before it created its temp, or after it published it, leaves its marker
    // alone. Taken only once it is a minute old: a marker is created, then locked, so a
    // younger one may be a live run's in between (which would then fall back to the age rule).
    for (const name of names) {
      const key = tempKey(name);
      if (!name.endsWith(MARKER_SUFFIX) || key === undefined || mine.has(key) || dead.has(key)) {
        continue;
      }
      try {
        const info = await Deno.lstat(join(dir, name));
        if (now.getTime() - (info.mtime?.getTime() ?? 0) < ORPHAN_MARKER_MS) continue;
        await markerState(dir, key, dead);
      } catch {
        // Vanished meanwhile: nothing to clean.
      }
    }
  } finally {
    // The markers of dead runs go last, still locked by us, so that no marker disappears
    // while a temp of its run is left: a later cleaner would then fall back to the age rule.
    for (const [key, marker] of dead) {
      try {
        await Deno.remove(join(dir, `${TEMP_PREFIX}${key}${MARKER_SUFFIX}`));
      } catch {
        // Another cleaner removed it first.
      }
      marker.close();
    }
  }
  return removed;
}

/**
 * Whether the run of `key` lives: its marker locked by another process ("alive"), unlocked
 * ("dead": then locked by us and kept in `dead` until the caller removes it), or absent
 * ("unknown").
 */
async function markerState(
  dir: string,
  key: string,
  dead: Map<string, Deno.FsFile>,
): Promise<"alive" | "dead" | "unknown"> {
  if (dead.has(key)) return "dead";
  const path = join(dir, `${TEMP_PREFIX}${key}${MARKER_SUFFIX}`);
  let marker: Deno.FsFile;
  try {
    // Only a plain file is opened: opening a FIFO planted under that name would wait forever.
    if (!(await Deno.lstat(path)).isFile) return "unknown";
    // Read-write where allowed: NFS turns flock into a POSIX lock, whose exclusive kind needs
    // a writable descriptor. Read-only for another user's marker, which is all a local flock needs.
    marker = await Deno.open(path, { read: true, write: true })
      .catch(() => Deno.open(path, { read: true }));
  } catch {
    return "unknown";
  }
  let locked: boolean;
  try {
    locked = await marker.tryLock(true);
  } catch {
    // The lock cannot be tried here: the age rule decides, as it did before markers.
    marker.close();
    return "unknown";
  }
  if (!locked) {
    marker.close();
    return "alive";
  }
  dead.set(key, marker);
  return "dead";
}
