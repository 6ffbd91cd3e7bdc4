import { http, HttpResponse } from 'msw'
import { gunzipSync } from 'node:zlib'
import { describe, expect, test } from 'vitest'
import { isHttpError, isInvalidOptionError, isNetworkError, isValidationError, syncFromFlaskBulk } from '../../src'
import { createApiClient, type RemoteOperation } from '../../src/remote'
import { until } from '../support/instrumentedStore'
import { deleteFile, saveFile, type FileItem } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()

/** A fetch that records what each push request carried on the wire. */
function wire() {
  const seen: Array<{ encoding: string | null; bytes: Uint8Array }> = []
  const fetchImpl: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    if (request.url.endsWith('/sync/push'))
      seen.push({ encoding: request.headers.get('content-encoding'), bytes: new Uint8Array(await request.clone().arrayBuffer()) })
    return fetch(request)
  }
  return { seen, fetch: fetchImpl }
}

let n = 0
const op = (value: unknown): RemoteOperation => ({ opId: `z-${++n}`, collection: 'files', id: `i${n}`, type: 'put', value, baseVersion: null, clientTime: 1 })
const big = { id: 'x', body: 'lorem ipsum dolor '.repeat(500) }

describe('gzip request bodies', () => {
  test('a push body over the threshold goes out gzip-compressed, and the server applies it', async () => {
    const w = wire()
    const api = createApiClient({ baseUrl: BASE_URL, fetch: w.fetch })
    const answer = await api.push('c', [op(big)], { compress: true })
    expect(answer.results[0]!.status).toBe('applied')
    expect(w.seen[0]!.encoding).toBe('gzip')
    const inflated = JSON.parse(gunzipSync(w.seen[0]!.bytes).toString()) as { ops: Array<{ value: unknown }> }
    expect(inflated.ops[0]!.value).toEqual(big)
    expect(w.seen[0]!.bytes.byteLength).toBeLessThan(JSON.stringify(big).length / 10)
  })

  test('small bodies, a server not known to speak protocol 3, and compressRequestsOver: false stay plain', async () => {
    const w = wire()
    await createApiClient({ baseUrl: BASE_URL, fetch: w.fetch }).push('c', [op({ id: 's' })], { compress: true })
    await createApiClient({ baseUrl: BASE_URL, fetch: w.fetch }).push('c', [op(big)])
    await createApiClient({ baseUrl: BASE_URL, fetch: w.fetch, compressRequestsOver: false }).push('c', [op(big)], { compress: true })
    expect(w.seen.map((s) => s.encoding)).toEqual([null, null, null])
    expect(server.model.records()).toHaveLength(3)
  })

  test('a bad threshold is refused by name', () => {
    let error: unknown
    try {
      createApiClient({ baseUrl: BASE_URL, compressRequestsOver: -1 })
    } catch (caught) {
      error = caught
    }
    expect(isInvalidOptionError(error)).toBe(true)
    expect(String(error)).toMatch(/remote\.compressRequestsOver/)
  })
})

describe('an older server (protocol 2)', () => {
  test('gets whole values and plain bodies from a fieldMerge slice', async () => {
    msw.use(http.get(`${BASE_URL}/health`, () => HttpResponse.json({ status: 'ok', serverTime: Date.now(), protocol: 2, epoch: server.model.epoch })))
    const w = wire()
    const c = client({ files: { fieldMerge: true }, remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    c.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: big.body }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0, 'v1')
    c.store.dispatch(saveFile({ id: 'doc', name: 'v2', body: big.body }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0, 'v2')
    expect(w.seen.map((s) => s.encoding)).toEqual([null, null])
    const last = JSON.parse(new TextDecoder().decode(w.seen[1]!.bytes)) as { ops: Array<Record<string, unknown>> }
    expect(last.ops[0]).toMatchObject({ type: 'put', value: { id: 'doc', name: 'v2' } })
  })
})

describe('a merged item that fails validate', () => {
  test('is reported as a ValidationError and not written; the local edit stays and nothing is queued twice', async () => {
    // Alice's schema refuses a body that Bob's device writes.
    const validate = (item: unknown) => (item as FileItem).body !== 'forbidden' || 'body is forbidden'
    const alice = client({ dbName: 'alice', files: { fieldMerge: true, validate } })
    const bob = client({ dbName: 'bob', files: { fieldMerge: true } })
    await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
    await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'ok' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0, 'v1')
    await bob.store.dispatch(syncFromFlaskBulk())
    bob.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'forbidden' }))
    await bob.persistence.flush()
    await until(() => bob.store.getState().sync.outboxDepth === 0, 'bob')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'alice', body: 'ok' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0, 'alice')
    expect(server.model.records()[0]!.value).toEqual({ id: 'doc', name: 'alice', body: 'forbidden' })
    expect(alice.errors.some((e) => isValidationError(e) && e.source === 'server')).toBe(true)
    expect(alice.store.getState().files.entities.doc).toEqual({ id: 'doc', name: 'alice', body: 'ok' })
    expect(alice.store.getState().sync.deadLetters).toEqual([])
  })
})

