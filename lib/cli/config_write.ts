/**
 * Writing a config file (`litekeep init`): the object in the shape `config.ts` reads, with
 * paths relative to the file's folder where they lie inside it, written atomically and never
 * over an existing file unless asked.
 *
 * @module
 */
import { basename, dirname, isAbsolute, relative } from "node:path";
import { describeCause, OperationError, UsageError } from "../errors.ts";
import { withTempFile } from "../files/atomic.ts";
import type { KeepConfig } from "./config.ts";

/** What `init` puts in a config file (absolute paths; `configObject` makes them relative). */
export interface NewConfig {
  db: string;
  backupDir: string;
  keep: KeepConfig;
  remote?: { host: string; db: string; bin?: string };
  /** The health-check URL every job pings. */
  ping?: string;
}

/**
 * The JSON object for `file`: `db` and `backupDir` relative to the file's folder when inside
 * it (the folder can move as a whole), absolute otherwise. Keys in the order the README shows.
 */
export function configObject(file: string, c: NewConfig): Record<string, unknown> {
  const base = dirname(file);
  const at = (path: string) => {
    const rel = relative(base, path);
    return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
  };
  return {
    db: at(c.db),
    backupDir: at(c.backupDir),
    keep: c.keep,
    ...(c.remote ? { remote: c.remote } : {}),
    ...(c.ping ? { ping: c.ping } : {}),
  };
}

/** The refusal to replace an existing config file. */
export function configExists(path: string): UsageError {
  return new UsageError(`init: "${path}" already exists; it was not changed`, {
    hint: "add --force to replace it, or write another file with --config FILE",
  });
}

/**
 * Writes `text` to `path` atomically (temp in the same folder, fsync, publish, fsync the
 * folder). Without `force` it is published with `link(2)`, which fails if `path` exists: a file
 * created by someone else after the check is never replaced either.
 *
 * `mode` is the file's permission bits (0600 for a config holding a ping URL, whose path is the
 * health check's secret).
 *
 * @throws {UsageError} when `path` exists and `force` is false (nothing was changed)
 * @throws {OperationError} when the folder is missing or not writable
 */
export async function writeConfigFile(
  path: string,
  text: string,
  force: boolean,
  mode = 0o644,
): Promise<void> {
  const publishNoReplace = async (temp: string, to: string) => {
    try {
      await Deno.link(temp, to);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw configExists(to);
      // A file system without hard links: a last check, then rename.
      if (await Deno.lstat(to).then(() => true, () => false)) throw configExists(to);
      await Deno.rename(temp, to);
    }
  };
  try {
    await withTempFile(dirname(path), basename(path), async (temp) => {
      await Deno.writeTextFile(temp, text, { createNew: true, mode });
      // Narrowed only (the umask still narrows the default): 0600 holds whatever the umask.
      if ((mode & 0o077) === 0) await Deno.chmod(temp, mode);
    }, { publishTo: path, publish: force ? "rename" : publishNoReplace });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new OperationError(`Cannot write config file "${path}": ${describeCause(error)}`, {
      cause: error,
      hint: `check that the folder "${dirname(path)}" exists and is writable`,
    });
  }
}
