/**
 * "Did you mean …?": the words closest to a mistyped one, by edit distance. The CLI uses it for commands and flags,
 * machine resolution for names that match no machine.
 */

/** The Levenshtein distance between `a` and `b` (insertions, deletions and substitutions, each costing one). */
export const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = row[j]!
      row[j] = next
    }
  }
  return row[b.length]!
}

/**
 * Whether a word `d` edits away from `word` is near enough to suggest: within two edits, and fewer than `word` has
 * characters (so a short word is not "near" everything).
 */
export const isNear = (d: number, word: string): boolean => d <= 2 && d < word.length

/** The nearest of `known` to `word` (see `isNear`), if any; a tie goes to the first in `known`. */
export const nearest = (word: string, known: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const k of known) {
    const d = distance(word, k)
    if (d < bestDistance && isNear(d, word)) [best, bestDistance] = [k, d]
  }
  return best
}