describe('bad input around patches and compression: typed errors, nothing lost', () => {
  test('a patch against an item another device deleted is a conflict; client-wins recreates it whole', async () => {
    const alice = client({ dbName: 'alice', files: { fieldMerge: true }, strategy: 'client-wins' })
    const bob = client({ dbName: 'bob' })
    await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
    await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'b' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0, 'v1')
    await bob.store.dispatch(syncFromFlaskBulk())
    bob.store.dispatch(deleteFile('doc'))
    await bob.persistence.flush()
    await until(() => bob.store.getState().sync.outboxDepth === 0 && server.model.records()[0]!.deleted, 'bob deleted it')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'alice', body: 'b' }))
    await alice.persistence.flush()
    await until(() => alice.conflicts.length === 1 && alice.store.getState().sync.outboxDepth === 0, 'decided')
    expect(server.model.records()[0]).toMatchObject({ deleted: false, version: 3, value: { id: 'doc', name: 'alice', body: 'b' } })
    expect(alice.conflicts[0]).toMatchObject({ resolution: 'client', server: { deleted: true } })
  })

  test('a push whose body inflates beyond the server limit is a 413: the op is dead-lettered, not lost', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    // 3 MB of one character: a few kB gzip-compressed, over the mock's 2 MiB limit once inflated.
    c.store.dispatch(saveFile({ id: 'huge', name: 'h', body: 'x'.repeat(3 * 1024 * 1024) }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.deadLetters.length === 1, 'dead-lettered')
    expect(c.store.getState().sync.deadLetters[0]).toMatchObject({ key: 'files:huge', status: 413, code: 'payload_too_large' })
    expect(c.errors.some((e) => isHttpError(e) && e.status === 413)).toBe(true)
    expect(server.model.records()).toEqual([])
  })
})

