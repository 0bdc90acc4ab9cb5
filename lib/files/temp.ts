/**
 * Folders in the system temp dir ($TMPDIR, else /tmp), with a plain error when it is unusable.
 *
 * @module
 */
import { describeCause, OperationError } from "../errors.ts";

/**
 * `Deno.makeTempDir` that names the temp dir and the remedy when it fails: a `TMPDIR` that
 * does not exist or is read-only is the user's setting to fix, not a bug in litekeep.
 *
 * @throws {OperationError}
 */
export async function makeTempFolder(prefix: string): Promise<string> {
  try {
    return await Deno.makeTempDir({ prefix });
  } catch (cause) {
    let where = "/tmp";
    try {
      where = Deno.env.get("TMPDIR") || where;
    } catch {
      // No env permission: Deno used its default too.
    }
    throw new OperationError(
      `Cannot create a temporary folder in "${where}": ${describeCause(cause)}`,
      {
        cause,
        hint: "set TMPDIR to a folder that exists and is writable (or unset it for /tmp)",
      },
    );
  }
}
