/** Edit distance where swapping two neighbouring letters counts as one edit (`prot` → `port`). */
export function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
      }
    }
  }
  return d[a.length][b.length]
}

const parentOf = (path: string): string => path.slice(0, Math.max(0, path.lastIndexOf('.')))
const leafOf = (path: string): string => path.slice(path.lastIndexOf('.') + 1)

/**
 * The known dotted key closest to `path`, or undefined when none is close enough to be a likely typo.
 * A key under the wrong section (`server.body_limit`) finds its real home (`http.body_limit`).
 */
export function nearestKey (path: string, known: readonly string[]): string | undefined {
  const leaf = leafOf(path)
  let best: string | undefined
  let bestScore = Infinity
  for (const candidate of known) {
    const moved = parentOf(candidate) === parentOf(path) ? 0 : 1
    const score = Math.min(editDistance(path, candidate), editDistance(leaf, leafOf(candidate)) + moved)
    if (score < bestScore) { best = candidate; bestScore = score }
  }
  return bestScore <= Math.max(1, Math.floor(leaf.length / 3)) ? best : undefined
}
