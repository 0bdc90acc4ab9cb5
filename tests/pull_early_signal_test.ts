/**
 * A signal that ends a pull during its transfer removes the early backup (no pull followed it):
 * also when it lands just after that backup got its name, while its folder is synced and its
 * sidecar written (found by the attack round: the backup was marked for removal only once all of
 * that was done, so a signal in between left a backup no pull followed, without its sidecar).
 *
 * The signal handler (main.ts) runs `removeTempsInFlightSync()` and exits; the test runs it at
 * that moment (`backupTestHooks.afterPublish`) and looks at what is left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pullDatabase } from "../lib/remote/pull.ts";
import { backupTestHooks } from "../lib/backup_set/backup.ts";
import { removeTempsInFlightSync } from "../lib/files/atomic.ts";
import { localSsh, makeDb, remoteLitekeep, tempDir, withPath } from "./_helpers.ts";

for (const turns of [false, true]) {
  Deno.test(`a signal just after the early backup is named removes it (${turns ? "checks in turns" : "checks together"})`, async () => {
    await using dir = await tempDir();
    const local = join(dir.path, "local.db");
    makeDb(local, { wal: true, payments: 20_000 });
    const remote = join(dir.path, "remote.db");
    await Deno.copyFile(local, remote);
    const conn = new DatabaseSync(remote);
    conn.exec("PRAGMA journal_mode = DELETE");
    conn.exec("UPDATE payments SET amount_cents = amount_cents + 1 WHERE id % 50 = 3");
    conn.close();
    const bin = await remoteLitekeep(dir.path);
    const path = await localSsh(join(dir.path, "bin"));
    let left: boolean | undefined;
    backupTestHooks.afterPublish = (file) => {
      backupTestHooks.afterPublish = undefined;
      // What the signal handler does, at this moment.
      removeTempsInFlightSync();
      left = (() => {
        try {
          Deno.statSync(file);
          return true;
        } catch {
          return false;
        }
      })();
      // The handler exits here: the run goes no further.
      throw new Error("ended by the signal");
    };
    try {
      await withPath(path, () =>
        pullDatabase({
          source: { host: "pi", path: remote },
          localDb: local,
          method: "auto",
          remote: { ssh: {}, bin },
          now: new Date(),
          ...(turns ? { checksTogetherMaxBytes: 0 } : {}),
        })).catch(() => {});
    } finally {
      backupTestHooks.afterPublish = undefined;
    }
    assert.equal(left, false, "the early backup outlived the signal");
  });
}
