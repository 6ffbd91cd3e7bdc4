// One suite for docs/protocol.md, run against the msw handlers of redux-idb-sync/testing
// (test/contract/msw.test.ts) and against the real Flask server (test/e2e/contract.e2e.test.ts),
// so the two cannot drift apart.
import { gzipSync } from 'node:zlib'
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
      expect(body.protocol).toBe(4)
      expect(body.epoch).toMatch(/^[0-9a-f]{32}$/)
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
      expect(pulled.body.items as Json[]).toHaveLength(1)
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
        expect(del.body.record as Json).toMatchObject({ deleted: true, value: null, version: 2 })
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

    test('POST /sync/changes (protocol 4) answers exactly as GET, with the parameters in the body', async () => {
      await push([op({ id: 'a' }), op({ id: 'b', value: { id: 'b' } }), op({ collection: 'notes', id: 'n', value: { id: 'n' } })])
      for (const [query, body] of [
        ['since=0&limit=2', { since: '0', limit: 2 }],
        ['since=2', { since: '2' }],
        ['since=0&collections=notes', { collections: ['notes'] }],
        ['', {}],
      ] as const) {
        const got = await call('GET', `/sync/changes?${query}`)
        const posted = await call('POST', '/sync/changes', body)
        expect(posted.status, query).toBe(200)
        expect(posted.body, query).toEqual(got.body)
      }
      expect((await call('POST', '/sync/changes', { since: '9' })).status).toBe(410)
      for (const bad of [
        [],
        { since: 2 },
        { since: 'banana' },
        { limit: 0 },
        { limit: '5' },
        { limit: true },
        { collections: 'notes' },
        { collections: ['a b'] },
      ]) {
        const answer = await call('POST', '/sync/changes', bad)
        expect(answer.status, JSON.stringify(bad)).toBe(400)
        expect(answer.body.error).toBe('bad_request')
      }
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

    test('health, push, pull and changes carry the same epoch; a reset makes a new one', async () => {
      const health = await call('GET', '/health')
      const epoch = health.body.epoch as string
      expect((await push([op()])).body.epoch).toBe(epoch)
      expect((await call('GET', '/sync/pull')).body.epoch).toBe(epoch)
      expect((await call('GET', '/sync/changes?since=0')).body.epoch).toBe(epoch)
      await target.reset()
      const fresh = (await call('GET', '/health')).body.epoch as string
      expect(fresh).toMatch(/^[0-9a-f]{32}$/)
      expect(fresh).not.toBe(epoch)
    })

    test('a cursor beyond the head of the feed is 410 cursor_ahead with the epoch', async () => {
      await push([op({ id: 'a' }), op({ id: 'b', value: { id: 'b' } })])
      const epoch = (await call('GET', '/health')).body.epoch
      expect((await call('GET', '/sync/changes?since=2')).status).toBe(200)
      const ahead = await call('GET', '/sync/changes?since=3&collections=files')
      expect(ahead.status).toBe(410)
      expect(ahead.body).toMatchObject({ error: 'cursor_ahead', epoch })
      expect(typeof ahead.body.message).toBe('string')
      expect((await call('GET', '/sync/changes?since=9223372036854775807')).status).toBe(410)
    })

    test('since and limit are ASCII decimal within int64, else 400', async () => {
      for (const query of [
        'since=%C2%B2',
        'since=%D9%A1',
        `since=${'9'.repeat(30)}`,
        'since=9223372036854775808',
        'since=-1',
        'since=1.0',
        'limit=%C2%B2',
        'limit=1e2',
        'limit=0',
      ]) {
        const answer = await call('GET', `/sync/changes?${query}`)
        expect(answer.status, query).toBe(400)
        expect(answer.body.error, query).toBe('bad_request')
      }
    })

    test('ids, opIds and clientIds must be well-formed UTF-16: a bad one is rejected alone', async () => {
      const raw = (opId: string, id: string): string =>
        `{"opId":"${opId}","collection":"files","id":"${id}","type":"put","value":{"v":1},"baseVersion":null,"clientTime":1}`
      const body = `{"clientId":"c","ops":[${[raw('ok-1', 'a'), raw('bad-id', '\\ud83d'), raw('bad-op\\udc00', 'b'), raw('ok-2', '\\ud83d\\ude00')].join(',')}]}`
      const answer = await call('POST', '/sync/push', body)
      expect(answer.status).toBe(200)
      const results = answer.body.results as Json[]
      expect(results.map((r) => r.status)).toEqual(['applied', 'rejected', 'rejected', 'applied'])
      expect((results[1]!.error as Json).error).toBe('bad_request')
      expect(results[1]!.opId).toBe('bad-id')
      expect((results[3]!.record as Json).id).toBe('\u{1F600}')
      const badClient = await call('POST', '/sync/push', `{"clientId":"c\\ud83d","ops":[${raw('ok-3', 'c')}]}`)
      expect(badClient.status).toBe(400)
      expect(badClient.body.error).toBe('bad_request')
    })

    test('id and opId lengths count UTF-16 code units', async () => {
      const emoji = '\u{1F600}' // one character, two UTF-16 code units
      const answer = await push([
        op({ id: emoji.repeat(256) }),
        op({ id: `${emoji.repeat(256)}x` }),
        op({ id: 'b', opId: emoji.repeat(64) }),
        op({ id: 'c', opId: `${emoji.repeat(64)}x` }),
      ])
      expect((answer.body.results as Json[]).map((r) => r.status)).toEqual(['applied', 'rejected', 'applied', 'rejected'])
    })

    test('a body with a number that is not finite is a 400; nothing is stored', async () => {
      const raw = (value: string, clientTime = '1'): string =>
        `{"clientId":"c","ops":[{"opId":"nf-${n++}","collection":"files","id":"a","type":"put","value":${value},"baseVersion":null,"clientTime":${clientTime}}]}`
      for (const body of [raw('{"x":1e999}'), raw('[-1e999]'), raw('NaN'), raw('{"x":Infinity}'), raw('1', '1e999'), raw('1', 'NaN')]) {
        const answer = await call('POST', '/sync/push', body)
        expect(answer.status, body).toBe(400)
        expect(answer.body.error).toBe('bad_request')
      }
      expect((await call('GET', '/sync/changes')).body.changes).toEqual([])
    })

    test('clientTime is a finite number from 0 to 2^53, rounded half up; others are rejected alone', async () => {
      const answer = await push([
        op({ id: 'big', clientTime: 1e300 }),
        op({ id: 'neg', clientTime: -1 }),
        op({ id: 'str', clientTime: '5' }),
        op({ id: 'half', clientTime: 2.5 }),
        op({ id: 'max', clientTime: 2 ** 53 }),
      ])
      const results = answer.body.results as Json[]
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'applied', 'applied'])
      expect((results[3]!.record as Json).clientTime).toBe(3)
      expect((results[4]!.record as Json).clientTime).toBe(2 ** 53)
    })

    test('item writes take collection, id and type from the path and method only', async () => {
      for (const extra of [{ collection: 'other' }, { id: 'b' }, { type: 'delete' }]) {
        const answer = await call('PUT', '/items/docs/a', { opId: `path-${n++}`, value: { v: 1 }, baseVersion: null, clientTime: 1, ...extra })
        expect(answer.status).toBe(400)
        expect(answer.body.error).toBe('bad_request')
      }
      expect((await call('GET', '/sync/pull')).body.items).toEqual([])
      const same = await call('PUT', '/items/docs/a', {
        opId: `path-${n++}`,
        collection: 'docs',
        id: 'a',
        type: 'put',
        value: { v: 1 },
        baseVersion: null,
        clientTime: 1,
      })
      expect(same.status).toBe(200)
    })

    test('a collection name matches in full: a trailing newline is refused', async () => {
      const path = `/items/${encodeURIComponent('docs\n')}/a`
      const put = await call('PUT', path, { opId: `nl-${n++}`, value: { v: 1 }, baseVersion: null, clientTime: 1 })
      expect(put.status).toBe(400)
      expect(put.body.error).toBe('bad_request')
      const result = (await push([op({ collection: 'docs\n' })])).body.results as Json[]
      expect(result[0]!.status).toBe('rejected')
    })

    test('the depth rule: depth 100 is accepted, 101 refused', async () => {
      const nested = (steps: number, leaf: unknown, array = false): unknown => {
        let value = leaf
        for (let i = 0; i < steps; i++) value = array ? [value] : { d: value }
        return value
      }
      const cases: Array<[string, unknown, string]> = [
        ['a primitive', 'x', 'applied'],
        ['objects, depth 100', nested(100, 1), 'applied'],
        ['objects, depth 101', nested(101, 1), 'rejected'],
        ['arrays, depth 100', nested(100, 1, true), 'applied'],
        ['arrays, depth 101', nested(101, 1, true), 'rejected'],
        ['{} at depth 100', nested(100, {}), 'applied'],
        ['[] at depth 101', nested(101, [], true), 'rejected'],
        ['a primitive leaf at depth 101 beside a shallow one', { shallow: 1, deep: nested(100, 'x') }, 'rejected'],
      ]
      const answer = await push(cases.map(([, value], i) => op({ id: `depth-${i}`, value })))
      const results = answer.body.results as Json[]
      expect(cases.map(([name], i) => [name, results[i]!.status])).toEqual(cases.map(([name, , expected]) => [name, expected]))
    })

    test('GET /_test/history lists the record of every applied operation, in order', async () => {
      const first = op({ id: 'h1', value: { id: 'h1' } })
      await push([first, op({ id: 'h2', value: { id: 'h2' } })])
      await push([first]) // a replay adds nothing
      await push([op({ id: 'h1', value: { id: 'h1' }, baseVersion: 7 })]) // nor does a conflict
      await push([op({ id: 'h1', type: 'delete', value: undefined, baseVersion: 1 })])
      const history = await call('GET', '/_test/history')
      expect(history.status).toBe(200)
      const ops = history.body.ops as Json[]
      expect(ops.map((r) => [r.id, r.version, r.deleted])).toEqual([
        ['h1', 1, false],
        ['h2', 1, false],
        ['h1', 2, true],
      ])
      expect(ops.map((r) => r.seq)).toEqual([1, 2, 3])
      expect(ops[0]!.opId).toBe(first.opId)
    })

    test('__proto__ keys in values are stored as plain data', async () => {
      const raw = `{"clientId":"x","ops":[{"opId":"proto-1","collection":"files","id":"p","type":"put","value":{"__proto__":{"polluted":true},"id":"p"},"baseVersion":null,"clientTime":1}]}`
      const answer = await call('POST', '/sync/push', raw)
      expect((answer.body.results as Json[])[0]!.status).toBe('applied')
      expect(({} as Json).polluted).toBeUndefined()
    })
    describe('patches (protocol 3)', () => {
      const body = 'lorem ipsum '.repeat(850)
      const patchOp = (patch: Json, base: Json, baseVersion: number, over: Json = {}): Json => {
        const { value: _value, ...rest } = op({ type: 'patch', patch, base, baseVersion, ...over })
        void _value
        return rest
      }
      const create = async (): Promise<void> => {
        const answer = await push([op({ value: { id: 'a', title: 't', body } })])
        expect((answer.body.results as Json[])[0]!.status).toBe('applied')
      }
      const result = async (o: Json): Promise<Json> => ((await push([o])).body.results as Json[])[0]!

      test('a patch on the current version applies as a new version', async () => {
        await create()
        const applied = await result(patchOp({ title: 'new' }, { title: 't' }, 1))
        expect(applied.status).toBe('applied')
        expect(applied.record).toMatchObject({ version: 2, value: { id: 'a', title: 'new', body } })
      })

      test('a patch on a stale version merges the fields only the other side changed, as a new version in the feed', async () => {
        await create()
        await result(patchOp({ body: 'theirs' }, { body }, 1))
        const merged = await result(patchOp({ title: 'mine' }, { title: 't' }, 1))
        expect(merged.status).toBe('applied')
        expect(merged.record).toMatchObject({ version: 3, value: { id: 'a', title: 'mine', body: 'theirs' } })
        const feed = await call('GET', '/sync/changes?since=2')
        expect((feed.body.changes as Json[]).map((c) => [c.version, (c.value as Json).title])).toEqual([[3, 'mine']])
      })

      test('the same field changed on both sides is a conflict naming the field; nothing is written', async () => {
        await create()
        await result(patchOp({ title: 'theirs' }, { title: 't' }, 1))
        const conflict = await result(patchOp({ title: 'mine', extra: 1 }, { title: 't', extra: null }, 1))
        expect(conflict.status).toBe('conflict')
        expect(conflict.fields).toEqual(['/title'])
        expect(conflict.current).toMatchObject({ version: 2, value: { title: 'theirs' } })
        const item = await call('GET', '/items/files/a')
        expect(item.body.value).not.toHaveProperty('extra')
      })

      test('a patch against a missing item is a conflict with current null', async () => {
        const conflict = await result(patchOp({ title: 'x' }, { title: 't' }, 1))
        expect(conflict).toMatchObject({ status: 'conflict', current: null })
      })

      test('a malformed patch is rejected alone', async () => {
        await create()
        const answer = await push([patchOp({ title: 'x' }, {}, 1), patchOp(['x'] as unknown as Json, {}, 1), patchOp({ title: 'ok' }, { title: 't' }, 1)])
        const results = answer.body.results as Json[]
        expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'applied'])
        expect((results[0]!.error as Json).message).toMatch(/malformed patch/)
      })
    })

    test('a pull with a limit returns the most recent live items first, with total and hasMore (protocol 3)', async () => {
      await push([op({ id: 'a', value: { id: 'a' } }), op({ id: 'b', value: { id: 'b' } }), op({ id: 'c', value: { id: 'c' } })])
      await push([op({ id: 'a', value: { id: 'a', v: 2 }, baseVersion: 1 }), op({ id: 'c', type: 'delete', value: undefined, baseVersion: 1 })])
      const recent = await call('GET', '/sync/pull?collections=files&limit=1')
      expect(recent.status).toBe(200)
      expect((recent.body.items as Json[]).map((r) => r.id)).toEqual(['a'])
      expect(recent.body).toMatchObject({ total: 2, hasMore: true, cursor: '5' })
      const all = await call('GET', '/sync/pull?collections=files&limit=10')
      expect((all.body.items as Json[]).map((r) => r.id)).toEqual(['a', 'b'])
      expect(all.body.hasMore).toBe(false)
      expect((await call('GET', '/sync/pull?limit=0')).status).toBe(400)
      expect((await call('GET', '/sync/pull')).body).not.toHaveProperty('total')
    })

    describe('compression (protocol 3)', () => {
      const gz = (value: unknown): Uint8Array => new Uint8Array(gzipSync(JSON.stringify(value)))
      const send = async (bytes: Uint8Array, encoding: string): Promise<{ status: number; body: Json; headers: Headers }> => {
        const response = await fetch(`${target.baseUrl()}/sync/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding, ...auth() },
          body: bytes as BodyInit,
        })
        return { status: response.status, body: (await response.json()) as Json, headers: response.headers }
      }

      test('a gzip request body is accepted', async () => {
        const answer = await send(gz({ clientId: 'c', ops: [op({ value: { id: 'a', body: 'x'.repeat(20_000) } })] }), 'gzip')
        expect(answer.status).toBe(200)
        expect((answer.body.results as Json[])[0]!.status).toBe('applied')
      })

      test('a body whose decompressed size exceeds the limit is 413 and writes nothing', async () => {
        const bomb = gz({ clientId: 'c', ops: [op({ value: { id: 'a', body: '0'.repeat(8 * 1024 * 1024) } })] })
        expect(bomb.byteLength).toBeLessThan(64 * 1024)
        const answer = await send(bomb, 'gzip')
        expect(answer.status).toBe(413)
        expect(answer.body.error).toBe('payload_too_large')
        expect((await call('GET', '/items/files/a')).status).toBe(404)
      })

      test('an unknown Content-Encoding is 415, a body that is not gzip is 400; nothing is written', async () => {
        const raw = new TextEncoder().encode(JSON.stringify({ clientId: 'c', ops: [op()] }))
        const unknown = await send(raw, 'br')
        expect(unknown.status).toBe(415)
        expect(unknown.headers.get('accept-encoding')).toBe('gzip')
        expect((await send(raw, 'gzip')).status).toBe(400)
        expect((await call('GET', '/items/files/a')).status).toBe(404)
      })

      test('answers are gzip-compressed when the request accepts gzip', async () => {
        await push([op({ value: { id: 'a', body: 'lorem ipsum '.repeat(500) } })])
        const response = await fetch(`${target.baseUrl()}/sync/pull`, { headers: { 'accept-encoding': 'gzip', ...auth() } })
        expect(response.headers.get('content-encoding')).toBe('gzip')
        expect(((await response.json()) as Json).items as Json[]).toHaveLength(1)
      })
    })
  })
}
