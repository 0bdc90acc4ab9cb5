/**
 * The one error hierarchy of litekeep. Every failure a user can cause or meet is one of these
 * classes; `lib/cli/cli.ts` maps them to exit codes in one place. Anything else is a bug.
 *
 * @module
 */

/** Options shared by every litekeep error. */
export interface LitekeepErrorOptions {
  /** The low-level error that caused this one. */
  cause?: unknown;
  /** What the user can do about it, printed as `hint: ...`. */
  hint?: string;
}

/** Base class: a failure with an exit code and an optional hint for the user. */
export class LitekeepError extends Error {
  /** Process exit code for this class of failure. */
  readonly exitCode: number = 1;
  /** What the user can do about it. */
  readonly hint?: string;

  constructor(message: string, options: LitekeepErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad command line or config file: nothing was touched (exit 2). */
export class UsageError extends LitekeepError {
  override readonly exitCode: number = 2;
}

/** The operation failed: verification mismatch, corrupt input, I/O or remote error (exit 1). */
export class OperationError extends LitekeepError {
  override readonly exitCode: number = 1;
}

/** Temporary: a lock is held or the database stayed busy; retry later (exit 75). */
export class BusyError extends LitekeepError {
  override readonly exitCode: number = 75;
}

/** Exit codes, as documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, busy: 75 } as const;

/** The `code` of a node:sqlite error (`ERR_SQLITE_ERROR`) and its SQLite result code. */
export function sqliteErrcode(error: unknown): number | undefined {
  if (error instanceof Error && "errcode" in error && typeof error.errcode === "number") {
    // Extended result codes carry the primary code in their low byte.
    return error.errcode & 0xff;
  }
  return undefined;
}

/** SQLite primary result codes that litekeep translates into plain words. */
export const SQLITE = {
  BUSY: 5,
  LOCKED: 6,
  READONLY: 8,
  IOERR: 10,
  CORRUPT: 11,
  FULL: 13,
  CANTOPEN: 14,
  NOTADB: 26,
} as const;

/** Plain words for an error thrown by node:sqlite or the Deno file APIs. */
export function describeCause(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or folder";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a folder, not a file";
  if (isDiskFull(error)) return "no space left on the device";
  if (isReadOnlyFs(error)) return "read-only file system";
  const code = sqliteErrcode(error);
  switch (code) {
    case SQLITE.BUSY:
    case SQLITE.LOCKED:
      return "the database is locked by another process";
    case SQLITE.CORRUPT:
      return "the database file is corrupt";
    case SQLITE.NOTADB:
      return "file is not a SQLite database";
    case SQLITE.CANTOPEN:
      return "the file cannot be opened";
    case SQLITE.READONLY:
      return "the database is read-only";
  }
  if (error instanceof Error) {
    const text = "errstr" in error && typeof error.errstr === "string"
      ? error.errstr
      : error.message;
    return text.replace(/^[A-Za-z]+Error: /, "");
  }
  return String(error);
}

/** True when `error` is the OS saying the file system is mounted read-only (EROFS). */
export function isReadOnlyFs(error: unknown): boolean {
  return error instanceof Error && "code" in error && error.code === "EROFS";
}

/** True when `error` says the disk (or quota) is full, from SQLite or from the OS. */
export function isDiskFull(error: unknown): boolean {
  if (sqliteErrcode(error) === SQLITE.FULL) return true;
  if (error instanceof Error) {
    const text = `${error.message} ${"code" in error ? String(error.code) : ""}`;
    return /ENOSPC|No space left|EDQUOT|quota exceeded|database or disk is full/i.test(text);
  }
  return false;
}

/** True when `error` is SQLITE_BUSY or SQLITE_LOCKED. */
export function isBusy(error: unknown): boolean {
  const code = sqliteErrcode(error);
  return code === SQLITE.BUSY || code === SQLITE.LOCKED;
}

/**
 * `Deno.stat(path)`, whose failure (missing, unreadable) becomes one message that names what
 * could not be done: `${cannot}: ${cause}`, with `hint`.
 *
 * @param cannot e.g. `Cannot prune "data/backups"`
 * @throws {OperationError} when `path` cannot be stat'ed
 */
export async function statOrExplain(
  path: string,
  cannot: string,
  hint: string,
): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (cause) {
    throw new OperationError(`${cannot}: ${describeCause(cause)}`, { cause, hint });
  }
}

/**
 * A file error (full disk, permission) met while writing into `folder` becomes one message
 * that names the folder; litekeep errors and anything else pass through unchanged.
 *
 * @param doing e.g. "Cannot write the backup into"
 */
export function inFolder(error: unknown, doing: string, folder: string, hint: string): unknown {
  if (error instanceof LitekeepError || !(error instanceof Error)) return error;
  if (error instanceof Deno.errors.PermissionDenied || isDiskFull(error)) {
    return new OperationError(`${doing} "${folder}": ${describeCause(error)}`, {
      cause: error,
      hint,
    });
  }
  return error;
}
