// The Node half of `npm run bench`: fake-indexeddb as the IndexedDB, everything in one process.
import 'fake-indexeddb/auto' // a global indexedDB for idb-keyval (redux-persist's storage); ours gets its own factory
import { IDBFactory } from 'fake-indexeddb'
import { formatFact, formatResult, TABLE_HEAD, type Fact, type Result } from '../lib/harness'
import { settingsFor } from '../lib/settings'
import { b1 } from '../cases/b1'
import { b8 } from '../cases/b8'
import { b11 } from '../cases/b11'
import { b6, b9 } from '../cases/dispatch'
import { b5, b7 } from '../cases/storage'
import { b10, b12 } from '../cases/realtime'
import { diffsync } from '../cases/diffsync'
import { b16, burst } from '../cases/burst'
import { b1real } from '../cases/b1real'
import { s1 } from '../cases/size'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const only = args.filter((a) => /^[BS]\d+$/.test(a))
const settings = settingsFor(quick, () => new IDBFactory())

const cases: Record<string, () => Promise<Array<Result | Fact>>> = {
  B1: async () => [...(await b1(settings)), ...(await b1real(settings, true))],
  B3: () => burst(settings),
  B5: () => b5(settings),
  B6: () => b6(settings),
  B7: () => b7(settings),
  B8: () => b8(settings),
  B9: () => b9(settings),
  B10: () => b10(settings),
  B11: () => b11(settings),
  B12: () => b12(settings),
  B13: () => diffsync(settings, ['B13']),
  B14: () => diffsync(settings, ['B14']),
  B15: () => diffsync(settings, ['B15']),
  B16: () => b16(settings),
  S1: () => s1(),
}

const rows: string[] = []
const json: Array<Result | Fact> = []
for (const [id, run] of Object.entries(cases)) {
  if (only.length > 0 && !only.includes(id)) continue
  const started = performance.now()
  const out = await run()
  for (const r of out) {
    json.push(r)
    const row = 'ratio' in r ? formatResult(r) : formatFact(r)
    rows.push(row)
    console.log(row)
  }
  console.error(`${id} took ${((performance.now() - started) / 1000).toFixed(1)} s`)
}
console.log('\n' + [...TABLE_HEAD, ...rows].join('\n'))
if (process.env.BENCH_JSON) {
  const { writeFileSync } = await import('node:fs')
  writeFileSync(process.env.BENCH_JSON, JSON.stringify({ rows, results: json }, null, 2))
}
