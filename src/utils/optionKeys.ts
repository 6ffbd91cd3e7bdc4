import { InvalidOptionError } from '../errors'

/** Edit distance between two strings, ignoring case (so `dbname` is 0 away from `dbName`). */
function distance(a: string, b: string): number {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j)
  for (let i = 1; i <= x.length; i++) {
    const row = [i]
    for (let j = 1; j <= y.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1))
    }
    previous = row
  }
  return previous[y.length]!
}

/** The known name closest to `key`, or `undefined` when none is close enough to be a likely typo. */
export function closestName(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const name of known) {
    const d = distance(key, name)
    if (d < bestDistance) {
      best = name
      bestDistance = d
    }
  }
  // A prefix (`debounce` for `debounceMs`, `interval` for `intervalMs`) or a few edits away.
  const prefix = best !== undefined && best.toLowerCase().startsWith(key.toLowerCase()) && key.length >= 3
  return best !== undefined && (prefix || bestDistance <= Math.max(2, Math.floor(best.length / 3))) ? best : undefined
}

/**
 * Refuses keys that are not options, for plain-JS callers TypeScript does not check: the error
 * names the key and the closest valid one ("unknown option dbname; did you mean dbName?").
 * `prefix` is where the object sits, e.g. `slices.files.` or `remote.`.
 */
export function checkOptionKeys(value: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue
    const suggestion = closestName(key, known)
    throw new InvalidOptionError(
      `${prefix}${key}`,
      `unknown option ${key}; ${suggestion ? `did you mean ${suggestion}?` : `valid options${prefix ? ` of ${prefix.slice(0, -1)}` : ''}: ${known.join(', ')}`}`,
    )
  }
}
