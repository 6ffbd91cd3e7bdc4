import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { hasFlask, startFlaskServer, type FlaskServer, type HistoryRecord } from '../../test/e2e/flaskServer'
import { median, type Fact } from '../lib/harness'
import type { Settings } from '../lib/settings'

/*
 * B11: the reference server on PostgreSQL under gunicorn, 1 worker against 4 workers, with 200
 * simulated clients (protocol-level: each a loop of push, then incremental pull, over HTTP with
 * keep-alive; 20 tenants of 10 devices each, every device writing its own items and reading its
 * tenant's feed). One in ten pushes is sent twice, as after a lost answer. Rounds alternate
 * between the two servers, so a busy moment of the machine hits both.
 *
 * Checked on the server's history (GET /_test/history per tenant), not only the end state:
 * every acknowledged opId is there exactly once (0 lost, 0 applied twice), the seqs of every
 * tenant's history run 1..head without a hole, and every client's incrementally pulled state
 * equals a full pull of its tenant (no cursor gap).
 *
 * Needs REDUX_IDB_SYNC_PG_URL (scripts/pg-temp.sh) and gunicorn; without them it reports why not.
 */

const CLIENTS = 200
const TENANTS = 20
const OPS_PER_PUSH = 3

interface Round {
  requests: number
  writes: number
  seconds: number
  latencies: number[]
}

interface Client {
  tenant: number
  token: string
  name: string
  versions: Map<string, number>
  cursor: string
  held: Map<string, number>
  acknowledged: Set<string>
  replays: number
  step: number
}

let networkRetries = 0

/**
 * One request; a request that gets no answer (a dropped connection) is sent again once, as the
 * library's outbox does: every request here is safe to repeat (pushes carry their opIds).
 */