describe('compressed pushes refused on the way (CORS preflight without Content-Encoding, a proxy)', () => {
  const REFUSED = /compressed requests are refused \(CORS Access-Control-Allow-Headers lacks Content-Encoding, or a proxy\); sending uncompressed/
  const refusals = (errors: readonly Error[]) => errors.filter((e) => REFUSED.test(e.message))
  const note = (id: string) => saveFile({ id, name: id, body: big.body })

  /** Saves one big item and waits until the server holds it and the outbox is empty. */
  async function pushBig(c: ReturnType<typeof client>, id: string): Promise<void> {
    c.store.dispatch(note(id))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0 && server.model.records().some((r) => r.id === id), `${id} on the server`)
  }

  test('a gzip push that fails without an answer while plain ones go through is sent again plain, once; compression stays off, said once', async () => {
    // What a browser does when the preflight answer lacks Content-Encoding: fetch rejects.
    msw.use(http.post(`${BASE_URL}/sync/push`, ({ request }) => (request.headers.get('content-encoding') === 'gzip' ? HttpResponse.error() : undefined)))
    const w = wire()
    const c = client({ remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    await pushBig(c, 'a')
    await pushBig(c, 'b')
    await pushBig(c, 'c')
    // a: refused gzip, plain, refused gzip replay (the confirmation); b and c: plain only.
    expect(w.seen.map((s) => s.encoding)).toEqual(['gzip', null, 'gzip', null, null])
    expect(server.model.appliedOps).toBe(3)
    expect(server.model.records().map((r) => [r.id, r.version])).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ])
    expect(c.store.getState().sync.deadLetters).toEqual([])
    // One warning, and nothing else: the op was never reported as failed.
    expect(c.errors).toHaveLength(1)
    const [warning] = refusals(c.errors)
    expect(isNetworkError(warning)).toBe(true)
    expect(warning!.message).toMatch(/compressRequestsOver: false/)
    expect(warning!.message).toMatch(/allow Content-Encoding/)
    expect(isNetworkError(warning!.cause)).toBe(true)
    expect(c.persistence.getStatus()).toMatchObject({ errorCount: 1, lastError: { name: 'NetworkError', message: warning!.message } })
  })

  test.each([415, 400])('a gzip push answered %i while the same push plain goes through: sent plain, compression off, said once', async (status) => {
    // A proxy that refuses the encoding (415), or mangles the body so the server cannot read it (400).
    msw.use(
      http.post(`${BASE_URL}/sync/push`, ({ request }) =>
        request.headers.get('content-encoding') === 'gzip' ? HttpResponse.json({ error: 'proxy', message: 'no gzip here' }, { status }) : undefined,
      ),
    )
    const w = wire()
    const c = client({ remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    await pushBig(c, 'a')
    await pushBig(c, 'b')
    expect(w.seen.map((s) => s.encoding)).toEqual(['gzip', null, null])
    expect(server.model.appliedOps).toBe(2)
    expect(c.store.getState().sync.deadLetters).toEqual([])
    expect(c.errors).toHaveLength(1)
    const [warning] = refusals(c.errors)
    expect(isHttpError(warning) && warning.status === status && warning.code === 'proxy').toBe(true)
    expect(warning!.message).toMatch(new RegExp(`answered ${status}`))
    expect(warning!.message).toMatch(/compressRequestsOver: false/)
  })

  test('the compressed replay that confirms a refusal carries only ops the server holds: after a conflict, the verdict waits', async () => {
    msw.use(http.post(`${BASE_URL}/sync/push`, ({ request }) => (request.headers.get('content-encoding') === 'gzip' ? HttpResponse.error() : undefined)))
    const w = wire()
    const c = client({ remote: { fetch: w.fetch }, strategy: 'server-wins' })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    // Another device created "a" meanwhile: this client's create of it is a conflict, which the
    // server does not keep by opId, so replaying it could apply it after the client decided.
    await createApiClient({ baseUrl: BASE_URL }).push('other', [{ ...op({ id: 'a', name: 'theirs' }), id: 'a', opId: 'theirs-a' }])
    c.store.dispatch(note('a'))
    await c.persistence.flush()
    await until(() => c.conflicts.length === 1 && c.store.getState().sync.outboxDepth === 0, 'the conflict decided')
    expect(w.seen.map((s) => s.encoding)).toEqual(['gzip', null])
    expect(refusals(c.errors)).toEqual([])
    // The next push the server applies settles it.
    await pushBig(c, 'b')
    expect(w.seen.map((s) => s.encoding)).toEqual(['gzip', null, 'gzip', null, 'gzip'])
    expect(refusals(c.errors)).toHaveLength(1)
    expect(server.model.records().map((r) => [r.id, r.value])).toEqual([
      ['a', { id: 'a', name: 'theirs' }],
      ['b', { id: 'b', name: 'b', body: big.body }],
    ])
  })

  test('a real outage (every request fails) does not turn compression off: after it, big pushes are gzip again, nothing lost', async () => {
    const w = wire()
    const c = client({ remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    server.down()
    c.store.dispatch(note('a'))
    await c.persistence.flush()
    await until(() => !c.store.getState().sync.status.flaskConnected && w.seen.length >= 1, 'the push failed')
    // Health checks keep failing meanwhile, with backoff.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(server.model.records()).toEqual([])
    server.up()
    await until(() => c.store.getState().sync.outboxDepth === 0 && server.model.records().length === 1, 'a after the outage')
    const during = w.seen.length
    await pushBig(c, 'b')
    expect(w.seen.slice(during).map((s) => s.encoding)).toEqual(['gzip'])
    expect(w.seen.at(-2)!.encoding).toBe('gzip') // a went through compressed too
    expect(server.model.appliedOps).toBe(2)
    expect(refusals(c.errors)).toEqual([])
    expect(c.errors.some((e) => isNetworkError(e))).toBe(true) // the outage itself was reported
  })

  test('a gzip push whose connection dropped once (not a refusal) keeps compression on: the compressed replay goes through', async () => {
    let drops = 1
    msw.use(
      http.post(`${BASE_URL}/sync/push`, ({ request }) => {
        if (request.headers.get('content-encoding') !== 'gzip' || drops === 0) return undefined
        drops--
        return HttpResponse.error()
      }),
    )
    const w = wire()
    const c = client({ remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    await pushBig(c, 'a')
    await pushBig(c, 'b')
    expect(w.seen.at(-1)!.encoding).toBe('gzip')
    expect(server.model.appliedOps).toBe(2)
    expect(refusals(c.errors)).toEqual([])
  })

  test('a 413 on a gzip push is still a too-large op: dead-lettered, compression not blamed', async () => {
    msw.use(
      http.post(`${BASE_URL}/sync/push`, ({ request }) =>
        request.headers.get('content-encoding') === 'gzip'
          ? HttpResponse.json({ error: 'payload_too_large', message: 'too large' }, { status: 413 })
          : undefined,
      ),
    )
    const w = wire()
    const c = client({ remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    c.store.dispatch(note('a'))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.deadLetters.length === 1, 'dead-lettered')
    expect(c.store.getState().sync.deadLetters[0]).toMatchObject({ key: 'files:a', status: 413 })
    expect(w.seen.map((s) => s.encoding)).toEqual(['gzip'])
    expect(refusals(c.errors)).toEqual([])
  })
})
