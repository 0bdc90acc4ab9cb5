/**
 * What `litekeep pull` accepts, read from its `--help`, so that the bench runs every method and
 * compression the litekeep under test has: today's and, later, protocol 2's, without edits.
 *
 * @module
 */

/**
 * The choices `--flag` lists in `help`: the words of its description before the first colon or
 * full stop, once parenthesised remarks are removed, split at commas and "or". E.g.
 * `--compress C  none (default) or gzip: compress the stream` gives `["none", "gzip"]`.
 * Returns [] when the flag is not there.
 */
export function helpChoices(help: string, flag: string): string[] {
  const lines = help.split("\n");
  const at = lines.findIndex((l) => new RegExp(`^\\s*(-\\w, )?${flag}\\b`).test(l));
  if (at < 0) return [];
  const first = lines[at].replace(new RegExp(`^\\s*(-\\w, )?${flag}(\\s+[A-Z]+)?\\s*`), "");
  const rest: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (!/^\s{6,}\S/.test(l) || /^\s*-/.test(l)) break;
    rest.push(l.trim());
  }
  let text = [first, ...rest].join(" ");
  while (/\([^()]*\)/.test(text)) text = text.replace(/\([^()]*\)/g, "");
  const head = text.split(/[:.;]/)[0];
  return head.split(/,|\bor\b/).map((w) => w.trim())
    .filter((w) => /^[a-z][a-z0-9-]*$/.test(w));
}

/** One way to run `litekeep pull`: a label and its extra flags. */
export interface PullVariant {
  /** e.g. `litekeep (default)` or `litekeep delta gzip`. */
  label: string;
  flags: string[];
}

/**
 * The pulls to run: the default (no flags), each method alone, and each method with each
 * compression but the first listed (the default), except `scp`, which copies files and does not
 * compress. With `lighter` (the litekeep has `--verify` and `--no-local-backup`): also the
 * default with `--verify quick`, and with neither check nor backup of the old local copy, which
 * shows what the proofs cost beside the transfer.
 */
export function pullVariants(
  methods: string[],
  compressions: string[],
  lighter = false,
): PullVariant[] {
  const out: PullVariant[] = [{ label: "litekeep (default)", flags: [] }];
  if (lighter) {
    out.push({ label: "litekeep --verify quick", flags: ["--verify", "quick"] });
    out.push({
      label: "litekeep --verify none --no-local-backup",
      flags: ["--verify", "none", "--no-local-backup"],
    });
  }
  for (const m of methods) {
    out.push({ label: `litekeep ${m}`, flags: ["--method", m] });
    if (m === "scp") continue;
    for (const c of compressions.slice(1)) {
      out.push({ label: `litekeep ${m} ${c}`, flags: ["--method", m, "--compress", c] });
    }
  }
  return out;
}
