// Fault injectors for end-to-end tests against the real Flask server: a fetch that loses
// answers, a LocalStore whose writes resolve late (and that notices writes after dispose), and
// a device clock that jumps. Each is independent of the randomized test; use them in targeted
// regression tests too.
import type { LocalStore } from '../../../src'

/** Where a request went, as the lossy fetch saw it. */
export interface RequestInfo {
  readonly method: string
  readonly url: string
}

/** Which requests a fault applies to. */
export type RequestMatch = RegExp | ((request: RequestInfo) => boolean)

/** Requests of the sync protocol, for {@link LossyFetch.loseNext}. */
export const PUSH: RegExp = /\/sync\/push(?:\?|$)/
export const PULL: RegExp = /\/sync\/(?:changes|pull)(?:\?|$)/
export const ITEM: RegExp = /\/items\//
/** Everything except the health check. */
export const NOT_HEALTH = (request: RequestInfo): boolean => !/\/health(?:\?|$)/.test(request.url)

export interface LossyFetch {
  /** Pass this as `remote.fetch`. */
  readonly fetch: typeof fetch
  /**
   * The next `count` requests that match reach the server and are processed; once the whole
   * answer has arrived it is thrown away and the caller gets `TypeError('fetch failed')`, as
   * when a connection drops after the server committed. Counts add up.
   */
  loseNext(count: number, match?: RequestMatch): void
  /** Drops the armed losses (not the log). */
  clear(): void
  /** How many losses are still armed. */
  readonly armed: number
  /** Every answer thrown away, with the status the server had sent. */
  readonly lost: ReadonlyArray<RequestInfo & { readonly status: number }>
  /** Every request that went through, lost or not. */
  readonly requests: readonly RequestInfo[]
}

function describeRequest(input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): RequestInfo {
  if (typeof input === 'string') return { method: (init?.method ?? 'GET').toUpperCase(), url: input }
  if (input instanceof URL) return { method: (init?.method ?? 'GET').toUpperCase(), url: input.href }
  return { method: (init?.method ?? input.method ?? 'GET').toUpperCase(), url: input.url }
}

const matches = (match: RequestMatch, request: RequestInfo): boolean => (typeof match === 'function' ? match(request) : match.test(request.url))

/** A `fetch` wrapper that can lose answers after the server processed the request. */
export function createLossyFetch(inner: typeof fetch = globalThis.fetch): LossyFetch {
  const losses: RequestMatch[] = []
  const lost: Array<RequestInfo & { status: number }> = []
  const requests: RequestInfo[] = []
  const wrapped = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
    const request = describeRequest(input, init)
    requests.push(request)
    const index = losses.findIndex((m) => matches(m, request))
    if (index < 0) return inner(input, init)
    losses.splice(index, 1)
    const response = await inner(input, init)
    // Read the body to the end: the server has answered completely, then the answer is lost.
    await response.arrayBuffer().catch(() => undefined)
    lost.push({ ...request, status: response.status })
    throw new TypeError('fetch failed (injected: the answer was lost after the server processed the request)')
  }) as typeof fetch
  return {
    fetch: wrapped,
    loseNext(count, match = NOT_HEALTH) {
      for (let i = 0; i < count; i++) losses.push(match)
    },
    clear() {
      losses.length = 0
    },
    get armed() {
      return losses.length
    },
    lost,
    requests,
  }
}

/** Methods of a LocalStore that never write; everything else returning a promise is delayed. */
export const READ_METHODS: ReadonlySet<string> = new Set(['readAll', 'get', 'getMany', 'close'])

export interface SlowStoreControl {
  /** The delay (ms) added after each write resolves (or rejects); called once per write. */
  delay: () => number
  /**
   * Declares the instance using this store disposed: from now on every write call is recorded
   * in `writesAfterSeal`, and writes still in flight are recorded too (they commit after the
   * instance said it was done). Call it right after `await persistence.dispose()`.
   */
  seal(): void
  readonly sealed: boolean
  /** Writes started after `seal()`, or in flight when it was called. */
  readonly writesAfterSeal: ReadonlyArray<{ readonly method: string; readonly detail: string; readonly when: 'after-seal' | 'in-flight-at-seal' }>
  /** Writes started so far. */
  readonly writes: number
}