async function call(server: FlaskServer, token: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const send = () =>
    fetch(`${server.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  let response: Response
  try {
    response = await send()
  } catch {
    networkRetries++
    response = await send()
  }
  const text = await response.text()
  if (!response.ok) throw new Error(`B11: ${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`)
  return JSON.parse(text) as Record<string, unknown>
}

async function pullAll(server: FlaskServer, client: Client, latencies: number[] | null): Promise<number> {
  let requests = 0
  for (;;) {
    const started = performance.now()
    const page = await call(server, client.token, 'GET', `/sync/changes?since=${client.cursor}&limit=1000`)
    latencies?.push(performance.now() - started)
    requests++
    for (const record of page.changes as Array<{ id: string; version: number }>) client.held.set(record.id, record.version)
    client.cursor = page.cursor as string
    if (!page.hasMore) return requests
  }
}

async function runRound(server: FlaskServer, clients: Client[], seconds: number): Promise<Round> {
  const latencies: number[] = []
  let requests = 0
  let writes = 0
  const end = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < end) {
        client.step++
        const ops = Array.from({ length: OPS_PER_PUSH }, (_, k) => {
          const id = `${client.name}-i${(client.step * OPS_PER_PUSH + k) % 40}`
          return {
            opId: `${client.name}-s${client.step}-${k}`,
            collection: 'b11',
            id,
            type: 'put',
            value: { by: client.name, step: client.step, k },
            baseVersion: client.versions.get(id) ?? null,
            clientTime: Date.now(),
          }
        })
        const body = { clientId: client.name, ops }
        const pushed = performance.now()
        const answer = await call(server, client.token, 'POST', '/sync/push', body)
        latencies.push(performance.now() - pushed)
        requests++
        for (const result of answer.results as Array<{ opId: string; status: string; record?: { id: string; version: number } }>) {
          // 'duplicate' only when a dropped connection made `call` send the push again.
          if (result.status !== 'applied' && result.status !== 'duplicate') throw new Error(`B11: ${result.opId} was ${result.status}`)
          client.acknowledged.add(result.opId)
          client.versions.set(result.record!.id, result.record!.version)
          writes++
        }
        if (client.step % 10 === 0) {
          // The answer was "lost": the same push again must change nothing.
          const again = performance.now()
          const replay = await call(server, client.token, 'POST', '/sync/push', body)
          latencies.push(performance.now() - again)
          requests++
          if ((replay.results as Array<{ status: string }>).some((r) => r.status !== 'duplicate')) throw new Error('B11: a replay was applied again')
          client.replays++
        }
        const pulls = await pullAll(server, client, latencies) // (`requests += await …` would add to a stale value)
        requests += pulls
      }
    }),
  )
  return { requests, writes, seconds: (performance.now() - started) / 1000, latencies }
}

/** The integrity checks on the server's history; returns [lost, appliedTwice, cursorGaps]. */
async function verify(server: FlaskServer, clients: Client[], tokens: string[]): Promise<[number, number, number]> {
  let lost = 0
  let twice = 0
  let gaps = 0
  for (let t = 0; t < TENANTS; t++) {
    const history = (await call(server, tokens[t]!, 'GET', '/_test/history')).ops as HistoryRecord[]
    const seen = new Map<string, number>()
    for (const record of history) seen.set(record.opId, (seen.get(record.opId) ?? 0) + 1)
    twice += [...seen.values()].filter((n) => n > 1).length
    const pulled = await call(server, tokens[t]!, 'GET', '/sync/pull')
    history.forEach((record, i) => {
      if (record.seq !== i + 1) gaps++
    })
    if (Number(pulled.cursor) !== history.length) gaps++
    const full = new Map((pulled.items as Array<{ id: string; version: number }>).map((r) => [r.id, r.version]))
    for (const client of clients.filter((c) => c.tenant === t)) {
      for (const opId of client.acknowledged) if (!seen.has(opId)) lost++
      await pullAll(server, client, null)
      if (client.held.size !== full.size || [...full].some(([id, version]) => client.held.get(id) !== version)) gaps++
    }
  }
  return [lost, twice, gaps]
}

/** Busy and total jiffies of all cores (Linux /proc/stat), or null elsewhere. */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const idle = fields[3]! + (fields[4] ?? 0)
    const total = fields.reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  } catch {
    return null
  }
}

const p95 = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? NaN
}

export async function b11(settings: Settings): Promise<Fact[]> {
  const title = `${CLIENTS} clients push+pull against PostgreSQL: 4 gunicorn workers vs 1`
  const why = (value: string): Fact[] => [{ id: 'B11', title, value, target: '>= 2.5×', met: null }]
  if (!hasFlask()) return why('not run: python3 -c "import flask" fails here')
  if (!process.env.REDUX_IDB_SYNC_PG_URL) return why('not run: needs REDUX_IDB_SYNC_PG_URL (eval "$(scripts/pg-temp.sh start)")')
  const tokens = Array.from({ length: TENANTS }, (_, t) => `b11-token-${t}`)
  const tokenMap = Object.fromEntries(tokens.map((token, t) => [token, `tenant-${t}`]))
  const servers: Record<'1' | '4', FlaskServer> = {
    '1': await startFlaskServer({ backend: 'postgresql', workers: 1, tokens: tokenMap }),
    '4': await startFlaskServer({ backend: 'postgresql', workers: 4, tokens: tokenMap }),
  }
  try {
    const rounds = settings.quick ? 1 : 5
    const seconds = settings.quick ? 1.5 : 8
    const results: Record<'1' | '4', Round[]> = { '1': [], '4': [] }
    const integrity: Record<'1' | '4', [number, number, number]> = { '1': [0, 0, 0], '4': [0, 0, 0] }
    const busy: Record<'1' | '4', number[]> = { '1': [], '4': [] }
    let driverCpu = 0
    let driverWall = 0
    for (let round = 0; round < rounds; round++) {
      for (const workers of round % 2 === 0 ? (['1', '4'] as const) : (['4', '1'] as const)) {
        const server = servers[workers]
        for (const token of tokens) await call(server, token, 'POST', '/_test/reset', {})
        const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => ({
          tenant: i % TENANTS,
          token: tokens[i % TENANTS]!,
          name: `r${round}c${i}`,
          versions: new Map(),
          cursor: '0',
          held: new Map(),
          acknowledged: new Set(),
          replays: 0,
          step: 0,
        }))
        // Warm-up: every client connects and reads once, outside the measurement.
        await Promise.all(clients.map((client) => pullAll(server, client, null)))
        const cpu = process.cpuUsage()
        const machine = cpuTimes()
        const result = await runRound(server, clients, seconds)
        const used = process.cpuUsage(cpu)
        const after = cpuTimes()
        if (machine && after) busy[workers].push((after.busy - machine.busy) / (after.total - machine.total))
        driverCpu += (used.user + used.system) / 1e6
        driverWall += result.seconds
        results[workers].push(result)
        const [lost, twice, gaps] = await verify(server, clients, tokens)
        integrity[workers] = [integrity[workers][0] + lost, integrity[workers][1] + twice, integrity[workers][2] + gaps]
      }
    }
    const rate = (r: Round): number => r.requests / r.seconds
    const ratios = results['4'].map((r, i) => rate(r) / rate(results['1'][i]!))
    const ratio = median(ratios)
    const one = median(results['1'].map(rate))
    const four = median(results['4'].map(rate))
    const writes = (w: '1' | '4'): number => median(results[w].map((r) => r.writes / r.seconds))
    const latency = (w: '1' | '4'): number => p95(results[w].flatMap((r) => r.latencies))
    const fmt = (n: number): string => n.toLocaleString('en', { maximumFractionDigits: 0 })
    const clean = [...integrity['1'], ...integrity['4']].every((n) => n === 0)
    const pct = (values: number[]): string => (values.length ? `${(100 * median(values)).toFixed(0)}%` : 'unknown')
    const note = `${rounds} rounds of ${seconds} s; ${cpus().length} cores shared by PostgreSQL, gunicorn and this load generator (which used ${((100 * driverCpu) / driverWall).toFixed(0)}% of one core); all cores busy ${pct(busy['1'])} with 1 worker, ${pct(busy['4'])} with 4`
    console.error(`B11: ${note}; requests sent again after a dropped connection: ${networkRetries}`)
    return [
      {
        id: 'B11',
        title,
        value: `${fmt(four)} vs ${fmt(one)} requests/s = **${ratio.toFixed(2)}×** (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×); writes/s ${fmt(writes('4'))} vs ${fmt(writes('1'))}; p95 ${latency('4').toFixed(0)} ms vs ${latency('1').toFixed(0)} ms`,
        target: '>= 2.5×',
        met: ratio >= 2.5,
        note,
      },
      {
        id: 'B11',
        title: 'lost, applied twice, cursor gaps (server history and every client against a full pull)',
        value: `${integrity['4'].join(', ')} with 4 workers; ${integrity['1'].join(', ')} with 1`,
        target: '0, 0, 0',
        met: clean,
      },
    ]
  } finally {
    await servers['1'].close()
    await servers['4'].close()
  }
}
