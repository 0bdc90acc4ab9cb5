/**
 * Checksums and their sidecar files, in the format `sha256sum -c` and `md5sum -c` read:
 * `<hex>  <name>` with the backup's base name, so the check works from inside the folder.
 *
 * @module
 */
import { basename } from "node:path";
import { readSmallFile } from "./names.ts";
import { readChunks } from "../engine/db_file.ts";

/**
 * Checksum algorithms litekeep writes, in the order a backup's sidecar is looked for. Each is
 * also its sidecar's extension: `<backup>.sha256`, `<backup>.md5`.
 */
export const CHECKSUM_ALGORITHMS = ["sha256", "md5"] as const;
/** A checksum algorithm litekeep writes. */
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number];

/** The allowed values of `--checksum` and config `checksum`: an algorithm, or none. */
export const CHECKSUM_CHOICES = [...CHECKSUM_ALGORITHMS, "none"] as const;
/** A `--checksum` choice. */
export type ChecksumChoice = typeof CHECKSUM_CHOICES[number];

/** The sidecar extensions, with their dot: `.sha256`, `.md5`. */
export const SIDECAR_EXTENSIONS: readonly string[] = CHECKSUM_ALGORITHMS.map((a) => `.${a}`);

/** Hashes a file with streaming reads (1 MiB at a time), so memory stays flat for any size. */
export async function hashFile(path: string, algorithm: ChecksumAlgorithm): Promise<string> {
  // Loaded here: the config file checks `checksum` against CHECKSUM_CHOICES on every run, and
  // node:crypto would cost each command that never hashes (checkpoint, info) ~15 ms of start-up.
  const { createHash } = await import("node:crypto");
  const hash = createHash(algorithm);
  // Through db_file.ts: the file may be a database this process has a connection on.
  for await (const chunk of readChunks(path, 1 << 20, { reuse: true })) hash.update(chunk);
  return hash.digest("hex");
}

/** The sidecar path of a backup for an algorithm. */
export function sidecarPath(backupPath: string, algorithm: ChecksumAlgorithm): string {
  return `${backupPath}.${algorithm}`;
}

/** Every sidecar path `backupPath` may have, in the order they are looked for. */
export function sidecarPaths(backupPath: string): string[] {
  return CHECKSUM_ALGORITHMS.map((algorithm) => sidecarPath(backupPath, algorithm));
}

/** The sidecar's one line. */
export function sidecarLine(hex: string, backupPath: string): string {
  return `${hex}  ${basename(backupPath)}\n`;
}

/** A sidecar found beside a backup. */
export interface Sidecar {
  path: string;
  algorithm: ChecksumAlgorithm;
  /** The expected hex digest, lower case; empty when the sidecar is unreadable or malformed. */
  hex: string;
  /** The file name the sidecar names. */
  name: string;
  /** Why the sidecar cannot be read (not a small regular file, an I/O error), if so. */
  unreadable?: string;
}

/**
 * A sidecar is one line of at most a few hundred bytes; 4 KiB leaves room for a long name. The
 * bound, with the regular-file check, is what keeps a FIFO, a device or a huge file named like
 * a sidecar from hanging verify, prune and restore in a read that never ends.
 */
export const SIDECAR_MAX_BYTES = 4096;

/** Finds and parses the sidecar of `backupPath`; undefined when there is none. */
export async function readSidecar(backupPath: string): Promise<Sidecar | undefined> {
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const path = sidecarPath(backupPath, algorithm);
    let text: string | undefined;
    try {
      text = await readSmallFile(path, SIDECAR_MAX_BYTES);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      return { path, algorithm, hex: "", name: "", unreadable: why };
    }
    if (text === undefined) continue;
    const length = algorithm === "sha256" ? 64 : 32;
    // "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode), as the coreutils write them.
    const m = new RegExp(`^([0-9a-fA-F]{${length}}) [ *](.+)$`).exec(text.split("\n")[0]);
    if (!m) {
      return { path, algorithm, hex: "", name: "" };
    }
    return { path, algorithm, hex: m[1].toLowerCase(), name: m[2] };
  }
  return undefined;
}
