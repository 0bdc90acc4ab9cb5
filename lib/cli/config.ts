/**
 * The config file, `litekeep.json`. Every key is checked: an unknown key or a value of the wrong
 * type is a usage error (exit 2) that names the key, because a typo in a cron job's config must
 * not silently back up the wrong thing. Relative paths resolve against the file's folder.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { describeCause, UsageError } from "../errors.ts";
import { BUSY_TIMEOUT_RANGE, KEEP_RANGES, type Range } from "../limits.ts";
import { checkHost } from "../remote/ssh.ts";
import type { RetentionPolicy } from "../backup_set/retention.ts";
import { CHECKSUM_CHOICES, type ChecksumChoice } from "../backup_set/checksum.ts";
import { VERIFY_MODES, type VerifyMode } from "../engine/sqlite.ts";
import { parsePingUrl } from "./ping.ts";
import { didYouMean } from "./suggest.ts";

/** Retention rules, as in the `keep` object: the policy of `lib/backup_set/retention.ts`. */
export type KeepConfig = RetentionPolicy;

/** The remote host, as in the `remote` object. */
export interface RemoteConfig {
  host?: string;
  db?: string;
  bin?: string;
  sshOptions?: string[];
}

/** A loaded config file, with paths already resolved. */
export interface Config {
  /** The file it came from. */
  path: string;
  db?: string;
  backupDir?: string;
  keep?: KeepConfig;
  checksum?: ChecksumChoice;
  verify?: VerifyMode;
  busyTimeout?: number;
  remote?: RemoteConfig;
  /** The health-check URL the job commands ping (`--ping` overrides it). */
  ping?: string;
}

type Kind =
  | "string"
  | "host"
  | "url"
  | "strings"
  | { oneOf: readonly string[] }
  | { range: Range }
  | Schema;
interface Schema {
  [key: string]: Kind;
}

const SCHEMA: Schema = {
  db: "string",
  backupDir: "string",
  keep: {
    days: { range: KEEP_RANGES.days },
    count: { range: KEEP_RANGES.count },
    last: { range: KEEP_RANGES.last },
    daily: { range: KEEP_RANGES.daily },
    weekly: { range: KEEP_RANGES.weekly },
    monthly: { range: KEEP_RANGES.monthly },
  },
  checksum: { oneOf: CHECKSUM_CHOICES },
  verify: { oneOf: VERIFY_MODES },
  busyTimeout: { range: BUSY_TIMEOUT_RANGE },
  // Checked here, not only when ssh runs: a hostile host is a config error (exit 2) before
  // anything starts, and it names the key to fix.
  remote: { host: "host", db: "string", bin: "string", sshOptions: "strings" },
  // Checked at load, like the host: a bad URL is exit 2 before the job starts.
  ping: "url",
};

/**
 * Finds the config file: `--config FILE`, else `./litekeep.json` when present, else
 * `LITEKEEP_CONFIG`. Returns undefined when there is none.
 */
export async function findConfig(
  explicit: string | undefined,
  cwd: string,
  env: (name: string) => string | undefined,
): Promise<string | undefined> {
  if (explicit !== undefined) return resolve(cwd, explicit);
  const local = resolve(cwd, "litekeep.json");
  try {
    await Deno.stat(local);
    return local;
  } catch {
    // Not present: fall through to the environment.
  }
  const fromEnv = env("LITEKEEP_CONFIG");
  return fromEnv ? resolve(cwd, fromEnv) : undefined;
}

/** The largest config file read: a real one is a few hundred bytes. */
const CONFIG_MAX_BYTES = 1 << 20;

/**
 * Reads and checks a config file.
 *
 * @throws {UsageError} when it cannot be read, is not JSON, has an unknown key or a bad value
 */
export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    // A FIFO would hang the job until someone writes to it, and /dev/zero never ends: only a
    // regular file (a symlink to one is fine) of a size a config can have.
    const info = await Deno.stat(path);
    if (info.isDirectory) throw new Deno.errors.IsADirectory("it is a folder, not a file");
    if (!info.isFile) throw new Error("it is not a regular file (a FIFO or a device?)");
    if (info.size > CONFIG_MAX_BYTES) {
      throw new Error(`it is ${info.size} bytes; a config file is at most ${CONFIG_MAX_BYTES}`);
    }
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new UsageError(`Cannot read config file "${path}": ${describeCause(cause)}`, {
      cause,
      hint: "check the --config path or LITEKEEP_CONFIG",
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new UsageError(`Config file "${path}" is not valid JSON: ${describeCause(cause)}`, {
      cause,
      hint: 'fix it (JSON: "double-quoted" keys, no trailing comma), or write a new one with ' +
        '"litekeep init --force"',
    });
  }
  checkObject(data, SCHEMA, "", path);
  const config = { ...(data as Omit<Config, "path">), path };
  const base = dirname(path);
  const at = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  config.db = at(config.db);
  config.backupDir = at(config.backupDir);
  return config;
}

function checkObject(value: unknown, schema: Schema, prefix: string, file: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(
      `Config file "${file}": ${prefix ? `"${prefix}"` : "the top level"} must be an object`,
    );
  }
  for (const [key, item] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    // Own keys only: `schema[key]` alone finds "constructor" or "toString" on Object.prototype
    // and would take them for known keys.
    const kind = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (kind === undefined) {
      const known = Object.keys(schema).map((k) => prefix ? `${prefix}.${k}` : k);
      throw new UsageError(
        `Config file "${file}": unknown key "${name}"${didYouMean(name, known)}`,
        {
          hint: `allowed keys${prefix ? ` in "${prefix}"` : ""}: ${Object.keys(schema).join(", ")}`,
        },
      );
    }
    const bad = (want: string) =>
      new UsageError(`Config file "${file}": "${name}" must be ${want}`, {
        // A number too large for JSON (1e400) parses as Infinity, which JSON.stringify calls null.
        hint: `it is ${typeof item === "number" ? String(item) : JSON.stringify(item)}`,
      });
    if (kind === "string") {
      if (typeof item !== "string" || item === "") throw bad("a non-empty string");
    } else if (kind === "host") {
      if (typeof item !== "string" || item === "") throw bad("a non-empty string");
      try {
        checkHost(item);
      } catch (cause) {
        if (!(cause instanceof UsageError)) throw cause;
        throw new UsageError(`Config file "${file}": "${name}": ${cause.message}`, {
          cause,
          hint: cause.hint,
        });
      }
    } else if (kind === "url") {
      if (typeof item !== "string" || item === "") throw bad("a non-empty string");
      parsePingUrl(item, `Config file "${file}": "${name}"`);
    } else if (kind === "strings") {
      if (!Array.isArray(item) || !item.every((s) => typeof s === "string")) {
        throw bad("a list of strings");
      }
    } else if ("range" in kind && typeof kind.range === "object") {
      const { min, max } = kind.range as Range;
      if (!Number.isInteger(item) || (item as number) < min || (item as number) > max) {
        throw bad(`a whole number between ${min} and ${max}`);
      }
    } else if ("oneOf" in kind && Array.isArray(kind.oneOf)) {
      if (!kind.oneOf.includes(item as string)) throw bad(`one of ${kind.oneOf.join(", ")}`);
    } else {
      checkObject(item, kind as Schema, name, file);
    }
  }
}
