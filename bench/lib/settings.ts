/** Sizes and repetitions; `quick` (CI) keeps every case running with small N and asserts nothing. */
export interface Settings {
  readonly quick: boolean
  readonly rounds: number
  /** Measured iterations per side per round, for a case over `n` items. */
  readonly iterations: (n: number) => number
  readonly b1Sizes: readonly number[]
  readonly burst: number
  readonly hydrateSize: number
  readonly syncItems: number
  readonly pullSize: number
  readonly longRunOps: number
  readonly pendingKeys: number
  readonly factory: () => IDBFactory
}

export function settingsFor(quick: boolean, factory: () => IDBFactory): Settings {
  return {
    quick,
    rounds: quick ? 2 : 10,
    iterations: (n) => (quick ? 3 : n >= 100_000 ? 15 : 40),
    b1Sizes: quick ? [1_000, 2_000] : [1_000, 10_000, 100_000],
    burst: quick ? 100 : 1_000,
    hydrateSize: quick ? 500 : 10_000,
    syncItems: quick ? 100 : 1_000,
    pullSize: quick ? 500 : 10_000,
    longRunOps: quick ? 5_000 : 100_000,
    pendingKeys: quick ? 1_000 : 10_000,
    factory,
  }
}
