// The Chromium half of `npm run bench`: the cases whose cost is the real cost of an IndexedDB
// transaction, on the browser's own IndexedDB. bench/run.mjs serves this bundle and calls
// `runBench` through playwright-core.
import { formatFact, formatResult, type Fact, type Result } from '../lib/harness'
import { settingsFor } from '../lib/settings'
import { b1 } from '../cases/b1'
import { b16, burst } from '../cases/burst'
import { b1real } from '../cases/b1real'
import { b5, b7 } from '../cases/storage'

declare global {
  interface Window {
    runBench(options: { quick: boolean; only: string[] }): Promise<{ rows: string[]; results: Array<Result | Fact> }>
  }
}

window.runBench = async ({ quick, only }) => {
  const base = settingsFor(quick, () => indexedDB)
  // Redux-persist at 100k items costs seconds per change here; B2 stops at 10k.
  const settings = { ...base, b1Sizes: base.b1Sizes.filter((n) => n <= 10_000) }
  const cases: Record<string, () => Promise<Array<Result | Fact>>> = {
    B2: async () =>
      [...(await b1(settings)), ...(await b1real(settings, true))].map((r) => {
        if (!('ratio' in r)) return { ...r, id: 'B2' }
        const goal = r.title === 'one item changes among 10,000, real RTK reducer, default options'
        // In Chromium the goal (B2) is 40× redux-persist at 10k with default options.
        return { ...r, id: 'B2', ...(goal ? { target: { op: '>=' as const, value: 40 }, met: r.ratio >= 40 } : {}) }
      }),
    B3: () => burst(settings),
    B5: () => b5(settings),
    B7: () => b7(settings),
    B16: () => b16(settings),
  }
  const results: Array<Result | Fact> = []
  for (const [id, run] of Object.entries(cases)) {
    if (only.length > 0 && !only.includes(id)) continue
    results.push(...(await run()))
  }
  return { results, rows: results.map((r) => ('ratio' in r ? formatResult(r) : formatFact(r))) }
}
