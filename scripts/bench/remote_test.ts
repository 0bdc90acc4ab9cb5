import assert from "node:assert/strict";
import { runRemoteGroup } from "./remote.ts";
import { have, tempDir } from "../../tests/_helpers.ts";

Deno.test("runRemoteGroup() times and checks copies over loopback ssh and writes the report", async () => {
  for (const tool of ["rsync", "taskset", "/usr/bin/time"]) if (!await have(tool)) return;
  await using cache = await tempDir();
  const { markdown, targets, checkedCopies } = await runRemoteGroup({
    size: "1mb",
    links: ["loopback"],
    runs: 1,
    methods: ["scp", "rsync -az", "pull snapshot litekeep gzip", "pull delta gzip"],
    writerMethods: ["rsync -a", "pull snapshot litekeep gzip"],
    probes: false,
    warmUp: false,
    cacheDir: cache.path,
  });
  // Four idle copies and two under the writer, every one opened and checked.
  assert.equal(checkedCopies, 6);
  assert.match(markdown, /### loopback: 1mb database \(1\.\d\d MB, 4,250 payments\), 1 run/);
  for (const method of ["scp", "rsync -az", "pull snapshot litekeep gzip"]) {
    assert.match(markdown, new RegExp(`^\\| ${method} \\| \\d+\\.\\d\\d \\|`, "m"));
  }
  assert.match(markdown, /^\| pull delta gzip \(\d+ pages\) \|/m);
  assert.match(markdown, /## Copies while the remote app writes/);
  assert.match(
    markdown,
    /^\| pull snapshot litekeep gzip \| snapshot \| [\d.]+ \| \*\*consistent\*\* \|/m,
  );
  assert.match(markdown, /^\| rsync -a \| \.db \| [\d.]+ \| \*\*(consistent|stale|torn)\*\* \|/m);
  assert.match(markdown, /## Targets/);
  // Target 4 is judged from the pulls' peak memory; target 5 needs the 100 Mbit/s link.
  assert.deepEqual(targets.map((t) => [t.id, t.met === null]), [[4, false], [5, true]]);
});