export type SlowStore = LocalStore & { readonly control: SlowStoreControl }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function describeArgs(method: string, args: readonly unknown[]): string {
  if (method === 'commit' && Array.isArray(args[0])) {
    return (args[0] as Array<{ type?: string; store?: string; key?: unknown }>)
      .map((op) => `${op.type ?? '?'} ${op.store ?? '?'}${op.key === undefined ? '' : `/${String(op.key)}`}`)
      .join(', ')
  }
  return `${args.length} argument(s)`
}

/**
 * Wraps a LocalStore (e.g. `createIdbStore(...)` from the library) so that every promise-returning
 * method except the reads (`READ_METHODS`) resolves `delay()` ms after the real call settled:
 * the write is committed, but the code waiting for it continues late, as on a busy device. The
 * wrapping is generic (a Proxy), so write methods added to LocalStore later are slowed and
 * watched too.
 */
export function slowStore(inner: LocalStore, delay: () => number = () => 0): SlowStore {
  const writesAfterSeal: Array<{ method: string; detail: string; when: 'after-seal' | 'in-flight-at-seal' }> = []
  const inFlight = new Map<number, { method: string; detail: string }>()
  let nextWrite = 0
  let writes = 0
  let sealed = false
  const control: SlowStoreControl = {
    delay,
    seal() {
      if (sealed) return
      sealed = true
      for (const write of inFlight.values()) writesAfterSeal.push({ ...write, when: 'in-flight-at-seal' })
    },
    get sealed() {
      return sealed
    },
    writesAfterSeal,
    get writes() {
      return writes
    },
  }
  const wrappers = new Map<PropertyKey, unknown>()
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'control') return control
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function' || (typeof property === 'string' && READ_METHODS.has(property))) {
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      }
      const cached = wrappers.get(property)
      if (cached) return cached
      const method = String(property)
      const wrapper = (...args: unknown[]): unknown => {
        const detail = describeArgs(method, args)
        if (sealed) writesAfterSeal.push({ method, detail, when: 'after-seal' })
        writes++
        const id = nextWrite++
        inFlight.set(id, { method, detail })
        let result: unknown
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args)
        } catch (error) {
          inFlight.delete(id)
          throw error
        }
        if (!result || typeof (result as PromiseLike<unknown>).then !== 'function') {
          inFlight.delete(id)
          return result
        }
        return Promise.resolve(result as PromiseLike<unknown>).then(
          async (resolved) => {
            inFlight.delete(id)
            const ms = control.delay()
            if (ms > 0) await sleep(ms)
            return resolved
          },
          async (error: unknown) => {
            inFlight.delete(id)
            const ms = control.delay()
            if (ms > 0) await sleep(ms)
            throw error
          },
        )
      }
      wrappers.set(property, wrapper)
      return wrapper
    },
  }) as SlowStore
}

/** A device clock for `remote.now`: the real time plus an offset that can jump. */
export interface DeviceClock {
  /** Pass this as `remote.now`. */
  readonly now: () => number
  /** The current offset from the real clock (ms). */
  readonly offsetMs: number
  /** Moves the clock by `ms` (negative: backwards). */
  jump(ms: number): void
  /** Every jump, in order. */
  readonly jumps: readonly number[]
}

export function createDeviceClock(initialOffsetMs = 0): DeviceClock {
  let offset = initialOffsetMs
  const jumps: number[] = []
  return {
    now: () => Date.now() + offset,
    get offsetMs() {
      return offset
    },
    jump(ms) {
      offset += ms
      jumps.push(ms)
    },
    jumps,
  }
}

/** A small seeded PRNG (mulberry32), so a run's timing choices follow its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
