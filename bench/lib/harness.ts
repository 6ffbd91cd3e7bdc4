import { Bench } from 'tinybench'

/**
 * The comparison harness: A (ours) and B (a baseline) run side by side in one process, after a
 * warm-up, over `rounds` rounds. Within a round each side runs `iterations` times under tinybench
 * and contributes its median; the order of A and B alternates from round to round, so drift
 * (JIT, thermal) hits both alike. Before each side's turn the garbage of the other side is
 * collected (`gc()`: Node runs with --expose-gc, Chromium with --js-flags=--expose-gc), so a side
 * never pays for the strings the other one built. Ratios are computed per round, then summarised
 * as the median and the min–max spread across rounds — never from a single run.
 */
export interface Side {
  readonly name: string
  /**
   * One measured operation. A side whose operation needs an untimed part (a burst dispatched
   * before the flush that is measured) times itself: it returns the milliseconds it measured,
   * and the harness takes the median of those instead of tinybench's.
   */
  readonly run: () => unknown
  readonly timesItself?: boolean
}

/** Collects garbage where the runtime lets us (see the module comment). */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (typeof gc === 'function') gc()
}

export interface Comparison {
  readonly id: string
  readonly title: string
  readonly ours: Side
  readonly baseline: Side
  /**
   * `'speedup'`: reported as baseline ÷ ours (higher is better for us);
   * `'overhead'`: reported as ours ÷ baseline (lower is better).
   */
  readonly report: 'speedup' | 'overhead'
  /** The target from issue #6, e.g. `{ op: '>=', value: 100 }`. */
  readonly target?: Target
  readonly rounds: number
  readonly iterations: number
  /** Extra note printed with the row (sizes, settings). */
  readonly note?: string
  /**
   * Work a side does that is not the library's to answer for (e.g. the app's own reducer).
   * Measured in every round, and its median subtracted from that side's median of the round.
   * Pass the same Side for both when both do the same work: it is then measured once.
   */
  readonly netOf?: { readonly ours?: Side; readonly baseline?: Side }
}

export interface Target {
  readonly op: '>=' | '<='
  readonly value: number
}

export interface Result {
  readonly id: string
  readonly title: string
  readonly ours: string
  readonly baseline: string
  readonly oursMedianMs: number
  readonly baselineMedianMs: number
  readonly report: 'speedup' | 'overhead'
  readonly ratio: number
  readonly ratioMin: number
  readonly ratioMax: number
  readonly target: Target | null
  readonly met: boolean | null
  readonly rounds: number
  readonly iterations: number
  readonly note: string
  /** The control's median, when times are net of it. */
  readonly controlMedianMs: number | null
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function meets(target: Target | undefined, ratio: number): boolean | null {
  if (!target) return null
  return target.op === '>=' ? ratio >= target.value : ratio <= target.value
}

async function medianOf(side: Side, iterations: number, warmup: boolean): Promise<number> {
  collectGarbage()
  if (side.timesItself) {
    if (warmup) for (let i = 0; i < Math.max(2, iterations >> 2); i++) await side.run()
    const times: number[] = []
    for (let i = 0; i < iterations; i++) times.push((await side.run()) as number)
    return median(times)
  }
  const bench = new Bench({ iterations, time: 0, warmup, warmupIterations: Math.max(2, iterations >> 2), warmupTime: 0, throws: true })
  bench.add(side.name, side.run)
  await bench.run()
  const p50 = bench.tasks[0]?.result?.latency.p50
  if (p50 === undefined) throw new Error(`${side.name}: tinybench returned no samples`)
  return p50
}

/** Runs one comparison; see the module comment for the method. */
export async function compare(c: Comparison): Promise<Result> {
  const ours: number[] = []
  const base: number[] = []
  const ratios: number[] = []
  const controls: number[] = []
  // A net time is floored at 1 µs, so a side that adds nothing measurable cannot divide by zero.
  const FLOOR = 0.001
  for (let round = 0; round < c.rounds; round++) {
    const warmup = round === 0
    let a: number
    let b: number
    if (round % 2 === 0) {
      a = await medianOf(c.ours, c.iterations, warmup)
      b = await medianOf(c.baseline, c.iterations, warmup)
    } else {
      b = await medianOf(c.baseline, c.iterations, warmup)
      a = await medianOf(c.ours, c.iterations, warmup)
    }
    const ka = c.netOf?.ours ? await medianOf(c.netOf.ours, c.iterations, warmup) : 0
    const kb = c.netOf?.baseline ? (c.netOf.baseline === c.netOf.ours ? ka : await medianOf(c.netOf.baseline, c.iterations, warmup)) : 0
    if (c.netOf) {
      controls.push(ka)
      a = Math.max(FLOOR, a - ka)
      b = Math.max(FLOOR, b - kb)
    }
    ours.push(a)
    base.push(b)
    ratios.push(c.report === 'speedup' ? b / a : a / b)
  }
  const ratio = median(ratios)
  return {
    id: c.id,
    title: c.title,
    ours: c.ours.name,
    baseline: c.baseline.name,
    oursMedianMs: median(ours),
    baselineMedianMs: median(base),
    report: c.report,
    ratio,
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    target: c.target ?? null,
    met: meets(c.target, ratio),
    rounds: c.rounds,
    iterations: c.iterations,
    note: c.note ?? '',
    controlMedianMs: controls.length > 0 ? median(controls) : null,
  }
}

/** A result that is not an A/B timing (counts, bytes, heap), with its own pass/fail. */
export interface Fact {
  readonly id: string
  readonly title: string
  readonly value: string
  readonly target: string
  readonly met: boolean | null
  readonly note?: string
}

const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms >= 0.01 ? ms.toFixed(3) : ms.toExponential(1)) + ' ms'
const fmtRatio = (r: number): string => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + '×'
const verdict = (met: boolean | null): string => (met === null ? '–' : met ? 'met' : '**missed**')

export function formatResult(r: Result): string {
  const target = r.target ? `${r.target.op} ${fmtRatio(r.target.value)}` : '–'
  const what = r.report === 'speedup' ? `${r.baseline} ÷ ours` : `ours ÷ ${r.baseline}`
  return `| ${r.id} | ${r.title} | ${fmtMs(r.oursMedianMs)} | ${fmtMs(r.baselineMedianMs)} (${r.baseline}) | ${what} = **${fmtRatio(r.ratio)}** (${fmtRatio(r.ratioMin)}–${fmtRatio(r.ratioMax)}) | ${target} | ${verdict(r.met)} |`
}

export function formatFact(f: Fact): string {
  return `| ${f.id} | ${f.title} | ${f.value} | | | ${f.target} | ${verdict(f.met)} |`
}

export const TABLE_HEAD = [
  '| # | case | ours (median) | baseline (median) | ratio, median (min–max over rounds) | target | |',
  '| --- | --- | --- | --- | --- | --- | --- |',
]
