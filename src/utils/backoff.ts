/**
 * The delay before the n-th retry (n >= 1): a random point in the upper half of
 * `min(maxMs, baseMs * 2^(n-1))`, so retries of many clients spread out instead of arriving
 * together.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt - 1), 30))
  return ceiling / 2 + random() * (ceiling / 2)
}
