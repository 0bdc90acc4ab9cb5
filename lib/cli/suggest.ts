/**
 * Help for a command line that litekeep refuses: "did you mean" for a misspelt flag or command
 * word, and the command word that the old scripts' flags need now. Pure functions of words.
 *
 * @module
 */

/**
 * Edit distance (Damerau-Levenshtein, optimal string alignment): insertions, deletions,
 * substitutions, and swaps of two neighbours, each 1. A swap is the commonest typo
 * (`--keep-dyas`), and plain Levenshtein would count it 2.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word`, when it is close enough to be a typo of it: 1 edit for a
 * word of up to 4 letters, 2 for a longer one (leading dashes and any `=value` not counted),
 * and nothing for a word of 1 or 2 letters. Ties go to the first candidate.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const bare = (s: string) => s.replace(/^-+/, "").split("=")[0];
  const letters = bare(word).toLowerCase();
  if (letters.length < 3) return undefined;
  const limit = letters.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(letters, bare(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "--keep-days"?`, or nothing. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const match = closest(word, candidates);
  return match === undefined ? "" : `; did you mean "${match}"?`;
}

/**
 * The old scripts' flags and the command that takes each now: `backup_database.py`'s to
 * `backup`, `sync_db_from_pi.py`'s to `pull`.
 */
export const OLD_SCRIPT_FLAGS: Readonly<Record<string, "backup" | "pull">> = {
  "--cleanup": "backup",
  "--keep-days": "backup",
  "--keep-count": "backup",
  "--skip-checkpoint": "backup",
  "--stats-only": "backup",
  "--method": "pull",
  "--info-only": "pull",
};

/**
 * For a command line without a command word that holds one of the old scripts' flags: the
 * command to use, and the user's own line with it (each word quoted for a POSIX shell where it
 * needs it), e.g. `litekeep backup --cleanup --keep-days 7`.
 */
export function oldScriptCommand(
  argv: readonly string[],
): { command: "backup" | "pull"; flag: string; line: string } | undefined {
  const end = argv.indexOf("--");
  const words = end < 0 ? argv : argv.slice(0, end);
  for (const word of words) {
    const flag = word.split("=")[0];
    const command = Object.hasOwn(OLD_SCRIPT_FLAGS, flag) ? OLD_SCRIPT_FLAGS[flag] : undefined;
    if (command !== undefined) {
      return { command, flag, line: ["litekeep", command, ...argv].map(shellWord).join(" ") };
    }
  }
  return undefined;
}

/** A word as a POSIX shell reads it back: bare when safe, else in single quotes. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
