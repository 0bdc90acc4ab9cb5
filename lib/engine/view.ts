/**
 * Read-only stand-ins for a database that cannot be opened where it is without writing beside
 * it: a WAL database without its `-shm` (SQLite would create one, and cannot on read-only
 * media), read through a fresh temp folder instead.
 *
 * @module
 */
import { join } from "node:path";
import { copyOut } from "./db_file.ts";
import { refuseOddFiles } from "./sqlite.ts";
import { describeCause, isReadOnlyFs, OperationError } from "../errors.ts";
import { makeTempFolder } from "../files/temp.ts";

/**
 * A read-only stand-in for `path` (and its `-wal`, with `withWal`) in a fresh temp folder:
 * hard links where possible (instant, and reading through a link cannot change the file),
 * copies across file systems. Removed on dispose.
 *
 * @throws {OperationError} when the files cannot be linked or copied
 */
export async function tempView(
  path: string,
  withWal: boolean,
  prefix = "litekeep-view-",
): Promise<{ path: string } & AsyncDisposable> {
  // Before anything is linked: a FIFO under the -wal's name would be linked, then waited on.
  refuseOddFiles(path);
  const dir = await makeTempFolder(prefix);
  const view = join(dir, "view.db");
  try {
    for (const suffix of withWal ? ["", "-wal"] : [""]) {
      // A copy through db_file.ts: a close of its own descriptor would drop our locks.
      await Deno.link(path + suffix, view + suffix).catch(() =>
        copyOut(path + suffix, view + suffix)
      );
    }
  } catch (cause) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new OperationError(`Cannot read database "${path}": ${describeCause(cause)}`, { cause });
  }
  return {
    path: view,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/**
 * True when `folder` is on a read-only file system: there nothing can change a database, so a
 * copy of it (and of its `-wal`) is as consistent as the file itself. Probed with a temp name
 * that every command ignores, created and removed at once.
 */
export function onReadOnlyMedia(folder: string): boolean {
  const probe = join(folder, `.litekeep-tmp-${Deno.pid}-probe`);
  try {
    Deno.openSync(probe, { write: true, createNew: true }).close();
    Deno.removeSync(probe);
    return false;
  } catch (error) {
    return isReadOnlyFs(error);
  }
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
