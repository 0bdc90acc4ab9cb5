/**
 * The tools the benchmarks time, each with the check that proves its result right: litekeep run
 * from source as a real process, and the usual tools it is compared with.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { BackupResult } from "../../lib/backup_set/backup.ts";
import { hashFile } from "../../lib/backup_set/checksum.ts";
import type { VerifyReport } from "../../lib/engine/verify.ts";
import { checkCopy, rowsKey, type Source } from "./data.ts";
import type { Figures, Tool } from "./measure.ts";
import { litekeepArgv } from "../../tests/support/sshd.ts";

/** Throws unless a file's header says rollback-journal mode (self-contained, no `-wal`). */
async function assertSelfContained(path: string, what: string): Promise<void> {
  using file = await Deno.open(path);
  const header = new Uint8Array(20);
  await file.read(header);
  if (header[18] !== 1 || header[19] !== 1) {
    throw new Error(`${what}: "${path}" is not in rollback-journal mode (header ${header[18]})`);
  }
}

/**
 * `litekeep backup SRC --backup-dir OUT --json` plus `flags`. The check proves the published
 * backup self-contained, its sidecar's checksum right, and the copy itself by `checkFile`
 * (integrity and rows); it reports litekeep's own `durationMs` as `coreMs`. `main`: another
 * checkout's `main.ts` to run instead of this one's (a before/after comparison in one run).
 */
export function litekeepBackup(
  name: string,
  db: string,
  flags: string[],
  checkFile: (file: string, what: string) => Figures | void,
  main?: string,
): Tool {
  const argv = (args: string[]) => {
    const words = litekeepArgv(args);
    return main ? words.map((w) => w.endsWith("/main.ts") ? main : w) : words;
  };
  return {
    name,
    labels: main ? { [db]: "SRC", [main]: "BEFORE/main.ts" } : { [db]: "SRC" },
    steps: (out) => [argv(["backup", db, "--backup-dir", out, "--json", ...flags])],
    async check(out, stdout) {
      const result = JSON.parse(stdout) as BackupResult & { ok: boolean };
      if (!result.ok || dirname(result.file) !== out) {
        throw new Error(`${name}: unexpected result ${stdout.slice(0, 200)}`);
      }
      await assertSelfContained(result.file, name);
      if (result.checksum) {
        const hex = await hashFile(result.file, result.checksum.algorithm);
        const sidecar = await Deno.readTextFile(`${result.file}.${result.checksum.algorithm}`);
        if (hex !== result.checksum.hex || !sidecar.startsWith(`${hex}  `)) {
          throw new Error(`${name}: the checksum of "${result.file}" is wrong`);
        }
      }
      return { ...checkFile(result.file, name), coreMs: result.durationMs };
    },
  };
}

/** `litekeep verify BACKUP --json` on a backup with a sidecar; the report must be all ok. */
export function litekeepVerify(backup: string, source: Source): Tool {
  const name = "litekeep verify";
  return {
    name,
    labels: { [backup]: "BACKUP" },
    steps: () => [litekeepArgv(["verify", backup, "--json"])],
    check(_out, stdout) {
      const { ok, results } = JSON.parse(stdout) as { ok: boolean; results: VerifyReport[] };
      const rows = Object.fromEntries(results[0]?.tables.map((t) => [t.name, t.rows]) ?? []);
      if (!ok || results[0]?.checksum.status !== "ok" || rowsKey(rows) !== rowsKey(source.rows)) {
        throw new Error(`${name}: unexpected report ${stdout.slice(0, 300)}`);
      }
      return Promise.resolve();
    },
  };
}

/** A tool that writes `OUT/copy.db`, checked as a copy of the idle source. */
function copyTool(name: string, source: Source, steps: (copy: string) => string[][]): Tool {
  return {
    name,
    labels: { [source.path]: "SRC" },
    steps: (out) => steps(join(out, "copy.db")),
    check(out) {
      checkCopy(join(out, "copy.db"), source, name);
      return Promise.resolve();
    },
  };
}

/** `cp --reflink=never`: a plain byte copy (the source is checkpointed, so it is complete). */
export function cpTool(source: Source): Tool {
  return copyTool("cp --reflink=never", source, (copy) => [
    ["cp", "--reflink=never", source.path, copy],
  ]);
}

/**
 * `cp --reflink=never` then `sync OUT/copy.db` (an fsync of the copy), timed together: the
 * durable-copy floor of this disk, since a backup is fsynced before it is published. The copy's
 * own fsync, not a bare `sync`: on a shared machine that would also flush other users' writes.
 */
export function cpSyncTool(source: Source): Tool {
  return copyTool("cp + sync", source, (copy) => [
    ["cp", "--reflink=never", source.path, copy],
    ["sync", copy],
  ]);
}

/** `sqlite3 SRC ".backup OUT"`: the online backup API, from the CLI. */
export function sqliteBackupTool(source: Source): Tool {
  return copyTool(
    "sqlite3 .backup",
    source,
    (copy) => [["sqlite3", source.path, `.backup ${copy}`]],
  );
}

/** `sqlite3 SRC "VACUUM INTO 'OUT'"`: a rebuilt, compacted copy. */
export function vacuumIntoTool(source: Source): Tool {
  return copyTool("sqlite3 VACUUM INTO", source, (copy) => [
    ["sqlite3", source.path, `VACUUM INTO '${copy}'`],
  ]);
}

/**
 * `sqlite3 .backup`, then `sha256sum` and `sqlite3 integrity_check` of the copy, one after
 * another: what litekeep's default backup does, made of the usual tools.
 */
export function backupHashCheckTool(source: Source): Tool {
  const name = ".backup + sha256sum + integrity_check";
  return {
    ...copyTool(name, source, (copy) => [
      ["sqlite3", source.path, `.backup ${copy}`],
      ["sha256sum", copy],
      ["sqlite3", copy, "PRAGMA integrity_check"],
    ]),
    async check(out, stdout) {
      const copy = join(out, "copy.db");
      checkCopy(copy, source, name);
      const [sum, verdict] = stdout.trim().split("\n");
      if (sum !== `${await hashFile(copy, "sha256")}  ${copy}` || verdict !== "ok") {
        throw new Error(`${name}: unexpected output ${stdout.slice(0, 200)}`);
      }
    },
  };
}

/** `sha256sum SRC` or `md5sum SRC`; the digest must be the source's. */
export function digestTool(source: Source, algorithm: "sha256" | "md5"): Tool {
  const name = `${algorithm}sum`;
  return {
    name,
    labels: { [source.path]: "SRC" },
    steps: () => [[name, source.path]],
    check(_out, stdout) {
      if (stdout !== `${source[algorithm]}  ${source.path}\n`) {
        throw new Error(`${name}: unexpected output ${stdout.slice(0, 200)}`);
      }
      return Promise.resolve();
    },
  };
}

/** `sqlite3 SRC "PRAGMA integrity_check"`; it must say `ok`. */
export function integrityCheckTool(source: Source): Tool {
  const name = "sqlite3 integrity_check";
  return {
    name,
    labels: { [source.path]: "SRC" },
    steps: () => [["sqlite3", source.path, "PRAGMA integrity_check"]],
    check(_out, stdout) {
      if (stdout !== "ok\n") throw new Error(`${name}: unexpected output ${stdout.slice(0, 200)}`);
      return Promise.resolve();
    },
  };
}
