// One suite for docs/protocol.md, run against the msw handlers of redux-idb-sync/testing
// (test/contract/msw.test.ts) and against the real Flask server (test/e2e/contract.e2e.test.ts),
// so the two cannot drift apart.
import { beforeEach, describe, expect, test } from 'vitest'

export interface ContractTarget {
  /** e.g. http://127.0.0.1:5000/api */
  baseUrl(): string
  /** Empties the server. */
  reset(): Promise<void>
  /** The bearer token the server requires, if any. */
  token?: string
}

type Json = Record<string, unknown>

export function contractSuite(name: string, target: ContractTarget): void {
  const auth = (): Record<string, string> => (target.token ? { authorization: `Bearer ${target.token}` } : {})
  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
    const response = await fetch(`${target.baseUrl()}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...auth(), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : {} }
  }
  let n = 0
  const op = (over: Json = {}): Json => ({
    opId: `op-${Date.now()}-${++n}`,
    collection: 'files',
    id: 'a',
    type: 'put',
    value: { id: 'a', title: 't' },
    baseVersion: null,
    clientTime: 1000,
    ...over,
  })
  const push = (ops: Json[]) => call('POST', '/sync/push', { clientId: 'contract', ops })

  describe(`protocol contract: ${name}`, () => {
    beforeEach(() => target.reset())

    test('health answers without auth', async () => {
      const response = await fetch(`${target.baseUrl()}/health`)
      expect(response.status).toBe(200)
      const body = (await response.json()) as Json
      expect(body.status).toBe('ok')
      expect(typeof body.serverTime).toBe('number')
      expect(body.protocol).toBe(1)
    })

    test('a push applies operations in order and returns records with server versions', async () => {
      const first = op()
      const second = op({ id: 'b', value: { id: 'b' } })
      const answer = await push([first, second])
      expect(answer.status).toBe(200)
      const results = answer.body.results as Json[]
      expect(results.map((r) => r.status)).toEqual(['applied', 'applied'])
      expect(results.map((r) => r.opId)).toEqual([first.opId, second.opId])
      const record = results[0]!.record as Json
      expect(record).toMatchObject({ collection: 'files', id: 'a', version: 1, deleted: false, value: { id: 'a', title: 't' }, clientTime: 1000 })
      expect(typeof record.updatedAt).toBe('number')
      expect(typeof record.seq).toBe('number')
      expect(typeof answer.body.cursor).toBe('string')
    })

    test('a replayed opId is applied once and answered duplicate with the stored record', async () => {
      const once = op()
      const a = await push([once])
      const b = await push([once])
      expect((b.body.results as Json[])[0]!.status).toBe('duplicate')
      expect(((b.body.results as Json[])[0]!.record as Json).version).toBe(((a.body.results as Json[])[0]!.record as Json).version)
      const pulled = await call('GET', '/sync/pull')
      expect((pulled.body.items as Json[])).toHaveLength(1)
    })

    test('a stale baseVersion is a conflict carrying the current record; force overrides it', async () => {
      await push([op()])
      const stale = await push([op({ value: { id: 'a', title: 'stale' }, baseVersion: null })])
      const result = (stale.body.results as Json[])[0]!
      expect(result.status).toBe('conflict')
      expect((result.current as Json).version).toBe(1)
      const rebased = await push([op({ value: { id: 'a', title: 'rebased' }, baseVersion: 1 })])
      expect(((rebased.body.results as Json[])[0]!.record as Json).version).toBe(2)
      const forced = await push([op({ value: { id: 'a', title: 'forced' }, baseVersion: 0, force: true })])
      expect((forced.body.results as Json[])[0]!.status).toBe('applied')
    })

    test('an invalid operation is rejected alone; the others apply', async () => {
      const answer = await push([op({ id: 'ok1' }), op({ type: 'explode' }), op({ id: 'ok2' })])
      expect(answer.status).toBe(200)
      const results = answer.body.results as Json[]
      expect(results.map((r) => r.status)).toEqual(['applied', 'rejected', 'applied'])
      expect((results[1]!.error as Json).error).toBe('bad_request')
    })

    test('a malformed envelope is a 400 with a JSON error body', async () => {
      for (const body of [{ ops: [] }, { clientId: 'x', ops: 'nope' }, [1, 2]]) {
        const answer = await call('POST', '/sync/push', body)
        expect(answer.status).toBe(400)
        expect(answer.body.error).toBe('bad_request')
        expect(typeof answer.body.message).toBe('string')
      }
    })

    test('single-item put, get and delete, with ids that need encoding', async () => {
      for (const id of ['a/b', '../up', 'q?x=1', 'ünï cødé ✓', 'x'.repeat(300)]) {
        const path = `/items/files/${encodeURIComponent(id)}`
        const put = await call('PUT', path, { opId: `put-${id.length}-${n++}`, value: { id, n: 1 }, baseVersion: null, clientTime: 5 })
        expect(put.status).toBe(200)
        expect((put.body.record as Json).id).toBe(id)
        const got = await call('GET', path)
        expect(got.body).toMatchObject({ id, version: 1, deleted: false })
        const conflict = await call('PUT', path, { opId: `put2-${n++}`, value: { id }, baseVersion: null, clientTime: 6 })
        expect(conflict.status).toBe(409)
        expect(conflict.body.error).toBe('conflict')
        expect((conflict.body.current as Json).version).toBe(1)
        const del = await call('DELETE', path, { opId: `del-${n++}`, baseVersion: 1, clientTime: 7 })
        expect(del.status).toBe(200)
        expect((del.body.record as Json)).toMatchObject({ deleted: true, value: null, version: 2 })
      }
    })

    test('an unknown item is 404 with a JSON body', async () => {
      const answer = await call('GET', '/items/files/nope')
      expect(answer.status).toBe(404)
      expect(answer.body.error).toBe('not_found')
    })

    test('pull lists live items only; changes include tombstones in seq order and page with a cursor', async () => {
      await push([op({ id: 'a' }), op({ id: 'b', value: { id: 'b' } }), op({ id: 'c', value: { id: 'c' } })])
      await push([op({ id: 'b', type: 'delete', value: undefined, baseVersion: 1 })])
      const pulled = await call('GET', '/sync/pull')
      expect((pulled.body.items as Json[]).map((r) => r.id).sort()).toEqual(['a', 'c'])
      const page1 = await call('GET', '/sync/changes?since=0&limit=2')
      expect((page1.body.changes as Json[]).map((r) => r.id)).toEqual(['a', 'c'])
      expect(page1.body.hasMore).toBe(true)
      const page2 = await call('GET', `/sync/changes?since=${page1.body.cursor as string}&limit=2`)
      const changes = page2.body.changes as Json[]
      expect(changes.map((r) => [r.id, r.deleted])).toEqual([['b', true]])
      expect(page2.body.hasMore).toBe(false)
      const none = await call('GET', `/sync/changes?since=${page2.body.cursor as string}`)
      expect(none.body.changes).toEqual([])
      expect(none.body.cursor).toBe(page2.body.cursor)
    })

    test('collections filter pulls and changes', async () => {
      await push([op({ id: 'a' }), op({ collection: 'notes', id: 'n', value: { id: 'n' } })])
      const pulled = await call('GET', '/sync/pull?collections=notes')
      expect((pulled.body.items as Json[]).map((r) => r.collection)).toEqual(['notes'])
      const changes = await call('GET', '/sync/changes?since=0&collections=files')
      expect((changes.body.changes as Json[]).map((r) => r.collection)).toEqual(['files'])
    })

    test('an invalid cursor is a 400', async () => {
      const answer = await call('GET', '/sync/changes?since=banana')
      expect(answer.status).toBe(400)
      expect(answer.body.error).toBe('bad_request')
    })

    test('__proto__ keys in values are stored as plain data', async () => {
      const raw = `{"clientId":"x","ops":[{"opId":"proto-1","collection":"files","id":"p","type":"put","value":{"__proto__":{"polluted":true},"id":"p"},"baseVersion":null,"clientTime":1}]}`
      const answer = await call('POST', '/sync/push', raw)
      expect((answer.body.results as Json[])[0]!.status).toBe('applied')
      expect(({} as Json).polluted).toBeUndefined()
    })
  })
}
